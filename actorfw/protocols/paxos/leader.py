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
   the silent ones every ``scout_timeout``. Only a p1b answering this
   ballot's p1a and adopting it (``request == ballot == its ballot``)
   counts. A p1b adopting the ballot from a
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
10. Holes: an active leader that knows a slot decided while a slot below
    it is neither decided nor proposed (its replica's proposal went to a
    leader that crashed or was preempted before it reached this one) gives
    the replicas ``p2a_timeout`` to propose into it (it looks for holes
    every ``p2a_timeout`` and fills those it saw at the look before), then
    proposes a no-op batch there itself. Replicas apply in slot order, so without it such a
    hole would stop them until some client's write happened to take the
    slot, and a read, whose index is above the decided slot, would wait
    for that write (rule 9).

``tick(now)`` drives every timer; ``next_deadline()`` is the earliest time
at which ``tick`` has something to do, for a driver with one timer.

The rules' parts are collaborators of :class:`Leader`: a
:class:`~actorfw.protocols.paxos.scout.Scout` (phase 1, rule 2),
:class:`~actorfw.protocols.paxos.commanders.Commanders` (phase 2, rule 3),
a :class:`~actorfw.protocols.paxos.ledger.Ledger` (what is decided and what
the replicas applied, rules 6, 7 and 9), a
:class:`~actorfw.protocols.paxos.follower.Follower` (rule 5) and a
:class:`~actorfw.protocols.paxos.leases.LeaseKeeper` (rule 8). The leader
holds the ballot and the mode, moves between modes, and routes messages.

