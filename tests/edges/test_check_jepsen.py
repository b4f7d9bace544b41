"""Jepsen register logs: read as histories, checked from the shell and by the benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actorfw.check import Register, Status, Verdict, check
from actorfw.check.jepsen import read_jepsen_log
from actorfw.cli import main


def _log(*lines: str) -> list[str]:
    """Log lines in Jepsen's shape: 'process type f value', tab-separated after the prefix."""
    return ["INFO  jepsen.util - " + "\t".join(line.split(" ", 3)) + "\n" for line in lines]


LINEARIZABLE = _log(
    "0 :invoke :write 1",
    "1 :invoke :read nil",
    "0 :ok :write 1",
    "1 :ok :read 1",
    "2 :invoke :cas [1 2]",
    "2 :ok :cas [1 2]",
    "3 :invoke :cas [1 3]",
    "3 :fail :cas [1 3]",  # the register held 2, not 1: an observation
    "4 :invoke :write 4",
    "4 :info :write :timed-out",  # may or may not have happened
    "5 :invoke :read nil",
    "5 :ok :read 2",
    "6 :invoke :read nil",  # never completes: unknown as well
)


def test_a_log_becomes_a_history_of_one_register() -> None:
    lines = ["2026-12-06 INFO  jepsen.core - Run starting\n", *LINEARIZABLE]  # not an operation
    history = read_jepsen_log(lines)
    ops = history.operations
    assert [(op.client, op.f, op.value, op.status, op.output) for op in ops] == [
        (0, "write", 1, Status.OK, None),
        (1, "read", None, Status.OK, 1),
        (2, "cas", [1, 2], Status.OK, True),
        (3, "cas", [1, 3], Status.OK, False),
        (4, "write", 4, Status.INFO, None),
        (5, "read", None, Status.OK, 2),
        (6, "read", None, Status.INFO, None),
    ]
    assert {op.key for op in ops} == {None}
    assert (ops[0].invoke, ops[0].complete) == (2.0, 4.0)  # the lines' positions
    assert check(history, Register()).verdict is Verdict.OK
    spaced = [line.replace("\t", "   ") for line in lines]  # a copy whose tabs became spaces
    assert read_jepsen_log(spaced).operations == ops


def test_what_failed_without_its_values_had_no_effect_and_a_freed_process_may_invoke() -> None:
    history = read_jepsen_log(
        _log(
            "0 :invoke :cas [1 2]",
            "0 :fail :cas :timed-out",  # no compare reported: it did not happen
            "1 :invoke :read nil",
            "1 :fail :read :timed-out",
            "2 :invoke :write 3",
            "2 :info :write :timed-out",
            "2 :invoke :read nil",  # the number is free again after :info
            "2 :ok :read" + " " * 5000 + "3",  # however the fields are spaced
        )
    )
    assert [(op.f, op.status, op.output) for op in history.operations] == [
        ("cas", Status.FAIL, None),
        ("read", Status.FAIL, None),
        ("write", Status.INFO, None),
        ("read", Status.OK, 3),
    ]
    assert check(history, Register()).verdict is Verdict.OK


def test_a_failed_cas_is_held_to_what_it_observed() -> None:
    # The register holds 1 throughout: a cas expecting 1 cannot have failed.
    history = read_jepsen_log(
        _log("0 :invoke :write 1", "0 :ok :write 1", "1 :invoke :cas [1 2]", "1 :fail :cas [1 2]")
    )
    result = check(history, Register())
    assert result.verdict is Verdict.VIOLATION
    assert [op.f for op in result.minimal] == ["write", "cas"]


def test_a_stale_read_is_refuted_with_its_witness() -> None:
    history = read_jepsen_log(
        _log(
            "0 :invoke :write 1",
            "0 :ok :write 1",
            "1 :invoke :write 2",
            "1 :ok :write 2",
            "2 :invoke :read nil",
            "2 :ok :read 1",
        )
    )
    result = check(history, Register())
    assert result.verdict is Verdict.VIOLATION and len(result.minimal) == 3


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (["0 :ok :read 1"], "process 0 completes an operation it never invoked"),
        (["0 :invoke :read nil", "0 :invoke :read nil"], "invokes with an operation in flight"),
        (["0 :invoke :write nil"], "a write of 'nil', not an integer"),
        (["0 :invoke :cas 3"], "a cas of '3', not \\[expected new\\]"),
        (["0 :invoke :write {:a 1}"], "not nil, an integer or \\[a b\\]"),
        (["0 :invoke :add 1"], "the register log has no function 'add'"),
        (["0 :invoke :read nil", "0 :ok :write 1"], "invoked 'read' but completes 'write'"),
        (["0 :invoke :write 1", "0 :ok :write 2"], "completes write 2, invoked 1"),
        (["0 :invoke :cas [1 2]", "0 :fail :cas [1 3]"], "completes cas \\[1 3\\], invoked"),
        (["0 :invoke :cas [1 2]", "0 :ok :cas :timed-out"], "completes cas :timed-out"),
        (["0 :invoke :read nil", "0 :ok :read :timed-out"], "a read that returned ':timed-out'"),
    ],
)
def test_a_log_that_breaks_the_rules_is_refused_naming_the_line(
    lines: list[str], problem: str
) -> None:
    with pytest.raises(ValueError, match=f"the log, line {len(lines)}: .*{problem}"):
        read_jepsen_log(_log(*lines))


def test_actorfw_check_reads_a_jepsen_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "etcd.log"
    path.write_text("".join(LINEARIZABLE))
    assert main(["check", "--format", "jepsen", "--model", "register", str(path)]) == 0
    assert "linearizable (register model)" in capsys.readouterr().out
    assert main(["check", "--format", "jepsen", str(path)]) == 0  # the register model, implied
    assert "linearizable (register model)" in capsys.readouterr().out
    assert main(["check", "--format", "jepsen", "--model", "kv", str(path)]) == 2
    assert "use --model register" in capsys.readouterr().err
    path.write_text("".join(_log("0 :ok :read 1")))
    assert main(["check", "--format", "jepsen", "--model", "register", str(path)]) == 2
    assert "never invoked" in capsys.readouterr().err


def test_the_benchmark_checks_a_folder_of_jepsen_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.log").write_text("".join(LINEARIZABLE))
    stale = _log("0 :invoke :write 1", "0 :ok :write 1", "1 :invoke :read nil", "1 :ok :read 2")
    (tmp_path / "b.log").write_text("".join(stale))
    assert main(["bench", "check", "--jepsen", str(tmp_path), "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "on 2 Jepsen register logs" in out
    compiled = next(line for line in out.splitlines() if line.startswith("compiled"))
    assert compiled.split()[1:5] == ["2", "1", "1", "0"]  # logs, ok, violation, unknown
    assert main(["bench", "check", "--jepsen", str(tmp_path), "--repeats", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["verdict"]["pure"] for r in doc["results"]] == ["ok", "violation"]
    assert doc["results"][1]["witness_operations"] == 1  # a read of a value never written
    assert [r["witness_minimized"] for r in doc["results"]] == [
        {"compiled": False, "pure": False},
        {"compiled": True, "pure": True},
    ]
    assert main(["bench", "check", "--jepsen", str(tmp_path / "none")]) == 2
    assert "no *.log file" in capsys.readouterr().err
