"""Key files: generation never follows a planted link, modes do not depend on the umask,
and a corrupt key file is refused with its name and line."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
import zmq.auth

from actorfw.node import keys as keys_module
from actorfw.node.config import load_curve
from actorfw.node.keys import KeyFileError, generate_keys, read_key_file


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_dangling_link_at_the_secret_path_is_refused_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    target = tmp_path / "elsewhere" / "stolen"
    target.parent.mkdir()
    (tmp_path / "keys").mkdir()
    link = tmp_path / "keys" / "n1.key_secret"
    link.symlink_to(target)
    with pytest.raises(FileExistsError, match=r"n1\.key_secret"):
        generate_keys("n1", tmp_path / "keys")
    assert not target.exists()
    assert link.is_symlink()
    assert not (tmp_path / "keys" / "n1.key").exists()


def test_overwriting_replaces_a_planted_link_without_writing_through_it(tmp_path: Path) -> None:
    target = tmp_path / "stolen"
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "n1.key_secret").symlink_to(target)
    (folder / "n1.key").symlink_to(tmp_path / "stolen-public")
    public, secret = generate_keys("n1", folder, overwrite=True)
    assert not target.exists() and not (tmp_path / "stolen-public").exists()
    assert not secret.is_symlink() and not public.is_symlink()
    assert mode(secret) == 0o600 and mode(public) == 0o644


def test_a_link_planted_after_the_check_is_still_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race: the path is free when looked at, and a link is there when written.
    target = tmp_path / "stolen"
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "n1.key_secret").symlink_to(target)
    monkeypatch.setattr(keys_module.os.path, "lexists", lambda path: False)
    with pytest.raises(FileExistsError):
        generate_keys("n1", folder)
    assert not target.exists()


def test_folders_and_files_get_their_modes_whatever_the_umask(
    tmp_path: Path, umask_000: None
) -> None:
    folder = tmp_path / "a" / "b" / "keys"
    public, secret = generate_keys("n1", folder)
    for made in (tmp_path / "a", tmp_path / "a" / "b", folder):
        assert mode(made) == 0o700, made
    assert mode(secret) == 0o600
    assert mode(public) == 0o644


def test_a_strict_umask_still_gives_a_readable_public_key(tmp_path: Path) -> None:
    old = os.umask(0o277)
    try:
        public, secret = generate_keys("n1", tmp_path / "keys")
    finally:
        os.umask(old)
    assert mode(tmp_path / "keys") == 0o700
    assert mode(secret) == 0o600 and mode(public) == 0o644


def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o755)
    generate_keys("n1", folder)
    assert mode(folder) == 0o755


def test_generated_keys_read_back_as_a_working_pair(tmp_path: Path) -> None:
    public_file, secret_file = generate_keys("n1", tmp_path)
    public, secret = read_key_file(secret_file)
    assert secret is not None and zmq.curve_public(secret) == public
    assert read_key_file(public_file) == (public, None)
    # pyzmq reads the same format.
    assert zmq.auth.load_certificate(str(secret_file)) == (public, secret)


def test_cli_refuses_a_planted_link_with_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "n1.key_secret").symlink_to(tmp_path / "stolen")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "actorfw",
            "keys",
            "generate",
            "--name",
            "n1",
            "--dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "n1.key_secret" in done.stderr and "exists" in done.stderr
    assert not (tmp_path / "stolen").exists()


# -- corrupt key files --------------------------------------------------------------------


def corrupt(path: Path, field: str, new_value: str) -> int:
    """Replace the value of ``field`` in a key file; return its line number."""
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        if line.strip().startswith(field):
            lines[number - 1] = f'    {field} = "{new_value}"'
            path.write_text("\n".join(lines) + "\n")
            return number
    raise AssertionError(f"no {field} in {path}")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("abc", "3 characters long"),
        ("x" * 39 + "~", "not Z85"),
        ("x" * 41, "41 characters long"),
        ("", "0 characters long"),
    ],
    ids=["short", "bad-character", "long", "empty"],
)
def test_a_corrupt_public_key_names_the_file_and_the_line(
    tmp_path: Path, value: str, words: str
) -> None:
    generate_keys("n1", tmp_path / "n1")
    public_file, _ = generate_keys("n2", tmp_path / "public")
    line = corrupt(public_file, "public-key", value)
    with pytest.raises(ValueError, match=words) as caught:
        load_curve(tmp_path / "n1" / "n1.key_secret", tmp_path / "public")
    assert isinstance(caught.value, KeyFileError)
    assert f"{public_file}, line {line}: the public key" in str(caught.value)


def test_a_secret_key_of_another_pair_is_refused(tmp_path: Path) -> None:
    _, secret_file = generate_keys("n1", tmp_path)
    _, other = zmq.curve_keypair()
    line = corrupt(secret_file, "secret-key", other.decode())
    with pytest.raises(KeyFileError, match=f"line {line}: the secret key does not belong"):
        read_key_file(secret_file)


def test_a_file_without_a_public_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "n1.key"
    path.write_text("metadata\ncurve\n")
    with pytest.raises(KeyFileError, match=f"{path}: no public-key line"):
        read_key_file(path)
