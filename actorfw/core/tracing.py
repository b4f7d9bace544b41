"""Causal tracing: each node keeps a vector clock, stamps what it sends, records what happens.

Opt-in per node (``NodeConfig.trace_dir``); when it is off the engine holds
``None`` and pays one ``is None`` test per remote send and one type test per
remote receive. When it is on:

- every message, ask, reply and error reply that leaves the node travels
  as :class:`Traced` (the node's clock beside the body); the receiving
  engine takes the body out before anything else sees it, so actors never
  see the wrapper, whether or not their own node traces;
- the node's clock ticks once for each event it records: a send (after the
  tick, the clock travels), a receive (after merging the sender's clock)
  and a line an actor logs through ``ctx.log``;
- events are written as JSON lines to ``<trace_dir>/<node>.trace.jsonl``
  (see :mod:`actorfw.check.trace` for the format and the questions it
  answers, and ``actorfw trace`` for the command line).

The trace has one process per *node*: messages between actors of one node
are steps of that process, ordered by the node's own sequence, and are not
recorded as messages (a log line of either actor still is).

Bounds: at most ``max_events`` events per node (then the node stops tracing,
says so in its log and in the file, and sends its messages unwrapped, so no
clock ever names an event the file lacks); at most ``FLUSH_EVERY`` events
buffered in memory before they are written. A node that is killed loses the
events still buffered; a node that restarts on the same directory goes on
from the last recorded event, so each node's counter keeps rising by one per
event, as the visualizers expect.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import orjson

from actorfw.kernels import vclock as _vclock
from actorfw.values.codec import message, message_name

__all__ = [
    "FLUSH_EVERY",
    "FORMAT",
    "MAX_CLOCK_ENTRIES",
    "MAX_EVENTS",
    "TraceRecorder",
    "Traced",
    "trace_path",
]

log = logging.getLogger("actorfw")

MAX_EVENTS = 1_000_000
"""Events one node records at most (about 150 MB of JSON lines)."""

FLUSH_EVERY = 1024
"""Events buffered in memory before they are written out."""

FORMAT = "actorfw-trace/1"
"""The header line's format name."""

MAX_CLOCK_ENTRIES = 1024
"""Nodes a peer's clock may name and still be merged (a bigger one is ignored)."""


@message(name="actorfw.sys.Traced")
class Traced:
    """A message, ask, reply or error reply from a tracing node: its clock and the body."""

    clock: Any  # the active kernel's VectorClock
    body: Any


def trace_path(directory: str, node: str) -> str:
    """Where node ``node`` records its events under ``directory``."""
    return os.path.join(directory, f"{node}.trace.jsonl")


def _what(value: Any) -> str:
    """What a recorded message was: its registered name, or its type's."""
    kind = type(value)
    return message_name(kind) or kind.__name__


