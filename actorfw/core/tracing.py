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

import json
import logging
import os
from typing import Any

import orjson

from actorfw.kernels import vclock as _vclock
from actorfw.values.codec import message, message_name

__all__ = ["FLUSH_EVERY", "MAX_EVENTS", "TraceRecorder", "Traced", "trace_path"]

log = logging.getLogger("actorfw")

MAX_EVENTS = 1_000_000
"""Events one node records at most (about 150 MB of JSON lines)."""

FLUSH_EVERY = 1024
"""Events buffered in memory before they are written out."""

FORMAT = "actorfw-trace/1"


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
        self._resume()
        self._file = open(self.path, "ab")
        if self._count == 0:
            self._file.write(orjson.dumps({"format": FORMAT, "node": node}) + b"\n")

    def _resume(self) -> None:
        """Go on from the last event an earlier run of this node recorded here."""
        try:
            with open(self.path, encoding="utf-8") as existing:
                last = None
                for line in existing:
                    if line.strip():
                        last = line
        except FileNotFoundError:
            return
        if last is None:
            return
        try:
            record = json.loads(last)
        except ValueError:
            raise ValueError(f"{self.path}: its last line is not JSON; move it away") from None
        if record.get("truncated"):
            self._full = True
        clock = record.get("clock")
        if isinstance(clock, dict):
            self._clock = _vclock.VectorClock(clock)
            self._count = self._clock.get(self.node)
            self._full = self._full or self._count >= self._max

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
        if type(clock) is _vclock.VectorClock:
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
            self.flush()
            self._file.close()
