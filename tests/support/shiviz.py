"""A reader of ShiViz log files, by that format's rules, to test exports against."""

from __future__ import annotations

import json
import re


def parse_shiviz(text: str) -> list[tuple[str, str, dict[str, int]]]:
    """Read a ShiViz log file by its rules; (event, host, clock) per event, or AssertionError.

    Line 1: the parsing expression (named groups event, host, clock, in the
    JavaScript ``(?<name>...)`` spelling); line 2: the multiple-executions
    delimiter (empty: one execution); the rest: the log, matched by the
    expression. Each host's own entry starts at 1 and rises by one per event;
    every clock names the host itself, and only hosts of the log.
    """
    lines = text.split("\n", 2)
    assert len(lines) == 3, "a ShiViz file has the expression, the delimiter, then the log"
    expression, delimiter, log = lines
    for group in ("event", "host", "clock"):
        assert f"(?<{group}>" in expression, f"the expression lacks the group {group}"
    assert delimiter == ""
    pattern = re.compile(expression.replace("(?<", "(?P<"))
    events: list[tuple[str, str, dict[str, int]]] = []
    position = 0
    for found in pattern.finditer(log):
        assert log[position : found.start()].strip() == "", "text that no event matches"
        position = found.end()
        clock = json.loads(found.group("clock"))
        assert isinstance(clock, dict) and all(type(v) is int for v in clock.values())
        events.append((found.group("event"), found.group("host"), clock))
    assert log[position:].strip() == ""
    hosts = {host for _, host, _ in events}
    last: dict[str, int] = {}
    for _, host, clock in events:
        assert clock.get(host) == last.get(host, 0) + 1, f"{host}'s counter must rise by one"
        last[host] = clock[host]
        assert set(clock) <= hosts, "a clock names a host with no events"
    return events
