"""The Multi-Paxos leader (PMMC's leader with its scouts and commanders), as a sans-IO core.

Theory of operation
-------------------

A leader turns replicas' proposals into decisions. It is *passive* (it
follows another leader and stores proposals), *scouting* (phase 1 for its
ballot) or *active* (phase 2 for each new proposal, with no phase 1 per
command: a stable leader). The scout and the commanders of PMMC are not
separate objects: phase 1 is the ``SCOUTING`` mode, and the commanders of
many slots are one batched p2a per acceptor plus a vote tally.

Rules:

1. Ballots are packed ints from the ballot kernel; this leader's ballots
   carry its index in ``config.leaders``. Its ballot only grows, and it
   never uses a ballot twice, not even across a crash: the ballot of a new
   scout is returned as :class:`LeaderBallot` in ``Effects.persist`` with
   the p1a, and :meth:`Leader.restore` starts above it.
2. Phase 1: a scout sends ``P1a(ballot, from_slot)`` to every acceptor,
   where every slot below ``from_slot`` is known decided, and re-sends to
   the silent ones every ``scout_timeout``. A p1b adopting the ballot from a
   quorum *adopts* it: the reported pvalues are reduced with the ``pmax``
   kernel, and for every reported slot the leader re-proposes the batch of
   the highest-ballot pvalue (overriding any replica's proposal); every
   empty slot below the highest reported one gets a replica's proposal if
   the leader holds one, or a no-op batch. Slots below the acceptors'
   collection floor are decided and skipped.
3. Phase 2: an active leader proposes each slot once per ballot (it never
   sends two batches for one slot under one ballot), at most ``window``
   slots at a time, ``max_slots_per_p2a`` slots per p2a. A slot is
   *chosen* when a quorum of acceptors accepted it under the current
   ballot; the leader then sends one :class:`Decision` per replica holding
   every slot chosen in the step. p2a for slots not chosen within
   ``p2a_timeout`` are re-sent (lost messages); the deadline of a p2a
   whose slots are all chosen is dropped at once, so that an idle or
   sequential workload does not tick once per p2a for nothing.
4. Preemption: a p1b or p2b carrying a higher ballot makes the leader
   passive. Slots in flight go back to its queue (a later adoption decides
   what they become).
5. Liveness: a passive leader follows the leader of the highest ballot it
   knows, pinging it every ``ping_interval``. When that leader stays silent
   (no :class:`Pong` saying it leads) for ``leader_timeout``, it pings all
   leaders (perhaps another one already took over), and after a random
   back-off (uniform, from the injected ``random.Random``, its range
   doubling with each recent preemption) it scouts with a ballot above
   every ballot it knows. A leader whose ballot is adopted announces it to
   the other leaders (an unsolicited :class:`Pong`), and a leader that
   learns of a higher ballot being led steps down, so after a duel the
   loser does not linger believing it leads. Duelling leaders converge.
6. Proposals are first-come: the first batch a leader gets for a slot is
   the one it proposes (unless phase 1 found another). A proposal for a
   slot it knows decided is answered with the decision if it still holds
   it; it keeps decided batches until a majority of replicas (``f+1`` of
   ``2f+1``) reported (with :class:`Applied` or in a :class:`Propose`)
   that they applied them. A replica further behind catches up from its
   peers (by snapshot if need be), so a dead replica pins nothing.
7. Collection: the slot below which a majority of replicas reported
   applying everything (:attr:`Leader.collectable_below`) is decided and
   durable at ``f+1`` replicas (they persist before reporting). Each time
   it has moved ``collect_interval`` slots past the last collection, the
   *active* leader sends ``Collect(that slot)`` to every acceptor. A lost
   ``Collect`` is harmless: the next one raises the floor further. Slots
   below a floor that an acceptor reports (in a p1b, or as ``collected`` in
   a p2b) are decided: the leader never proposes into them (rule 2).
8. Leases (``lease_duration`` set). On adoption, and then every
   ``(lease_duration - max_drift) / 3``, the active leader sends
   :class:`LeaseRequest` (``round`` numbered) to every acceptor and notes
   when it **sent** it. When a quorum has granted round ``r`` under the
   current ballot, the lease starts at round ``r``'s send time
   ``lease_start`` (the latest such). The leader holds a valid lease while
   it is active and ``now < lease_start + lease_duration - max_drift`` on
   its own clock (``max_drift`` bounds how far two nodes' clock *rates*
   may diverge over a lease: the assumption leases rest on; see
   :mod:`actorfw.protocols.paxos.acceptor`, rules 6 and 7). Preemption ends it.
9. Read index: a :class:`ReadIndex` from a replica is granted iff the
   leader holds a valid lease at that moment; the answer's ``index`` is
   one past the highest slot it knows decided, and at least one past every
   slot its phase 1 reported (those may have been decided by an earlier
   leader and must be re-decided first). Under a valid lease no other
   leader can have a ballot adopted, so every write a client has seen
   completed is below the index: a replica that has applied up to it
   serves a linearizable read from its state.

``tick(now)`` drives every timer; ``next_deadline()`` is the earliest time
at which ``tick`` has something to do, for a driver with one timer.

Errors: a message of another role's type is the caller's mistake
(``TypeError``); a malformed message from a peer is counted in ``stats``
and dropped; stale messages (older ballots) are counted and ignored.
"""

