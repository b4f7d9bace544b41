"""The Multi-Paxos acceptor (PMMC A1-A5), as a sans-IO core.

Theory of operation
-------------------

An acceptor is Paxos's memory. It holds a *promise* (the highest ballot it
adopted) and, per slot, the *pvalue* ``(ballot, slot, batch)`` it accepted
with the highest ballot. Leaders send it p1a (prepare) and p2a (accept)
messages; it answers p1b and p2b to the leader the ballot names. The
decisions themselves are made by the ballot kernels
(:mod:`actorfw.kernels`): ``phase1`` for a p1a, ``phase2`` for a p2a that
carries hundreds of slots in one call.

Rules (van Renesse and Altinbuken's A1-A5, batched, plus collection):

1. The promise never decreases (A1, A3). A p1a for ballot ``b`` at or above
   the promise raises the promise to ``b`` and is answered with the
   pvalues accepted at slots ``>= max(from_slot, floor)``; below the
   promise it is answered with the promise alone (the leader is preempted).
2. A p2a for ``(b, slots, batches)`` is accepted, slot by slot, iff ``b``
   is at or above the promise; accepting raises the promise to ``b`` (A4).
   It is answered with one p2b listing the accepted slots and the promise
   (above ``b`` if refused: the leader is preempted).
3. Only the highest-ballot pvalue per slot is kept (A2). Internally the
   accepted pvalues are columns appended per p2a and reduced with the
   ``pmax`` kernel when read or when duplicates pile up, so a p2a costs one
   kernel call and an append, not a loop over its slots.
4. Garbage collection: :meth:`Acceptor.collect` (or a ``Collect`` message)
   raises a *floor*; pvalues below it are dropped, and p2a entries for
   slots below it are refused as ``COLLECTED`` and reported as such in the
   p2b, and p1b answers carry the floor, so a leader never takes a collected
   slot for an empty one. A promise raised by a p2a is durable only in its
   :class:`Accepted` records; a collection that deletes them first writes
   the promise itself (:class:`Promised`), so no restart forgets it.
5. Durability before speech: every raise of the promise, every accepted
   pvalue and every raise of the floor is returned in ``Effects.persist``
   (:class:`Promised`, :class:`Accepted`, :class:`Collected`) and must be
   durable before the step's p1b/p2b is sent. A raise of the promise by a
   p2a is implied by its :class:`Accepted` record. :meth:`Acceptor.restore`
   rebuilds the exact state from those records, so an acceptor restarted
   after a crash never accepts below a ballot it promised before.
6. Leases (only when a leader asks for them). A :class:`LeaseRequest` for
   ballot ``b`` at or above the promise is *granted*: the promise rises to
   ``b`` (persisted), and until ``now + duration`` **on this acceptor's
   clock** (``now`` being when it got the request, which is after the
   leader sent it) the leader of ``b`` holds the acceptor's lease. While a
   lease runs, a p1a or lease request whose ballot is above the promise
   and belongs to *another* leader is refused (answered with the promise,
   ``stats["leased_p1a"]``); the holder's own higher ballots, p2a and
   collection are not affected. A request below the promise is refused
   with the promise (the leader is preempted).
7. A restarted acceptor has forgotten whose lease was running. Before its
   first grant of a lease longer than any it granted before, it persists
   the duration (:class:`LeaseGranted`); restored with one, it lets no
   leader raise its promise by p1a or lease request for that long from the
   time of its restart (``restore(now=...)``, else its first input). So a
   lease it granted before a crash runs out before it adopts another
   leader's ballot.

Why rules 6 and 7 make a lease safe: the leader counts a lease from when it
*sent* the request a quorum granted, and stops using it ``max_drift``
before ``duration`` has passed on its own clock. Every acceptor of that
quorum got the request later and counts ``duration`` on its own clock, so,
as long as two clocks' rates disagree by at most ``max_drift`` over
``duration``, each of them refuses other leaders until after the leader
stopped using the lease. Any quorum another leader needs for phase 1
includes one of them, so no other leader's ballot is adopted, and nothing
is decided by anyone else, while the lease is in use.

Errors: a message of another role's type is the caller's mistake
(``TypeError``). A malformed message from a peer (negative ballot, slot and
batch counts that differ, an unknown leader) is counted in ``stats`` and
dropped; the acceptor lives on.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from actorfw.kernels import ballot as kb
from actorfw.protocols.dispatch import Dispatch
from actorfw.protocols.paxos.messages import (
    Batch,
    Collect,
    LeaseGrant,
    LeaseRequest,
    P1a,
    P1b,
    P2a,
    P2b,
    Slots,
    handled_where,
    is_slots,
)
from actorfw.protocols.paxos.records import Accepted, Collected, LeaseGranted, Promised, Record
from actorfw.protocols.paxos.types import Config, Effects

__all__ = ["Acceptor"]

_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY.setflags(write=False)
_COMPACT_MIN = 4096
_MAX_LEADER: int = kb.MAX_LEADER
_NOBODY = -1
"""The lease holder of an acceptor restarted with leases pending: nobody may raise its promise."""


class _Chunk:
    """Pvalues accepted together: slots, their ballot(s), their batches."""

    __slots__ = ("ballots", "batches", "slots")

    def __init__(self, slots: Slots, ballots: Slots | int, batches: tuple[Batch, ...]) -> None:
        self.slots = slots
        self.ballots = ballots
        self.batches = batches

    def ballot_array(self) -> Slots:
        if isinstance(self.ballots, int):
            return np.full(len(self.slots), self.ballots, dtype=np.int64)
        return self.ballots


def _is_ballot(value: object) -> bool:
    return type(value) is int and 0 <= value <= 2**63 - 1


class Acceptor:
    """One acceptor: its promise, its accepted pvalues, its collection floor.

    Args:
        config: the configuration (who the leaders are, to answer them).
        me: this acceptor's address, one of ``config.acceptors``.

    Raises:
        ValueError: ``me`` is not an acceptor of ``config``.

    Example::

        acceptor = Acceptor(config, "n1")
        effects = acceptor.handle(P1a(ballot=kb.make_ballot(1, 0), from_slot=1))
        # persist effects.persist, sync, then send effects.send
    """

    __slots__ = (
        "_chunks",
        "_compact_at",
        "_entries",
        "_floor",
        "_lease_holder",
        "_lease_max",
        "_lease_until",
        "_now",
        "_out",
        "_promise_written",
        "_promised",
        "_restart_wait",
        "config",
        "me",
        "stats",
    )

    def __init__(self, config: Config, me: str) -> None:
        config.acceptor_index(me)
        self.config = config
        self.me = me
        self._promised: int = kb.NO_BALLOT
        self._promise_written: int = kb.NO_BALLOT  # the ballot under the ``promised`` key
        self._floor = 0
        self._chunks: list[_Chunk] = []
        self._entries = 0
        self._compact_at = _COMPACT_MIN
        self._now = -math.inf
        self._lease_holder = _NOBODY
        self._lease_until = -math.inf
        self._lease_max = 0.0
        self._restart_wait = False
        self._out = Effects()
        self.stats: Counter[str] = Counter()
        """Counts of notable inputs: ``stale_p1a``, ``leased_p1a``, ``malformed``, ..."""

    @classmethod
    def restore(
        cls, config: Config, me: str, records: Iterable[Record], *, now: float | None = None
    ) -> Acceptor:
        """An acceptor rebuilt from the records it persisted before a crash (any order).

        Args:
            now: the time of the restart on this acceptor's clock. If it
                ever granted leases, it lets no leader raise its promise
                until ``now`` plus the longest lease it granted (rule 7);
                None: count from its first input instead.

        Raises:
            TypeError: a record no acceptor writes (a leader's, say).
        """
        acceptor = cls(config, me)
        for record in records:
            if isinstance(record, Promised):
                acceptor._promised = max(acceptor._promised, record.ballot)
                acceptor._promise_written = max(acceptor._promise_written, record.ballot)
            elif isinstance(record, Accepted):
                acceptor._promised = max(acceptor._promised, record.ballot)
                acceptor._append(_Chunk(record.slots, record.ballot, record.batches))
            elif isinstance(record, Collected):
                acceptor._floor = max(acceptor._floor, record.floor)
            elif isinstance(record, LeaseGranted):
                acceptor._lease_max = max(acceptor._lease_max, record.duration)
            else:
                raise TypeError(f"{record!r} is not an acceptor record")
        acceptor._reduce()
        if acceptor._lease_max > 0:
            if now is None:
                acceptor._restart_wait = True
            else:
                acceptor._enter(now)
                acceptor._lease_until = now + acceptor._lease_max
        return acceptor

    # -- state -------------------------------------------------------------------------

    @property
    def promised(self) -> int:
        """The promised ballot (``NO_BALLOT`` before any)."""
        return self._promised

    @property
    def floor(self) -> int:
        """Slots below this were garbage-collected."""
        return self._floor

    @property
    def entries(self) -> int:
        """Pvalues held in memory (before the periodic reduction drops superseded ones)."""
        return self._entries

    def lease(self) -> tuple[str | None, float]:
        """``(holder, until)``: the leader address holding this acceptor's lease and its end.

        ``until`` is on this acceptor's clock; the lease runs while
        ``now < until``. The holder is None when no leader holds it (after
        a restart, while any lease granted before the crash may run).
        """
        holder = self._lease_holder
        address = None if holder == _NOBODY else self.config.leaders[holder]
        return address, self._lease_until

    def accepted(self) -> tuple[Slots, Slots, tuple[Batch, ...]]:
        """The accepted pvalues, highest ballot per slot: ``(slots, ballots, batches)`` by slot."""
        chunk = self._reduce()
        if chunk is None:
            return _EMPTY, _EMPTY, ()
        return chunk.slots, chunk.ballot_array(), chunk.batches

    # -- inputs ------------------------------------------------------------------------

    def handle(self, message: Any, now: float = 0.0) -> Effects:
        """Take one message (``P1a``, ``P2a``, ``Collect`` or ``LeaseRequest``).

        ``now`` is this acceptor's clock (seconds, monotonic); only leases
        use it (rules 6, 7), so a driver that never sees a lease request
        may leave it at 0.

        Raises:
            TypeError: ``message`` is for another role.
        """
        self._enter(now)
        self._dispatch(message)
        return self._flush()

    def handle_all(self, messages: Iterable[Any], now: float = 0.0) -> Effects:
        """Take several messages in order; one ``Effects`` for all of them."""
        self._enter(now)
        for message in messages:
            self._dispatch(message)
        return self._flush()

    def tick(self, now: float) -> Effects:
        """Nothing is ever due: an acceptor only answers (here for the driver's contract)."""
        self._enter(now)
        return self._flush()

    def next_deadline(self) -> float | None:
        """None: an acceptor acts only on messages."""
        return None

    def collect(self, below: int) -> Effects:
        """Drop the pvalues of slots below ``below`` and refuse those slots from now on (rule 4).

        Call it only for slots that every replica has applied (or
        snapshotted). Lowering the floor is a no-op.

        Raises:
            ValueError: ``below`` is negative or not an int.
        """
        if type(below) is not int or below < 0:
            raise ValueError(f"collect(below) takes a slot number, not {below!r}")
        self._collect(below)
        return self._flush()

    # -- handlers ----------------------------------------------------------------------

    def _dispatch(self, message: Any) -> None:
        _DISPATCH(self, self.me, message)

    def _enter(self, now: float) -> None:
        self._now = max(self._now, now)
        if self._restart_wait:
            self._restart_wait = False
            self._lease_until = self._now + self._lease_max

    def _leased_against(self, ballot: int) -> bool:
        """Would raising the promise to ``ballot`` break a running lease (rules 6, 7)?"""
        return (
            ballot > self._promised
            and self._now < self._lease_until
            and ballot & _MAX_LEADER != self._lease_holder
        )

    def _leader_of(self, ballot: int) -> str | None:
        index: int = ballot & _MAX_LEADER
        if index >= len(self.config.leaders):
            return None
        return self.config.leaders[index]

    def _on_p1a(self, msg: P1a) -> None:
        if not (_is_ballot(msg.ballot) and type(msg.from_slot) is int and msg.from_slot >= 0):
            self.stats["malformed"] += 1
            return
        leader = self._leader_of(msg.ballot)
        if leader is None:
            self.stats["malformed"] += 1
            return
        if self._leased_against(msg.ballot):
            self.stats["leased_p1a"] += 1
            self._out.send.append(
                (leader, P1b(self.me, self._promised, self._floor, _EMPTY, _EMPTY, (), msg.ballot))
            )
            return
        promise, adopted = kb.phase1(self._promised, msg.ballot)
        if promise != self._promised:
            self._promised = self._promise_written = promise
            self._out.persist.append(Promised(promise))
        if not adopted:
            self.stats["stale_p1a"] += 1
            refusal = P1b(self.me, promise, self._floor, _EMPTY, _EMPTY, (), msg.ballot)
            self._out.send.append((leader, refusal))
            return
        slots, ballots, batches = self.accepted()
        low = max(msg.from_slot, self._floor)
        if len(slots) and slots[0] < low:
            start = int(np.searchsorted(slots, low))
            slots, ballots, batches = slots[start:], ballots[start:], batches[start:]
        answer = P1b(self.me, promise, self._floor, slots, ballots, batches, msg.ballot)
        self._out.send.append((leader, answer))

    def _on_p2a(self, msg: P2a) -> None:
        slots, batches = msg.slots, msg.batches
        if not (
            _is_ballot(msg.ballot)
            and is_slots(slots)
            and type(batches) is tuple
            and len(batches) == len(slots)
        ):
            self.stats["malformed"] += 1
            return
        leader = self._leader_of(msg.ballot)
        if leader is None:
            self.stats["malformed"] += 1
            return
        try:
            promise, codes = kb.phase2(self._promised, slots, msg.ballot, self._floor)
        except ValueError:  # a negative slot
            self.stats["malformed"] += 1
            return
        accepted = codes == kb.ACCEPTED
        n_accepted = int(np.count_nonzero(accepted))
        collected = _EMPTY
        if n_accepted == len(slots):
            taken, taken_batches = slots, batches
        else:
            refused_collected = codes == kb.COLLECTED
            if refused_collected.any():
                collected = slots[refused_collected]
                self.stats["collected_p2a"] += 1
            if n_accepted == 0:
                taken, taken_batches = _EMPTY, ()
                if not len(collected):
                    self.stats["stale_p2a"] += 1
            else:
                index = np.flatnonzero(accepted)
                taken = slots[index]
                taken_batches = tuple(batches[i] for i in index.tolist())
        self._promised = promise
        if n_accepted:
            self._out.persist.append(Accepted(msg.ballot, taken, taken_batches))
            self._append(_Chunk(taken, msg.ballot, taken_batches))
        self._out.send.append((leader, P2b(self.me, promise, taken, collected)))

    def _on_collect(self, msg: Collect) -> None:
        if type(msg.below) is not int or msg.below < 0:
            self.stats["malformed"] += 1
            return
        self._collect(msg.below)

    def _on_lease_request(self, msg: LeaseRequest) -> None:
        duration = msg.duration
        if not (
            _is_ballot(msg.ballot)
            and type(msg.round) is int
            and type(duration) in (int, float)
            and 0 < duration < math.inf
        ):
            self.stats["malformed"] += 1
            return
        leader = self._leader_of(msg.ballot)
        if leader is None:
            self.stats["malformed"] += 1
            return
        if msg.ballot < self._promised or self._leased_against(msg.ballot):
            self.stats["lease_refused"] += 1
            self._out.send.append((leader, LeaseGrant(self.me, self._promised, msg.round)))
            return
        if msg.ballot > self._promised:
            self._promised = self._promise_written = msg.ballot
            self._out.persist.append(Promised(msg.ballot))
        if duration > self._lease_max:
            self._lease_max = float(duration)
            self._out.persist.append(LeaseGranted(float(duration)))
        holder = msg.ballot & _MAX_LEADER
        until = self._now + duration
        if holder == self._lease_holder:
            until = max(until, self._lease_until)
        self._lease_holder = holder
        self._lease_until = until
        self.stats["lease_granted"] += 1
        self._out.send.append((leader, LeaseGrant(self.me, msg.ballot, msg.round)))

    # -- internals ---------------------------------------------------------------------

    def _collect(self, below: int) -> None:
        if below <= self._floor:
            return
        chunk = self._reduce()
        dropped = _EMPTY
        if chunk is not None and len(chunk.slots) and chunk.slots[0] < below:
            start = int(np.searchsorted(chunk.slots, below))
            dropped = chunk.slots[:start]
            ballots = chunk.ballot_array()
            kept = _Chunk(chunk.slots[start:], ballots[start:], chunk.batches[start:])
            self._chunks = [kept] if len(kept.slots) else []
            self._entries = len(kept.slots)
        if len(dropped) and self._promised > self._promise_written:
            # The dropped Accepted records may be all that holds a promise a
            # p2a raised (rule 5): write it before they go, in the same step.
            self._promise_written = self._promised
            self._out.persist.append(Promised(self._promised))
        self._floor = below
        self._out.persist.append(Collected(below, dropped))

    def _append(self, chunk: _Chunk) -> None:
        self._chunks.append(chunk)
        self._entries += len(chunk.slots)
        if self._entries > self._compact_at:
            self._reduce()

    def _reduce(self) -> _Chunk | None:
        """Reduce the chunks to one: the highest-ballot pvalue per slot at or above the floor."""
        chunks = self._chunks
        if not chunks:
            return None
        if len(chunks) == 1 and not isinstance(chunks[0].ballots, int):
            return chunks[0]
        if len(chunks) == 1:
            slots, ballots = chunks[0].slots, chunks[0].ballot_array()
            batches: tuple[Batch, ...] | list[Batch] = chunks[0].batches
        else:
            slots = np.concatenate([c.slots for c in chunks])
            ballots = np.concatenate([c.ballot_array() for c in chunks])
            batches = [b for c in chunks for b in c.batches]
        best_slots, best_ballots, index = kb.pmax(slots, ballots)
        if self._floor and len(best_slots) and best_slots[0] < self._floor:
            start = int(np.searchsorted(best_slots, self._floor))
            best_slots, best_ballots, index = (
                best_slots[start:],
                best_ballots[start:],
                index[start:],
            )
        reduced = _Chunk(best_slots, best_ballots, tuple(batches[i] for i in index.tolist()))
        self._chunks = [reduced] if len(best_slots) else []
        self._entries = len(best_slots)
        self._compact_at = max(_COMPACT_MIN, 2 * self._entries)
        return reduced if self._chunks else None

    def _flush(self) -> Effects:
        out = self._out
        self._out = Effects()
        return out

    def __repr__(self) -> str:
        return (
            f"<Acceptor {self.me} promised={self._promised} floor={self._floor} "
            f"entries={self._entries}>"
        )


_DISPATCH: Dispatch[Acceptor] = Dispatch(
    "acceptor",
    {
        P1a: Acceptor._on_p1a,
        P2a: Acceptor._on_p2a,
        Collect: Acceptor._on_collect,
        LeaseRequest: Acceptor._on_lease_request,
    },
    handled_where,
)
"""Message type -> handler: the acceptor's whole input alphabet."""
