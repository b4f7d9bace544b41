"""``actorfw demo`` runs, kills the leader, recovers, checks and cleans up; its report is honest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from actorfw.check import History
from actorfw.demo import DemoOptions, DemoReport, render


@pytest.mark.timeout(120)
def test_the_demo_survives_a_leader_kill_and_leaves_nothing(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "actorfw",
            "demo",
            "--duration",
            "6",
            "--clients",
            "8",
            "--seed",
            "5",
            "--json",
            "--history",
            str(history),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] is True and report["problems"] == []
    assert report["verdict"] == "linearizable"
    assert report["killed"] is not None and report["failover_s"] > 0
    assert report["restarted"] == report["killed"] and report["catchup_s"] is not None
    assert report["leader_changes"] >= 1 and report["leaders"][0] == report["killed"]
    assert report["processes_left"] == 0 and report["files_left"] is False
    assert "SIGKILL" in done.stderr  # the progress goes to stderr with --json
    recorded = History.from_jsonl(history)
    assert len(recorded) == report["operations"] > 0
    assert sum(1 for op in recorded if op.status == "ok") == report["ok"]


def report(**changes: object) -> DemoReport:
    base = DemoReport(nodes=3, clients=4, duration=5.0, seed=1, operations=10, ok=10)
    base.killed, base.failover_s, base.verdict = "n1", 1.5, "linearizable"
    base.processes_left, base.files_left = 0, False
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def test_a_clean_report_passes() -> None:
    assert report().problems() == []
    assert "passed" in render(report())


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"verdict": "NOT linearizable", "verdict_detail": "x"}, "history NOT linearizable"),
        ({"verdict": "undecided"}, "history undecided"),
        ({"ok": 0}, "no operation completed"),
        ({"killed": None}, "never killed"),
        ({"failover_s": None}, "no command committed under a new leader"),
        ({"restarted": "n1", "catchup_s": None}, "did not catch up"),
        ({"processes_left": 1}, "1 node process(es) left running"),
        ({"files_left": True}, "temporary directory"),
        ({"errors": ["client c1: boom"]}, "boom"),
    ],
)
def test_anything_wrong_is_a_problem(changes: dict[str, object], problem: str) -> None:
    problems = report(**changes).problems()
    assert any(problem in p for p in problems), problems
    assert "PROBLEM" in render(report(**changes))


def test_an_async_run_counts_its_lost_writes_and_is_judged_by_them() -> None:
    counted = {"mode": "async", "lost_acknowledged": 0, "appends_acknowledged": 9, "discarded": 0}
    assert report(**counted).problems() == []
    assert "lost (async)" in render(report(**counted)) and "0 acknowledged writes lost" in render(
        report(**counted)
    )
    # Writes lost: the history cannot be linearizable, and is not required to be.
    lost = {**counted, "lost_acknowledged": 3, "verdict": "NOT linearizable"}
    assert report(**lost).problems() == []
    # None lost: it must be; and lost writes never counted are a problem.
    assert report(**{**counted, "verdict": "NOT linearizable"}).problems()
    assert any("not counted" in p for p in report(mode="async").problems())


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 3 nodes"):
        DemoOptions(nodes=2)
    with pytest.raises(ValueError, match="add --replication primary-backup"):
        DemoOptions(mode="async")
    with pytest.raises(ValueError, match="mode is 'sync' or 'async'"):
        DemoOptions(replication="primary-backup", mode="semi")
    with pytest.raises(ValueError, match="kill_at < restart_at"):
        DemoOptions(kill_at=0.7, restart_at=0.5)


@pytest.mark.timeout(150)
def test_the_sharded_demo_moves_shards_twice_through_a_kill_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    history = tmp_path / "history.jsonl"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "actorfw", "demo", "--sharded", "--duration", "8"),
            *("--clients", "8", "--seed", "5", "--json", "--history", str(history)),
        ],
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] is True and report["problems"] == []
    assert report["verdict"] == "linearizable" and report["settled"] is True
    assert [m["change"] for m in report["moves"]] == ["join g4", "leave g2"]
    assert all(m["shards"] and m["settled_s"] is not None for m in report["moves"])
    assert report["killed"] is not None and report["restarted"] is True
    assert report["processes_left"] == 0 and report["files_left"] is False
    assert len(History.from_jsonl(history)) == report["operations"] > 0


def test_the_sharded_demo_refuses_nodes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "actorfw", "demo", "--sharded", "--nodes", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "runs 4 nodes" in done.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_primary_backup_demo_survives_a_primary_kill_and_rejoin_and_leaves_nothing(
    mode: str,
) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "actorfw", "demo", "--replication", "primary-backup"),
            *("--mode", mode, "--duration", "6", "--clients", "8", "--seed", "5", "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] is True and report["replication"] == "primary-backup"
    assert report["mode"] == mode
    if mode == "sync":
        assert report["verdict"] == "linearizable" and report["lost_acknowledged"] is None
    else:  # counted; the history is linearizable unless some were lost
        assert report["appends_acknowledged"] > 0 and report["lost_acknowledged"] is not None
        assert report["verdict"] == "linearizable" or report["lost_acknowledged"] > 0
    assert report["killed"] is not None and report["failover_s"] > 0
    assert report["restarted"] == report["killed"] and report["catchup_s"] is not None
    assert report["leaders"][0] == report["killed"] and report["leader_changes"] >= 1
    assert report["processes_left"] == 0 and report["files_left"] is False
    assert "(the primary, pid" in done.stderr


def test_the_demo_refuses_an_unknown_replication_and_a_sharded_primary_backup() -> None:
    with pytest.raises(ValueError, match="replication is one of"):
        DemoOptions(replication="raft")
    done = subprocess.run(
        [sys.executable, "-m", "actorfw", "demo", "--sharded", "--replication", "primary-backup"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "run Multi-Paxos" in done.stderr
