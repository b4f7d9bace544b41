"""No ``actorfw`` command answers bad input with a traceback.

Each case runs the installed command as a process, as a user would, with
input that is wrong in one way: a bad argument, a missing or malformed
file, an address nobody answers at. The exit codes are the documented ones
(``docs/deployment.md``, ``actorfw kv --help``): 2 for bad arguments and
bad or missing files, 1 for a runtime failure (nobody answered within the
command's own ``--timeout``). Either way standard error is a short message
naming the problem, never a Python traceback.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from actorfw.node.keys import generate_keys

RUN_TIMEOUT = 60.0
"""Seconds a case may take at most: a command that hangs fails the test (and is killed)."""

MAX_LINES = 6
"""Lines of standard error a short message may take (argparse's usage lines included)."""


@dataclass(frozen=True)
class Case:
    """One bad input: the arguments, the exit code expected, and a fragment of the message."""

    argv: tuple[str, ...]
    code: int
    says: str

    @property
    def id(self) -> str:
        return " ".join(self.argv)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# Placeholders, filled in per run: {tmp} a fresh directory (also the working
# directory), {keys} a folder with key pairs for n1, n2 and ops and their public
# keys in {keys}/public, {port} a TCP port nobody listens on.
CASES = [
    # the command itself
    Case((), 2, "the following arguments are required: command"),
    Case(("nope",), 2, "invalid choice: 'nope'"),
    Case(("info", "--bogus"), 2, "unrecognized arguments: --bogus"),
    # demo: refused before any node starts
    Case(("demo", "--nodes", "2"), 2, "at least 3 nodes"),
    Case(("demo", "--duration", "soon"), 2, "invalid float value: 'soon'"),
    Case(("demo", "--clients", "0"), 2, "at least 1 client"),
    Case(("demo", "--history", "{tmp}/no/such/h.jsonl"), 2, "{tmp}/no/such does not exist"),
    Case(("demo", "--history", "{tmp}"), 2, "is a directory"),
    # node: refused at start
    Case(("node",), 2, "give --config FILE, or at least --name and --listen"),
    Case(("node", "--config", "{tmp}/missing.toml"), 2, "{tmp}/missing.toml does not exist"),
    Case(("node", "--config", "{tmp}/bad.toml"), 2, "not valid TOML"),
    Case(("node", "--config", "{tmp}/unknown-key.toml"), 2, "unknown key 'colour'"),
    Case(("node", "--name", "n1", "--listen", "tcp://127.0.0.1"), 2, "has no port"),
    Case(("node", "--name", "n1", "--listen", "127.0.0.1:7000"), 2, "is not tcp://HOST:PORT"),
    Case(("node", "--name", "n1", "--listen", "tcp://127.0.0.1:{port}"), 2, "no CURVE keys"),
    Case(
        (
            "node",
            *("--name", "n1", "--listen", "tcp://127.0.0.1:{port}"),
            *("--key", "{tmp}/missing.key_secret", "--peer-keys", "{keys}/public"),
        ),
        2,
        "key file {tmp}/missing.key_secret does not exist",
    ),
    Case(
        (
            "node",
            *("--name", "n1", "--listen", "tcp://127.0.0.1:{port}"),
            *("--key", "{keys}/n1.key_secret", "--peer-keys", "{tmp}/no-such-folder"),
        ),
        2,
        "is not a directory of <node>.key files",
    ),
    Case(
        (
            "node",
            *("--name", "n1", "--listen", "tcp://127.0.0.1:{port}"),
            *("--key", "{keys}/n1.key_secret", "--peer-keys", "{keys}/public"),
            *("--peer", "n2=tcp://127.0.0.1:99999"),
        ),
        2,
        "the port '99999' is not a number from 1 to 65535",
    ),
    Case(
        (
            "node",
            *("--name", "n1", "--listen", "tcp://127.0.0.1:{port}"),
            *("--key", "{keys}/n1.key_secret", "--peer-keys", "{keys}/public"),
            *("--peer", "n3=tcp://127.0.0.1:7000"),
        ),
        2,
        "no public key for n3",
    ),
    Case(
        ("node", "--name", "n1", "--listen", "ipc://{tmp}/x.sock", "--peer", "n2"),
        2,
        "--peer 'n2' is not NAME=ENDPOINT",
    ),
    Case(
        ("node", "--name", "n1", "--listen", "ipc://{tmp}/x.sock", "--app", "no.such.module"),
        2,
        "is it installed, or on PYTHONPATH?",
    ),
    Case(
        ("node", "--name", "n1", "--listen", "ipc://{tmp}/no/such/n1.sock"),
        2,
        "No such file or directory",
    ),
    # keys
    Case(("keys",), 2, "the following arguments are required: command"),
    Case(("keys", "generate"), 2, "the following arguments are required: --name"),
    Case(("keys", "generate", "--name", "a/b", "--dir", "{tmp}"), 2, "not a usable node name"),
    Case(("keys", "generate", "--name", "n1", "--dir", "{keys}"), 2, "pass --overwrite"),
    Case(
        ("keys", "generate", "--name", "x", "--dir", "{tmp}/bad.toml"),
        2,
        "cannot write the key pair into {tmp}/bad.toml",
    ),
    # kv: bad arguments
    Case(("kv", "get", "k"), 2, "give the cluster"),
    Case(("kv", "--node", "n1=ipc://{tmp}/n1.sock", "put", "k"), 2, "required: VALUE"),
    Case(("kv", "--node", "n1=ipc://", "get", "k"), 2, "endpoint 'ipc://' has no path"),
    Case(
        (
            "kv",
            *("--node", "n1=tcp://127.0.0.1"),
            *("--key", "{keys}/ops.key_secret", "--peer-keys", "{keys}/public"),
            *("get", "k"),
        ),
        2,
        "endpoint 'tcp://127.0.0.1' has no port: expected tcp://HOST:PORT",
    ),
    Case(("kv", "--node", "n1=tcp://127.0.0.1:{port}", "get", "k"), 2, "needs CURVE keys"),
    Case(
        (
            "kv",
            *("--node", "n1=tcp://127.0.0.1:{port}"),
            *("--key", "{tmp}/missing.key_secret", "--peer-keys", "{keys}/public"),
            *("get", "k"),
        ),
        2,
        "key file {tmp}/missing.key_secret does not exist",
    ),
    Case(
        ("kv", "--cluster", "{tmp}/missing.toml", "get", "k"),
        2,
        "cluster file {tmp}/missing.toml does not exist",
    ),
    Case(("kv", "--cluster", "{tmp}/bad.toml", "get", "k"), 2, "not valid TOML"),
    Case(("kv", "--node", "n1=ipc://{tmp}/n1.sock", "--timeout", "-1", "get", "k"), 2, "--timeout"),
    # kv: nobody answers; it gives up within its own --timeout
    Case(
        ("kv", "--node", "n1=ipc://{tmp}/nobody.sock", "--timeout", "1", "get", "k"),
        1,
        "no answer from group 'kv' within 1s",
    ),
    Case(
        (
            "kv",
            *("--node", "n1=tcp://127.0.0.1:{port}"),
            *("--key", "{keys}/ops.key_secret", "--peer-keys", "{keys}/public"),
            *("--timeout", "1", "put", "k", "v"),
        ),
        1,
        "no answer from group 'kv' within 1s (it may or may not have run)",
    ),
    # check
    Case(("check",), 2, "the following arguments are required: history"),
    Case(("check", "{tmp}/missing.jsonl"), 2, "{tmp}/missing.jsonl does not exist"),
    Case(("check", "{tmp}/bad.toml"), 2, "not valid JSON"),
    Case(("check", "{tmp}"), 2, "Is a directory"),
    Case(("check", "{tmp}/empty.jsonl", "--timeout", "-1"), 2, "seconds must be >= 0"),
    Case(("check", "{tmp}/empty.jsonl", "--initial", "1"), 2, "--initial is for --model register"),
    # bench
    Case(("bench",), 2, "the following arguments are required: suite"),
    Case(("bench", "kernels", "--filter", "no-such-case"), 2, "no case matches"),
    Case(("bench", "kernels", "--repeats", "0"), 2, "must be at least 1, not 0"),
    Case(("bench", "kernels", "--seconds", "-1"), 2, "seconds must be >= 0"),
    Case(("bench", "messaging", "--transport", "udp"), 2, "invalid choice: 'udp'"),
    Case(("bench", "paxos", "--quick", "--nodes", "0"), 2, "at least one node"),
    Case(("bench", "paxos", "--quick", "--batch", "0"), 2, "at least one command"),
    Case(("bench", "paxos", "--quick", "--clients", "0"), 2, "at least 1"),
]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Key pairs for n1, n2 and the client ops, and their public keys in ``public/``."""
    folder = tmp_path_factory.mktemp("keys")
    (folder / "public").mkdir()
    for name in ("n1", "n2", "ops"):
        public, _ = generate_keys(name, folder)
        shutil.copy(public, folder / "public")
    return folder


def _fill(text: str, tmp: Path, keys: Path, port: int) -> str:
    return text.replace("{tmp}", str(tmp)).replace("{keys}", str(keys)).replace("{port}", str(port))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gets_a_short_message_and_the_documented_exit_code(
    case: Case, tmp_path: Path, keys: Path
) -> None:
    (tmp_path / "bad.toml").write_text("this is [not toml\n", encoding="utf-8")
    (tmp_path / "unknown-key.toml").write_text(
        'name = "n1"\nlisten = "ipc://x.sock"\ncolour = "blue"\n', encoding="utf-8"
    )
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    port = _free_port()
    argv = [_fill(arg, tmp_path, keys, port) for arg in case.argv]
    done = subprocess.run(
        [sys.executable, "-m", "actorfw", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    err = done.stderr
    assert "Traceback (most recent call last)" not in err, err
    assert done.returncode == case.code, err
    assert _fill(case.says, tmp_path, keys, port) in err
    lines = err.strip().splitlines()
    assert 0 < len(lines) <= MAX_LINES, err
    for line in lines:  # our own messages, or argparse's usage and its continuation lines
        assert line.startswith(("actorfw", "usage: actorfw", " ")), err
