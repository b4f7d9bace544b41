"""Phase 1 of a leader: PMMC's scout, and what an adopted ballot proposes (leader rule 2).

:class:`Scout` sends ``P1a(ballot, from_slot)`` to every acceptor, re-sends
to the silent ones every ``scout_timeout``, and gathers p1b until a quorum
adopted the ballot. :func:`adoption` turns the quorum's answers into what
the new term proposes: for every reported slot the batch of its
highest-ballot pvalue (the ``pmax`` kernel), a no-op in every gap below the
highest reported slot that no replica proposed into.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from actorfw.kernels import ballot as kb
from actorfw.protocols.paxos.messages import Batch, P1a, P1b
from actorfw.protocols.paxos.types import FIRST_SLOT, Config, LeaderOptions

__all__ = ["Scout", "adoption"]


class Scout:
    """One leader's phase 1 for its current ballot.

    Args:
        config: the configuration (the acceptors, the quorum).
        options: the leader's tuning (``scout_timeout``).
        stats: the leader's counters (``resent_p1a``).
    """

    __slots__ = ("_answers", "_config", "_options", "deadline", "from_slot", "stats")

    def __init__(self, config: Config, options: LeaderOptions, stats: Counter[str]) -> None:
        self._config = config
        self._options = options
        self.stats = stats
        self._answers: dict[str, P1b] = {}
        self.from_slot = FIRST_SLOT
        """Every slot below it was known decided when the scout began."""
        self.deadline = math.inf
        """When the silent acceptors are asked again."""

    def begin(self, ballot: int, from_slot: int, now: float, send: list[tuple[str, Any]]) -> None:
        """Scout ``ballot`` from ``from_slot``: a p1a to every acceptor."""
        self._answers = {}
        self.from_slot = from_slot
        self._ask(ballot, self._config.acceptors, now, send)

    def _ask(
        self, ballot: int, acceptors: Iterable[str], now: float, send: list[tuple[str, Any]]
    ) -> None:
        message = P1a(ballot, self.from_slot)
        for acceptor in acceptors:
            send.append((acceptor, message))
        self.deadline = now + self._options.scout_timeout

    def tick(self, ballot: int, now: float, send: list[tuple[str, Any]]) -> None:
        """Past the deadline: ask the acceptors that have not answered again."""
        if now >= self.deadline:
            self.stats["resent_p1a"] += 1
            answered = self._answers
            self._ask(ballot, (a for a in self._config.acceptors if a not in answered), now, send)

    def answer(self, msg: P1b) -> bool:
        """Take a p1b adopting the ballot: True once a quorum has."""
        self._answers[msg.acceptor] = msg
        return len(self._answers) >= self._config.quorum

    def take_answers(self) -> list[P1b]:
        """The quorum's answers, forgotten here (the scout is over)."""
        answers = list(self._answers.values())
        self._answers = {}
        return answers

    def stop(self) -> None:
        """The scout was preempted: forget its answers."""
        self._answers = {}


def adoption(
    answers: list[P1b], start: int, queue: Mapping[int, Batch], decided: Mapping[int, Batch]
) -> tuple[dict[int, Batch], int]:
    """What an adopted ballot proposes from slot ``start`` on, in slot order (rule 2).

    ``queue`` holds the replicas' proposals the leader kept, ``decided``
    the slots it knows decided (never proposed again). Returns the new
    queue and one past the highest slot phase 1 reported (the read index
    may not be below it: rule 9).
    """
    proposals = {s: b for s, b in queue.items() if s >= start and s not in decided}
    slots = np.concatenate([a.slots for a in answers])
    top_reported = start
    if len(slots):
        ballots = np.concatenate([a.ballots for a in answers])
        batches = [b for a in answers for b in a.batches]
        best_slots, _, index = kb.pmax(slots, ballots)
        for slot, i in zip(best_slots.tolist(), index.tolist(), strict=True):
            if slot >= start and slot not in decided:
                proposals[slot] = batches[i]
        top = int(best_slots[-1])
        for slot in range(start, top):
            if slot not in proposals and slot not in decided:
                proposals[slot] = ()
        top_reported = max(start, top + 1)
    return dict(sorted(proposals.items())), top_reported
