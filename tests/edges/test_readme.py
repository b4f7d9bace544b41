"""The README stays true: CI runs its Quick start (test_docs_runnable.py runs its examples)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_ci_installs_and_tests_exactly_as_the_quick_start_says() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = [
        line.strip()
        for block in re.findall(r"```sh\n(.*?)```", quick_start, flags=re.DOTALL)[:2]
        for line in block.splitlines()
        if line.strip()
    ]
    assert commands, "the Quick start has no commands"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_lines = [line.strip() for line in ci.splitlines()]
    for command in commands:
        if command.startswith("python3 -m venv"):
            continue  # CI makes its venv in a scratch directory, the same way
        assert command in ci_lines, f"{command!r} is in the README's Quick start but not in .ci/run"
