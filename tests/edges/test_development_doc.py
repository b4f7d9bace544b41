"""docs/development.md walks through the toy service: its blocks are the toy's own code."""

from __future__ import annotations

import re
from pathlib import Path

from actorfw import Simulation
from actorfw.values.refs import ActorRef
from tests.support import toy

ROOT = Path(__file__).resolve().parents[2]


def walkthrough_blocks() -> list[str]:
    text = (ROOT / "docs" / "development.md").read_text()
    section = text.split("### A whole service, step by step", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_walkthrough_shows_the_toy_services_own_code() -> None:
    blocks = walkthrough_blocks()
    source = Path(toy.__file__).read_text()
    assert len(blocks) == 5
    for block in blocks[:4]:
        assert block in source, f"docs/development.md shows code that toy.py lacks:\n{block}"


def test_the_walkthroughs_run_block_runs() -> None:
    run = walkthrough_blocks()[4]
    namespace = {"Simulation": Simulation, "ActorRef": ActorRef, **vars(toy)}
    exec(compile(run, "docs/development.md", "exec"), namespace)
