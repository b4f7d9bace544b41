"""The asks an engine waits on: their futures, and their deadlines under one timer.

Every ask ends exactly once for the asker (rule 4 of :mod:`actorfw.core.engine`):
a reply, an error reply, a timeout, or :class:`~actorfw.NodeDown`. Later
replies are counted and dropped. An ask times out no earlier than its
timeout and at most :data:`ASK_TIMER_SLACK` later: asks wait in one queue
per timeout value (in deadline order, as the clock only goes forward) under
one loop timer, which wakes for the earliest deadline and, when more are
queued, not again before the slack has passed. An answered ask costs no
timer operation, where one loop timer per ask would cost several
microseconds.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Any

from actorfw.values.errors import AskTimeout, NodeDown
from actorfw.values.refs import ActorRef

__all__ = ["ASK_TIMER_SLACK", "Asks", "PendingAsk"]

ASK_TIMER_SLACK = 0.01
"""Seconds an ask may time out late, so that one timer wake-up ends every ask due in that time."""

_COMPACT_DEADLINES = 4096
"""A deadline queue this long is rebuilt without its answered asks when they are most of it."""


class PendingAsk:
    """An ask not yet ended: who waits (the future), whom it asked, and for how long."""

    __slots__ = ("future", "target", "timeout")

    def __init__(self, future: asyncio.Future[Any], target: ActorRef, timeout: float) -> None:
        self.future = future
        self.target = target
        self.timeout = timeout


class Asks:
    """The table of pending asks of one engine (see the module documentation).

    Args:
        loop: the engine's event loop (its clock and its timers).
        stats: the engine's counters (``ask_timeouts``, ``late_replies``).
    """

    __slots__ = ("_corr", "_deadlines", "_loop", "_pending", "_stats", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop, stats: Any) -> None:
        self._loop = loop
        self._stats = stats
        self._pending: dict[int, PendingAsk] = {}
        self._deadlines: dict[float, deque[tuple[float, int]]] = {}  # timeout -> (deadline, corr)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._corr = 0

    def __len__(self) -> int:
        return len(self._pending)

    def queued_deadlines(self) -> int:
        """Deadlines queued, answered asks' included until they are dropped (bounded)."""
        return sum(len(queue) for queue in self._deadlines.values())

    def open(self, future: asyncio.Future[Any], target: ActorRef, timeout: float) -> int:
        """Wait on ``future`` for an answer from ``target``; returns the ask's correlation id."""
        self._corr += 1
        corr = self._corr
        self._pending[corr] = PendingAsk(future, target, timeout)
        self._add_deadline(corr, timeout)
        return corr

    def resolve(self, corr: int, value: Any, error: BaseException | None) -> None:
        """The answer to ask ``corr`` came (a value, or an error); a late one is counted."""
        pending = self._pending.pop(corr, None)
        if pending is None:
            self._stats.late_replies += 1
            return
        future = pending.future
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def node_lost(self, peer: str, reason: str) -> None:
        """End every ask to an actor of ``peer`` with :class:`~actorfw.NodeDown`."""
        pending = self._pending
        for corr, ask in list(pending.items()):
            if ask.target.node == peer:
                del pending[corr]
                if not ask.future.done():
                    ask.future.set_exception(NodeDown(f"node {peer} is {reason}"))

    def crash(self, node: str) -> None:
        """The engine crashed: end every ask with :class:`~actorfw.NodeDown`, drop the timer."""
        for ask in self._pending.values():
            if not ask.future.done():
                ask.future.set_exception(NodeDown(f"node {node} crashed"))
                ask.future.exception()  # mark retrieved: nobody may be left to await it
        self._pending.clear()
        self._deadlines.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- deadlines --------------------------------------------------------------------------

    def _add_deadline(self, corr: int, timeout: float) -> None:
        """Queue ask ``corr``'s deadline; wake earlier if it is the earliest."""
        deadline = self._loop.time() + timeout
        queue = self._deadlines.get(timeout)
        if queue is None:
            queue = self._deadlines[timeout] = deque()
        elif len(queue) >= _COMPACT_DEADLINES and len(queue) > 2 * len(self._pending):
            # Answered asks stay queued until their deadline; bound what they hold.
            pending = self._pending
            queue = self._deadlines[timeout] = deque(e for e in queue if e[1] in pending)
        queue.append((deadline, corr))
        if deadline < self._timer_at:
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        """Time out every ask whose deadline has come; wake again for the next."""
        self._timer = None
        self._timer_at = math.inf
        now = self._loop.time()
        earliest = math.inf
        pending = self._pending
        for timeout, queue in list(self._deadlines.items()):
            while queue and queue[0][0] <= now:
                ask = pending.pop(queue.popleft()[1], None)
                if ask is not None:
                    self._stats.ask_timeouts += 1
                    if not ask.future.done():
                        ask.future.set_exception(
                            AskTimeout(f"no reply from {ask.target.path} within {timeout:g}s")
                        )
            if queue:
                earliest = min(earliest, queue[0][0])
            else:
                del self._deadlines[timeout]
        if earliest < math.inf:
            self._arm(max(earliest, now + ASK_TIMER_SLACK))
