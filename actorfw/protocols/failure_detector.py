"""Node liveness: a phi-accrual failure detector and the membership view built on it.

Theory of operation
-------------------

Every node sends a heartbeat to each peer at a fixed interval. For each peer,
:class:`PhiAccrualDetector` keeps the recent intervals between heartbeats
and turns the time since the last one into a suspicion level phi
(Hayashibara et al., "The phi accrual failure detector", 2004, in the form
Akka and Cassandra use): assuming intervals are normally distributed with
the observed mean (plus an acceptable pause) and deviation,
``phi = -log10(P(a heartbeat arrives later than now))``. phi 1 means a 10%
chance the peer is fine, phi 8 one in a hundred million. A peer is
suspected when phi passes the threshold.

:class:`Membership` turns heartbeats and ticks into events, by these rules:

1. A peer never heard from is ``UNKNOWN``, not down: nothing can be said
   yet. If it stays silent for ``join_timeout`` seconds after it began to
   be tracked, it is declared ``DOWN`` (event ``DOWN``): a node that never
   came up is as unreachable as one that went away.
2. The first heartbeat from a peer makes it ``UP`` (event ``UP``).
3. On a tick, an ``UP`` peer whose phi exceeds the threshold becomes
   ``DOWN`` (event ``DOWN``): pending requests to it may fail fast, and
   watches on its actors fire. Other traffic from the peer (:meth:`Membership.seen`)
   is evidence too: a peer heard from within the last ``acceptable_pause``
   plus one expected interval is not declared down even if its heartbeats
   are late, as they are when they queue behind a bulk transfer on the
   same connection. It does not feed the detector, whose statistics are
   of heartbeat intervals only.
4. A heartbeat from a ``DOWN`` peer re-admits it (event ``UP``), with a
   fresh detector, since the old intervals say nothing about the new
   connection.
5. A heartbeat carrying a higher incarnation than the peer's last means the
   peer restarted: whatever lived on the old incarnation is gone (event
   ``RESTARTED``, then it is ``UP``). Heartbeats of an older incarnation are
   stale and ignored.
6. A pause of this node's own (:meth:`Membership.paused`: its event loop
   stood still, behind a handler or driver that blocked it, or the whole
   process was stopped) is nobody else's silence: every peer's clock of
   silence moves on by the pause, but never past now, so no peer is
   declared down for it, and (told before the heartbeats that waited are
   recorded) the pause does not enter the intervals the detector learns
   from. A peer that stays silent after the pause, one that died during
   it included, is judged from the pause's end as any other.

Both classes are sans-IO: time comes in as an argument, nothing is sent or
scheduled here.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

__all__ = ["Liveness", "Membership", "MembershipEvent", "PhiAccrualDetector"]


class PhiAccrualDetector:
    """Suspicion of one peer, from the arrival times of its heartbeats.

    Args:
        threshold: phi above which the peer is suspected.
        max_samples: how many recent intervals to keep.
        min_std: floor of the interval deviation (seconds), so that a
            perfectly regular sender is not suspected at the first jitter.
        acceptable_pause: extra seconds of silence tolerated (GC pauses,
            load) on top of the mean interval.
        first_interval: the interval assumed before two heartbeats arrived.
    """

    __slots__ = (
        "_intervals",
        "_last",
        "_sum",
        "_sum_sq",
        "acceptable_pause",
        "max_samples",
        "min_std",
        "threshold",
    )

    def __init__(
        self,
        threshold: float = 8.0,
        max_samples: int = 200,
        min_std: float = 0.05,
        acceptable_pause: float = 0.0,
        first_interval: float = 1.0,
    ) -> None:
        if threshold <= 0 or max_samples < 1 or min_std <= 0 or acceptable_pause < 0:
            raise ValueError(
                "threshold and min_std must be positive, max_samples at least 1, "
                "acceptable_pause not negative"
            )
        self.threshold = threshold
        self.max_samples = max_samples
        self.min_std = min_std
        self.acceptable_pause = acceptable_pause
        self._intervals: deque[float] = deque()
        self._sum = 0.0
        self._sum_sq = 0.0
        self._last: float | None = None
        # Seed with the expected interval, so the first silence is judged sensibly.
        self._add(first_interval)
        self._add(first_interval + min_std)

    def _add(self, interval: float) -> None:
        if len(self._intervals) >= self.max_samples:
            old = self._intervals.popleft()
            self._sum -= old
            self._sum_sq -= old * old
        self._intervals.append(interval)
        self._sum += interval
        self._sum_sq += interval * interval

    def heartbeat(self, now: float) -> None:
        """Record a heartbeat that arrived at ``now``."""
        if self._last is not None and now >= self._last:
            self._add(now - self._last)
        self._last = now

    @property
    def last_heartbeat(self) -> float | None:
        """When the last heartbeat arrived, or None."""
        return self._last

    def shift(self, pause: float, now: float) -> None:
        """Count ``pause`` seconds, this node's own stall, as no silence of the peer (rule 6).

        The last heartbeat moves on by the pause, but not past ``now``.
        """
        if self._last is not None and pause > 0:
            self._last = _moved(self._last, pause, now)

    def phi(self, now: float) -> float:
        """The suspicion level at ``now`` (0 before any heartbeat)."""
        if self._last is None:
            return 0.0
        n = len(self._intervals)
        mean = self._sum / n
        variance = max(self._sum_sq / n - mean * mean, 0.0)
        std = max(math.sqrt(variance), self.min_std)
        elapsed = now - self._last
        y = (elapsed - (mean + self.acceptable_pause)) / std
        # Logistic approximation of the normal tail (as in Akka's detector).
        # The exponent is capped: far below the expected arrival (a heartbeat just
        # after long gaps) it grows past what exp() can hold, and phi is 0 there anyway.
        e = math.exp(min(-y * (1.5976 + 0.070566 * y * y), 700.0))
        if elapsed > mean + self.acceptable_pause:
            p_later = e / (1.0 + e)
        else:
            p_later = 1.0 - 1.0 / (1.0 + e)
        if p_later <= 0.0:
            return math.inf
        return max(0.0, -math.log10(p_later))

    def suspected(self, now: float) -> bool:
        """Is phi above the threshold at ``now``?"""
        return self.phi(now) > self.threshold


class Liveness(enum.Enum):
    """What a node believes of a peer."""

    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class MembershipEvent(enum.Enum):
    """A change :class:`Membership` reports."""

    UP = "up"
    DOWN = "down"
    RESTARTED = "restarted"


def _moved(when: float, pause: float, now: float) -> float:
    """``when`` moved on by this node's ``pause``, but not past ``now`` (rule 6)."""
    return min(when + pause, max(when, now))


