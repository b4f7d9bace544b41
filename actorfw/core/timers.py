"""Actors' timers: a message delivered to the actor itself after a delay, once or repeatedly.

A timer's message goes into the actor's mailbox when it fires, tagged with
the timer's key and generation; starting a timer under a key replaces the
one before, and a cancelled or replaced timer never delivers, even if it
fired already (the engine drops a tagged message whose generation is not
the key's current one). Timers end when the actor stops or restarts.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from actorfw.core.cell import STOPPING, Cell, Timer
from actorfw.values import codec

if TYPE_CHECKING:
    from actorfw.core.engine import Engine

__all__ = ["Timers"]


class Timers:
    """The timers of one engine's actors (see the module documentation)."""

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def start(self, cell: Cell, key: Any, message: Any, delay: float, repeat: bool) -> None:
        """Start (or replace) ``cell``'s timer ``key`` (see ``Context.start_timer``).

        Raises:
            MessageRefused: ``message`` is not a message value.
            ValueError: ``delay`` is not a finite number >= 0 (above 0 if ``repeat``).
        """
        codec.check(message)
        if not (isinstance(delay, (int, float)) and math.isfinite(delay) and delay >= 0):
            raise ValueError(
                f"a timer delay must be a finite number of seconds >= 0, not {delay!r}"
            )
        if repeat and delay <= 0:
            raise ValueError("a repeating timer needs a delay above 0")
        if not self._engine.alive or cell.state >= STOPPING:
            return
        self.cancel(cell, key)
        cell.timer_gen += 1
        generation = cell.timer_gen
        handle = self._engine.loop.call_later(delay, self._fire, cell, key, generation)
        cell.timers[key] = Timer(handle, generation, repeat, delay, message)

    def cancel(self, cell: Cell, key: Any) -> None:
        """Cancel ``cell``'s timer ``key``, if any."""
        timer = cell.timers.pop(key, None)
        if timer is not None:
            timer.handle.cancel()

    def cancel_all(self, cell: Cell) -> None:
        """Cancel every timer of ``cell`` (it stops, restarts, or its node crashed)."""
        for timer in cell.timers.values():
            timer.handle.cancel()
        cell.timers.clear()

    def current(self, cell: Cell, key: Any, generation: int) -> bool:
        """Is a fired timer's message still wanted? (Forgets a one-shot timer that is.)"""
        timer = cell.timers.get(key)
        if timer is None or timer.generation != generation:
            return False  # cancelled or replaced after it fired
        if not timer.repeat:
            del cell.timers[key]
        return True

    def _fire(self, cell: Cell, key: Any, generation: int) -> None:
        engine = self._engine
        timer = cell.timers.get(key)
        if (
            not engine.alive
            or timer is None
            or timer.generation != generation
            or cell.state >= STOPPING
        ):
            return
        if timer.repeat:
            timer.handle = engine.loop.call_later(timer.delay, self._fire, cell, key, generation)
        cell.mailbox.append((timer.message, cell.ref, None, (key, generation)))
        engine.schedule(cell)
