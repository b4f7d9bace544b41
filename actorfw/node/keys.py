"""CURVE key pairs for nodes: ``actorfw keys generate``, and reading key files back.

Each node has a key pair. Its public key goes to every other node (the
allow-list, and the server key its peers expect); its secret key stays on
its host. Files use ZeroMQ's certificate format: ``<name>.key`` holds the
public key, ``<name>.key_secret`` both (readable by the owner only)::

    metadata
    curve
        public-key = "<40 Z85 characters>"
        secret-key = "<40 Z85 characters>"

Rules:

1. A key file is created, never opened if something is already at its path:
   ``O_CREAT | O_EXCL | O_NOFOLLOW``, so a symlink planted at the path
   (dangling or not) makes generation fail instead of writing the secret
   where the link points. The secret file is mode 0600, the public one 0644,
   whatever the umask.
2. Folders that generation creates are mode 0700, whatever the umask: the
   folder holds a secret key, and its listing (which names have keys) is
   nobody else's business either. Public keys are copied out of it to the
   other hosts. A folder that already exists keeps its mode.
3. Reading a key file checks every key it holds: 40 characters of Z85 that
   decode to 32 bytes, and a secret key that belongs to the public key
   beside it. A bad file is a ``ValueError`` naming the file, the line and
   what is wrong, before any socket sees the key.
"""

from __future__ import annotations

import os
from pathlib import Path

import zmq
from zmq.utils import z85

__all__ = ["KeyFileError", "generate_keys", "read_key_file"]

_Z85 = frozenset(
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)
_FOLDER_MODE = 0o700
_SECRET_MODE = 0o600
_PUBLIC_MODE = 0o644
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class KeyFileError(ValueError):
    """A key file that cannot be used: the message names the file, the line and the fault."""


def _make_folders(folder: Path) -> None:
    """Create ``folder`` and any missing parents, each mode 0700 (rule 2)."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, _FOLDER_MODE)
        except FileExistsError:
            if not path.is_dir():
                raise
            continue  # made meanwhile by someone else: keep its mode
        os.chmod(path, _FOLDER_MODE)  # mkdir's mode is cut by the umask


def _write_new(path: Path, text: str, mode: int) -> None:
    """Create ``path`` with ``text``; fail if anything, even a dangling link, is there (rule 1)."""
    fd = os.open(path, _CREATE, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have cut bits that are wanted
        with os.fdopen(fd, "w", encoding="ascii") as out:
            fd = -1
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
    finally:
        if fd >= 0:
            os.close(fd)


def _certificate(kind: str, public: bytes, secret: bytes | None) -> str:
    lines = [
        f"#   ZeroMQ CURVE {kind} certificate, written by `actorfw keys generate`",
        "#   " + ("keep it on this host only" if secret else "copy it to every other node"),
        "",
        "metadata",
        "curve",
        f'    public-key = "{public.decode("ascii")}"',
    ]
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode("ascii")}"')
    return "\n".join(lines) + "\n"


def generate_keys(name: str, directory: str | Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Write a new key pair for node ``name`` into ``directory`` (see the module rules).

    Returns:
        ``(public_file, secret_file)``.

    Raises:
        FileExistsError: something is at either path (a file, a folder, a
            symlink, even a dangling one) and ``overwrite`` is false.
        ValueError: ``name`` is not a usable node name.
    """
    if not name or "/" in name or "\0" in name or name.startswith((".", "$")):
        raise ValueError(f"{name!r} is not a usable node name")
    folder = Path(directory)
    _make_folders(folder)
    public = folder / f"{name}.key"
    secret = folder / f"{name}.key_secret"
    taken = [path for path in (public, secret) if os.path.lexists(path)]
    if taken and not overwrite:
        raise FileExistsError(
            f"{' and '.join(map(str, taken))} exist{'s' if len(taken) == 1 else ''}; "
            "pass --overwrite to replace them"
        )
    for path in taken:
        if path.is_dir() and not path.is_symlink():
            raise FileExistsError(f"{path} is a folder; move it away first")
        path.unlink()  # a symlink goes, not what it points to
    public_key, secret_key = zmq.curve_keypair()
    _write_new(secret, _certificate("Secret", public_key, secret_key), _SECRET_MODE)
    try:
        _write_new(public, _certificate("Public", public_key, None), _PUBLIC_MODE)
    except BaseException:
        secret.unlink()
        raise
    return public, secret


def _check_key(path: Path, number: int, what: str, text: bytes) -> bytes:
    where = f"{path}, line {number}"
    if len(text) != 40:
        raise KeyFileError(
            f"{where}: the {what} is {len(text)} characters long; a CURVE key is 40 Z85 "
            "characters (was the file cut or edited?)"
        )
    bad = sorted({chr(c) for c in text if c not in _Z85})
    if bad:
        raise KeyFileError(
            f"{where}: the {what} holds {', '.join(map(repr, bad))}, not Z85 characters"
        )
    if len(z85.decode(text)) != 32:
        raise KeyFileError(f"{where}: the {what} does not decode to 32 bytes")
    return text


def read_key_file(path: str | Path) -> tuple[bytes, bytes | None]:
    """The ``(public key, secret key or None)`` of a key file, each checked (rule 3).

    Raises:
        KeyFileError: (a ``ValueError``) the file cannot be read, holds no
            public key, a key that is not a CURVE key, or a secret key of
            another public key; the message names the file (and the line).
    """
    file = Path(path)
    public: bytes | None = None
    secret: bytes | None = None
    public_line = secret_line = 0
    try:
        data = file.read_bytes()
    except OSError as error:
        raise KeyFileError(f"{file}: cannot read it as a key file ({error.strerror})") from None
    for number, raw in enumerate(data.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        key, sep, value = line.partition(b"=")
        field = key.strip()
        if field not in (b"public-key", b"secret-key"):
            continue
        if not sep:
            raise KeyFileError(f"{file}, line {number}: {field.decode()} without '= \"key\"'")
        text = value.strip()
        if len(text) >= 2 and text[0] == text[-1] and text[:1] in (b'"', b"'"):
            text = text[1:-1]
        if field == b"public-key":
            if public is not None:
                raise KeyFileError(f"{file}, line {number}: a second public key")
            public, public_line = _check_key(file, number, "public key", text), number
        else:
            if secret is not None:
                raise KeyFileError(f"{file}, line {number}: a second secret key")
            secret, secret_line = _check_key(file, number, "secret key", text), number
    if public is None:
        raise KeyFileError(
            f"{file}: no public-key line; is it a key file written by `actorfw keys generate`?"
        )
    if secret is not None and zmq.curve_public(secret) != public:
        raise KeyFileError(
            f"{file}, line {secret_line}: the secret key does not belong to the public key "
            f"on line {public_line}"
        )
    return public, secret