Errors: a message of another role's type is the caller's mistake
(``TypeError``); a malformed message from a peer is counted in ``stats``
and dropped; stale messages (older ballots) are counted and ignored.
"""

from __future__ import annotations

import enum
import math
import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from actorfw.kernels import ballot as kb
from actorfw.protocols.dispatch import Dispatch
from actorfw.protocols.paxos.commanders import Commanders
from actorfw.protocols.paxos.follower import Follower
from actorfw.protocols.paxos.leases import LeaseKeeper
from actorfw.protocols.paxos.ledger import Ledger
from actorfw.protocols.paxos.messages import (
    Applied,
    Batch,
    Collect,
    Decision,
    LeaderIs,
    LeaseGrant,
    P1b,
    P2b,
    Ping,
    Pong,
    Propose,
    ReadIndex,
    ReadIndexReply,
    Slots,
    handled_where,
)
from actorfw.protocols.paxos.records import LeaderBallot, Record
from actorfw.protocols.paxos.scout import Scout, adoption
from actorfw.protocols.paxos.types import FIRST_SLOT, Config, Effects, LeaderOptions
from actorfw.protocols.paxos.wellformed import handle_checked

__all__ = ["Leader", "LeaderMode"]


class LeaderMode(enum.Enum):
    """What a leader is doing."""

    PASSIVE = "passive"
    """Following another leader; storing proposals."""
    SCOUTING = "scouting"
    """Running phase 1 for its ballot."""
    ACTIVE = "active"
    """Its ballot is adopted: running phase 2 for each proposal."""


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
        self.stats: Counter[str] = Counter()
        """Counts of notable events: ``preempted``, ``stale``, ``malformed``, ``resent_p2a``, ..."""
        self._restored = used_ballot != kb.NO_BALLOT
        self._used: int = used_ballot
        self._ballot: int = used_ballot
        self._mode = LeaderMode.PASSIVE
        self._started = False
        self._now = -math.inf
        self._follower = Follower(config, me, self.index, self.options, rng, self.stats)
        self._scout = Scout(config, self.options, self.stats)
        self._phase2 = Commanders(config, self.options, self.stats)
        self._ledger = Ledger(config, self.options, self._phase2.forget_decided)
        self._leases = LeaseKeeper(config, self.options, self.stats)
        self._holes_since: float | None = (
            None  # rule 10: when to look for holes next, less p2a_timeout
        )
        self._suspects: set[int] = set()  # rule 10: the holes seen at the last look
        self._out = _Output(config, me)

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
        used = LeaderBallot.highest(records)
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
        return self._follower.watch

    @property
    def decided_below(self) -> int:
        """Every slot below this is known to be decided."""
        return self._ledger.below

    @property
    def in_flight(self) -> int:
        """Slots in phase 2 under the current ballot, not chosen yet."""
        return len(self._phase2.inflight)

    @property
    def queued(self) -> int:
        """Proposals held but not in phase 2 (passive, or beyond the window)."""
        return len(self._phase2.queue)

    @property
    def collectable_below(self) -> int | None:
        """A floor a majority of replicas applied up to (rule 7); None until a majority reported."""
        return self._ledger.collectable_below

    @property
    def decisions_kept(self) -> int:
        """Decided batches held (for proposals of decided slots and stuck replicas)."""
        return len(self._ledger.batches)

    @property
    def lease_until(self) -> float:
        """Until when (its own clock) it may serve reads by lease (rule 8): ``-inf`` with no lease.

        The lease is valid while ``now <`` this.
        """
        return self._leases.until(self._mode is LeaderMode.ACTIVE)

    def has_lease(self, now: float) -> bool:
        """Does it hold a valid lease at ``now`` (its own clock)?"""
        return now < self.lease_until

    @property
    def read_index(self) -> int:
        """The slot a replica must have applied up to before serving a read (rule 9)."""
        return self._ledger.read_index

    def leader_node(self) -> str:
        """The node whose leader leads, as far as this one knows ("" if it does not).

        After every step in which this changes, the leader tells the replica
        of its node (a :class:`LeaderIs` in ``Effects.send_now``), if its
        node has one.
        """
        if self._mode is LeaderMode.ACTIVE:
            return self.me
        return self._follower.leader()

    def decided(self, slot: int) -> Batch | None:
        """The batch this leader knows decided for ``slot``, if it still holds it."""
        return self._ledger.batches.get(slot)

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
                self._follow(kb.make_ballot(0, initial))
        else:
            self._follow(kb.NO_BALLOT)
        return self._flush()

    def handle(self, message: Any, now: float) -> Effects:
        """Take one message of the leader's alphabet (see ``_DISPATCH`` at the end of the module).

        ``Propose``, ``Applied``, ``P1b``, ``P2b``, ``Ping``, ``Pong``,
        ``LeaseGrant`` or ``ReadIndex``.

        Raises:
            TypeError: ``message`` is for another role.
            RuntimeError: :meth:`start` was not called.
        """
        return self.handle_all((message,), now)

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
        now, send = self._now, self._out.send
        if self._mode is LeaderMode.PASSIVE:
            if self._follower.tick(now, send):
                self._start_scout()
        elif self._mode is LeaderMode.SCOUTING:
            self._scout.tick(self._ballot, now, send)
        else:
            self._phase2.resend_due(self._ballot, now, send)
            if now >= self._leases.next_request:
                self._leases.request(self._ballot, now, send)
            holes = self._holes_since
            if holes is not None and now >= holes + self.options.p2a_timeout:
                self._fill_holes()
        self._launch()
        return self._flush()

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`tick` has work to do (None: only messages can wake it)."""
        if not self._started:
            return None
        if self._mode is LeaderMode.PASSIVE:
            return self._follower.next_deadline()
        if self._mode is LeaderMode.SCOUTING:
            return self._scout.deadline
        deadline = self._phase2.next_deadline()
        deadline = min(math.inf if deadline is None else deadline, self._leases.next_request)
        if self._holes_since is not None:
            deadline = min(deadline, self._holes_since + self.options.p2a_timeout)
        return None if deadline == math.inf else deadline

    def _enter(self, now: float) -> None:
        if not self._started:
            raise RuntimeError(f"leader {self.me!r}: call start(now) before anything else")
        self._now = max(self._now, now)

    def _dispatch(self, message: Any) -> None:
        handle_checked(_DISPATCH, self, message)

    # -- proposals, progress, collection (rules 6, 7) ------------------------------------

    def _on_propose(self, msg: Propose) -> None:
        self._progress_of(msg.replica, msg.slot_out)
        known = self._ledger.sort_proposals(msg.slots, msg.batches, self._phase2.hold)
        if known is not None:
            self.stats["answered_decided_proposal"] += 1
            self._out.send.append((msg.replica, known))

    def _on_applied(self, msg: Applied) -> None:
        before = self._ledger.progress.get(msg.replica)
        self._progress_of(msg.replica, msg.slot_out)
        if self._mode is LeaderMode.ACTIVE and before == msg.slot_out:
            # The replica did not move since its last report: re-send what it may have lost.
            lost = self._ledger.decisions_from(msg.slot_out)
            if lost is not None:
                self.stats["resent_decisions"] += 1
                self._out.send.append((msg.replica, lost))

    def _progress_of(self, replica: str, slot_out: int) -> None:
        """Record a replica's ``slot_out``; collect what a majority applied, when due."""
        floor = self._ledger.progress_of(replica, slot_out, self._mode is LeaderMode.ACTIVE)
        if floor is not None:
            self.stats["collect_sent"] += 1
            collect = Collect(floor)
            self._out.send.extend((acceptor, collect) for acceptor in self.config.acceptors)
            self._collected(floor)

    def _collected(self, floor: int) -> None:
        """An acceptor collected slots below ``floor``: they are decided, stop proposing them."""
        if floor <= self._ledger.floor:
            return
        self._phase2.collected(floor)
        self._ledger.collected(floor)

    # -- phase 1 (rule 2) ---------------------------------------------------------------

    def _start_scout(self) -> None:
        follower = self._follower
        ballot = kb.next_ballot(max(self._used, self._ballot, follower.watch), self.index)
        self._used = self._ballot = ballot
        self._out.persist.append(LeaderBallot(ballot))
        self._mode = LeaderMode.SCOUTING
        follower.scout_at = None
        ledger = self._ledger
        self.stats["scouts"] += 1
        self._scout.begin(
            ballot, max(ledger.below, ledger.floor, FIRST_SLOT), self._now, self._out.send
        )

    def _on_p1b(self, msg: P1b) -> None:
        if msg.ballot > self._ballot:
            self._preempted(msg.ballot)
        elif (
            self._mode is not LeaderMode.SCOUTING
            or msg.ballot != self._ballot
            or msg.request != self._ballot
        ):
            # Not an adoption of this scout's ballot: an older p1a's answer carries
            # the acceptor's promise, which may be this ballot, and no pvalues.
            self.stats["stale"] += 1
        elif self._scout.answer(msg):
            self._adopt()

    def _adopt(self) -> None:
        """Phase 1 succeeded: re-propose what acceptors accepted, fill gaps, go active (rule 2)."""
        answers = self._scout.take_answers()
        self._mode = LeaderMode.ACTIVE
        follower = self._follower
        follower.watch = self._ballot
        follower.preemptions = max(0, follower.preemptions - 1)
        self.stats["adopted"] += 1
        ledger = self._ledger
        ledger.adopted_floor(max(a.floor for a in answers))
        # Never below a floor any answer reported: those slots are decided
        # (and may be gone from the acceptors that collected them).
        start = max(self._scout.from_slot, ledger.floor, ledger.below)
        queue, ledger.adopt_top = adoption(answers, start, self._phase2.queue, ledger.batches)
        self._phase2.adopt(queue)
        announce = Pong(self.me, self._ballot, True)
        self._out.send.extend((lead, announce) for lead in self.config.leaders if lead != self.me)
        ledger.new_term()
        self._leases.end()
        if self.options.leases:
            self._leases.request(self._ballot, self._now, self._out.send)

    # -- phase 2 (rule 3) ---------------------------------------------------------------

    def _launch(self) -> None:
        if self._mode is LeaderMode.ACTIVE:
            ledger = self._ledger
            self._phase2.launch(
                self._ballot, self._now, ledger.below, ledger.batches, self._out.send
            )

    def _on_p2b(self, msg: P2b) -> None:
        if msg.ballot > self._ballot:
            self._preempted(msg.ballot)
            return
        if len(msg.collected):
            self._collected(int(msg.collected.max()) + 1)
        if self._mode is not LeaderMode.ACTIVE or msg.ballot != self._ballot:
            self.stats["stale"] += 1
            return
        bit = 1 << self.config.acceptor_index(msg.acceptor)
        slots, batches = self._phase2.vote(msg.slots, bit)
        if batches:
            self._out.chosen(slots, batches)
            self._ledger.chosen(slots, batches)

    # -- leases and reads (rules 8, 9) ---------------------------------------------------

    def _on_lease_grant(self, msg: LeaseGrant) -> None:
        if msg.ballot > self._ballot:
            self._preempted(msg.ballot)
            return
        current = self._mode is LeaderMode.ACTIVE and msg.ballot == self._ballot
        self._leases.granted(msg, current)

    def _on_read_index(self, msg: ReadIndex) -> None:
        granted = self.has_lease(self._now)
        self.stats["reads_granted" if granted else "reads_refused"] += 1
        index = self.read_index if granted else 0
        self._out.send.append((msg.replica, ReadIndexReply(self.me, msg.id, granted, index)))

    # -- liveness (rules 4, 5) ------------------------------------------------------------

    def _preempted(self, ballot: int) -> None:
        """A higher ballot exists: become passive and follow its leader (rule 4)."""
        if self._mode is LeaderMode.PASSIVE:
            if ballot > self._follower.watch:
                self._follow(ballot)
            return
        self.stats["preempted"] += 1
        self._follower.preemptions += 1
        self._phase2.stand_down()
        self._scout.stop()
        self._leases.end()
        self._follow(ballot)

    def _follow(self, ballot: int) -> None:
        self._mode = LeaderMode.PASSIVE
        self._follower.follow(ballot, self._now)

    def _on_ping(self, msg: Ping) -> None:
        if self._mode is LeaderMode.PASSIVE:
            reply = Pong(self.me, self._follower.watch, False)
        else:
            reply = Pong(self.me, self._ballot, True)
        self._out.send.append((msg.leader, reply))

    def _on_pong(self, msg: Pong) -> None:
        if self._mode is LeaderMode.PASSIVE:
            self._follower.pong(msg, self._now)
        elif msg.active and msg.ballot > self._ballot:
            self._preempted(msg.ballot)  # another leader leads a higher ballot

    def _fill_holes(self) -> None:
        """Propose a no-op in every slot that has been a hole for ``p2a_timeout`` (rule 10).

        A hole is a slot below one known decided that is neither decided nor
        proposed here. Looks are ``p2a_timeout`` apart; a slot is filled when
        it was a hole at the last look too, so every hole gets that long for
        a replica's proposal to arrive.
        """
        self._holes_since = None
        ledger, phase2 = self._ledger, self._phase2
        decided, inflight, queue = ledger.batches, phase2.inflight, phase2.queue
        end = min(ledger.top, ledger.below + self.options.window)
        holes = {s for s in range(ledger.below, end) if s not in decided}
        holes = {s for s in holes if s not in inflight and s not in queue}
        due = sorted(holes & self._suspects)
        for slot in due:
            phase2.hold(slot, ())
        self.stats["holes_filled"] += len(due)
        self._suspects = holes.difference(due)
        if self._suspects:
            self._holes_since = self._now  # look again: these get their time too

    def _flush(self) -> Effects:
        # Rule 10: a slot below one known decided may be a hole; look again in a while.
        ledger = self._ledger
        if self._mode is not LeaderMode.ACTIVE or ledger.below >= ledger.top:
            self._holes_since = None
            self._suspects = set()
        elif self._holes_since is None:
            self._holes_since = self._now
        return self._out.flush(self.leader_node())

    def __repr__(self) -> str:
        return (
            f"<Leader {self.me} {self._mode.value} ballot={self._ballot} "
            f"following={self._follower.watch} in_flight={self.in_flight} queued={self.queued}>"
        )


