"""When a replica is behind, and whom it asks for the decisions it lacks (replica rule 7).

Every ``status_interval`` a replica reports its ``slot_out`` to its peers
(:class:`Progress`) and to the leaders (:class:`Applied`). It is *behind*
when a peer reported a higher ``slot_out``, or when it holds decisions
above a gap. Stuck for ``catchup_delay``, it asks a peer with
:class:`CatchUp`: the one furthest ahead, or, when nobody is known ahead
or the last ask did not help, the next peer in turn; it asks again after
``catchup_timeout`` while still behind. :class:`CatchUpPlan` keeps the
reports' timing, the peers' progress and when to ask; serving an ask, and
taking the answer in, are the replica's.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Container
from typing import Any

from actorfw.protocols.paxos.messages import Applied, CatchUp, Progress
from actorfw.protocols.paxos.types import ReplicaOptions

__all__ = ["CatchUpPlan"]


class CatchUpPlan:
    """One replica's view of its peers' progress, and when to ask which of them.

    Args:
        me: the replica's address.
        peers: the other replicas.
        options: its tuning (``status_interval``, ``catchup_delay``, ``catchup_timeout``).
        stats: its counters (``catchup_asked``).
    """

    __slots__ = (
        "_asked_at",
        "_behind_since",
        "_me",
        "_options",
        "_turn",
        "helped",
        "next_status",
        "peers",
        "progress",
        "stats",
    )

    def __init__(
        self, me: str, peers: tuple[str, ...], options: ReplicaOptions, stats: Counter[str]
    ) -> None:
        self._me = me
        self.peers = peers
        self._options = options
        self.stats = stats
        self.progress: dict[str, int] = {}
        """Each peer's highest reported ``slot_out``."""
        self.helped = True
        """Did the last ask bring this replica forward?"""
        self._behind_since: float | None = None
        self._asked_at = -math.inf
        self._turn = 0
        self.next_status = -math.inf
        """When the next status report is due (a fresh replica reports at once)."""

    def report_due(
        self, now: float, slot_out: int, leaders: tuple[str, ...], send: list[tuple[str, Any]]
    ) -> None:
        """Report ``slot_out`` to the peers and the leaders, if it is time."""
        if now < self.next_status:
            return
        self.next_status = now + self._options.status_interval
        progress = Progress(self._me, slot_out)
        for peer in self.peers:
            send.append((peer, progress))
        applied = Applied(self._me, slot_out)
        for leader in leaders:
            send.append((leader, applied))

    def behind(self, slot_out: int, decisions: Container[int]) -> bool:
        """A gap below held decisions, or a peer ahead."""
        if decisions and slot_out not in decisions:
            return True
        return any(p > slot_out for p in self.progress.values())

    def next_ask(self, now: float) -> float:
        """When a stuck replica may ask a peer (again)."""
        return max(
            (self._behind_since if self._behind_since is not None else now)
            + self._options.catchup_delay,
            self._asked_at + self._options.catchup_timeout,
        )

    def moved(self) -> None:
        """The replica applied something: a new wait starts if it is still behind."""
        self._behind_since = None

    def end_of_step(self, now: float, slot_out: int, decisions: Container[int]) -> None:
        """Note since when the replica is behind."""
        if self.peers and self.behind(slot_out, decisions):
            if self._behind_since is None:
                self._behind_since = now
        else:
            self._behind_since = None

    def maybe_ask(
        self, now: float, slot_out: int, decisions: Container[int], send: list[tuple[str, Any]]
    ) -> None:
        """Ask a peer for decisions, if behind and it is time."""
        peers = self.peers
        if not peers or not self.behind(slot_out, decisions) or now < self.next_ask(now):
            return
        progress = self.progress
        ahead = max(peers, key=lambda p: progress.get(p, -1))
        if progress.get(ahead, -1) <= slot_out or not self.helped:
            # Nobody is known to be ahead (a gap only), or the last ask did not
            # help (unanswered, or the peer lacked the slots): take peers in turn.
            ahead = peers[self._turn % len(peers)]
            self._turn += 1
        self.ask(ahead, now, slot_out, send)

    def ask(self, peer: str, now: float, slot_out: int, send: list[tuple[str, Any]]) -> None:
        """Ask ``peer`` for the decisions from ``slot_out`` on."""
        self.stats["catchup_asked"] += 1
        self._asked_at = now
        self.helped = False
        send.append((peer, CatchUp(self._me, slot_out)))
