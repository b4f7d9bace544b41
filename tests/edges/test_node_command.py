"""``actorfw node`` as an operator runs it: up, then a graceful stop on SIGTERM that says so."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

DEADLINE = 60.0
"""Seconds to wait for a log line or for the process to end."""


def _lines(stream: object, into: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)
    into.put(None)


def _wait_for(lines: queue.Queue[str | None], fragment: str, seen: list[str]) -> None:
    while True:
        line = lines.get(timeout=DEADLINE)
        if line is None:
            pytest.fail(f"the node ended before logging {fragment!r}:\n{''.join(seen)}")
        seen.append(line)
        if fragment in line:
            return


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_node_stops_gracefully_exits_0_and_logs_that_it_stopped(
    tmp_path: Path, stop: signal.Signals
) -> None:
    (tmp_path / "n1.toml").write_text(
        f'name = "n1"\nlisten = "ipc://{tmp_path}/n1.sock"\n', encoding="utf-8"
    )
    node = subprocess.Popen(
        [sys.executable, "-m", "actorfw", "node", "--config", "n1.toml"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(node.stderr, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        _wait_for(lines, "[n1] node up at ipc://", seen)
        node.send_signal(stop)
        assert node.wait(DEADLINE) == 0
        _wait_for(lines, "INFO actorfw [n1] node stopped", seen)
    finally:
        if node.poll() is None:
            node.kill()
            node.wait(DEADLINE)
        reader.join(DEADLINE)
        assert node.stderr is not None
        node.stderr.close()
    assert "Traceback" not in "".join(seen)