@dataclass
class _Peer:
    detector: PhiAccrualDetector
    state: Liveness = Liveness.UNKNOWN
    incarnation: int = -1
    since: float | None = None
    seen: float | None = None


class Membership:
    """The liveness of a node's peers, from heartbeats and ticks (see the module rules).

    Args:
        threshold, acceptable_pause, min_std, first_interval: passed to each
            peer's :class:`PhiAccrualDetector`.
        join_timeout: seconds a peer may stay unheard after it is added (with
            a time) before it is declared down (rule 1); None never does.
    """

    def __init__(
        self,
        threshold: float = 8.0,
        acceptable_pause: float = 0.0,
        min_std: float = 0.05,
        first_interval: float = 1.0,
        join_timeout: float | None = None,
    ) -> None:
        self.join_timeout = join_timeout
        self._options = {
            "threshold": threshold,
            "acceptable_pause": acceptable_pause,
            "min_std": min_std,
            "first_interval": first_interval,
        }
        self._peers: dict[str, _Peer] = {}

    def _detector(self) -> PhiAccrualDetector:
        return PhiAccrualDetector(**self._options)  # type: ignore[arg-type]

    def add(self, peer: str, now: float | None = None) -> None:
        """Track ``peer`` (``UNKNOWN`` until heard; ``now`` starts its join timeout)."""
        if peer not in self._peers:
            self._peers[peer] = _Peer(self._detector(), since=now)

    def peers(self) -> list[str]:
        """The tracked peers, in the order they were added."""
        return list(self._peers)

    def state(self, peer: str) -> Liveness:
        """What is believed of ``peer`` (``UNKNOWN`` for an untracked one)."""
        p = self._peers.get(peer)
        return p.state if p is not None else Liveness.UNKNOWN

    def is_down(self, peer: str) -> bool:
        """Is ``peer`` declared down?"""
        return self.state(peer) is Liveness.DOWN

    def incarnation(self, peer: str) -> int:
        """The last incarnation heard from ``peer`` (-1 if none)."""
        p = self._peers.get(peer)
        return p.incarnation if p is not None else -1

    def last_heartbeat(self, peer: str) -> float | None:
        """When the last heartbeat of ``peer`` arrived, or None."""
        p = self._peers.get(peer)
        return p.detector.last_heartbeat if p is not None else None

    def phi(self, peer: str, now: float) -> float:
        """The current suspicion of ``peer``."""
        p = self._peers.get(peer)
        return p.detector.phi(now) if p is not None else 0.0

    def heartbeat(self, peer: str, incarnation: int, now: float) -> list[MembershipEvent]:
        """A heartbeat from ``peer`` arrived at ``now``; returns what changed (rules 2, 4, 5)."""
        self.add(peer)
        p = self._peers[peer]
        if incarnation < p.incarnation:
            return []  # stale: from before the peer's last restart
        events: list[MembershipEvent] = []
        if p.incarnation >= 0 and incarnation > p.incarnation:
            events.append(MembershipEvent.RESTARTED)
            p.detector = self._detector()
        p.incarnation = incarnation
        if p.state is Liveness.DOWN:
            p.detector = self._detector()
        if p.state is not Liveness.UP:
            p.state = Liveness.UP
            events.append(MembershipEvent.UP)
        p.detector.heartbeat(now)
        return events

    def seen(self, peer: str, now: float) -> None:
        """Traffic other than a heartbeat came from ``peer`` at ``now`` (rule 3)."""
        p = self._peers.get(peer)
        if p is not None:
            p.seen = now

    def paused(self, pause: float, now: float) -> None:
        """This node stood still for ``pause`` seconds until ``now``: no peer's silence then
        counts (rule 6)."""
        if not pause > 0:
            return
        for p in self._peers.values():
            p.detector.shift(pause, now)
            if p.seen is not None:
                p.seen = _moved(p.seen, pause, now)
            if p.since is not None:
                p.since = _moved(p.since, pause, now)

    def tick(self, now: float) -> list[tuple[str, MembershipEvent]]:
        """Check every peer at ``now``; returns the peers newly declared down (rules 1, 3)."""
        out = []
        join = self.join_timeout
        grace = self._options["acceptable_pause"] + self._options["first_interval"]
        for name, p in self._peers.items():
            if p.state is Liveness.UP:
                recently = p.seen is not None and now - p.seen <= grace
                if not recently and p.detector.suspected(now):
                    p.state = Liveness.DOWN
                    out.append((name, MembershipEvent.DOWN))
            elif (
                p.state is Liveness.UNKNOWN
                and join is not None
                and p.since is not None
                and now - p.since > join
            ):
                p.state = Liveness.DOWN
                out.append((name, MembershipEvent.DOWN))
        return out
