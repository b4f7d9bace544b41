"""A replica's proposals: which slot holds which of its batches, and where they go (rules 2, 3, 13).

A replica proposes queued requests into the slots of its window, batched;
it sends a step's new proposals in one :class:`Propose` to the leader its
node believes leads (else to every leader), re-sends a proposal not
decided within ``propose_timeout`` to every leader, and sends every
pending proposal to a new leader as soon as it learns of it.
:class:`Proposals` keeps the proposals not decided yet and this step's
outgoing ones; the replica owns the slots and the queue of requests.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Container
from typing import Any

import numpy as np

from actorfw.protocols.paxos.clients import Clients
from actorfw.protocols.paxos.messages import Batch, Propose
from actorfw.protocols.paxos.types import Config

__all__ = ["Proposals"]


class Proposals:
    """One replica's proposals not decided yet, and those leaving in this step.

    Args:
        config: the configuration (the leaders).
        me: the replica's address.
        stats: its counters (``reproposed``).
    """

    __slots__ = ("_config", "_me", "_new", "_to_all", "at", "hint", "pending", "stats")

    def __init__(self, config: Config, me: str, stats: Counter[str]) -> None:
        self._config = config
        self._me = me
        self.stats = stats
        self.pending: dict[int, Batch] = {}
        """This replica's proposals not decided yet, by slot."""
        self.at: dict[int, float] = {}
        """When each pending proposal was last sent."""
        self.hint = ""
        """The node believed to lead ("": unknown; proposals go to every leader)."""
        self._new: dict[int, Batch] = {}  # leaving at the end of this step, in order
        self._to_all = False  # this step's proposals go to every leader

    def _out(self, slot: int, batch: Batch, now: float) -> None:
        self.at[slot] = now
        self._new[slot] = batch

    def fill(
        self,
        slot: int,
        limit: int,
        decisions: Container[int],
        clients: Clients,
        max_batch: int,
        now: float,
    ) -> int:
        """Propose queued requests into slots ``slot`` to ``limit - 1``; the next free slot."""
        while slot < limit and clients.requests:
            if slot in decisions:
                slot += 1
                continue
            batch = clients.next_batch(max_batch)
            if not batch:
                break
            proposal = tuple(batch)
            self.pending[slot] = proposal
            self._out(slot, proposal, now)
            slot += 1
        return slot

    def resend_due(self, now: float, timeout: float) -> None:
        """Send again, to every leader, the proposals undecided for ``timeout`` (rule 3)."""
        due = [s for s, at in self.at.items() if at + timeout <= now]
        if due:
            self.stats["reproposed"] += len(due)
            self._to_all = True  # the leader we believed in may be gone
            for slot in due:
                self._out(slot, self.pending[slot], now)

    def leader_is(self, node: str, now: float) -> None:
        """The node's leader says ``node`` leads: every pending proposal goes there now."""
        if node == self.hint:
            return
        self.hint = node
        if node:
            new = self._new
            for slot, batch in self.pending.items():
                if slot not in new:
                    self._out(slot, batch, now)

    def decided(self, slot: int) -> Batch | None:
        """``slot`` is decided: this replica's proposal there, if it had one, is done."""
        own = self.pending.pop(slot, None)
        if own is not None:
            del self.at[slot]
        return own

    def lost_below(self, slot: int) -> list[Batch]:
        """Slots below ``slot`` were installed from a snapshot: their proposals are gone."""
        lost = [s for s in self.pending if s < slot]
        for number in lost:
            self.at.pop(number, None)
        return [self.pending.pop(number) for number in lost]

    def next_deadline(self, timeout: float) -> float:
        """When the oldest pending proposal is due again (``inf``: none pending)."""
        return min(self.at.values()) + timeout if self.at else math.inf

    def send(self, progress: int, send_now: list[tuple[str, Any]]) -> None:
        """End of the step: one :class:`Propose` reporting durable ``progress`` (rule 13)."""
        new = self._new
        if new:
            slots = np.array(list(new), dtype=np.int64)
            slots.setflags(write=False)
            propose = Propose(self._me, progress, slots, tuple(new.values()))
            if self.hint and not self._to_all:
                send_now.append((self.hint, propose))
            else:
                for leader in self._config.leaders:
                    send_now.append((leader, propose))
            self._new = {}
        self._to_all = False
