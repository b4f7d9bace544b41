"""``actorfw kv`` against running clusters: every command, its output, its errors and exit codes.

Two clusters: an :class:`~actorfw.node.ActorSystem` with the KV store started
by :func:`~actorfw.services.replication.replicate`, and three ``actorfw node --config``
processes whose TOML files start it with ``[[replicated]]``.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actorfw.cli import main
from actorfw.kv import KVStateMachine
from actorfw.kv.cli import parse_value
from actorfw.node import ActorSystem
from actorfw.node.keys import generate_keys
from actorfw.services.replication import replicate

NODES = ["n1", "n2", "n3"]


@pytest.fixture(scope="module")
def system() -> Iterator[ActorSystem]:
    """Three node processes running the KV store as group ``kv``."""
    with ActorSystem(3, apps=["actorfw.kv.machine", "actorfw.services.paxos"]) as system:
        replicate(system, KVStateMachine, name="kv")
        yield system


def kv(system: ActorSystem, *argv: str) -> list[str]:
    """``actorfw kv`` arguments naming every node of ``system``."""
    nodes = [arg for n in NODES for arg in ("--node", f"{n}={system.endpoint(n)}")]
    return ["kv", *nodes, *argv]


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """Run the command in this process: (exit code, stdout, stderr)."""
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# -- values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("2.5", 2.5),
        ("true", True),
        ("null", None),
        ('"42"', "42"),
        ("[1, 2]", [1, 2]),
        ('{"a": 1}', {"a": 1}),
        ("blue", "blue"),
        ("hello world", "hello world"),
        ("NaN", "NaN"),
        ("1e400", "1e400"),
        ("-5", -5),
        ("{oops", "{oops"),
        ("", ""),
    ],
)
def test_a_value_is_its_json_reading_or_else_the_text(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_as_string_a_value_is_the_text() -> None:
    assert parse_value("42", as_string=True) == "42"


# -- every command ----------------------------------------------------------------------------


def test_put_prints_nothing_and_get_prints_the_value_as_json(
    system: ActorSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, kv(system, "put", "doc", '{"a": [1, 2], "b": "é"}')) == (0, "", "")
    assert run(capsys, kv(system, "get", "doc")) == (0, '{"a": [1, 2], "b": "é"}\n', "")


def test_get_of_an_absent_key_prints_null(
    system: ActorSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, kv(system, "get", "never-written")) == (0, "null\n", "")


def test_a_value_that_is_not_json_is_stored_as_a_string(
    system: ActorSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, kv(system, "put", "colour", "blue"))[0] == 0
    assert run(capsys, kv(system, "get", "colour"))[1] == '"blue"\n'
    assert run(capsys, kv(system, "put", "n", "42"))[0] == 0
    assert run(capsys, kv(system, "get", "n"))[1] == "42\n"
    assert run(capsys, kv(system, "put", "--string", "s", "42"))[0] == 0
    assert run(capsys, kv(system, "get", "s"))[1] == '"42"\n'


def test_delete_prints_nothing_and_removes_the_key(
    system: ActorSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, kv(system, "put", "gone", "1"))[0] == 0
    assert run(capsys, kv(system, "delete", "gone")) == (0, "", "")
    assert run(capsys, kv(system, "get", "gone"))[1] == "null\n"


def test_cas_prints_true_or_false_and_exits_0_either_way(
    system: ActorSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, kv(system, "cas", "lock", "null", "mine")) == (0, "true\n", "")
    assert run(capsys, kv(system, "cas", "lock", "null", "yours")) == (0, "false\n", "")
    assert run(capsys, kv(system, "cas", "lock", "mine", "free")) == (0, "true\n", "")
    assert run(capsys, kv(system, "get", "lock"))[1] == '"free"\n'
    assert run(capsys, kv(system, "put", "hits", "3"))[0] == 0
    assert run(capsys, kv(system, "cas", "--string", "hits", "3", "4"))[1] == "false\n"
    assert run(capsys, kv(system, "cas", "hits", "3", "4"))[1] == "true\n"


def test_append_prints_the_new_string_as_json(
    system: ActorSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, kv(system, "append", "log", "a b")) == (0, '"a b"\n', "")
    assert run(capsys, kv(system, "append", "log", '"c"')) == (0, '"a b\\"c\\""\n', "")


def test_a_cluster_file_gives_the_nodes_and_the_group(
    system: ActorSystem, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cluster = tmp_path / "cluster.toml"
    nodes = "\n".join(f"{n} = {json.dumps(system.endpoint(n))}" for n in NODES)
    cluster.write_text(f'group = "kv"\n\n[nodes]\n{nodes}\n', encoding="utf-8")
    assert run(capsys, ["kv", "--cluster", str(cluster), "put", "via-file", "1"])[0] == 0
    assert run(capsys, ["kv", "--cluster", str(cluster), "get", "via-file"])[1] == "1\n"


def test_the_command_runs_as_a_process(system: ActorSystem) -> None:
    nodes = [arg for n in NODES for arg in ("--node", f"{n}={system.endpoint(n)}")]
    command = [sys.executable, "-m", "actorfw", "kv", *nodes, "append", "proc", "x"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, '"x"\n', "")


# -- errors -----------------------------------------------------------------------------------


def test_an_operation_the_store_refuses_exits_1(
    system: ActorSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, kv(system, "put", "k", "null"))
    assert (code, out) == (1, "")
    assert err == "actorfw kv: put k: refused: put None: use delete\n"
    assert run(capsys, kv(system, "put", "number", "7"))[0] == 0
    code, _, err = run(capsys, kv(system, "append", "number", "x"))
    assert code == 1 and "key 'number' does not hold a string" in err


def test_a_value_that_cannot_be_sent_exits_2(
    system: ActorSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, kv(system, "put", "big", str(2**70)))
    assert code == 2 and err.startswith("actorfw kv: put big: cannot send it: ")


def test_an_unreachable_cluster_exits_1_with_a_diagnosis(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    endpoint = f"ipc://{tmp_path}/nobody.sock"
    code, out, err = run(capsys, ["kv", "--node", f"n1={endpoint}", "--timeout", "1", "get", "k"])
    assert (code, out) == (1, "")
    assert err == (
        "actorfw kv: get k: no answer from group 'kv' within 1s\n"
        "actorfw kv: no node answered (n1): are the nodes running, and are the endpoints, the "
        "keys and the client's name on the nodes' allow-list right?\n"
    )


def test_an_unanswered_write_may_or_may_not_have_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    endpoint = f"ipc://{tmp_path}/nobody.sock"
    argv = ["kv", "--node", f"n1={endpoint}", "--timeout", "0.5", "put", "k", "1"]
    code, _, err = run(capsys, argv)
    assert code == 1
    assert err.startswith(
        "actorfw kv: put k: no answer from group 'kv' within 0.5s (it may or may not have run)\n"
    )


def test_a_wrong_group_exits_1_and_says_no_node_runs_it(
    system: ActorSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    # A majority of the nodes answers that it does not run the group: no need to wait.
    code, _, err = run(capsys, kv(system, "--group", "nope", "--timeout", "60", "get", "k"))
    assert code == 1
    assert err == (
        "actorfw kv: get k: no node runs group 'nope' (no actor nope-replica on n1, n2, n3): "
        "is --group right, and is the group in the nodes' [[replicated]] configuration?\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["get", "k"], "give the cluster: --cluster FILE, or --node NAME=ENDPOINT"),
        (["--node", "n1", "get", "k"], "--node 'n1' is not NAME=ENDPOINT"),
        (["--node", "n1=ipc://a", "--node", "n1=ipc://b", "get", "k"], "--node n1 is given twice"),
        (["--node", "n1=udp://x:1", "get", "k"], "endpoint 'udp://x:1' is not tcp://HOST:PORT"),
        (["--node", "n1=tcp://127.0.0.1:1", "get", "k"], "n1 is reached over tcp://, which needs"),
        (["--node", "n1=ipc://a", "--key", "x.key_secret", "get", "k"], "--key and --peer-keys go"),
        (["--node", "n1=ipc://a", "--timeout", "0", "get", "k"], "--timeout must be a positive"),
        (["--node", "n1=ipc://a", "--name", "a/b", "get", "k"], "--name must be non-empty"),
        (["--node", "n1=ipc://a", "--group", "a/b", "get", "k"], "a group name has no '/'"),
        (["--node", "n/1=ipc://a", "get", "k"], "a node name has no '/'"),
        (["--cluster", "/no/such/cluster.toml", "get", "k"], "cluster file /no/such/cluster.toml"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, ["kv", *argv])
    assert (code, out) == (2, "")
    assert err.startswith("actorfw kv: ") and message in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('group = "kv"\nnode = 1\n', "unknown key 'node' (known: group, sharded, nodes, keys)"),
        ('group = "kv"\n', "[nodes] must list the group's nodes"),
        ("[nodes]\nn1 = 5\n", "[nodes] n1 must be an endpoint string"),
        ('group = 3\n[nodes]\nn1 = "ipc://a"\n', "group must be a non-empty string"),
        ('[nodes]\nn1 = "ipc://a"\n[keys]\nsecret = "x"\n', "[keys] needs exactly 'secret'"),
        (
            '[nodes]\nn1 = "ipc://a"\n[keys]\nsecret = "no.key_secret"\npeers = "."\n',
            "no.key_secret does not exist",
        ),
        ("[nodes\n", "not valid TOML"),
    ],
)
def test_a_bad_cluster_file_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    cluster = tmp_path / "cluster.toml"
    cluster.write_text(text, encoding="utf-8")
    code, _, err = run(capsys, ["kv", "--cluster", str(cluster), "get", "k"])
    assert code == 2
    assert err.startswith(f"actorfw kv: {cluster}") and message in err


def test_cluster_and_node_together_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["kv", "--cluster", "c.toml", "--node", "n1=ipc://a", "get", "k"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# -- nodes started from TOML files with [[replicated]] ----------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_configs(base: Path, sockets: Path, transport: str) -> Path:
    """Three nodes' TOML files and the client's cluster file; returns the cluster file."""
    if transport == "ipc":
        endpoints = {n: f"ipc://{sockets / n}.sock" for n in NODES}
        keys: dict[str, str] = {}
    else:
        endpoints = {n: f"tcp://127.0.0.1:{_free_port()}" for n in NODES}
        (base / "public").mkdir()
        for name in [*NODES, "ops"]:
            public, _ = generate_keys(name, base / "keys")
            shutil.copy(public, base / "public")
        keys = {n: f'\n[keys]\nsecret = "keys/{n}.key_secret"\npeers = "public"\n' for n in NODES}
        keys["ops"] = '\n[keys]\nsecret = "keys/ops.key_secret"\npeers = "public"\n'
    for name in NODES:
        peers = "\n".join(f'{n} = "{e}"' for n, e in endpoints.items() if n != name)
        (base / f"{name}.toml").write_text(
            f'name = "{name}"\nlisten = "{endpoints[name]}"\n'
            f"\n[peers]\n{peers}\n{keys.get(name, '')}"
            "\n[tuning]\nlinger = 0.5\n"
            '\n[[replicated]]\nname = "kv"\n',
            encoding="utf-8",
        )
    nodes = "\n".join(f'{n} = "{e}"' for n, e in endpoints.items())
    cluster = base / "cluster.toml"
    cluster.write_text(f"[nodes]\n{nodes}\n{keys.get('ops', '')}", encoding="utf-8")
    return cluster


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_nodes_configured_with_replicated_serve_the_kv_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, transport: str
) -> None:
    sockets = Path(tempfile.mkdtemp(prefix="afw-"))  # short: ipc paths are limited to ~100 bytes
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: tmp_path / f"{name}.log" for name in NODES}
    try:
        cluster = write_configs(tmp_path, sockets, transport)
        for name in NODES:
            with open(logs[name], "wb") as log:
                processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "actorfw", "node", "--config", f"{name}.toml"],
                    cwd=tmp_path,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
        # The first command waits (up to its timeout) for the nodes to come up and elect a leader.
        code, out, err = run(
            capsys, ["kv", "--cluster", str(cluster), "--timeout", "30", "put", "k", "[1]"]
        )
        assert (code, out, err) == (0, "", ""), _logs(logs)
        assert run(capsys, ["kv", "--cluster", str(cluster), "get", "k"]) == (0, "[1]\n", "")
        assert run(capsys, ["kv", "--cluster", str(cluster), "append", "t", "x"])[1] == '"x"\n'
        assert all(p.poll() is None for p in processes.values()), _logs(logs)
        # Two nodes make a majority: the third may still be starting on a loaded machine,
        # before its SIGTERM handler is in place. Stop them once all three are up.
        deadline = time.monotonic() + 30.0
        while not all("node up at" in logs[n].read_text(errors="replace") for n in NODES):
            assert time.monotonic() < deadline, _logs(logs)
            time.sleep(0.05)
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(30) for process in processes.values()]
        assert codes == [0, 0, 0], _logs(logs)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)
        shutil.rmtree(sockets, ignore_errors=True)


def _logs(logs: dict[str, Path]) -> str:
    return "\n".join(
        f"--- {name} ---\n{path.read_text(errors='replace')}"
        for name, path in logs.items()
        if path.exists()
    )