class TraceRecorder:
    """One node's clock and event recorder (see the module's docstring).

    Args:
        directory: where the node's file goes (made if missing).
        node: the node id; also its entry in every clock.
        max_events: the bound on recorded events; then tracing stops.
    """

    __slots__ = (
        "_buffer",
        "_buffered",
        "_clock",
        "_count",
        "_file",
        "_full",
        "_max",
        "_started",
        "node",
        "path",
    )

    def __init__(self, directory: str, node: str, max_events: int = MAX_EVENTS) -> None:
        if not (isinstance(max_events, int) and max_events > 0):
            raise ValueError(f"max_events must be a positive int, not {max_events!r}")
        os.makedirs(directory, exist_ok=True)
        self.node = node
        self.path = trace_path(directory, node)
        self._max = max_events
        self._clock = _vclock.VectorClock()
        self._count = 0
        self._full = False
        self._buffer = bytearray()
        self._buffered = 0
        self._started = False
        self._resume()
        self._file = open(self.path, "ab")
        if not self._started:
            self._file.write(orjson.dumps({"format": FORMAT, "node": node}) + b"\n")

    def _resume(self) -> None:
        """Go on from the last event an earlier run of this node recorded here.

        A file that ends in a ``closed`` line was closed by its engine: the
        count goes on from there. One that does not was cut short (a
        SIGKILL): up to ``FLUSH_EVERY`` events were lost, and their clocks
        may have reached other nodes, so the count skips past them (the
        trace shows the gap) rather than reuse their ids. A half-written
        last line is cut off.
        """
        try:
            with open(self.path, "rb") as existing:
                data = existing.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            with open(self.path, "r+b") as existing:
                existing.truncate(len(complete))
            log.warning("[%s] %s ended in a half-written line; cut it off", self.node, self.path)
        record: Any = None
        for line in reversed(complete.splitlines()):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                break
            record = None
        if record is None:
            if complete.strip():
                raise ValueError(f"{self.path}: not a trace file; move it away")
            return
        self._started = True
        clock = record.get("clock")
        if not isinstance(clock, dict):
            return  # only the header: nothing recorded yet
        self._clock = _vclock.VectorClock(clock)
        self._count = self._clock.get(self.node)
        self._full = bool(record.get("truncated")) or self._count >= self._max
        if not record.get("closed") and not self._full:
            skipped = FLUSH_EVERY + 1
            self._clock.increment(self.node, skipped)
            self._count += skipped
            self._buffer += orjson.dumps({"resumed": True, "skipped": skipped}) + b"\n"
            log.warning(
                "[%s] the causal trace was cut short (a kill?): %d event ids skipped",
                self.node,
                skipped,
            )

    @property
    def active(self) -> bool:
        """False once the bound on events was reached (then nothing is stamped or recorded)."""
        return not self._full

    @property
    def events(self) -> int:
        """Events this node has recorded, over all its runs on this file."""
        return self._count

    def _record(self, kind: str, actor: str, peer: str, what: str) -> None:
        clock = self._clock
        clock.increment(self.node)
        self._count += 1
        # Appended to one bytearray: the line's own bytes object is freed at once (holding
        # a thousand of them made each dumps several times slower).
        buffer = self._buffer
        buffer += orjson.dumps(
            {"kind": kind, "actor": actor, "peer": peer, "what": what, "clock": clock.to_dict()}
        )
        buffer += b"\n"
        self._buffered += 1
        if self._count >= self._max:
            self._full = True
            buffer += orjson.dumps({"truncated": True, "clock": clock.to_dict()}) + b"\n"
            log.warning(
                "[%s] causal trace reached its bound of %d events; tracing stops here",
                self.node,
                self._max,
            )
        if self._buffered >= FLUSH_EVERY:
            self.flush()

    def outgoing(self, actor: str, peer: str, value: Any, what: str | None = None) -> Any:
        """Record a send from ``actor`` to node ``peer``; what to send instead of ``value``."""
        if self._full:
            return value
        self._record("send", actor, peer, what or _what(value))
        return Traced(self._clock, value)  # encoded at once by the caller, before the next tick

    def incoming(self, traced: Traced, actor: str, peer: str, what: str | None = None) -> Any:
        """Merge the sender's clock and record a receive; the body."""
        body = traced.body
        if self._full:
            return body
        clock = traced.clock
        # A peer's clock is merged only if it is plausible: not over MAX_CLOCK_ENTRIES
        # nodes, and not claiming more of this node's events than it has had.
        if (
            type(clock) is _vclock.VectorClock
            and len(clock) <= MAX_CLOCK_ENTRIES
            and clock.get(self.node) <= self._count
        ):
            self._clock.merge_in(clock)
        self._record("receive", actor, peer, what or _what(body))
        return body

    def logged(self, actor: str, text: str) -> None:
        """Record a line that ``actor`` logged."""
        if not self._full:
            self._record("log", actor, "", text)

    def flush(self) -> None:
        """Write the buffered events out."""
        if self._buffer and not self._file.closed:
            self._file.write(self._buffer)
            self._file.flush()
            self._buffer.clear()
            self._buffered = 0

    def close(self) -> None:
        """Write what is buffered and close the file (the engine calls this when it ends)."""
        if not self._file.closed:
            if self._count:
                self._buffer += orjson.dumps({"closed": True, "clock": self._clock.to_dict()})
                self._buffer += b"\n"
            self.flush()
            self._file.close()
