"""CURVE key pairs for nodes: ``actorfw keys generate``.

Each node has a key pair. Its public key goes to every other node (the
allow-list, and the server key its peers expect); its secret key stays on
its host. Files use ZeroMQ's certificate format: ``<name>.key`` holds the
public key, ``<name>.key_secret`` both (readable by the owner only).
"""

from __future__ import annotations

import os
from pathlib import Path

import zmq.auth

__all__ = ["generate_keys"]


def generate_keys(name: str, directory: str | Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Write a new key pair for node ``name`` into ``directory``.

    Returns:
        ``(public_file, secret_file)``.

    Raises:
        FileExistsError: the files exist and ``overwrite`` is false.
        ValueError: ``name`` is not a usable node name.
    """
    if not name or "/" in name or name.startswith((".", "$")):
        raise ValueError(f"{name!r} is not a usable node name")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    public = folder / f"{name}.key"
    secret = folder / f"{name}.key_secret"
    if not overwrite and (public.exists() or secret.exists()):
        raise FileExistsError(f"{public} or {secret} exists; pass --overwrite to replace them")
    for path in (public, secret):
        if path.exists():
            path.unlink()
    old_umask = os.umask(0o077)
    try:
        made_public, made_secret = zmq.auth.create_certificates(str(folder), name)
    finally:
        os.umask(old_umask)
    os.chmod(made_secret, 0o600)
    os.chmod(made_public, 0o644)
    return Path(made_public), Path(made_secret)
