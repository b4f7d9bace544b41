"""An active leader's lease: numbered rounds of requests, their grants, and when it started.

Leader rule 8 (:mod:`actorfw.protocols.paxos.leader`) in one object. The
leader asks every acceptor for a lease in numbered rounds, noting when it
*sent* each round; once a quorum granted round ``r`` under its ballot, the
lease runs from round ``r``'s send time. The leader owns the ballot and
the mode; this object owns the rounds, and says until when the lease holds.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from actorfw.protocols.paxos.messages import LeaseGrant, LeaseRequest
from actorfw.protocols.paxos.types import Config, LeaderOptions

__all__ = ["LeaseKeeper"]


class LeaseKeeper:
    """The lease rounds of one leader (rule 8): what was asked when, who granted what.

    Args:
        config: the configuration (the acceptors asked, the quorum).
        options: the leader's tuning (``lease_duration``, ``max_drift``).
        stats: the leader's counters (``lease_requests``, ``stale``).
    """

    __slots__ = (
        "_config",
        "_options",
        "_round",
        "_sent",
        "_votes",
        "next_request",
        "start",
        "stats",
    )

    def __init__(self, config: Config, options: LeaderOptions, stats: Counter[str]) -> None:
        self._config = config
        self._options = options
        self.stats = stats
        self._round = 0
        self._sent: dict[int, float] = {}
        self._votes: dict[int, int] = {}
        self.start = -math.inf
        """The send time of the latest round a quorum granted (``-inf``: none)."""
        self.next_request = math.inf
        """When the next round is due (``inf``: no lease is being kept)."""

    def until(self, active: bool) -> float:
        """Until when (the leader's clock) the lease is valid: ``-inf`` if off, not active, none."""
        duration = self._options.lease_duration
        if duration is None or not active:
            return -math.inf
        return self.start + duration - self._options.max_drift

    def request(self, ballot: int, now: float, send: list[tuple[str, Any]]) -> None:
        """Send a new round to every acceptor (on adoption, then every renewal interval)."""
        duration = self._options.lease_duration
        assert duration is not None
        self._round += 1
        number = self._round
        self._sent[number] = now
        self._votes[number] = 0
        # A round older than a lease could not grant anything usable any more.
        for old in [r for r, at in self._sent.items() if at + duration <= now]:
            del self._sent[old]
            del self._votes[old]
        self.stats["lease_requests"] += 1
        request = LeaseRequest(ballot, number, duration)
        for acceptor in self._config.acceptors:
            send.append((acceptor, request))
        self.next_request = now + self._options.lease_renew_interval

    def end(self) -> None:
        """The leader stopped leading (preempted, or a new term): no lease, no rounds."""
        self._sent.clear()
        self._votes.clear()
        self.start = -math.inf
        self.next_request = math.inf

    def granted(self, msg: LeaseGrant, current: bool) -> None:
        """Count a well-formed grant; ``current``: it is for the ballot the leader leads now."""
        votes = self._votes.get(msg.round)
        if not current or votes is None:
            self.stats["stale"] += 1
            return
        votes |= 1 << self._config.acceptor_index(msg.acceptor)
        self._votes[msg.round] = votes
        if votes.bit_count() >= self._config.quorum:
            start = self._sent[msg.round]
            if start > self.start:
                self.start = start
            for old in [r for r in self._sent if r <= msg.round]:
                del self._sent[old]
                del self._votes[old]