from __future__ import annotations

import enum
import itertools
import math
import random
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from actorfw.kernels import ballot as kb
from actorfw.protocols.dispatch import Dispatch
from actorfw.protocols.paxos.messages import (
    Applied,
    Batch,
    Collect,
    Decision,
    LeaderIs,
    LeaseGrant,
    LeaseRequest,
    P1a,
    P1b,
    P2a,
    P2b,
    Ping,
    Pong,
    Propose,
    ReadIndex,
    ReadIndexReply,
    Slots,
    handled_where,
    is_slots,
)
from actorfw.protocols.paxos.records import LeaderBallot, Record
from actorfw.protocols.paxos.types import FIRST_SLOT, Config, Effects, LeaderOptions

__all__ = ["Leader", "LeaderMode"]

_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY.setflags(write=False)
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.integer[Any]]:
    """Set bits per uint64 (``numpy.bitwise_count`` where numpy has it, numpy >= 2)."""
    count = getattr(np, "bitwise_count", None)
    if count is not None:
        return count(words)  # type: ignore[no-any-return]
    counted: npt.NDArray[np.integer[Any]] = _POPCOUNT8[words.view(np.uint8).reshape(-1, 8)].sum(
        axis=1
    )
    return counted


class LeaderMode(enum.Enum):
    """What a leader is doing."""

    PASSIVE = "passive"
    """Following another leader; storing proposals."""
    SCOUTING = "scouting"
    """Running phase 1 for its ballot."""
    ACTIVE = "active"
    """Its ballot is adopted: running phase 2 for each proposal."""


class _Tally:
    """Votes of the acceptors for the slots in phase 2 under the current ballot.

    A bitmask of voters per slot in a numpy array indexed by ``slot - base``,
    so counting a p2b of hundreds of slots is a few array operations.
    """

    __slots__ = ("_base", "_open", "_quorum", "_votes")

    def __init__(self, quorum: int) -> None:
        self._quorum = quorum
        self._base = 0
        self._votes = np.zeros(0, dtype=np.uint64)
        self._open = np.zeros(0, dtype=np.bool_)

    def reset(self) -> None:
        self._base = 0
        self._votes = np.zeros(0, dtype=np.uint64)
        self._open = np.zeros(0, dtype=np.bool_)

    def _fit(self, lo: int, hi: int) -> None:
        """Make room for slots ``lo..hi``, dropping closed space below the lowest open slot."""
        size = len(self._open)
        if size and self._base <= lo and hi < self._base + size:
            return
        open_index = np.flatnonzero(self._open)
        if len(open_index):
            lo = min(lo, self._base + int(open_index[0]))
            hi = max(hi, self._base + int(open_index[-1]))
        span = hi - lo + 1
        new_size = 1 << max(10, (2 * span - 1).bit_length())
        votes = np.zeros(new_size, dtype=np.uint64)
        is_open = np.zeros(new_size, dtype=np.bool_)
        if len(open_index):
            moved = open_index + (self._base - lo)
            votes[moved] = self._votes[open_index]
            is_open[moved] = True
        self._base, self._votes, self._open = lo, votes, is_open

    def open(self, slots: Slots) -> None:
        """Start counting votes for ``slots`` (from none)."""
        if not len(slots):
            return
        self._fit(int(slots.min()), int(slots.max()))
        index = slots - self._base
        self._votes[index] = 0
        self._open[index] = True

    def close(self, slots: Slots) -> None:
        """Stop counting ``slots`` (they are decided some other way)."""
        index = self._index_of_open(slots)
        self._open[index] = False

    def _index_of_open(self, slots: Slots) -> Slots:
        index = slots - self._base
        inside = (index >= 0) & (index < len(self._open))
        if not inside.all():
            index = index[inside]
        return index[self._open[index]]

    def vote(self, slots: Slots, bit: int) -> Slots:
        """Count acceptor ``bit``'s votes for ``slots``; returns the slots that reached a quorum."""
        index = self._index_of_open(slots)
        if not len(index):
            return _EMPTY
        votes = self._votes[index] | np.uint64(bit)
        self._votes[index] = votes
        done = index[_popcount(votes) >= self._quorum]
        if len(done):
            self._open[done] = False
        chosen: Slots = done + self._base
        return chosen

    def still_open(self, slots: Slots) -> Slots:
        """The slots among ``slots`` still waiting for a quorum."""
        return self._index_of_open(slots) + self._base


