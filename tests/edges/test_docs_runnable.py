"""Every code block the docs mark runnable runs as it is written, each in a fresh directory.

README.md and docs/*.md mark a block with an HTML comment on the line before
its fence. The comment is invisible on GitHub, and the fence keeps its plain
```` ```python ```` info string, so every renderer still highlights it::

    <!-- runnable -->                the block runs as a script
    <!-- runnable as NAME.py -->     ... saved as NAME.py, which other blocks of the
                                     page may import; a test_*.py block runs under pytest
    <!-- runnable with NAME.py -->   ... beside the page's block saved as NAME.py
    <!-- output -->                  before a block: exactly what the runnable block
                                     above it prints

Each block runs in a process of its own (``python -W error``), in a new
temporary directory that is also its working directory and its TMPDIR, with
a timeout, in a session of its own: it must exit 0, print what its output
block shows, and leave no process and no temporary file behind.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

RUN_TIMEOUT = 90.0
"""Seconds a block may run (node-process examples start processes: a few seconds)."""

LEFTOVER_DEADLINE = 10.0
"""Seconds a block's processes may take to be gone after it exits."""

_MARK = re.compile(r"^(?P<indent>[ \t]*)<!--\s*(?P<words>runnable\b.*?|output)\s*-->[ \t]*$")
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<info>.*)$")
_WORDS = re.compile(
    r"^runnable(?:\s+as\s+(?P<name>[\w.-]+\.py))?(?:\s+with\s+(?P<with>[\w.,\s-]+))?$"
)


@dataclass(frozen=True)
class Block:
    """A runnable block of a page, with what it needs and what it must print."""

    page: Path
    line: int
    code: str
    name: str
    beside: tuple[str, ...]
    output: str | None

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


class MarkError(ValueError):
    """A marker that does not parse or is not followed by a block."""


def _fenced(lines: list[str], start: int) -> tuple[str, int]:
    """The text of the fenced block opening at ``lines[start]`` and the index after it."""
    opening = _FENCE.match(lines[start])
    if opening is None:
        raise MarkError(f"line {start + 1}: a marker must be followed by a fenced block")
    indent, fence = opening["indent"], opening["fence"]
    body: list[str] = []
    for index in range(start + 1, len(lines)):
        if lines[index].strip() == fence:
            return textwrap.dedent("\n".join(body)) + "\n", index + 1
        if lines[index].strip() and not lines[index].startswith(indent):
            break
        body.append(lines[index])
    raise MarkError(f"line {start + 1}: the block is not closed")


def page_blocks(page: Path) -> list[Block]:
    """The runnable blocks of ``page``, in order.

    Raises:
        MarkError: a marker does not parse, is not followed by a block, or
            names a block (``with NAME.py``) that the page does not have.
    """
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        mark = _MARK.match(lines[index])
        if mark is None:
            if lines[index].lstrip().startswith("<!--") and "runnable" in lines[index]:
                raise MarkError(f"{page.name}:{index + 1}: not a marker: {lines[index]!r}")
            index += 1
            continue
        text, after = _fenced(lines, index + 1)
        if mark["words"] == "output":
            if not found:
                raise MarkError(f"{page.name}:{index + 1}: an output block follows no runnable one")
            found[-1] = dataclasses.replace(found[-1], output=text)
        else:
            words = _WORDS.match(" ".join(mark["words"].split()))
            if words is None:
                raise MarkError(f"{page.name}:{index + 1}: not a marker: {lines[index]!r}")
            beside = tuple(n.strip() for n in (words["with"] or "").split(",") if n.strip())
            name = words["name"] or "example.py"
            found.append(Block(page, index + 2, text, name, beside, None))
        index = after
    named = {block.name for block in found}
    for block in found:
        for needed in block.beside:
            if needed not in named:
                raise MarkError(f"{page.name}:{block.line}: no block of the page is {needed}")
    return found


BLOCKS = [block for page in PAGES for block in page_blocks(page)]


def test_the_docs_mark_their_runnable_examples() -> None:
    marked = {block.page.name for block in BLOCKS}
    for page in ("README.md", "actors.md", "api.md", "check.md", "replication.md", "testing.md"):
        assert page in marked, f"{page} has no block marked runnable"


def test_a_marker_that_names_a_missing_block_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- runnable with lib.py -->\n```python\nimport lib\n```\n", encoding="utf-8")
    with pytest.raises(MarkError, match=r"no block of the page is lib\.py"):
        page_blocks(page)


def test_a_misspelt_marker_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- runnable as lib -->\n```python\npass\n```\n", encoding="utf-8")
    with pytest.raises(MarkError, match="not a marker"):
        page_blocks(page)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of the group is there (and not ours to signal)
        return True
    return True


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_the_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    by_name = {b.name: b for b in BLOCKS if b.page == block.page}
    for name in block.beside:
        (tmp_path / name).write_text(by_name[name].code, encoding="utf-8")
    (tmp_path / block.name).write_text(block.code, encoding="utf-8")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    if block.name.startswith("test_"):
        command = [sys.executable, "-W", "error", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    else:
        command = [sys.executable, "-W", "error"]
    env = {**os.environ, "TMPDIR": str(scratch)}
    process = subprocess.Popen(
        [*command, block.name],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        deadline = time.monotonic() + LEFTOVER_DEADLINE
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = _group_alive(process.pid)
        if left:
            os.killpg(process.pid, signal.SIGKILL)
    where = f"{block.id} ({block.name})"
    assert process.returncode == 0, f"{where} failed:\n{out}\n{err}"
    assert "Exception ignored" not in err, f"{where} let an error pass unraised:\n{err}"
    assert not left, f"{where} left processes behind"
    if block.output is not None:
        assert out == block.output, f"{where} printed:\n{out}"
    assert not list(scratch.iterdir()), f"{where} left temporary files: {list(scratch.iterdir())}"
