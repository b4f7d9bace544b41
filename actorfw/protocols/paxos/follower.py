"""A passive leader's watch on the leader it follows, and when to take over (leader rule 5).

While passive, a leader follows the leader of the highest ballot it knows:
it pings that one every ``ping_interval``; when no :class:`Pong` saying it
leads has come for ``leader_timeout``, it pings every leader and plans to
scout after a random back-off, whose range doubles with each recent
preemption. :class:`Follower` keeps that watch; the leader decides what
the mode is and starts the scout when :meth:`Follower.tick` says it is due.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

from actorfw.kernels import ballot as kb
from actorfw.protocols.paxos.messages import Ping, Pong
from actorfw.protocols.paxos.types import Config, LeaderOptions

__all__ = ["Follower"]


class Follower:
    """Whom a leader follows, when it last heard them, and when it would scout (rule 5).

    Args:
        config: the configuration (the leaders to ping).
        me: the leader's address.
        index: the leader's index in ``config.leaders``.
        options: its tuning (intervals, timeouts, back-off).
        rng: the source of the back-off (seeded: runs replay).
        stats: the leader's counters (``suspected``).
    """

    __slots__ = (
        "_config",
        "_index",
        "_me",
        "_options",
        "_rng",
        "heard_at",
        "next_ping",
        "preemptions",
        "scout_at",
        "stats",
        "watch",
    )

    def __init__(
        self,
        config: Config,
        me: str,
        index: int,
        options: LeaderOptions,
        rng: random.Random,
        stats: Counter[str],
    ) -> None:
        self._config = config
        self._me = me
        self._index = index
        self._options = options
        self._rng = rng
        self.stats = stats
        self.watch: int = kb.NO_BALLOT
        """The highest ballot known to be led (``NO_BALLOT``: none known)."""
        self.heard_at = -math.inf
        """When the followed leader last showed it leads."""
        self.next_ping = -math.inf
        self.scout_at: float | None = None
        """When to scout, once the followed leader is suspected (None: not planned)."""
        self.preemptions = 0
        """Recent preemptions: each doubles the back-off's range, each adoption undoes one."""

    def follow(self, ballot: int, now: float) -> None:
        """Follow the leader of ``ballot`` (if above the one followed): heard now, pinged now."""
        self.watch = max(self.watch, ballot)
        self.heard_at = now
        self.scout_at = None
        self.next_ping = now

    def leader(self) -> str:
        """The address of the followed leader ("" when no ballot is known)."""
        if self.watch == kb.NO_BALLOT:
            return ""
        index = kb.ballot_leader(self.watch)
        leaders = self._config.leaders
        return leaders[index] if index < len(leaders) else ""

    def _watched(self) -> str | None:
        if self.watch == kb.NO_BALLOT:
            return None
        index: int = self.watch & kb.MAX_LEADER
        if index == self._index or index >= len(self._config.leaders):
            return None
        return self._config.leaders[index]

    def tick(self, now: float, send: list[tuple[str, Any]]) -> bool:
        """Suspect a silent leader, ping; True when the back-off is over and a scout is due."""
        if self.scout_at is not None and now >= self.scout_at:
            return True
        if self.scout_at is None and now >= self.heard_at + self._options.leader_timeout:
            self._suspect(now)
        if now >= self.next_ping:
            watched = self._watched()
            if watched is not None and self.scout_at is None:
                targets: Iterable[str] = (watched,)
            else:
                targets = (a for a in self._config.leaders if a != self._me)
            message = Ping(self._me, self.watch)
            for target in targets:
                send.append((target, message))
            self.next_ping = now + self._options.ping_interval
        return False

    def _suspect(self, now: float) -> None:
        """The followed leader is silent: plan to scout after a random back-off."""
        self.stats["suspected"] += 1
        options = self._options
        span = min(options.backoff_max, options.backoff_base * 2 ** min(self.preemptions, 30))
        self.scout_at = now + self._rng.uniform(0.0, span)
        self.next_ping = now  # ask everyone at once who leads now

    def next_deadline(self) -> float:
        """When :meth:`tick` has something to do."""
        if self.scout_at is not None:
            return min(self.scout_at, self.next_ping)
        return min(self.next_ping, self.heard_at + self._options.leader_timeout)

    def pong(self, msg: Pong, now: float) -> None:
        """A well-formed pong while passive: someone leads, or follows a higher ballot."""
        if msg.active and msg.ballot >= self.watch:
            # The leader of the highest known ballot is alive and leading.
            self.watch = msg.ballot
            self.heard_at = now
            self.scout_at = None
        elif not msg.active and msg.ballot > self.watch:
            # It follows a higher ballot: follow that one's leader too.
            self.follow(msg.ballot, now)
