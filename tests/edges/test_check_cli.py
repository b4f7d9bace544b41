"""``actorfw check``: a history file's verdict, every key's, and the witness, from the shell."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest

from actorfw.check import History
from actorfw.cli import main


def _write(path: Path, reads: dict[str, int]) -> Path:
    history = History()
    for key, read in reads.items():
        a = history.invoke("c1", "put", key, 1, time=0.0)
        history.ok(a, None, time=1.0)
        b = history.invoke("c2", "get", key, time=2.0)
        history.ok(b, read, time=3.0)
    history.to_jsonl(path)
    return path


def test_a_linearizable_history_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(_write(tmp_path / "h.jsonl", {"x": 1, "y": 1}))]) == 0
    assert "linearizable (kv model)" in capsys.readouterr().out


def test_a_violation_exits_1_and_shows_the_witness_and_every_keys_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "h.jsonl", {"x": 1, "y": 2})
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "not linearizable" in out and "get('y') -> 2" in out and "1 ok, 1 violation" in out
    assert main(["check", str(path), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "violation" and doc["key"] == "y"
    assert doc["keys"] == [{"key": "x", "verdict": "ok"}, {"key": "y", "verdict": "violation"}]
    assert [op["operation"] for op in doc["witness"]] == ["get"]


def test_out_of_time_exits_3(tmp_path: Path) -> None:
    history = History()
    for i in range(30):
        op = history.invoke(f"w{i}", "put", "a", i, time=0.0)
        history.ok(op, None, time=10.0)
    op = history.invoke("r", "get", "a", time=11.0)
    history.ok(op, 99, time=12.0)
    history.to_jsonl(tmp_path / "hard.jsonl")
    assert main(["check", str(tmp_path / "hard.jsonl"), "--timeout", "0.2"]) == 3


def test_the_register_model_and_its_initial_value(tmp_path: Path) -> None:
    history = History()
    op = history.invoke("c1", "read", "r", time=0.0)
    history.ok(op, 0, time=1.0)
    history.to_jsonl(tmp_path / "r.jsonl")
    path = str(tmp_path / "r.jsonl")
    assert main(["check", path, "--model", "register", "--initial", "0"]) == 0
    assert main(["check", path, "--model", "register"]) == 1


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["check", "{dir}/missing.jsonl"], "cannot read the history"),
        (["check", "{dir}/bad.jsonl"], "line 1"),
        (["check", "{dir}/h.jsonl", "--initial", "0"], "--initial is for --model register"),
        (["check", "{dir}/h.jsonl", "--model", "register", "--initial", "[1,"], "must be JSON"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    (tmp_path / "bad.jsonl").write_text("not json\n")
    _write(tmp_path / "h.jsonl", {"x": 1})
    assert main([a.format(dir=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_a_negative_timeout_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["check", str(_write(tmp_path / "h.jsonl", {"x": 1})), "--timeout", "-1"])
    assert exit_.value.code == 2


def test_an_operation_the_model_cannot_interpret_is_named_by_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = History()
    history.ok(history.invoke("a", "put", "x", 1, time=0.0), None, time=1.0)
    history.ok(history.invoke("b", "read", "x", time=2.0), 1, time=3.0)
    path = tmp_path / "h.jsonl"
    history.to_jsonl(path)
    first, second = path.read_text().splitlines()
    path.write_text(f"{first}\n\n\n{second}\n")  # blank lines count as lines, not operations
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}, line 4: operation 1" in err
    assert "the kv model has no operation 'read'" in err and "--model register" in err


def test_a_bad_operation_read_from_a_named_pipe_is_reported_without_waiting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Finding the line would open the pipe again, and wait for a writer that never comes.
    history = History()
    history.ok(history.invoke("b", "read", "x", time=0.0), 1, time=1.0)
    source = tmp_path / "h.jsonl"
    history.to_jsonl(source)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(source.read_text()))
    writer.start()
    try:
        assert main(["check", str(fifo)]) == 2
    finally:
        writer.join()
    assert f"{fifo}: operation 0" in capsys.readouterr().err


BOX_MODEL = """
from actorfw.check import UNKNOWN, Model


class Box(Model):
    name = "box"

    def init(self):
        return None

    def step(self, state, f, value, output):
        if f == "set":
            return True, value
        return output is UNKNOWN or output == state, state


class NotAModel:
    pass


class Fussy(Box):
    def __init__(self):
        raise RuntimeError("needs a size")


class Broken(Box):
    def step(self, state, f, value, output):
        raise KeyError("a bug in the model")
"""


def test_a_model_of_your_own_is_named_module_colon_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "actorfw_cli_box_model.py").write_text(BOX_MODEL)
    (tmp_path / "actorfw_cli_bad_import.py").write_text("raise RuntimeError('no config')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("actorfw_cli_box_model", "actorfw_cli_bad_import"):  # gone when the test ends
        monkeypatch.setitem(sys.modules, name, None)
        monkeypatch.delitem(sys.modules, name)
    history = History()
    for f, value, output in [("set", 1, None), ("set", 2, None), ("peek", None, 1)]:
        history.ok(history.invoke("c", f, None, value), output)
    path = tmp_path / "h.jsonl"
    history.to_jsonl(path)
    assert main(["check", str(path), "--model", "actorfw_cli_box_model:Box"]) == 1
    assert "not linearizable (box model)" in capsys.readouterr().out
    for spec, says in [
        ("actorfw_cli_box_model:NotAModel", "has no Model subclass named NotAModel"),
        ("actorfw_cli_box_model:Fussy", "Fussy() failed: RuntimeError: needs a size (at "),
        ("actorfw_cli_box_model:Broken", "the box model raised KeyError: 'a bug in the model'"),
        ("actorfw_cli_bad_import:Box", "cannot import actorfw_cli_bad_import: RuntimeError"),
        ("no_such_module_here:Box", "cannot import no_such_module_here"),
        ("boxes.py:Box", "is a file path; give the module's name"),
        ("box", "give kv, register, or MODULE:CLASS"),
    ]:
        assert main(["check", str(path), "--model", spec]) == 2  # not raised: one line
        assert says in capsys.readouterr().err
