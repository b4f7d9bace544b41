"""``actorfw shards`` and ``actorfw kv`` against node processes started with ``[[sharded]]``.

Three ``actorfw node --config`` processes whose TOML files hold the same
``[[sharded]]`` section (a shard manager and two groups on all three):
the operator joins the groups, reads and writes keys through ``actorfw kv``
with ``sharded`` in the cluster file, moves a shard, has a group leave,
and every key keeps its value.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from actorfw.cli import main

NODES = ["n1", "n2", "n3"]

SECTION = """
[[sharded]]
shards = 8
[sharded.groups]
g1 = ["n1", "n2", "n3"]
g2 = ["n1", "n2", "n3"]
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _logs(logs: dict[str, Path]) -> str:
    return "\n".join(f"--- {n}\n{p.read_text(errors='replace')[-3000:]}" for n, p in logs.items())


def test_an_operator_joins_moves_and_removes_groups_while_kv_keeps_every_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sockets = Path(tempfile.mkdtemp(prefix="afw-"))  # short: ipc paths are limited
    endpoints = {n: f"ipc://{sockets / n}.sock" for n in NODES}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: tmp_path / f"{name}.log" for name in NODES}
    for name in NODES:
        peers = "\n".join(f'{n} = "{e}"' for n, e in endpoints.items() if n != name)
        (tmp_path / f"{name}.toml").write_text(
            f'name = "{name}"\nlisten = "{endpoints[name]}"\n\n[peers]\n{peers}\n'
            f"\n[tuning]\nlinger = 0.5\n{SECTION}",
            encoding="utf-8",
        )
    nodes = "\n".join(f'{n} = "{e}"' for n, e in endpoints.items())
    cluster = tmp_path / "cluster.toml"
    cluster.write_text(f'sharded = "shards"\n[nodes]\n{nodes}\n', encoding="utf-8")
    shards = ["shards", "--cluster", str(cluster), "--timeout", "30"]
    kv = ["kv", "--cluster", str(cluster), "--timeout", "30"]
    try:
        for name in NODES:
            with open(logs[name], "wb") as log:
                processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "actorfw", "node", "--config", f"{name}.toml"],
                    cwd=tmp_path,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
        code, out, err = run(capsys, *shards, "show")
        assert (code, err) == (0, ""), _logs(logs)
        assert out.startswith("configuration 0: 8 shards\n  unassigned: 8 shards [0-7]")

        code, out, _ = run(capsys, *shards, "join", "g1=n1,n2,n3")
        assert code == 0 and "g1 on n1, n2, n3: 8 shards [0-7]" in out
        for i in range(8):
            assert run(capsys, *kv, "put", f"k{i}", str(i)) == (0, "", ""), _logs(logs)

        code, out, _ = run(capsys, *shards, "--json", "join", "g2=n1,n2,n3")
        joined = json.loads(out)
        assert code == 0 and joined["num"] == 2 and len(joined["moved"]) == 4
        assert {m["from"] for m in joined["moved"]} == {"g1"}
        for i in range(8):
            assert run(capsys, *kv, "get", f"k{i}") == (0, f"{i}\n", "")

        code, out, err = run(capsys, *shards, "move", "0", "g2")
        assert code == 0 and "configuration 3" in out, err
        code, out, err = run(capsys, *shards, "move", "99", "g2")
        assert code == 1 and "shard 99 does not exist" in err
        code, out, _ = run(capsys, *shards, "leave", "g1")
        assert code == 0 and "g2 on n1, n2, n3: 8 shards [0-7]" in out
        assert run(capsys, *kv, "append", "t", "x") == (0, '"x"\n', "")
        for i in range(8):
            assert run(capsys, *kv, "get", f"k{i}") == (0, f"{i}\n", "")

        deadline = time.monotonic() + 30
        while True:  # g1 deletes what it handed over once g2 confirms it
            code, out, _ = run(capsys, *shards, "--json", "status")
            status = json.loads(out)["groups"]
            if status["g2"]["held"] == list(range(8)) and not status.get("g1", {}).get("outgoing"):
                break
            assert time.monotonic() < deadline, out
            time.sleep(0.05)
        code, out, _ = run(capsys, *shards, "status")
        assert code == 0 and "g2 at configuration 4: holds [0-7]" in out

        # A wrong shard manager name: the same diagnosis as for an unsharded group.
        wrong = ["kv", "--cluster", str(cluster), "--sharded", "nope", "--timeout", "2"]
        code, out, err = run(capsys, *wrong, "get", "k1")
        assert code == 1 and "no node runs group 'nope'" in err, err
        code, _, err = run(capsys, "kv", "--cluster", str(cluster), "--group", "kv", "get", "k1")
        assert code == 2 and "--sharded" in err  # a sharded file and --group do not mix

        assert all(p.poll() is None for p in processes.values()), _logs(logs)
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        assert [p.wait(30) for p in processes.values()] == [0, 0, 0], _logs(logs)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "shards", "--node", "n1=ipc:///tmp/x", "join", "g1")[0] == 2
    assert run(capsys, "shards", "--node", "n1=ipc:///tmp/x", "join", "g1=")[0] == 2
    code, _, err = run(
        capsys, "shards", "--node", "n1=ipc:///tmp/x", "join", "g1=n1", "--weight", "g1=x"
    )
    assert code == 2 and "GROUP=W" in err