def _valid_batches(batches: object, count: int) -> bool:
    """Shape check of a peer's batches: a tuple of ``count`` tuples.

    The commands inside are checked by the replicas, which open them; a
    leader only passes them on.
    """
    if type(batches) is not tuple or len(batches) != count:
        return False
    return all(type(batch) is tuple for batch in batches)


class Leader:
    """One leader: phase 1 when it must, phase 2 for every proposal, liveness on ticks.

    Args:
        config: the configuration.
        me: this leader's address, one of ``config.leaders``.
        rng: the source of the back-off's randomness (seed it for replays).
        options: tuning.
        used_ballot: the highest ballot this leader ever used (from its
            persisted records); prefer :meth:`restore`.

    Raises:
        ValueError: ``me`` is not a leader of ``config``.

    Example::

        leader = Leader(config, "n1", random.Random(7))
        effects = leader.start(now=0.0)      # the first scout, for leader 0
        effects = leader.handle(p1b, now=0.01)
        when = leader.next_deadline()        # call tick(when) then
    """

    def __init__(
        self,
        config: Config,
        me: str,
        rng: random.Random,
        options: LeaderOptions | None = None,
        *,
        used_ballot: int = kb.NO_BALLOT,
    ) -> None:
        self.config = config
        self.me = me
        self.index = config.leader_index(me)
        self.options = options if options is not None else LeaderOptions()
        self._rng = rng
        self._restored = used_ballot != kb.NO_BALLOT
        self._used: int = used_ballot
        self._ballot: int = used_ballot
        self._mode = LeaderMode.PASSIVE
        self._started = False
        self._now = -math.inf
        # following another leader (PASSIVE)
        self._watch: int = kb.NO_BALLOT
        self._heard_at = -math.inf
        self._next_ping = -math.inf
        self._scout_at: float | None = None
        self._preemptions = 0
        # phase 1 (SCOUTING)
        self._p1b: dict[str, P1b] = {}
        self._from_slot = FIRST_SLOT
        self._scout_deadline = math.inf
        # phase 2 (ACTIVE)
        self._queue: dict[int, Batch] = {}
        self._inflight: dict[int, Batch] = {}
        self._tally = _Tally(config.quorum)
        self._resend: deque[tuple[float, Slots]] = deque()
        # what is known decided
        self._decided: dict[int, Batch] = {}
        self._decided_below = FIRST_SLOT
        self._decided_top = FIRST_SLOT
        self._adopt_top = FIRST_SLOT
        self._pruned_below = FIRST_SLOT
        self._floor = 0
        self._collect_sent = FIRST_SLOT
        self._progress: dict[str, int] = {}
        self._majority = len(config.replicas) // 2 + 1
        # leases (rule 8)
        self._lease_round = 0
        self._lease_sent: dict[int, float] = {}
        self._lease_votes: dict[int, int] = {}
        self._lease_start = -math.inf
        self._next_lease = math.inf
        # this step's output
        self._persist: list[Record] = []
        self._send: list[tuple[str, Any]] = []
        self._chosen_slots: list[Slots] = []
        self._chosen_batches: list[Batch] = []
        self._told: str | None = None  # who leads, as last told to this node's replica
        self._tells = config.is_replica(me)
        self.stats: Counter[str] = Counter()
        """Counts of notable events: ``preempted``, ``stale``, ``malformed``, ``resent_p2a``, ..."""

    @classmethod
    def restore(
        cls,
        config: Config,
        me: str,
        records: Iterable[Record],
        rng: random.Random,
        options: LeaderOptions | None = None,
    ) -> Leader:
        """A leader rebuilt after a crash from its persisted :class:`LeaderBallot` records.

        It starts passive, finds out who leads by pinging, and uses only
        ballots above every one it used before; except that the
        ``initial_leader`` with no records (it never used a ballot) is at a
        fresh start, and scouts at once.

        Raises:
            TypeError: a record no leader writes.
        """
        used = kb.NO_BALLOT
        for record in records:
            if not isinstance(record, LeaderBallot):
                raise TypeError(f"{record!r} is not a leader record")
            used = max(used, record.ballot)
        leader = cls(config, me, rng, options, used_ballot=used)
        # The initial leader that never used a ballot is at a fresh start: it scouts at
        # once. Any other leader pings them all, to find who leads now.
        leader._restored = used != kb.NO_BALLOT or leader.options.initial_leader != leader.index
        return leader

    # -- state -------------------------------------------------------------------------

    @property
    def mode(self) -> LeaderMode:
        """Passive, scouting or active."""
        return self._mode

    @property
    def is_active(self) -> bool:
        """Is its ballot adopted (phase 2 without phase 1)?"""
        return self._mode is LeaderMode.ACTIVE

    @property
    def ballot(self) -> int:
        """Its current (highest used) ballot, ``NO_BALLOT`` before the first scout."""
        return self._ballot

    @property
    def following(self) -> int:
        """The ballot of the leader it follows while passive (``NO_BALLOT``: unknown)."""
        return self._watch

    @property
    def decided_below(self) -> int:
        """Every slot below this is known to be decided."""
        return self._decided_below

    @property
    def in_flight(self) -> int:
        """Slots in phase 2 under the current ballot, not chosen yet."""
        return len(self._inflight)

    @property
    def queued(self) -> int:
        """Proposals held but not in phase 2 (passive, or beyond the window)."""
        return len(self._queue)

    @property
    def collectable_below(self) -> int | None:
        """A floor a majority of replicas has applied up to (rule 7).

        The ``f+1``-th highest ``slot_out`` the replicas reported (``f+1``
        of ``2f+1``: a majority). Acceptors may ``collect`` below it; None
        until a majority reported.
        """
        progress = self._progress
        if len(progress) < self._majority:
            return None
        if len(progress) == 1:
            return next(iter(progress.values()))
        return sorted(progress.values(), reverse=True)[self._majority - 1]

    @property
    def decisions_kept(self) -> int:
        """Decided batches held (for proposals of decided slots and stuck replicas)."""
        return len(self._decided)

    @property
    def lease_until(self) -> float:
        """Until when (on this leader's clock) it may serve reads by lease (rule 8).

        ``-inf`` when it holds no lease (leases off, not active, or not
        granted yet). The lease is valid while ``now <`` this.
        """
        duration = self.options.lease_duration
        if duration is None or self._mode is not LeaderMode.ACTIVE:
            return -math.inf
        return self._lease_start + duration - self.options.max_drift

    def has_lease(self, now: float) -> bool:
        """Does it hold a valid lease at ``now`` (its own clock)?"""
        return now < self.lease_until

    @property
    def read_index(self) -> int:
        """The slot a replica must have applied up to before serving a read (rule 9)."""
        return max(self._decided_below, self._decided_top, self._adopt_top)

    def leader_node(self) -> str:
        """The node whose leader leads, as far as this one knows ("" if it does not).

        After every step in which this changes, the leader tells the replica
        of its node (a :class:`LeaderIs` in ``Effects.send_now``), if its
        node has one.
        """
        if self._mode is LeaderMode.ACTIVE:
            return self.me
        ballot = self._watch
        if ballot == kb.NO_BALLOT:
            return ""
        index = kb.ballot_leader(ballot)
        leaders = self.config.leaders
        return leaders[index] if index < len(leaders) else ""

    def decided(self, slot: int) -> Batch | None:
        """The batch this leader knows decided for ``slot``, if it still holds it."""
        return self._decided.get(slot)

    # -- inputs ------------------------------------------------------------------------

    def start(self, now: float) -> Effects:
        """Begin: the initial leader of a fresh start scouts, the others follow it.

        A restored leader, or any leader when ``options.initial_leader`` is
        None, starts without knowing who leads and pings every leader.

        Raises:
            RuntimeError: called twice.
        """
        if self._started:
            raise RuntimeError(f"leader {self.me!r} was already started")
        self._started = True
        self._now = now
        initial = self.options.initial_leader
        if not self._restored and initial is not None and initial < len(self.config.leaders):
            if initial == self.index:
                self._start_scout()
            else:
                self._follow(kb.make_ballot(0, initial), heard=True)
        else:
            self._follow(kb.NO_BALLOT, heard=True)
        return self._flush()

    def handle(self, message: Any, now: float) -> Effects:
        """Take one message of the leader's alphabet (see ``_DISPATCH`` at the end of the module).

        ``Propose``, ``Applied``, ``P1b``, ``P2b``, ``Ping``, ``Pong``,
        ``LeaseGrant`` or ``ReadIndex``.

        Raises:
            TypeError: ``message`` is for another role.
            RuntimeError: :meth:`start` was not called.
        """
        self._enter(now)
        self._dispatch(message)
        self._launch()
        return self._flush()

    def handle_all(self, messages: Iterable[Any], now: float) -> Effects:
        """Take several messages in order; their p2a and decisions go out batched together."""
        self._enter(now)
        for message in messages:
            self._dispatch(message)
        self._launch()
        return self._flush()

    def tick(self, now: float) -> Effects:
        """Run the timers due at ``now``: pings, back-off, scout, p2a re-sends, lease renewals."""
        self._enter(now)
        _TICKS[self._mode](self)
        self._launch()
        return self._flush()

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`tick` has work to do (None: only messages can wake it)."""
        if not self._started:
            return None
        if self._mode is LeaderMode.PASSIVE:
            if self._scout_at is not None:
                return min(self._scout_at, self._next_ping)
            return min(self._next_ping, self._heard_at + self.options.leader_timeout)
        if self._mode is LeaderMode.SCOUTING:
            return self._scout_deadline
        deadline = self._resend[0][0] if self._resend else math.inf
        deadline = min(deadline, self._next_lease)
        return None if deadline == math.inf else deadline

    # -- dispatch ----------------------------------------------------------------------

    def _enter(self, now: float) -> None:
        if not self._started:
            raise RuntimeError(f"leader {self.me!r}: call start(now) before anything else")
        self._now = max(self._now, now)

    def _dispatch(self, message: Any) -> None:
        _DISPATCH(self, self.me, message)

    # -- proposals and progress --------------------------------------------------------

    def _on_propose(self, msg: Propose) -> None:
        slots, batches = msg.slots, msg.batches
        if not (
            self.config.is_replica(msg.replica)
            and type(msg.slot_out) is int
            and is_slots(slots)
            and _valid_batches(batches, len(slots))
        ):
            self.stats["malformed"] += 1
            return
        self._progress_of(msg.replica, msg.slot_out)
        known_slots: list[int] = []
        known_batches: list[Batch] = []
        below = self._decided_below
        queue, inflight, decided = self._queue, self._inflight, self._decided
        for slot, batch in zip(slots.tolist(), batches, strict=True):
            if slot < below or slot in decided:
                held = decided.get(slot)
                if held is not None:
                    known_slots.append(slot)
                    known_batches.append(held)
                continue
            if slot in inflight or slot in queue:
                continue
            queue[slot] = batch
        if known_slots:
            self.stats["answered_decided_proposal"] += 1
            self._send.append(
                (msg.replica, Decision(np.array(known_slots, np.int64), tuple(known_batches)))
            )

    def _on_applied(self, msg: Applied) -> None:
        if not (self.config.is_replica(msg.replica) and type(msg.slot_out) is int):
            self.stats["malformed"] += 1
            return
        before = self._progress.get(msg.replica)
        self._progress_of(msg.replica, msg.slot_out)
        if (
            self._mode is LeaderMode.ACTIVE
            and before == msg.slot_out
            and msg.slot_out < self._decided_below
        ):
            # The replica did not move since its last report although this
            # leader decided more: its decisions were lost. Re-send them.
            slots = [
                s
                for s in range(msg.slot_out, msg.slot_out + self.options.resend_slots)
                if s in self._decided
            ]
            if slots:
                self.stats["resent_decisions"] += 1
                batches = tuple(self._decided[s] for s in slots)
                self._send.append((msg.replica, Decision(np.array(slots, np.int64), batches)))

    def _progress_of(self, replica: str, slot_out: int) -> None:
        """Record a replica's ``slot_out``: slots below it are decided (rules 6, 7).

        What a majority applied is pruned, and collected when due.
        """
        before = self._progress.get(replica)
        self._progress[replica] = slot_out
        if slot_out > self._decided_below:
            self._decided_below = slot_out
            self._decided_top = max(self._decided_top, slot_out)
            self._advance_decided()
        if before is not None and slot_out <= before:
            return  # the majority's floor cannot have risen
        floor = self.collectable_below
        if floor is None:
            return
        self._prune(floor)
        interval = self.options.collect_interval
        if (
            interval is not None
            and self._mode is LeaderMode.ACTIVE
            and floor >= self._collect_sent + interval
        ):
            self._collect_sent = floor
            self.stats["collect_sent"] += 1
            collect = Collect(floor)
            for acceptor in self.config.acceptors:
                self._send.append((acceptor, collect))
            self._collected(floor)

    def _prune(self, below: int) -> None:
        if below <= self._pruned_below:
            return
        decided = self._decided
        if below - self._pruned_below > len(decided):
            self._decided = {s: b for s, b in decided.items() if s >= below}
        else:
            for slot in range(self._pruned_below, below):
                decided.pop(slot, None)
        self._pruned_below = below

    def _advance_decided(self) -> None:
        below = self._decided_below
        decided = self._decided
        while below in decided:
            below += 1
        self._decided_below = below
        queue = self._queue
        if queue and (next(iter(queue)) < below or len(queue) > self.options.window):
            self._queue = {s: b for s, b in queue.items() if s >= below and s not in decided}

    # -- phase 1 -----------------------------------------------------------------------

    def _start_scout(self) -> None:
        ballot = kb.next_ballot(max(self._used, self._ballot, self._watch), self.index)
        self._used = self._ballot = ballot
        self._persist.append(LeaderBallot(ballot))
        self._mode = LeaderMode.SCOUTING
        self._scout_at = None
        self._p1b = {}
        self._from_slot = max(self._decided_below, self._floor, FIRST_SLOT)
        self.stats["scouts"] += 1
        self._send_p1a(self.config.acceptors)

    def _send_p1a(self, acceptors: Iterable[str]) -> None:
        message = P1a(self._ballot, self._from_slot)
        for acceptor in acceptors:
            self._send.append((acceptor, message))
        self._scout_deadline = self._now + self.options.scout_timeout

    def _on_p1b(self, msg: P1b) -> None:
        if not (
            self.config.is_acceptor(msg.acceptor)
            and type(msg.ballot) is int
            and type(msg.floor) is int
            and is_slots(msg.slots)
            and is_slots(msg.ballots)
            and len(msg.ballots) == len(msg.slots)
            and _valid_batches(msg.batches, len(msg.slots))
        ):
            self.stats["malformed"] += 1
            return
        if msg.ballot > self._ballot:
            self._preempted(msg.ballot)
            return
        if self._mode is not LeaderMode.SCOUTING or msg.ballot != self._ballot:
            self.stats["stale"] += 1
            return
        self._p1b[msg.acceptor] = msg
        if len(self._p1b) >= self.config.quorum:
            self._adopt()

    def _adopt(self) -> None:
        """Phase 1 succeeded: re-propose what acceptors accepted, fill gaps, go active (rule 2)."""
        answers = list(self._p1b.values())
        self._p1b = {}
        self._mode = LeaderMode.ACTIVE
        self._watch = self._ballot
        self._preemptions = max(0, self._preemptions - 1)
        self.stats["adopted"] += 1
        floor = max(a.floor for a in answers)
        if floor > self._floor:
            self._floor = floor
            self._decided_below = max(self._decided_below, floor)
            self._decided_top = max(self._decided_top, floor)
            self._advance_decided()
        # Never below a floor any answer reported: those slots are decided
        # (and may be gone from the acceptors that collected them).
        start = max(self._from_slot, self._floor, self._decided_below)
        queue = {s: b for s, b in self._queue.items() if s >= start and s not in self._decided}
        slots = np.concatenate([a.slots for a in answers])
        self._adopt_top = start
        if len(slots):
            ballots = np.concatenate([a.ballots for a in answers])
            batches = [b for a in answers for b in a.batches]
            best_slots, _, index = kb.pmax(slots, ballots)
            for slot, i in zip(best_slots.tolist(), index.tolist(), strict=True):
                if slot >= start and slot not in self._decided:
                    queue[slot] = batches[i]
            top = int(best_slots[-1])
            for slot in range(start, top):
                if slot not in queue and slot not in self._decided:
                    queue[slot] = ()
            self._adopt_top = max(start, top + 1)
        self._queue = dict(sorted(queue.items()))
        self._tally.reset()
        self._resend.clear()
        announce = Pong(self.me, self._ballot, True)
        for leader in self.config.leaders:
            if leader != self.me:
                self._send.append((leader, announce))
        self._collect_sent = FIRST_SLOT  # a new term: collect again at the next report
        self._end_lease()
        if self.options.leases:
            self._request_lease()

    # -- phase 2 -----------------------------------------------------------------------

    def _launch(self) -> None:
        """Put queued proposals into phase 2, within the window (rule 3)."""
        if self._mode is not LeaderMode.ACTIVE or not self._queue:
            return
        room = self.options.window - len(self._inflight)
        if room <= 0:
            return
        queue, inflight, decided = self._queue, self._inflight, self._decided
        below = self._decided_below
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
            self._send_p2a(np.array(slots, dtype=np.int64), batches)

    def _send_p2a(self, slots: Slots, batches: list[Batch]) -> None:
        self._tally.open(slots)
        step = self.options.max_slots_per_p2a
        deadline = self._now + self.options.p2a_timeout
        for start in range(0, len(slots), step):
            chunk = slots[start : start + step]
            chunk.setflags(write=False)
            message = P2a(self._ballot, chunk, tuple(batches[start : start + step]))
            for acceptor in self.config.acceptors:
                self._send.append((acceptor, message))
            self._resend.append((deadline, chunk))

    def _on_p2b(self, msg: P2b) -> None:
        if not (
            self.config.is_acceptor(msg.acceptor)
            and type(msg.ballot) is int
            and is_slots(msg.slots)
            and is_slots(msg.collected)
        ):
            self.stats["malformed"] += 1
            return
        if msg.ballot > self._ballot:
            self._preempted(msg.ballot)
            return
        if len(msg.collected):
            self._collected(int(msg.collected.max()) + 1)
        if self._mode is not LeaderMode.ACTIVE or msg.ballot != self._ballot:
            self.stats["stale"] += 1
            return
        bit = 1 << self.config.acceptor_index(msg.acceptor)
        chosen = self._tally.vote(msg.slots, bit)
        if len(chosen):
            self._chosen(chosen)

    def _chosen(self, slots: Slots) -> None:
        inflight, decided = self._inflight, self._decided
        batches = []
        numbers = slots.tolist()
        for slot in numbers:
            batch = inflight.pop(slot)
            decided[slot] = batch
            batches.append(batch)
        self._chosen_slots.append(slots)
        self._chosen_batches.extend(batches)
        self._decided_top = max(self._decided_top, max(numbers) + 1)
        if self._decided_below in decided:
            self._advance_decided()
        # Forget the re-send deadlines of p2a whose slots are all chosen now, so
        # that the next deadline is that of a p2a still waiting: otherwise each
        # p2a's deadline, met long after its slots were chosen, costs a tick.
        resend, tally = self._resend, self._tally
        while resend and not len(tally.still_open(resend[0][1])):
            resend.popleft()

    def _collected(self, floor: int) -> None:
        """An acceptor collected slots below ``floor``: they are decided, stop proposing them."""
        if floor <= self._floor:
            return
        self._floor = floor
        dropped = [s for s in self._inflight if s < floor]
        for slot in dropped:
            del self._inflight[slot]
        if dropped:
            self._tally.close(np.array(dropped, dtype=np.int64))
        if floor > self._decided_below:
            self._decided_below = floor
            self._decided_top = max(self._decided_top, floor)
            self._advance_decided()

    # -- leases and reads (rules 8, 9) -------------------------------------------------------

    def _request_lease(self) -> None:
        duration = self.options.lease_duration
        assert duration is not None
        now = self._now
        self._lease_round += 1
        number = self._lease_round
        self._lease_sent[number] = now
        self._lease_votes[number] = 0
        # A round older than a lease could not grant anything usable any more.
        for old in [r for r, at in self._lease_sent.items() if at + duration <= now]:
            del self._lease_sent[old]
            del self._lease_votes[old]
        self.stats["lease_requests"] += 1
        request = LeaseRequest(self._ballot, number, duration)
        for acceptor in self.config.acceptors:
            self._send.append((acceptor, request))
        self._next_lease = now + self.options.lease_renew_interval

    def _end_lease(self) -> None:
        self._lease_sent.clear()
        self._lease_votes.clear()
        self._lease_start = -math.inf
        self._next_lease = math.inf

    def _on_lease_grant(self, msg: LeaseGrant) -> None:
        if not (
            self.config.is_acceptor(msg.acceptor)
            and type(msg.ballot) is int
            and type(msg.round) is int
        ):
            self.stats["malformed"] += 1
            return
        if msg.ballot > self._ballot:
            self._preempted(msg.ballot)
            return
        votes = self._lease_votes.get(msg.round)
        if self._mode is not LeaderMode.ACTIVE or msg.ballot != self._ballot or votes is None:
            self.stats["stale"] += 1
            return
        votes |= 1 << self.config.acceptor_index(msg.acceptor)
        self._lease_votes[msg.round] = votes
        if votes.bit_count() >= self.config.quorum:
            start = self._lease_sent[msg.round]
            if start > self._lease_start:
                self._lease_start = start
            for old in [r for r in self._lease_sent if r <= msg.round]:
                del self._lease_sent[old]
                del self._lease_votes[old]

    def _on_read_index(self, msg: ReadIndex) -> None:
        if not (self.config.is_replica(msg.replica) and type(msg.id) is int):
            self.stats["malformed"] += 1
            return
        if self.has_lease(self._now):
            self.stats["reads_granted"] += 1
            reply = ReadIndexReply(self.me, msg.id, True, self.read_index)
        else:
            self.stats["reads_refused"] += 1
            reply = ReadIndexReply(self.me, msg.id, False, 0)
        self._send.append((msg.replica, reply))

    # -- liveness ----------------------------------------------------------------------

    def _preempted(self, ballot: int) -> None:
        """A higher ballot exists: become passive and follow its leader (rule 4)."""
        if self._mode is LeaderMode.PASSIVE:
            if ballot > self._watch:
                self._follow(ballot, heard=True)
            return
        self.stats["preempted"] += 1
        self._preemptions += 1
        if self._inflight:
            merged = dict(self._inflight)
            merged.update(self._queue)
            self._queue = merged
            self._inflight = {}
        self._tally.reset()
        self._resend.clear()
        self._p1b = {}
        self._end_lease()
        self._mode = LeaderMode.PASSIVE
        self._follow(ballot, heard=True)

    def _follow(self, ballot: int, *, heard: bool) -> None:
        self._mode = LeaderMode.PASSIVE
        self._watch = max(self._watch, ballot)
        if heard:
            self._heard_at = self._now
        self._scout_at = None
        self._next_ping = self._now

    def _watched_leader(self) -> str | None:
        if self._watch == kb.NO_BALLOT:
            return None
        index: int = self._watch & kb.MAX_LEADER
        if index == self.index or index >= len(self.config.leaders):
            return None
        return self.config.leaders[index]

    def _tick_passive(self) -> None:
        now = self._now
        if self._scout_at is not None and now >= self._scout_at:
            self._start_scout()
            return
        if self._scout_at is None and now >= self._heard_at + self.options.leader_timeout:
            self._suspect()
        if now >= self._next_ping:
            watched = self._watched_leader()
            if watched is not None and self._scout_at is None:
                targets: Iterable[str] = (watched,)
            else:
                targets = (a for a in self.config.leaders if a != self.me)
            message = Ping(self.me, self._watch)
            for target in targets:
                self._send.append((target, message))
            self._next_ping = now + self.options.ping_interval

    def _suspect(self) -> None:
        """The followed leader is silent: plan to scout after a random back-off (rule 5)."""
        self.stats["suspected"] += 1
        span = min(
            self.options.backoff_max,
            self.options.backoff_base * 2 ** min(self._preemptions, 30),
        )
        self._scout_at = self._now + self._rng.uniform(0.0, span)
        self._next_ping = self._now  # ask everyone at once who leads now

    def _tick_scouting(self) -> None:
        if self._now >= self._scout_deadline:
            self.stats["resent_p1a"] += 1
            self._send_p1a(a for a in self.config.acceptors if a not in self._p1b)

    def _tick_active(self) -> None:
        now = self._now
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
            self._send_p2a_again(slots)
        if now >= self._next_lease:
            self._request_lease()

    def _send_p2a_again(self, slots: Slots) -> None:
        step = self.options.max_slots_per_p2a
        deadline = self._now + self.options.p2a_timeout
        inflight = self._inflight
        for start in range(0, len(slots), step):
            chunk = slots[start : start + step]
            chunk.setflags(write=False)
            message = P2a(self._ballot, chunk, tuple(inflight[s] for s in chunk.tolist()))
            for acceptor in self.config.acceptors:
                self._send.append((acceptor, message))
            self._resend.append((deadline, chunk))

    def _on_ping(self, msg: Ping) -> None:
        if not (self.config.is_leader(msg.leader) and type(msg.ballot) is int):
            self.stats["malformed"] += 1
            return
        if self._mode is LeaderMode.PASSIVE:
            reply = Pong(self.me, self._watch, False)
        else:
            reply = Pong(self.me, self._ballot, True)
        self._send.append((msg.leader, reply))

    def _on_pong(self, msg: Pong) -> None:
        if not (
            self.config.is_leader(msg.leader)
            and type(msg.ballot) is int
            and type(msg.active) is bool
        ):
            self.stats["malformed"] += 1
            return
        if self._mode is not LeaderMode.PASSIVE:
            if msg.active and msg.ballot > self._ballot:
                self._preempted(msg.ballot)  # another leader leads a higher ballot
            return
        if msg.active and msg.ballot >= self._watch:
            # The leader of the highest known ballot is alive and leading.
            self._watch = msg.ballot
            self._heard_at = self._now
            self._scout_at = None
        elif not msg.active and msg.ballot > self._watch:
            # It follows a higher ballot: follow that one's leader too.
            self._follow(msg.ballot, heard=True)

    def _flush(self) -> Effects:
        send = self._send
        if self._chosen_slots:
            slots = (
                self._chosen_slots[0]
                if len(self._chosen_slots) == 1
                else np.concatenate(self._chosen_slots)
            )
            slots.setflags(write=False)
            decision = Decision(slots, tuple(self._chosen_batches))
            for replica in self.config.replicas:
                send.append((replica, decision))
            self._chosen_slots = []
            self._chosen_batches = []
        out = Effects(self._persist, send)
        self._persist = []
        self._send = []
        if self._tells:
            leader = self.leader_node()
            if leader != self._told:
                # The replica of this node proposes to that leader only (replica rule 3).
                # True whatever the records say, so it need not wait for them.
                self._told = leader
                out.send_now.append((self.me, LeaderIs(leader)))
        return out

    def __repr__(self) -> str:
        return (
            f"<Leader {self.me} {self._mode.value} ballot={self._ballot} "
            f"following={self._watch} in_flight={len(self._inflight)} queued={len(self._queue)}>"
        )


_DISPATCH: Dispatch[Leader] = Dispatch(
    "leader",
    {
        Propose: Leader._on_propose,
        Applied: Leader._on_applied,
        P1b: Leader._on_p1b,
        P2b: Leader._on_p2b,
        Ping: Leader._on_ping,
        Pong: Leader._on_pong,
        LeaseGrant: Leader._on_lease_grant,
        ReadIndex: Leader._on_read_index,
    },
    handled_where,
)
"""Message type -> handler: the leader's whole input alphabet."""

_TICKS: dict[LeaderMode, Callable[[Leader], None]] = {
    LeaderMode.PASSIVE: Leader._tick_passive,
    LeaderMode.SCOUTING: Leader._tick_scouting,
    LeaderMode.ACTIVE: Leader._tick_active,
}
"""Mode -> what a tick does in it."""
