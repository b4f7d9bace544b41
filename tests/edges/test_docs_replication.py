"""docs/replication.md stays true: its complete example runs on node processes and simulated."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actorfw import Simulation

ROOT = Path(__file__).resolve().parent.parent.parent
PAGE = (ROOT / "docs" / "replication.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE, flags=re.DOTALL)


@pytest.fixture
def counter_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "counter.py").write_text(BLOCKS[0], encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("counter", None)


def test_the_complete_example_runs_on_node_processes(counter_module: Path) -> None:
    done = subprocess.run(
        [sys.executable, "counter.py"],
        cwd=counter_module,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "5", "6"]


def test_the_simulated_example_runs(counter_module: Path) -> None:
    block = next(b for b in BLOCKS if "Simulation(" in b)
    exec(compile(block, "docs/replication.md", "exec"), {})


def test_the_kv_example_runs() -> None:
    block = next(b for b in BLOCKS if "kv.put(" in b)
    namespace: dict[str, Any] = {}
    with Simulation(nodes=3, seed=3) as sim:
        namespace["runtime"] = sim
        exec(compile(block, "docs/replication.md", "exec"), namespace)
        kv = namespace["kv"]
        assert kv.get("colour") is None
        assert kv.get("log") == "a;"


def test_the_lease_read_example_runs() -> None:
    block = next(b for b in BLOCKS if "lease_duration" in b)
    namespace: dict[str, Any] = {}
    with Simulation(nodes=3, seed=4) as sim:
        namespace["runtime"] = sim
        exec(compile(block, "docs/replication.md", "exec"), namespace)
        assert namespace["client"].read(["get", "colour"]) is None
