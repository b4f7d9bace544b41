"""Shared types of the Multi-Paxos cores: configuration, tuning, effects, the state machine.

Every core method returns an :class:`~actorfw.protocols.effects.Effects`,
whose rules (:mod:`actorfw.protocols.effects`) every driver honours. For
Paxos the one that matters most is rule 2: a message that left before the
records of its step were durable could make an acceptor forget, after a
crash, a promise or a vote that a leader has already counted: that is how
Paxos loses safety. The cores put in ``send_now`` only what no crash can
make false (a replica's proposal carries the progress already durable; a
leader tells its node's replica who leads), and in ``responses`` only the
results of chosen commands, durable on a quorum of acceptors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from actorfw.kernels import ballot as kb
from actorfw.protocols.effects import Effects
from actorfw.values.codec import message

__all__ = [
    "FIRST_SLOT",
    "Config",
    "Effects",
    "InvariantViolation",
    "LeaderOptions",
    "Querying",
    "ReplicaOptions",
    "Snapshotting",
    "StateMachine",
]

FIRST_SLOT = 1
"""The first slot replicas fill (slot 0 is never used)."""

MAX_ACCEPTORS = 64
"""Acceptors a configuration may list (a leader tallies votes in a 64-bit mask)."""


class InvariantViolation(AssertionError):
    """A Paxos invariant broke: a bug in the protocol code (never a peer's fault).

    The cores raise it where they find one (a replica told two batches for
    one slot); :class:`~actorfw.protocols.paxos.invariants.Invariants` raises
    it when it checks a run from outside.
    """


@dataclass(frozen=True)
class Config:
    """Who plays which role: the addresses (opaque strings, e.g. node ids) of each.

    Roles are usually co-located (every node runs an acceptor, a leader and
    a replica): :meth:`colocated`. With ``2f+1`` acceptors the system
    tolerates ``f`` failed acceptors; a quorum is a majority of acceptors.
    A leader's id in its ballots is its index in ``leaders``.

    Raises:
        ValueError: a role list is empty, holds duplicates or non-strings,
            or there are more than 64 acceptors or more leaders than ballots
            can name.

    Example::

        config = Config.colocated(["n1", "n2", "n3"])
        config.quorum                  # 2
        config.leader_index("n2")      # 1
    """

    acceptors: tuple[str, ...]
    leaders: tuple[str, ...]
    replicas: tuple[str, ...]
    _acceptor_index: dict[str, int] = field(init=False, repr=False, compare=False)
    _leader_index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for role in ("acceptors", "leaders", "replicas"):
            members = getattr(self, role)
            if not isinstance(members, tuple):
                members = tuple(members)
                object.__setattr__(self, role, members)
            if not members:
                raise ValueError(f"a Paxos configuration needs at least one of {role}")
            if not all(type(m) is str and m for m in members):
                raise ValueError(f"{role} must be non-empty strings, got {members!r}")
            if len(set(members)) != len(members):
                raise ValueError(f"{role} lists an address twice: {members!r}")
        if len(self.acceptors) > MAX_ACCEPTORS:
            raise ValueError(
                f"{len(self.acceptors)} acceptors; at most {MAX_ACCEPTORS} are supported"
            )
        if len(self.leaders) > kb.MAX_LEADER + 1:
            raise ValueError(f"{len(self.leaders)} leaders; ballots name at most {kb.MAX_LEADER}")
        object.__setattr__(self, "_acceptor_index", {a: i for i, a in enumerate(self.acceptors)})
        object.__setattr__(self, "_leader_index", {a: i for i, a in enumerate(self.leaders)})

    @classmethod
    def colocated(cls, nodes: list[str] | tuple[str, ...]) -> Config:
        """Every node runs an acceptor, a leader and a replica."""
        members = tuple(nodes)
        return cls(members, members, members)

    @property
    def quorum(self) -> int:
        """How many acceptors make a quorum: a majority."""
        return len(self.acceptors) // 2 + 1

    def leader_index(self, address: str) -> int:
        """The leader id of ``address`` (its index in ``leaders``).

        Raises:
            ValueError: ``address`` is not a leader.
        """
        index = self._leader_index.get(address)
        if index is None:
            raise ValueError(f"{address!r} is not a leader of this configuration {self.leaders}")
        return index

    def acceptor_index(self, address: str) -> int:
        """The index of ``address`` in ``acceptors``.

        Raises:
            ValueError: ``address`` is not an acceptor.
        """
        index = self._acceptor_index.get(address)
        if index is None:
            raise ValueError(
                f"{address!r} is not an acceptor of this configuration {self.acceptors}"
            )
        return index

    def is_acceptor(self, address: object) -> bool:
        """Is ``address`` one of the acceptors? (Anything but a ``str`` is not, hashable or not.)"""
        return type(address) is str and address in self._acceptor_index

    def is_leader(self, address: object) -> bool:
        """Is ``address`` one of the leaders? (Anything but a ``str`` is not.)"""
        return type(address) is str and address in self._leader_index

    def is_replica(self, address: object) -> bool:
        """Is ``address`` one of the replicas? (Anything but a ``str`` is not.)"""
        return type(address) is str and address in self.replicas


@message(name="paxos.LeaderOptions")
class LeaderOptions:
    """Tuning of a :class:`~actorfw.protocols.paxos.Leader` (times in seconds).

    Attributes:
        window: at most this many slots in phase 2 at once (the pipeline).
        max_slots_per_p2a: slots carried by one p2a message.
        p2a_timeout: re-send p2a for slots not chosen after this long.
        scout_timeout: re-send p1a to silent acceptors after this long.
        ping_interval: how often a passive leader pings the leader it follows.
        leader_timeout: silence after which the followed leader is
            suspected (then the passive leader tries to lead, after a
            back-off).
        backoff_base, backoff_max: the back-off before trying to lead is
            uniform in ``[0, min(backoff_max, backoff_base * 2**k)]``, where
            ``k`` counts recent preemptions (duelling leaders spread out).
        initial_leader: at a fresh start (nothing persisted), the leader
            with this index scouts at once and the others follow it; None
            makes every leader wait ``leader_timeout`` and then compete.
        resend_slots: decisions re-sent at once to a replica whose progress
            is stuck below what this leader decided.
        collect_interval: the active leader sends :class:`~actorfw.protocols.paxos.Collect`
            to every acceptor each time the slot that a majority of replicas
            (``f+1`` of ``2f+1``) reported applied has moved this many slots
            past the last one it collected at; None: it never collects.
        lease_duration: leader leases (off with None, the default): the
            active leader asks the acceptors for a lease of this many
            seconds, renewed every ``(lease_duration - max_drift) / 3``,
            and serves reads without the log while it holds one (see
            :mod:`actorfw.protocols.paxos.leader`, rule 7).
        max_drift: how far (in seconds) the *rates* of two nodes' clocks
            may make them disagree over one ``lease_duration``: the leader
            stops serving reads ``max_drift`` before its lease ends on its
            own clock. **Leases are safe only if this bound holds** (clocks
            need not agree on the time, only on how long a second is, to
            within ``max_drift`` per ``lease_duration``).
    """

    window: int = 4096
    max_slots_per_p2a: int = 512
    p2a_timeout: float = 0.5
    scout_timeout: float = 0.5
    ping_interval: float = 0.25
    leader_timeout: float = 1.0
    backoff_base: float = 0.1
    backoff_max: float = 3.0
    initial_leader: int | None = 0
    resend_slots: int = 512
    collect_interval: int | None = 1024
    lease_duration: float | None = None
    max_drift: float = 0.1

    def __post_init__(self) -> None:
        _positive(self, ("window", "max_slots_per_p2a", "resend_slots"))
        _positive(
            self,
            ("p2a_timeout", "scout_timeout", "ping_interval", "leader_timeout", "backoff_base"),
        )
        if self.backoff_max < self.backoff_base:
            raise ValueError("backoff_max must be at least backoff_base")
        if self.initial_leader is not None and self.initial_leader < 0:
            raise ValueError("initial_leader must be a leader index or None")
        if self.collect_interval is not None:
            _positive(self, ("collect_interval",))
        if not (type(self.max_drift) in (int, float) and 0 <= self.max_drift < math.inf):
            raise ValueError(
                f"LeaderOptions.max_drift must be a finite number of seconds >= 0, "
                f"not {self.max_drift!r}"
            )
        if self.lease_duration is not None:
            _positive(self, ("lease_duration",))
            if not self.lease_duration < math.inf:
                raise ValueError("LeaderOptions.lease_duration must be finite")
            if self.max_drift >= self.lease_duration:
                raise ValueError(
                    f"LeaderOptions.max_drift ({self.max_drift}s) must be below lease_duration "
                    f"({self.lease_duration}s): a lease would never be usable; lengthen the "
                    "lease or bound the drift tighter"
                )

    @property
    def leases(self) -> bool:
        """Are leader leases (and reads served by lease) on?"""
        return self.lease_duration is not None

    @property
    def lease_renew_interval(self) -> float:
        """How often an active leader renews its lease: a third of its usable length.

        Raises:
            ValueError: leases are off.
        """
        if self.lease_duration is None:
            raise ValueError("leases are off (LeaderOptions.lease_duration is None)")
        return (self.lease_duration - self.max_drift) / 3


@message(name="paxos.ReplicaOptions")
class ReplicaOptions:
    """Tuning of a :class:`~actorfw.protocols.paxos.Replica` (times in seconds).

    Attributes:
        window: PMMC's WINDOW: a replica proposes slots below
            ``slot_out + window`` only.
        max_batch: at most this many commands in the batch of one slot.
        propose_timeout: re-propose a slot not decided after this long.
        status_interval: how often it reports ``slot_out`` to its peers
            (:class:`~actorfw.protocols.paxos.messages.Progress`) and to the leaders
            (:class:`~actorfw.protocols.paxos.messages.Applied`).
        catchup_delay: how long it tolerates being stuck behind a peer or a
            gap in its decisions before asking a peer to catch up.
        catchup_timeout: re-ask (another peer) when a catch-up request gets
            no answer within this long.
        max_catchup_slots: decisions in one catch-up reply.
        snapshot_interval: a replica whose state machine is
            :class:`Snapshotting` snapshots it (with the client sessions)
            every this many applied slots, persists the snapshot and drops
            its log below it (keeping ``log_tail`` slots); None: never
            (the log then grows without bound).
        log_tail: applied slots kept in the log below the latest snapshot,
            so that a peer a little behind catches up from the log rather
            than by a whole snapshot. The log holds at most
            ``snapshot_interval + log_tail - 1`` slots after any step.
        max_sessions: client sessions kept at most (None: no bound). A
            client's first command opens its session; when that would
            exceed the bound, the session of the client that ran a command
            longest ago is dropped first. Every replica applies the same
            commands in the same order, so every replica drops the same
            ones. A later command of a client whose session was dropped
            does not run and is answered with
            :class:`~actorfw.protocols.paxos.SessionExpired` (see
            :mod:`actorfw.protocols.paxos.replica`, rule 12).
    """

    window: int = 256
    max_batch: int = 64
    propose_timeout: float = 1.0
    status_interval: float = 0.5
    catchup_delay: float = 0.2
    catchup_timeout: float = 0.5
    max_catchup_slots: int = 1024
    snapshot_interval: int | None = 1024
    log_tail: int = 128
    max_sessions: int | None = 10_000

    def __post_init__(self) -> None:
        _positive(self, ("window", "max_batch", "max_catchup_slots"))
        if self.max_sessions is not None and (
            type(self.max_sessions) is not int or self.max_sessions < 1
        ):
            raise ValueError(
                f"ReplicaOptions.max_sessions must be a positive int or None, "
                f"not {self.max_sessions!r}"
            )
        _positive(self, ("propose_timeout", "status_interval", "catchup_delay", "catchup_timeout"))
        if self.snapshot_interval is not None:
            _positive(self, ("snapshot_interval",))
        if type(self.log_tail) is not int or self.log_tail < 0:
            raise ValueError(f"ReplicaOptions.log_tail must be an int >= 0, not {self.log_tail!r}")


def _positive(options: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(options, name)
        if not value > 0:
            raise ValueError(f"{type(options).__name__}.{name} must be positive, not {value!r}")


@runtime_checkable
class StateMachine(Protocol):
    """The application a replica drives: deterministic, applied in slot order.

    ``apply`` must depend only on the machine's state and the operation (no
    clocks, no randomness, no I/O), so that every replica computes the same
    results; the result is sent to the client and must be a message value.
    """

    def apply(self, operation: Any) -> Any:
        """Execute one operation and return its result."""
        ...


@runtime_checkable
class Snapshotting(StateMachine, Protocol):
    """A state machine that can also save and reload its whole state.

    A replica of such a machine snapshots it every
    ``ReplicaOptions.snapshot_interval`` applied slots and truncates its
    log, and a replica that fell behind the acceptors' collection floor
    catches up by installing a peer's snapshot. The snapshot travels in one
    message (:class:`~actorfw.protocols.paxos.InstallSnapshot`), so its encoding must
    fit the runtime's message limit (64 MiB by default on node processes:
    ``NodeConfig.max_message_size``).
    """

    def snapshot(self) -> Any:
        """The whole state as a message value.

        It must not change when the machine later applies more operations
        (return a copy, or immutable values): the replica persists and sends
        it after further steps.
        """
        ...

    def restore(self, snapshot: Any) -> None:
        """Replace the state with one :meth:`snapshot` returned (perhaps on another node).

        The machine may keep ``snapshot``'s objects as its state (the
        replica does not use them afterwards).
        """
        ...


@runtime_checkable
class Querying(StateMachine, Protocol):
    """A state machine that can tell read-only operations and run them without changing state.

    Needed for reads served by a leader's lease
    (:class:`~actorfw.protocols.paxos.Read`); without it every read goes through the
    log like any command.
    """

    def is_read_only(self, operation: Any) -> bool:
        """Does ``operation`` only read (so that :meth:`query` may run it)?

        Must be deterministic and must not raise (say False when in doubt).
        """
        ...

    def query(self, operation: Any) -> Any:
        """Run a read-only ``operation`` without changing any state; return what ``apply`` would."""
        ...
