"""The README stays true: its examples run, and CI runs its Quick start."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


@pytest.mark.parametrize("block", fenced_blocks("python"))
def test_readme_python_examples_run(block: str) -> None:
    exec(compile(block, "README.md", "exec"), {})


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
