"""docs/check.md: its example runs and prints what the page says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "check.md"


def test_check_docs_example_prints_what_the_docs_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = DOC.read_text(encoding="utf-8")
    example = re.search(r"## API\n\n(?:<!-- runnable -->\n)?```python\n(.*?)```", text, re.S)
    shown = re.search(r"\nprints\n\n(?:<!-- output -->\n)?```\n(.*?)```", text, re.S)
    assert example is not None and shown is not None
    monkeypatch.chdir(tmp_path)  # the example writes history.jsonl
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example.group(1), str(DOC), "exec"), {})
    assert printed.getvalue() == shown.group(1)
    assert (tmp_path / "history.jsonl").read_text(encoding="utf-8").count("\n") == 5
