"""Tells and asks from the driver's threads, taken by the client's loop in batches.

A :class:`~actorfw.node.system.Connection` runs its client node on an event
loop in a background thread. A ``system.tell`` or ``system.ask`` made from
any other thread used to cross to that loop and back once per call (a
coroutine, a task, two futures and a wait): the naive loop a new user
writes first, ``for x in xs: system.tell(ref, x)``, ran at a small fraction
of a tell made inside ``system.run``. Here instead:

1. The calling thread checks the target, encodes the message (so a refused
   message raises at the call, as before), copies its buffers under 64 KiB
   (so the message is frozen as it was then, as ZeroMQ's own copy of small
   frames made it before; larger ones travel without a copy, as before, and
   must not be changed until sent), and appends it to one FIFO queue.
2. It wakes the loop only if the loop is not already due to take the
   queue: a burst of tells pays one wake-up, not one per tell.
3. At its next turn, the loop takes everything queued, in order, and sends
   it as its own tells and asks are sent (credit, backlog, transport).
4. A tell returns once queued. An ask waits on a lock that the reply (or
   its error, or its timeout) releases: one crossing each way, no task.

Bounds and policies:

- The queue holds at most ``limit`` entries and ``max_bytes`` of encoded
  bodies and buffers (one entry of any size is taken when the queue is
  empty). A call that finds it full waits until the loop has taken some,
  at most ``wait`` seconds in all (for the queue and for the other callers
  before it), then raises :class:`~actorfw.node.system.SystemTimeout`: the
  calling thread is held back, nothing is dropped.
- A tell to a node whose backlog (tells kept while it gives no credit) is
  full raises :class:`~actorfw.Overloaded` at the call, as before; tells
  to a node's protocol (``$node``) are never held back, so never refused.
  The loop never refuses what the call accepted: a tell whose backlog
  filled between the call and the loop's turn is kept in the backlog
  anyway, which may so pass ``max_backlog`` by at most the queue's
  ``limit``. So one slow node holds back no call to another.
- A call made once the client's loop thread has ended raises
  ``RuntimeError`` (:class:`~actorfw.node.system.Connection` checks).

Only remote targets come here: the client node hosts no actors, and does
not trace (see :mod:`actorfw.core.tracing`), so a message is encoded once,
in the calling thread.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import TYPE_CHECKING, Any

from actorfw.core.arguments import check_timeout
from actorfw.core.envelopes import TELL, Envelope
from actorfw.core.flow import carried
from actorfw.core.node_protocol import NODE_TARGET
from actorfw.values import codec
from actorfw.values.refs import ActorRef

if TYPE_CHECKING:
    from actorfw.core.engine import Engine

__all__ = ["COPY_BELOW", "LIMIT", "MAX_BYTES", "Answer", "Handoff"]

LIMIT = 65_536
"""Entries the queue holds at most, by default."""

MAX_BYTES = 64 << 20
"""Bytes of encoded bodies the queue holds at most, by default."""

COPY_BELOW = 64 << 10
"""Buffers (numpy arrays) smaller than this are copied at the call; larger ones are not."""

_ASK = object()


class Answer:
    """The reply to one ask handed over: the asking thread waits on it, the loop settles it."""

    __slots__ = ("_error", "_lock", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._value: Any = None
        self._error: BaseException | None = None

    def settle(self, future: asyncio.Future[Any]) -> None:
        """Take the outcome of ``future`` (on the loop) and wake the asking thread."""
        if future.cancelled():
            self._error = asyncio.CancelledError("the client stopped before the reply came")
        else:
            self._error = future.exception()
            if self._error is None:
                self._value = future.result()
        self._lock.release()

    def wait(self, timeout: float) -> tuple[bool, Any]:
        """``(True, reply)`` once settled within ``timeout`` seconds, else ``(False, None)``.

        Raises:
            BaseException: the ask's error (``AskTimeout``, ``NodeDown``, the
                actor's failure, ...), as the loop saw it.
        """
        if not self._lock.acquire(timeout=timeout):
            return False, None
        if self._error is not None:
            raise self._error
        return True, self._value


class Handoff:
    """The queue between a driver's threads and the client's loop; see the module documentation.

    Args:
        engine: the client node's engine (its loop is the one that takes the queue).
        limit: entries the queue holds at most.
        max_bytes: bytes of encoded bodies it holds at most.
        wait: seconds a call waits for room before it gives up.
    """

    def __init__(
        self,
        engine: Engine,
        limit: int = LIMIT,
        max_bytes: int = MAX_BYTES,
        wait: float = 30.0,
    ) -> None:
        self._engine = engine
        self._loop = engine.loop
        self._limit = limit
        self._max_bytes = max_bytes
        self._wait = wait
        self._queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self._lock = threading.Lock()  # between calling threads; the loop never takes it
        self._added = 0  # bytes queued in all (calling threads, under the lock)
        self._taken = 0  # bytes taken in all (the loop only)
        self._due = False  # the loop is due to take the queue
        self._wanted = False  # a calling thread waits for room
        self._room = threading.Event()

    def __len__(self) -> int:
        return len(self._queue)

    def tell(self, target: ActorRef, message: Any) -> None:
        """Queue a tell to ``target`` (on another node); returns once queued.

        Raises:
            MessageRefused: ``message`` is not a message value.
            Overloaded: the client's backlog to ``target.node`` is full.
            SystemTimeout: the queue stayed full for ``wait`` seconds.
        """
        body, buffers, plain = codec.encode(message)
        node = target.node
        flow = self._engine.flow
        if target.name != NODE_TARGET and flow.backlog(node) >= flow.max_backlog:
            flow.refuse(node, target.name)
        buffers = _frozen(buffers)
        envelope = Envelope(TELL, self._engine.id, target.name, None, 0, body, buffers, plain)
        self._put((TELL, node, envelope), carried(body, buffers))

    def ask(self, target: ActorRef, message: Any, timeout: float) -> Answer:
        """Queue an ask to ``target`` (on another node); the :class:`Answer` to wait on.

        Raises:
            MessageRefused: ``message`` is not a message value.
            ValueError: ``timeout`` is not a positive number.
            SystemTimeout: the queue stayed full for ``wait`` seconds.
        """
        check_timeout(timeout)
        body, buffers, plain = codec.encode(message)
        buffers = _frozen(buffers)
        answer = Answer()
        self._put((_ASK, target, (body, buffers, plain), timeout, answer), carried(body, buffers))
        return answer

    # -- the calling threads -------------------------------------------------------------

    def _put(self, entry: tuple[Any, ...], size: int) -> None:
        deadline = 0.0  # set only when a wait begins: most calls never wait
        if not self._lock.acquire(blocking=False):
            deadline = time.monotonic() + self._wait
            if not self._lock.acquire(timeout=self._wait):  # other callers, waiting for room
                from actorfw.node.system import SystemTimeout  # here: system imports this module

                raise SystemTimeout(f"other calls held the client's queue for {self._wait:g}s")
        try:
            if self._full(size):
                self._wait_for_room(size, deadline or time.monotonic() + self._wait)
            self._queue.append((entry, size))
            self._added += size
            if not self._due:
                self._due = True
                self._loop.call_soon_threadsafe(self._take)
        finally:
            self._lock.release()

    def _full(self, size: int) -> bool:
        queued = len(self._queue)
        return queued > 0 and (
            queued >= self._limit or self._added - self._taken + size > self._max_bytes
        )

    def _wait_for_room(self, size: int, deadline: float) -> None:
        from actorfw.node.system import SystemTimeout

        while self._full(size):
            self._room.clear()
            self._wanted = True
            if not self._full(size):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._room.wait(remaining):
                raise SystemTimeout(
                    f"the client's loop took none of {len(self._queue)} queued tells and asks "
                    f"within {self._wait:g}s"
                )

    # -- the loop --------------------------------------------------------------------------

    def drain(self) -> None:
        """Take everything queued now (on the loop: a closing connection sends it all)."""
        while self._queue:
            self._take()

    def _take(self) -> None:
        self._due = False  # first: a call that queues after this line wakes the loop again
        queue = self._queue
        send = self._engine.send_envelope
        ask = self._engine.ask_encoded
        try:
            for _ in range(len(queue)):  # what was queued by now; later calls woke the loop again
                entry, size = queue.popleft()
                self._taken += size
                if entry[0] is TELL:
                    send(entry[1], entry[2])  # kept in the backlog if need be, never refused
                else:
                    _, target, encoded, timeout, answer = entry
                    ask(target, encoded, timeout, None).add_done_callback(answer.settle)
        finally:
            if self._wanted:
                self._wanted = False
                self._room.set()


def _frozen(buffers: list[Any]) -> list[Any]:
    """``buffers`` with each small one that is not ``bytes`` copied (see the module doc)."""
    if not buffers:
        return buffers
    return [
        b if type(b) is bytes or memoryview(b).nbytes >= COPY_BELOW else memoryview(b).tobytes()
        for b in buffers
    ]
