"""The examples run as a user runs them: from their directory, as a script."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.shiviz import parse_shiviz

ROOT = Path(__file__).resolve().parents[2]


def test_the_chat_room_shows_every_reply_after_the_question_on_every_node() -> None:
    folder = ROOT / "examples" / "chat"
    done = subprocess.run(
        [sys.executable, "-W", "error", "chat.py"],
        check=False,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rooms = [line for line in done.stdout.splitlines() if line[:3] in ("n1:", "n2:", "n3:")]
    assert len(rooms) == 3
    for room in rooms:
        posts = room.split(": ", 1)[1].split(" | ")
        assert posts[0] == "alice: lunch at noon?"
        assert sorted(posts[1:]) == ["bob: yes, see you there", "carol: can't, meeting"]
    assert "replies are concurrent" in done.stdout or "had seen the other" in done.stdout


def test_the_chat_rooms_trace_opens_as_a_shiviz_log(tmp_path: Path) -> None:
    folder = ROOT / "examples" / "chat"
    done = subprocess.run(
        [sys.executable, "-W", "error", "chat.py", "--trace", str(tmp_path)],
        check=False,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    events = parse_shiviz((tmp_path / "chat.shiviz").read_text())
    assert {host for _, host, _ in events} == {"n1", "n2", "n3"}
    assert f"trace: {len(events)} events on n1, n2, n3" in done.stdout
    assert re.search(
        r"bob's reply leaves n2 at n2:\d+; \d+ sends on n3 are concurrent", done.stdout
    )
