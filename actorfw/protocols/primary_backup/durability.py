"""What of a primary-backup member's log is durable (rule 8 of the member).

The driver reports durability by steps (``made_durable(steps)``, rule 8 of
:mod:`actorfw.protocols.effects`); a member needs it by log position: how
far its log is durable *and* as in memory. :class:`Durability` keeps the
translation: the log's end after each step not yet known durable, cut back
by a truncation (from its cut on, memory holds entries not yet durable, and
what earlier steps made durable there is gone from the log).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from actorfw.protocols.primary_backup.messages import Truncated, Written

__all__ = ["Durability"]


class Durability:
    """A member's durable steps and durable log end.

    Args:
        end: the end of the log the member was restored with; durable with
            step 0 (the driver syncs what was read back before anything leaves).
    """

    __slots__ = ("_ends", "end", "persisted", "steps")

    def __init__(self, end: int) -> None:
        self.persisted = 0
        """Steps that persisted records, counted as the driver counts them from the restore."""
        self.steps = 0
        """Of those, the first ones known durable."""
        self.end = 0
        """How far the log is durable and as in memory."""
        self._ends: deque[tuple[int, int]] = deque([(0, end)])  # (step, log end after it)

    def counted(self, persist: list[Any], end: int, installed: bool = False) -> None:
        """A step persisted ``persist`` and left the log ending at ``end``.

        ``installed``: the step replaced the log with a snapshot's; nothing of
        it counts as durable until this step is.

        Raises:
            AssertionError: a truncation without the entries written at its cut
                (the records codec cuts a stale tail on reading back only there).
        """
        if installed:
            self.end = 0
            self._ends = deque((step, 0) for step, _ in self._ends)
            self.persisted += 1
            self._ends.append((self.persisted, end))
            return
        cut = min((r.start for r in persist if type(r) is Truncated), default=0)
        if cut:
            if not any(type(r) is Written and r.start == cut for r in persist):
                raise AssertionError(f"a truncation at {cut} without the entries written there")
            self.end = min(self.end, cut - 1)
            self._ends = deque((step, min(last, cut - 1)) for step, last in self._ends)
        self.persisted += 1
        self._ends.append((self.persisted, end))

    def made_durable(self, steps: int) -> None:
        """The records of the first ``steps`` steps that persisted any are durable."""
        self.steps = max(self.steps, steps)
        ends = self._ends
        while ends and ends[0][0] <= steps:
            self.end = ends.popleft()[1]
