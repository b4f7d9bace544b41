"""An asyncio event loop on virtual time, for the deterministic simulator.

It is a plain :class:`asyncio.BaseEventLoop` whose selector never waits:
when nothing is ready, ``select(timeout)`` jumps the clock to the next
scheduled callback instead of sleeping. Nothing registers a file descriptor,
so the order in which callbacks run depends only on the order they were
scheduled in, and on nothing outside the program: the same program gives the
same run. ``async def`` code, ``asyncio.sleep``, futures and tasks all work
unchanged, and a ten-second timeout costs no time at all.
"""

from __future__ import annotations

import asyncio
import heapq
import threading
from asyncio import events
from collections.abc import Callable
from typing import Any

__all__ = ["SimulationIdle", "SimulationStuck", "VirtualTimeLoop"]


class SimulationIdle(RuntimeError):
    """Asked to wait with nothing ready and nothing scheduled: it would wait forever."""


class SimulationStuck(RuntimeError):
    """The loop turned ``stuck_after`` times without the clock moving on: a zero-time livelock.

    Something keeps rescheduling itself at once (a timer re-armed for a
    deadline the clock never reaches, two actors answering each other with
    no delay): the run would go on forever at one instant, its trace growing.
    """


class _NoWaitSelector:
    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._loop = loop

    def select(self, timeout: float | None) -> list[Any]:
        loop = self._loop
        if timeout is None:
            raise SimulationIdle(
                f"simulation idle at t={loop.time():.6f}: nothing ready and nothing scheduled"
            )
        if timeout > 0:
            scheduled = loop._scheduled  # type: ignore[attr-defined]
            target = loop._now + timeout
            if scheduled:
                target = min(target, scheduled[0]._when)
            loop._now = max(loop._now, target)
        return []

    def close(self) -> None:
        pass


class VirtualTimeLoop(asyncio.BaseEventLoop):
    """An event loop whose ``time()`` is virtual and jumps to the next timer.

    Args:
        start: the virtual time the loop starts at.
        stuck_after: how many turns of the loop in a row may run at one instant
            before :meth:`run_until` raises :class:`SimulationStuck` (the whole
            test suite passes with 5,000). A turn runs every callback ready, so
            a burst of spawns or tells takes one; a chain of local asks at zero
            latency takes two per ask: more than 50,000 of them without virtual
            time passing need a larger bound.
    """

    def __init__(self, start: float = 0.0, stuck_after: int = 100_000) -> None:
        super().__init__()
        if stuck_after < 1:
            self.close()
            raise ValueError(f"stuck_after is a number of turns >= 1, not {stuck_after!r}")
        self.stuck_after = stuck_after
        self._now = float(start)
        self._selector = _NoWaitSelector(self)
        self._clock_resolution = 1e-9
        self.callback_errors: list[dict[str, Any]] = []
        """Exceptions raised by callbacks (bugs, in a simulation), oldest first."""
        self.set_exception_handler(self._on_error)

    def time(self) -> float:
        """The virtual time, in seconds."""
        return self._now

    def _process_events(self, event_list: list[Any]) -> None:
        pass

    def _write_to_self(self) -> None:
        pass

    def _on_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if "handle" in context or ("task" not in context and "future" not in context):
            self.callback_errors.append(context)
        else:
            # A future or task nobody awaited failed; asyncio reports it when it is
            # collected, at no deterministic moment, so it is logged, not raised.
            self.default_exception_handler(context)

    def next_event_time(self) -> float | None:
        """When the next callback will run: now if one is ready, None if nothing is scheduled."""
        if self._ready:  # type: ignore[attr-defined]
            return self._now
        scheduled = self._scheduled  # type: ignore[attr-defined]
        while scheduled and scheduled[0]._cancelled:
            self._timer_cancelled_count -= 1  # type: ignore[attr-defined]
            heapq.heappop(scheduled)._scheduled = False
        if scheduled:
            when: float = scheduled[0]._when
            return max(self._now, when)
        return None

    def run_until(self, predicate: Callable[[], bool], deadline: float) -> bool:
        """Run callbacks until ``predicate()`` holds or virtual time would pass ``deadline``.

        Returns ``predicate()``'s last value. The clock ends at the time of the
        last callback run, or at ``deadline`` if the next one lies beyond it.
        Stops early, returning False, if nothing at all is scheduled.

        Raises:
            RuntimeError: a callback raised (an error inside the simulation);
                the original exception is chained.
            SimulationStuck: ``stuck_after`` turns in a row ran at one instant.
        """
        self._check_closed()  # type: ignore[attr-defined]
        if self.is_running():
            raise RuntimeError(
                "a blocking simulation call was made from code running on the simulation's "
                "own loop (inside run or an actor): it would wait for itself; await the "
                "ref's ask instead"
            )
        self._thread_id = threading.get_ident()
        events._set_running_loop(self)
        instant, turns = self._now, 0
        try:
            while True:
                if predicate():
                    return True
                nxt = self.next_event_time()
                if nxt is None:
                    return False
                if nxt > deadline:
                    self._now = max(self._now, deadline)
                    return bool(predicate())
                self._run_once()  # type: ignore[attr-defined]
                if self._now != instant:
                    instant, turns = self._now, 0
                else:
                    turns += 1
                    if turns >= self.stuck_after:
                        raise SimulationStuck(
                            f"simulation stuck at t={instant:.9f}: the loop turned {turns:,} "
                            "times without the clock moving on: something reschedules "
                            "itself at once, without end (the trace's last events show "
                            "what), or a long chain of work at zero latency needs a "
                            "larger stuck_after"
                        )
                if self.callback_errors:
                    context = self.callback_errors.pop(0)
                    error = context.get("exception")
                    raise RuntimeError(
                        f"a callback raised in the simulation at t={self._now:.6f}: "
                        f"{context.get('message')}"
                    ) from error
        finally:
            self._thread_id = None  # type: ignore[assignment]
            events._set_running_loop(None)
