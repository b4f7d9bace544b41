"""What a leader knows decided, and what the replicas applied (leader rules 6, 7, 9).

A leader keeps the batches it knows decided until a majority of replicas
reported applying them (it answers proposals for decided slots, and
re-sends decisions a replica lost); it learns that slots are decided from
its own phase 2, from replicas' progress and from acceptors' collection
floors; and it tells acceptors to collect below what a majority applied.
:class:`Ledger` keeps all of that. Whenever what is known decided grows,
it calls the ``forget`` it was given (the leader's
:meth:`~actorfw.protocols.paxos.commanders.Commanders.forget_decided`), so
that no decided slot is proposed again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from actorfw.protocols.paxos.messages import Batch, Decision, Slots
from actorfw.protocols.paxos.types import FIRST_SLOT, Config, LeaderOptions

__all__ = ["Ledger"]


class Ledger:
    """A leader's knowledge of decided slots and of the replicas' progress.

    Args:
        config: the configuration (the replicas, whose majority counts).
        options: the leader's tuning (``collect_interval``, ``resend_slots``).
        forget: called with ``(below, batches)`` each time what is known
            decided may have grown: every slot below ``below`` and every
            slot in ``batches`` is decided.
    """

    __slots__ = (
        "_collect_sent",
        "_forget",
        "_majority",
        "_options",
        "_pruned_below",
        "adopt_top",
        "batches",
        "below",
        "floor",
        "progress",
        "top",
    )

    def __init__(
        self,
        config: Config,
        options: LeaderOptions,
        forget: Callable[[int, Mapping[int, Batch]], None],
    ) -> None:
        self._options = options
        self._forget = forget
        self._majority = len(config.replicas) // 2 + 1
        self.batches: dict[int, Batch] = {}
        """The decided batches held, by slot."""
        self.below = FIRST_SLOT
        """Every slot below it is known decided."""
        self.top = FIRST_SLOT
        """One past the highest slot known decided."""
        self.adopt_top = FIRST_SLOT
        """One past the highest slot the last adopted phase 1 reported."""
        self.floor = 0
        """The highest collection floor an acceptor reported (or this leader sent)."""
        self.progress: dict[str, int] = {}
        """Each replica's last reported ``slot_out``."""
        self._pruned_below = FIRST_SLOT
        self._collect_sent = FIRST_SLOT

    @property
    def collectable_below(self) -> int | None:
        """A floor a majority of replicas has applied up to (rule 7).

        The ``f+1``-th highest ``slot_out`` the replicas reported (``f+1``
        of ``2f+1``: a majority). Acceptors may ``collect`` below it; None
        until a majority reported.
        """
        progress = self.progress
        if len(progress) < self._majority:
            return None
        if len(progress) == 1:
            return next(iter(progress.values()))
        return sorted(progress.values(), reverse=True)[self._majority - 1]

    @property
    def read_index(self) -> int:
        """One past every slot that may have been decided, as far as this leader knows (rule 9)."""
        return max(self.below, self.top, self.adopt_top)

    def _advance(self) -> None:
        below = self.below
        batches = self.batches
        while below in batches:
            below += 1
        self.below = below
        self._forget(below, batches)

    def _raise(self, below: int) -> None:
        self.below = below
        self.top = max(self.top, below)
        self._advance()

    def progress_of(self, replica: str, slot_out: int, active: bool) -> int | None:
        """A replica reported ``slot_out``: every slot below it is decided (rules 6, 7).

        What a majority applied is pruned. Returns the floor to send
        ``Collect`` for, when ``active`` and it moved ``collect_interval``
        past the last one sent (None otherwise).
        """
        before = self.progress.get(replica)
        self.progress[replica] = slot_out
        if slot_out > self.below:
            self._raise(slot_out)
        if before is not None and slot_out <= before:
            return None  # the majority's floor cannot have risen
        floor = self.collectable_below
        if floor is None:
            return None
        self._prune(floor)
        interval = self._options.collect_interval
        if interval is not None and active and floor >= self._collect_sent + interval:
            self._collect_sent = floor
            return floor
        return None

    def new_term(self) -> None:
        """A ballot was adopted: collect again at the next report."""
        self._collect_sent = FIRST_SLOT

    def _prune(self, below: int) -> None:
        if below <= self._pruned_below:
            return
        batches = self.batches
        if below - self._pruned_below > len(batches):
            self.batches = {s: b for s, b in batches.items() if s >= below}
        else:
            for slot in range(self._pruned_below, below):
                batches.pop(slot, None)
        self._pruned_below = below

    def collected(self, floor: int) -> None:
        """An acceptor collected below ``floor`` (above the known floor): those are decided."""
        self.floor = floor
        if floor > self.below:
            self._raise(floor)

    def adopted_floor(self, floor: int) -> None:
        """The highest floor the p1b of an adoption reported."""
        if floor > self.floor:
            self.floor = floor
            self.below = max(self.below, floor)
            self.top = max(self.top, floor)
            self._advance()

    def chosen(self, slots: Slots, batches: list[Batch]) -> None:
        """Phase 2 chose ``batches`` for ``slots``."""
        held = self.batches
        numbers = slots.tolist()
        for slot, batch in zip(numbers, batches, strict=True):
            held[slot] = batch
        self.top = max(self.top, max(numbers) + 1)
        if self.below in held:
            self._advance()

    def sort_proposals(
        self, slots: Slots, batches: tuple[Batch, ...], hold: Callable[[int, Batch], None]
    ) -> Decision | None:
        """A replica's proposals: ``hold`` those of undecided slots; the decisions of the others.

        Returns a :class:`Decision` of the proposed slots known decided
        whose batches are still held (None if there are none).
        """
        known_slots: list[int] = []
        known_batches: list[Batch] = []
        below, decided = self.below, self.batches
        for slot, batch in zip(slots.tolist(), batches, strict=True):
            if slot < below or slot in decided:
                held = decided.get(slot)
                if held is not None:
                    known_slots.append(slot)
                    known_batches.append(held)
                continue
            hold(slot, batch)
        if not known_slots:
            return None
        return Decision(np.array(known_slots, np.int64), tuple(known_batches))

    def decisions_from(self, slot_out: int) -> Decision | None:
        """The held decisions from ``slot_out`` on (``resend_slots`` at most), for a stuck replica.

        None when ``slot_out`` is not below what is known decided, or none is held.
        """
        if slot_out >= self.below:
            return None
        decided = self.batches
        slots = [s for s in range(slot_out, slot_out + self._options.resend_slots) if s in decided]
        if not slots:
            return None
        return Decision(np.array(slots, np.int64), tuple(decided[s] for s in slots))
