"""Phase 2 of an active leader: PMMC's commanders, as batched p2a and one tally (leader rule 3).

PMMC spawns one commander per slot. Here the commanders of every slot in
flight are one object: the proposals waiting for the window (``queue``),
the slots in phase 2 under the current ballot (``inflight``), a
:class:`~actorfw.protocols.paxos.tally.VoteTally` of the acceptors' votes,
and the re-send deadlines of the p2a sent. The leader owns the ballot, the
mode and what is known decided; it hands those in.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from actorfw.protocols.paxos.messages import Batch, P2a, Slots
from actorfw.protocols.paxos.tally import VoteTally
from actorfw.protocols.paxos.types import Config, LeaderOptions

__all__ = ["Commanders"]


class Commanders:
    """The slots a leader holds proposals for, and those in phase 2 (rule 3).

    Args:
        config: the configuration (the acceptors, the quorum).
        options: the leader's tuning (``window``, ``max_slots_per_p2a``, ``p2a_timeout``).
        stats: the leader's counters (``resent_p2a``).
    """

    __slots__ = ("_config", "_options", "_resend", "_tally", "inflight", "queue", "stats")

    def __init__(self, config: Config, options: LeaderOptions, stats: Counter[str]) -> None:
        self._config = config
        self._options = options
        self.stats = stats
        self.queue: dict[int, Batch] = {}
        """Proposals held, by slot, not in phase 2 (passive, or beyond the window)."""
        self.inflight: dict[int, Batch] = {}
        """Slots in phase 2 under the current ballot, not chosen yet."""
        self._tally = VoteTally(config.quorum)
        self._resend: deque[tuple[float, Slots]] = deque()

    def hold(self, slot: int, batch: Batch) -> None:
        """A replica's proposal for an undecided slot: the first one for a slot is kept."""
        if slot in self.inflight or slot in self.queue:
            return
        self.queue[slot] = batch

    def adopt(self, queue: dict[int, Batch]) -> None:
        """A ballot was adopted: ``queue`` is what it proposes, in slot order; none in flight."""
        self.queue = queue
        self._tally.reset()
        self._resend.clear()

    def stand_down(self) -> None:
        """Preempted: the slots in flight go back to the queue (a later adoption decides them)."""
        if self.inflight:
            merged = dict(self.inflight)
            merged.update(self.queue)
            self.queue = merged
            self.inflight = {}
        self._tally.reset()
        self._resend.clear()

    def launch(
        self,
        ballot: int,
        now: float,
        below: int,
        decided: Mapping[int, Batch],
        send: list[tuple[str, Any]],
    ) -> None:
        """Put queued proposals into phase 2, up to the window, skipping slots known decided."""
        queue = self.queue
        if not queue:
            return
        room = self._options.window - len(self.inflight)
        if room <= 0:
            return
        inflight = self.inflight
        taken = list(itertools.islice(queue, room))
        slots: list[int] = []
        batches: list[Batch] = []
        for slot in taken:
            batch = queue.pop(slot)
            if slot < below or slot in decided:
                continue
            inflight[slot] = batch
            slots.append(slot)
            batches.append(batch)
        if slots:
            array = np.array(slots, dtype=np.int64)
            self._tally.open(array)
            self._send(ballot, now, array, batches, send)

    def _send(
        self,
        ballot: int,
        now: float,
        slots: Slots,
        batches: list[Batch],
        send: list[tuple[str, Any]],
    ) -> None:
        step = self._options.max_slots_per_p2a
        deadline = now + self._options.p2a_timeout
        acceptors = self._config.acceptors
        for start in range(0, len(slots), step):
            chunk = slots[start : start + step]
            chunk.setflags(write=False)
            message = P2a(ballot, chunk, tuple(batches[start : start + step]))
            for acceptor in acceptors:
                send.append((acceptor, message))
            self._resend.append((deadline, chunk))

    def vote(self, slots: Slots, bit: int) -> tuple[Slots, list[Batch]]:
        """Count acceptor ``bit``'s p2b: the slots it made chosen, and their batches."""
        chosen = self._tally.vote(slots, bit)
        if not len(chosen):
            return chosen, []
        inflight = self.inflight
        batches = [inflight.pop(slot) for slot in chosen.tolist()]
        # Forget the re-send deadlines of p2a whose slots are all chosen now, so
        # that the next deadline is that of a p2a still waiting: otherwise each
        # p2a's deadline, met long after its slots were chosen, costs a tick.
        resend, tally = self._resend, self._tally
        while resend and not len(tally.still_open(resend[0][1])):
            resend.popleft()
        return chosen, batches

    def resend_due(self, ballot: int, now: float, send: list[tuple[str, Any]]) -> None:
        """Send again, in one round of p2a, the slots of every p2a past its deadline unchosen."""
        resend = self._resend
        again: list[Slots] = []
        while resend and resend[0][0] <= now:
            _, slots = resend.popleft()
            waiting = self._tally.still_open(slots)
            if len(waiting):
                again.append(waiting)
        if again:
            slots = np.concatenate(again)
            self.stats["resent_p2a"] += 1
            inflight = self.inflight
            self._send(ballot, now, slots, [inflight[s] for s in slots.tolist()], send)

    def next_deadline(self) -> float | None:
        """The earliest p2a re-send deadline (None: nothing in flight waits)."""
        return self._resend[0][0] if self._resend else None

    def collected(self, floor: int) -> None:
        """Slots below ``floor`` were collected by an acceptor: decided, stop proposing them."""
        dropped = [s for s in self.inflight if s < floor]
        for slot in dropped:
            del self.inflight[slot]
        if dropped:
            self._tally.close(np.array(dropped, dtype=np.int64))

    def forget_decided(self, below: int, decided: Mapping[int, Batch]) -> None:
        """Drop from the queue the slots below ``below`` or in ``decided``, if it may hold any."""
        queue = self.queue
        if queue and (next(iter(queue)) < below or len(queue) > self._options.window):
            self.queue = {s: b for s, b in queue.items() if s >= below and s not in decided}
