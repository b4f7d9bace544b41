"""Logging that a flood cannot drown: at most so many lines per window, the rest counted."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Logs at most ``limit`` lines per ``window`` seconds; says how many it left out.

    Args:
        logger: where lines go.
        prefix: put before every line (``"[n1] "``).
        clock: the runtime's time.
        limit: lines per window.
        window: seconds.
    """

    __slots__ = (
        "_clock",
        "_count",
        "_limit",
        "_logger",
        "_prefix",
        "_start",
        "_suppressed",
        "_window",
    )

    def __init__(
        self,
        logger: logging.Logger,
        prefix: str,
        clock: Callable[[], float],
        limit: int,
        window: float,
    ) -> None:
        self._logger = logger
        self._prefix = prefix
        self._clock = clock
        self._limit = limit
        self._window = window
        self._start = -math.inf
        self._count = 0
        self._suppressed = 0

    def __call__(self, level: int, fmt: str, *args: Any) -> None:
        """Log ``fmt % args`` at ``level``, unless this window's lines are spent.

        A line at a level the logger does not log spends nothing.
        """
        if not self._logger.isEnabledFor(level):
            return
        now = self._clock()
        if now - self._start >= self._window:
            if self._suppressed:
                self._logger.log(
                    level, "%s%d more like this not logged", self._prefix, self._suppressed
                )
            self._start = now
            self._count = 0
            self._suppressed = 0
        if self._count < self._limit:
            self._count += 1
            self._logger.log(level, self._prefix + fmt, *args)
        else:
            self._suppressed += 1
