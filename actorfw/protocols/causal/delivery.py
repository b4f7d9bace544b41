"""Causal broadcast: delivery with holdback, de-duplication, anti-entropy and forgetting.

One :class:`CausalMember` is one member of a causal broadcast group. The
group's members are fixed (its configuration); each member broadcasts
messages, and every member delivers every message exactly once, in causal
order: a message is delivered only after everything that happened before
it, whatever the network drops, duplicates, delays or reorders, and across
crashes with restart. Concurrent messages may be delivered in different
orders at different members; each delivery carries its clock, so the
application can tell (:meth:`Delivery.concurrent_with`).

Theory of operation
-------------------

A member's *delivered clock* ``v`` counts, for every member ``s``, how many
of ``s``'s broadcasts it has delivered.

1. **Stamping.** A member broadcasting its ``n``-th message stamps it with
   ``v`` whose own entry is ``n``, and delivers it itself at once. The
   message is persisted before it is sent or reported (rule 4), so a
   restarted member never reuses a sequence number. The broadcasts of one
   step travel to each peer as one :class:`DataRun`: their stamps differ
   only in the sender's own entry, one apart, so the run carries the first
   stamp and the payloads, and the receiver takes it as the :class:`Data`
   messages it stands for, in order.
2. **Delivery condition** (Birman, Schiper and Stephenson): a message from
   ``s`` stamped ``m`` is delivered when ``v.deliverable(m, s)``:
   ``m[s] == v[s] + 1`` and ``m[k] <= v[k]`` for every other ``k``.
   Received messages wait in a holdback queue until then; an arrival scans
   the queue with the kernel's ``deliverable_many`` until nothing more is
   deliverable. A run whose first message is deliverable on arrival is
   delivered whole at once (its others follow it, one apart), without
   passing through the queue.
3. **Exactly once.** A message whose sequence number is at most ``v[s]``
   was delivered already, and one already held back is held once: both are
   dropped (counted as duplicates).
4. **Durability.** Every delivery (own broadcasts included) is persisted as
   a :class:`Logged` record in the step that delivers it, or, with the
   consecutive messages of its sender that the step delivers too (their
   stamps one apart, as in a :class:`DataRun`), as one :class:`LoggedRun`
   record of at most ``RUN_RECORD_MAX``; its report to the
   application (:class:`Delivery` values in ``Effects.outputs``) and any
   message of the step wait until that record is durable, and so do the
   messages of every later step (the driver sends effects in step order,
   each once everything written before it is durable): so a
   :class:`Status` never tells a peer of a delivery that a crash could
   still undo. A member forgets its own deliveries (rule 6) only once the
   driver said they are durable, and so reported
   (:meth:`CausalMember.made_durable`). A restart rebuilds ``v``, the log
   and the stable floor from the records; a delivery that was not durable
   when the member crashed was not reported, and is delivered again. A
   write can also survive a crash without its sync having completed, so a
   delivery can be durable and never reported: a restarted member therefore
   reports again, first (:meth:`CausalMember.start`), every message it
   still keeps, in a causal order. Across a restart, delivery to the
   application is at least once; ``(sender, seq)`` names a message, so an
   application that must see each once drops those it already saw. The log
   holds only what is not yet stable, so the replay is bounded by it.
5. **Anti-entropy.** Every ``gossip_interval`` a member sends its delivered
   clock to every peer (:class:`Status`). A member that hears a
   :class:`Status` from ``p`` sends ``p`` the messages of its log that ``p``
   lacks, at most ``max_resend`` per reply, in an order ``p`` can deliver
   them as they come (a causal order, found by replaying delivery against
   ``p``'s clock with the kernel's ``deliverable_many``; of those
   deliverable at each point, the one with the fewest events before it
   first, see rule 7). So a
   member that was cut off, or whose copies were dropped, catches up from
   any peer that delivered them; and the sender of a lost message need not
   be alive.
6. **Forgetting.** A member keeps the highest clock it heard from each peer
   (in a :class:`Status`, or on a message a peer broadcast: what it had
   delivered then). A message from ``s`` with sequence number at most the
   least of those entries for ``s``, its own included, is *stable*: every
   member delivered it, no one will ask for it again, and it leaves the log
   (the :class:`Forgotten` record raises the floor, and deletes the records
   all of whose messages are stable). The log then holds only what some
   member may still lack.
7. **Bounds.** The holdback queue holds at most ``max_holdback`` messages.
   An arrival that finds it full takes the place of the held message with
   the most events before it (the sum of its stamp), if it has fewer; else
   it is dropped. Either way the dropped message comes back by
   anti-entropy. This keeps the queue live at any size: a message that is
   held and not deliverable lacks one with fewer events before it, and so
   on down to one that is deliverable; anti-entropy sends the deliverable
   message with the fewest events first (rule 5), which has fewer than the
   held one and so finds room. A message
   more than ``max_ahead`` beyond what the member delivered from its
   sender, from a non-member, or whose clock does not name its sender, is
   refused: counted, and reported (a :class:`Refusal`) in ``Effects.refused``, never
   buffered. The log holds what is not yet stable: it grows only while a
   member is unreachable, by what the others broadcast meanwhile (a stated
   cost of causal broadcast with a fixed membership: remove a dead member
   from the configuration to release it).

The core never touches sockets, clocks or storage: time comes in as an
argument to :meth:`CausalMember.tick`, and every step returns
:class:`Effects`.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from actorfw.protocols.causal.messages import (
    CausalOptions,
    Data,
    DataRun,
    Delivery,
    Forgotten,
    Logged,
    LoggedRun,
    Record,
    Refusal,
    Status,
    VectorClock,
)
from actorfw.protocols.causal.runs import RUN_RECORD_BYTES, RUN_RECORD_MAX, StoredRuns, stored_size
from actorfw.protocols.effects import Effects

__all__ = [
    "RUN_RECORD_BYTES",
    "RUN_RECORD_MAX",
    "CausalMember",
    "CausalOptions",
    "Data",
    "DataRun",
    "Delivery",
    "Effects",
    "Forgotten",
    "Logged",
    "LoggedRun",
    "Record",
    "Refusal",
    "Status",
    "stored_size",
]


def _weight(clock: Any) -> int:
    """How many events a stamp says happened before (and including) its message."""
    return sum(count for _, count in clock.items())


class CausalMember:
    """One member of a causal broadcast group (see the module's rules).

    Args:
        me: this member's name.
        members: every member of the group, ``me`` included.
        options: tuning.

    Raises:
        ValueError: ``me`` is not among ``members``, or a member is named twice.
    """

    def __init__(
        self, me: str, members: Sequence[str], options: CausalOptions | None = None
    ) -> None:
        if len(set(members)) != len(members):
            raise ValueError(f"a member is named twice in {list(members)}")
        if me not in members:
            raise ValueError(f"{me!r} is not one of the members {list(members)}")
        self.me = me
        self.members = tuple(members)
        self.peers = tuple(m for m in members if m != me)
        self.options = options or CausalOptions()
        self.delivered = VectorClock()
        """How many of each member's broadcasts this member delivered."""
        self.floor: dict[str, int] = {}
        """Per sender, the highest sequence number forgotten (rule 6)."""
        self.log: dict[str, dict[int, Delivery]] = {m: {} for m in members}
        """Per sender, by sequence number, the delivered messages not yet stable (rule 6)."""
        self._rows = StoredRuns(members)  # what a Forgotten record deletes
        self.heard: dict[str, Any] = {m: VectorClock() for m in self.peers}
        self.holdback: dict[tuple[str, int], Data] = {}
        self.duplicates = 0
        self.reported = VectorClock()
        """How many of each member's broadcasts are durable here, so reported (rule 4)."""
        self._persisting = 0  # steps that persisted anything (the driver counts the same)
        self._step_delivered: list[tuple[str, int]] = []
        self._unreported: deque[tuple[int, list[tuple[str, int]]]] = deque()
        self.dropped = 0
        self._next_gossip = -math.inf  # due at the first tick
        # The holdback queue as a heap, heaviest message first (rule 7), so that making
        # room costs a heap operation, not a scan of the queue: built at the first arrival
        # that finds the queue full, dropped once it is less than half full. Entries of
        # messages since gone are skipped when met.
        self._heaviest: list[tuple[int, int, tuple[str, int], Data]] | None = None
        self._pushed = 0  # the tie-break: of equal weights, the one held first goes first

    # -- restart --------------------------------------------------------------------

    @classmethod
    def restore(
        cls,
        me: str,
        members: Sequence[str],
        records: Iterable[Record],
        options: CausalOptions | None = None,
    ) -> CausalMember:
        """The member as its durable records left it (rule 4)."""
        member = cls(me, members, options)
        records = list(records)
        floor = member.floor
        for record in records:
            if isinstance(record, Forgotten):
                floor[record.sender] = max(floor.get(record.sender, 0), record.seq)
        for record in records:
            if isinstance(record, Forgotten):
                continue
            sender, first = record.sender, record.seq
            entries = member.log.setdefault(sender, {})
            if isinstance(record, LoggedRun):
                last = first + len(record.payloads) - 1
                clock = record.clock
                for seq, payload in enumerate(record.payloads, first):
                    if seq > first:
                        clock = clock.copy()
                        clock.increment(sender)
                    if seq > floor.get(sender, 0):
                        entries[seq] = Delivery(sender, seq, clock, payload)
            else:
                last = first
                if first > floor.get(sender, 0):
                    entries[first] = Delivery(sender, first, record.clock, record.payload)
            # A record all below the floor was deleted with it, unless written by an
            # older version: kept in the rows, the next Forgotten record deletes it.
            member._rows.restored(sender, first, last)
        member._rows.sort()
        for sender in sorted(set(member.floor) | set(member.log)):  # same order every process
            entries = member.log.get(sender, {})
            count = max([member.floor.get(sender, 0), *entries])
            if count:
                member.delivered.increment(sender, count)
        member.reported = member.delivered.copy()  # what survived a crash is on disk
        return member

    def start(self, now: float) -> Effects:
        """The first step after :meth:`restore`: report again what the log keeps (rule 4)."""
        kept = [logged for entries in self.log.values() for logged in entries.values()]
        kept.sort(key=lambda m: (_weight(m.clock), m.sender))  # a causal order
        return Effects(outputs=kept)

    def made_durable(self, steps: int) -> None:
        """The records of the first ``steps`` steps that persisted anything are durable.

        Counted from the restore, as the driver counts (rule 8 of
        :mod:`actorfw.protocols.effects`): their deliveries are reported, and
        may be forgotten once stable (rule 6).
        """
        pending, reported = self._unreported, self.reported
        while pending and pending[0][0] <= steps:
            for sender, seq in pending.popleft()[1]:
                if seq > reported.get(sender):
                    reported.increment(sender, seq - reported.get(sender))

    # -- inputs ---------------------------------------------------------------------

    def broadcast(self, payload: Any) -> Effects:
        """Broadcast ``payload`` to the group (rule 1); delivered here at once."""
        return self.broadcast_all([payload])

    def broadcast_all(self, payloads: Iterable[Any]) -> Effects:
        """Broadcast each of ``payloads``, in order, in one step (one write for all of them).

        Each is stamped after the one before (rule 1), so they are delivered
        in this order everywhere; ``Effects.outputs`` holds their
        :class:`Delivery` values in the same order.
        """
        effects = Effects()
        first = None
        sent: list[Any] = []
        for payload in payloads:
            stamp = self.delivered.copy()
            stamp.increment(self.me)
            if first is None:
                first = stamp
            self._deliver(self.me, stamp, payload, effects)
            sent.append(payload)
        if first is not None:
            message = (
                Data(self.me, first, sent[0])
                if len(sent) == 1
                else DataRun(self.me, first, tuple(sent))
            )
            effects.send.extend((peer, message) for peer in self.peers)
        return self._finish(effects)

    def handle_all(self, messages: Iterable[tuple[str, Any]], now: float) -> Effects:
        """Take ``(peer, message)`` pairs that arrived: Data, DataRun or Status."""
        effects = Effects()
        arrived = False
        for peer, message in messages:
            kind = type(message)
            if kind is Data:
                arrived = self._arrive(peer, message, effects) or arrived
            elif kind is DataRun:
                if self._deliver_run(peer, message, effects):
                    arrived = True  # what was held back may follow it now
                    continue
                for data in self._unroll(peer, message, effects):
                    arrived = self._arrive(peer, data, effects) or arrived
            elif kind is Status:
                self._status(peer, message, effects)
            else:
                effects.refused.append(
                    Refusal(peer, f"a causal member takes Data, DataRun or Status, not {message!r}")
                )
        if arrived:
            self._drain(effects)
            if self._heaviest is not None and 2 * len(self.holdback) < self.options.max_holdback:
                self._heaviest = None  # the queue is far from full again
        self._collect(effects)
        return self._finish(effects)

    def tick(self, now: float) -> Effects:
        """Time passes: a round of anti-entropy when due (rule 5)."""
        effects = Effects()
        if now >= self._next_gossip:
            self._next_gossip = now + self.options.gossip_interval
            status = Status(self.me, self.delivered.copy())
            effects.send.extend((peer, status) for peer in self.peers)
        return self._finish(effects)

    def next_deadline(self) -> float:
        """When :meth:`tick` next has something to do (``-inf`` before the first tick: now)."""
        return self._next_gossip

    # -- the rules ------------------------------------------------------------------

    def _arrive(self, peer: str, data: Data, effects: Effects) -> bool:
        sender, clock = data.sender, data.clock
        if type(sender) is not str or sender not in self.log or peer not in self.log:
            effects.refused.append(
                Refusal(peer, f"{sender!r} (from {peer!r}) is not a member of {self.members}")
            )
            return False
        if not isinstance(clock, VectorClock):
            effects.refused.append(Refusal(peer, f"a stamp must be a VectorClock, not {clock!r}"))
            return False
        seq = clock.get(sender)
        if seq < 1:
            effects.refused.append(
                Refusal(peer, f"the stamp {clock!r} does not name its sender {sender!r}")
            )
            return False
        have = self.delivered.get(sender)
        if seq <= have or (sender, seq) in self.holdback:
            self.duplicates += 1
            return False
        if seq > have + self.options.max_ahead:
            effects.refused.append(
                Refusal(
                    peer,
                    f"message {seq} of {sender!r} is {seq - have} beyond the {have} delivered "
                    f"(at most {self.options.max_ahead} may be held back)",
                )
            )
            return False
        if sender != self.me:
            self._heard(sender, clock)
        if len(self.holdback) >= self.options.max_holdback and not self._make_room(data):
            self.dropped += 1  # anti-entropy brings it back (rule 7)
            return False
        self.holdback[(sender, seq)] = data
        heap = self._heaviest
        if heap is not None:
            # Entries of messages gone (delivered) keep their payloads alive: a quarter
            # of the bound of them at most, then the heap starts again from the queue.
            if len(heap) - len(self.holdback) < max(16, self.options.max_holdback // 4):
                self._pushed += 1
                heapq.heappush(heap, (-_weight(clock), self._pushed, (sender, seq), data))
            else:
                self._heaviest = self._by_weight()
        return True

    def _deliver_run(self, peer: str, run: DataRun, effects: Effects) -> bool:
        """Deliver a run whose first message is the next one due, at once; False if it is not.

        The common case of a run (rules 1 and 2): its first message is its
        sender's next and deliverable, so each one after it is too (their
        stamps differ only in the sender's entry, one apart). They are
        delivered as :meth:`_unroll`, :meth:`_arrive` and :meth:`_drain`
        would, without a held message each. Anything else (a malformed run,
        a duplicate, one that must wait, one with a message already held)
        takes that general path.
        """
        sender, clock, payloads = run.sender, run.clock, run.payloads
        delivered, log = self.delivered, self.log
        if (
            type(payloads) is not tuple
            or not 0 < len(payloads) <= self.options.max_ahead
            or type(sender) is not str
            or sender not in log
            or peer not in log
            or not isinstance(clock, VectorClock)
        ):
            return False
        seq = clock.get(sender)
        if seq != delivered.get(sender) + 1 or not delivered.deliverable(clock, sender):
            return False
        holdback = self.holdback
        if holdback and any((sender, s) in holdback for s in range(seq, seq + len(payloads))):
            return False
        stamps = [clock]
        for _ in payloads[1:]:
            clock = clock.copy()
            clock.increment(sender)
            stamps.append(clock)
        if sender != self.me:
            self._heard(sender, clock)  # the last stamp: the most the sender had delivered
        for stamp, payload in zip(stamps, payloads, strict=True):
            self._deliver(sender, stamp, payload, effects)
        return True

    def _unroll(self, peer: str, run: DataRun, effects: Effects) -> list[Data]:
        """The :class:`Data` messages a run stands for (rule 1); none if it is malformed."""
        payloads, clock = run.payloads, run.clock
        limit = self.options.max_ahead
        if type(payloads) is not tuple or not 0 < len(payloads) <= limit:
            what = f"{len(payloads)} of them" if type(payloads) is tuple else repr(payloads)[:40]
            effects.refused.append(
                Refusal(peer, f"a DataRun holds 1 to {limit} payloads in a tuple, not {what}")
            )
            return []
        sender = run.sender
        if not isinstance(clock, VectorClock) or type(sender) is not str or sender not in self.log:
            return [Data(sender, clock, payloads[0])]  # refused once by _arrive, with its reason
        unrolled = [Data(sender, clock, payloads[0])]
        for payload in payloads[1:]:
            clock = clock.copy()
            clock.increment(sender)
            unrolled.append(Data(sender, clock, payload))
        return unrolled

    def _make_room(self, data: Data) -> bool:
        """Evict the held message with the most events before it, if ``data`` has fewer (rule 7)."""
        heap = self._heaviest
        if heap is None:
            heap = self._heaviest = self._by_weight()
        holdback = self.holdback
        while heap:
            negative, _, key, held = heap[0]
            if holdback.get(key) is not held:  # delivered or evicted since it was pushed
                heapq.heappop(heap)
                continue
            if -negative <= _weight(data.clock):
                return False
            heapq.heappop(heap)
            del holdback[key]
            self.dropped += 1
            return True
        return False

    def _by_weight(self) -> list[tuple[int, int, tuple[str, int], Data]]:
        """The holdback queue as a heap, heaviest first, then in the order it was held."""
        start = self._pushed
        heap = [
            (-_weight(data.clock), start + index, key, data)
            for index, (key, data) in enumerate(self.holdback.items(), 1)
        ]
        self._pushed = start + len(heap)
        heapq.heapify(heap)
        return heap

    def _drain(self, effects: Effects) -> None:
        # Only a sender's next message can be deliverable (rule 2: m[s] == v[s] + 1), so
        # each pass checks at most one held message per member, in one kernel call. The
        # ones it finds stay deliverable while the others are delivered: a delivery from
        # s raises only v[s], which no other sender's next message needs to be lower.
        # After a delivery from s, s's own next messages are tried at once, one kernel
        # call each: those of a run are deliverable one after the other.
        holdback, members, delivered = self.holdback, self.members, self.delivered
        while holdback:
            keys = [(s, delivered.get(s) + 1) for s in members]
            held = [holdback[key] for key in keys if key in holdback]
            if not held:
                return
            ready = delivered.deliverable_many([d.clock for d in held], [d.sender for d in held])
            if not any(ready):
                return
            for data, ok in zip(held, ready, strict=True):
                if ok:
                    sender = data.sender
                    seq = data.clock.get(sender)
                    del holdback[(sender, seq)]
                    self._deliver(sender, data.clock, data.payload, effects)
                    following = holdback.get((sender, seq + 1))
                    while following is not None and delivered.deliverable(following.clock, sender):
                        seq += 1
                        del holdback[(sender, seq)]
                        self._deliver(sender, following.clock, following.payload, effects)
                        following = holdback.get((sender, seq + 1))

    def _finish(self, effects: Effects) -> Effects:
        if effects.persist:
            # _deliver stages the step's deliveries as they are: made records here.
            effects.persist[:] = self._rows.records(effects.persist)
            self._persisting += 1
            if self._step_delivered:
                self._unreported.append((self._persisting, self._step_delivered))
                self._step_delivered = []
        return effects

    def _deliver(self, sender: str, clock: Any, payload: Any, effects: Effects) -> None:
        seq = self.delivered.increment(sender)
        delivery = Delivery(sender, seq, clock, payload)
        self.log[sender][seq] = delivery
        effects.persist.append(delivery)  # made a record by _finish
        self._step_delivered.append((sender, seq))
        effects.outputs.append(delivery)

    def _status(self, peer: str, status: Status, effects: Effects) -> None:
        if peer not in self.heard or status.member != peer:
            effects.refused.append(
                Refusal(peer, f"a Status from {peer!r} for {status.member!r}: not a peer")
            )
            return
        if not isinstance(status.clock, VectorClock):
            effects.refused.append(
                Refusal(peer, f"a Status clock must be a VectorClock, not {status.clock!r}")
            )
            return
        self._heard(peer, status.clock)
        # Send what the peer lacks in an order it can deliver as it comes (rule 5): replay
        # delivery against a copy of its clock, so no resend is wasted on a message that
        # would wait in its holdback queue behind one not sent.
        wants = status.clock.copy()
        budget = self.options.max_resend
        while budget:
            nexts = []
            for sender in self.members:
                seq = max(wants.get(sender), self.floor.get(sender, 0)) + 1
                logged = self.log[sender].get(seq)
                if logged is not None:
                    nexts.append(logged)
            if not nexts:
                return
            ready = wants.deliverable_many([m.clock for m in nexts], [m.sender for m in nexts])
            candidates = [m for m, ok in zip(nexts, ready, strict=True) if ok]
            if not candidates:
                return
            # The one with the fewest events before it first: it finds room in a full
            # holdback queue (rule 7), so a small budget still makes progress.
            logged = min(candidates, key=lambda m: _weight(m.clock))
            effects.send.append((peer, Data(logged.sender, logged.clock, logged.payload)))
            wants.increment(logged.sender)
            budget -= 1

    def _heard(self, peer: str, clock: Any) -> None:
        # A member's clock only grows: keep the pointwise maximum of what it said.
        self.heard[peer].merge_in(clock)

    def _collect(self, effects: Effects) -> None:
        """Forget what every member delivered (rule 6)."""
        for sender in self.members:
            stable = min([self.reported.get(sender), *(c.get(sender) for c in self.heard.values())])
            if stable > self.floor.get(sender, 0):
                dropped = self._forget(sender, stable)
                effects.persist.append(Forgotten(sender, stable, dropped))

    def _forget(self, sender: str, seq: int) -> tuple[int, ...]:
        entries = self.log.setdefault(sender, {})
        floor = self.floor.get(sender, 0)
        if seq - floor <= len(entries):
            # The common case: a few past the floor out of a longer log. Each number is
            # looked up, so a step costs what it forgets, not the log's size (a scan of
            # 20,000 entries took 0.2 ms, at each step that raised the floor).
            pop = entries.pop
            for old in range(floor + 1, seq + 1):
                pop(old, None)
        else:  # a floor far past a short log
            for old in [s for s in entries if s <= seq]:
                del entries[old]
        self.floor[sender] = max(floor, seq)
        return self._rows.forget(sender, seq)