class _Output:
    """What a leader's step produces, gathered until the step ends."""

    __slots__ = ("_batches", "_me", "_replicas", "_slots", "_tells", "_told", "persist", "send")

    def __init__(self, config: Config, me: str) -> None:
        self._me = me
        self._replicas = config.replicas
        self.persist: list[Record] = []
        self.send: list[tuple[str, Any]] = []
        self._slots: list[Slots] = []
        self._batches: list[Batch] = []
        self._told: str | None = None  # who leads, as last told to this node's replica
        self._tells = config.is_replica(me)

    def chosen(self, slots: Slots, batches: list[Batch]) -> None:
        """Slots chosen in this step: one :class:`Decision` per replica holds them all."""
        self._slots.append(slots)
        self._batches.extend(batches)

    def flush(self, leader_node: str) -> Effects:
        """The step's effects; ``leader_node`` is who leads as the step ends."""
        send = self.send
        if self._slots:
            chosen = self._slots
            slots = chosen[0] if len(chosen) == 1 else np.concatenate(chosen)
            slots.setflags(write=False)
            decision = Decision(slots, tuple(self._batches))
            for replica in self._replicas:
                send.append((replica, decision))
            self._slots = []
            self._batches = []
        out = Effects(self.persist, send)
        self.persist = []
        self.send = []
        if self._tells and leader_node != self._told:
            # The replica of this node proposes to that leader only (replica rule 3).
            # True whatever the records say, so it need not wait for them.
            self._told = leader_node
            out.send_now.append((self._me, LeaderIs(leader_node)))
        return out


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
