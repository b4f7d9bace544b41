"""Reading causal traces: happened-before, concurrency, causal past, and ShiViz export.

A traced node (``NodeConfig.trace_dir``, see :mod:`actorfw.core.tracing`)
writes ``<node>.trace.jsonl``: a header line ``{"format": "actorfw-trace/1",
"node": ...}``, then one JSON object per event::

    {"kind": "send"|"receive"|"log", "actor": "n1/chat", "peer": "n2",
     "what": "Post", "clock": {"n1": 7, "n2": 3}}

An event's id is ``node:counter``, its node's own entry in its clock (the
n-th event of a node has counter n). Event *a* happened before event *b*
exactly when ``a.clock[a.node] <= b.clock[a.node]`` and they differ; two
events neither of which happened before the other are concurrent.

:meth:`Trace.to_shiviz` writes the log format of the ShiViz visualizer: a
first line with the parsing regular expression, a second (empty) line for
the multiple-executions delimiter, then two lines per event, the event's
text and ``host {clock as JSON}``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable

__all__ = ["SHIVIZ_REGEX", "CausalEvent", "Trace", "TraceError", "load_trace"]

SHIVIZ_REGEX = r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})"
"""The parsing expression written on the first line of a ShiViz export."""


class TraceError(ValueError):
    """A trace file that cannot be read, or an event id that is not in the trace."""


@dataclasses.dataclass(frozen=True)
class CausalEvent:
    """One recorded event.

    Attributes:
        node: the node (the trace's process) it happened on.
        counter: its position among that node's events (1, 2, ...).
        kind: ``"send"``, ``"receive"`` or ``"log"``.
        actor: the actor path that sent, received or logged (``"(client)"``
            for a send from outside any actor, ``"(asker)"`` for a reply taken
            by the node's ask table).
        peer: for a send or receive, the other node(s) (comma-separated).
        what: the message's type name, ``"reply"``/``"failure"``, or the log line.
        clock: the node's vector clock just after the event.
    """

    node: str
    counter: int
    kind: str
    actor: str
    peer: str
    what: str
    clock: dict[str, int]

    @property
    def id(self) -> str:
        """``node:counter``."""
        return f"{self.node}:{self.counter}"

    def describe(self) -> str:
        """One line saying what happened."""
        if self.kind == "send":
            return f"{self.actor} sends {self.what} to {self.peer}"
        if self.kind == "receive":
            return f"{self.actor} receives {self.what} from {self.peer}"
        return f"{self.actor}: {self.what}"


class Trace:
    """The events of one run, from every node that recorded them.

    Args:
        events: the events, in any order.

    Raises:
        TraceError: two events with one id.
    """

    def __init__(self, events: Iterable[CausalEvent]) -> None:
        by_id: dict[str, CausalEvent] = {}
        for event in events:
            if event.id in by_id:
                raise TraceError(f"two events are {event.id}")
            by_id[event.id] = event
        self._by_id = by_id
        self.events: list[CausalEvent] = sorted(by_id.values(), key=lambda e: (e.node, e.counter))
        """Every event, node by node, each node's in order."""

    def __len__(self) -> int:
        return len(self.events)

    @property
    def nodes(self) -> list[str]:
        """The nodes that recorded events, sorted."""
        return sorted({event.node for event in self.events})

    def event(self, event_id: str) -> CausalEvent:
        """The event ``node:counter``.

        Raises:
            TraceError: no such event.
        """
        found = self._by_id.get(event_id)
        if found is None:
            raise TraceError(f"no event {event_id!r} in the trace (ids are node:counter)")
        return found

    def happened_before(self, a: str, b: str) -> bool:
        """Did event ``a`` happen before event ``b`` (ids)?"""
        first, second = self.event(a), self.event(b)
        return first is not second and _precedes(first, second)

    def concurrent(self, a: str) -> list[CausalEvent]:
        """The events concurrent with ``a``: neither before nor after it."""
        event = self.event(a)
        return [
            other
            for other in self.events
            if other is not event and not _precedes(other, event) and not _precedes(event, other)
        ]

    def causal_past(self, a: str) -> list[CausalEvent]:
        """The events that happened before ``a``."""
        event = self.event(a)
        return [other for other in self.events if other is not event and _precedes(other, event)]

    def gaps(self) -> list[str]:
        """Problems a visualizer would refuse: counters that skip, clocks naming missing events.

        A node killed with events still buffered leaves such gaps (see
        :mod:`actorfw.core.tracing`). Empty for a complete trace.
        """
        problems: list[str] = []
        last: dict[str, int] = {}
        for event in self.events:
            expected = last.get(event.node, 0) + 1
            if event.counter != expected:
                problems.append(f"{event.id}: expected counter {expected} on {event.node}")
            last[event.node] = event.counter
        for event in self.events:
            for node, count in event.clock.items():
                if count > last.get(node, 0):
                    problems.append(f"{event.id}: its clock names {node}:{count}, not recorded")
        return problems

    def to_shiviz(self) -> str:
        """The trace in ShiViz's log format (see the module's docstring)."""
        lines = [SHIVIZ_REGEX, ""]
        for event in self.events:
            lines.append(" ".join(event.describe().splitlines()))
            lines.append(f"{event.node} {json.dumps(event.clock, sort_keys=True)}")
        return "\n".join(lines) + "\n"


def _precedes(a: CausalEvent, b: CausalEvent) -> bool:
    """a.clock <= b.clock, by a's own entry (the clocks are a node's events' clocks)."""
    return a.counter <= b.clock.get(a.node, 0)


def _read(path: str) -> list[CausalEvent]:
    events: list[CausalEvent] = []
    node: str | None = None
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise TraceError(f"{path}:{number}: not JSON") from None
            if not isinstance(record, dict):
                raise TraceError(f"{path}:{number}: not a JSON object")
            if "format" in record:
                node = record.get("node")
                if not isinstance(node, str):
                    raise TraceError(f"{path}:{number}: a header without a node")
                continue
            if record.get("truncated") or record.get("closed") or record.get("resumed"):
                continue  # markers the recorder writes (bound reached, closed, restarted)
            if node is None:
                raise TraceError(f"{path}:{number}: an event before the header")
            clock = record.get("clock")
            if not (
                isinstance(clock, dict)
                and all(isinstance(k, str) and type(v) is int and v > 0 for k, v in clock.items())
                and isinstance(clock.get(node), int)
            ):
                raise TraceError(f"{path}:{number}: a bad clock {clock!r}")
            kind, actor, peer, what = (record.get(k, "") for k in ("kind", "actor", "peer", "what"))
            if not all(isinstance(f, str) for f in (kind, actor, peer, what)):
                raise TraceError(f"{path}:{number}: a field is not a string")
            events.append(CausalEvent(node, clock[node], kind, actor, peer, what, clock))
    return events


def load_trace(paths: Iterable[str]) -> Trace:
    """Read trace files, or directories of ``*.trace.jsonl`` files, into one :class:`Trace`.

    Raises:
        TraceError: a file is malformed, or no file was found.
        OSError: a file cannot be read.
    """
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            files.extend(
                os.path.join(path, name)
                for name in sorted(os.listdir(path))
                if name.endswith(".trace.jsonl")
            )
        else:
            files.append(path)
    if not files:
        raise TraceError("no trace files (a traced node writes <node>.trace.jsonl)")
    events: list[CausalEvent] = []
    for file in files:
        events.extend(_read(file))
    return Trace(events)
