"""What the Paxos roles persist, and how those records map to storage keys and values.

A role core never writes anything itself: a step returns, in
``Effects.persist``, typed records that must be durable before any message
of the same step leaves the node. The driver turns them into key-value
writes with :func:`storage_ops`, applies them in one atomic batch, syncs,
and only then sends. After a crash it reads its namespace back with
:func:`records_from_storage` and hands the records to the role's
``restore``.

Records:

- :class:`Promised` (acceptor): the promise was raised to ``ballot``.
- :class:`Accepted` (acceptor): pvalues ``(ballot, slots[i], batches[i])``
  were accepted (which also raises the promise to ``ballot``).
- :class:`Collected` (acceptor): pvalues below ``floor`` were dropped; the
  listed slots are the ones to delete.
- :class:`LeaderBallot` (leader): the leader is about to use ``ballot``.
  A leader must never reuse a ballot after a restart: two p2a with one
  ballot and different batches for a slot would break Paxos.
- :class:`LeaseGranted` (acceptor): the longest lease it ever granted
  (written before the first grant that long). A restarted acceptor does
  not know whose lease may still be running, so it lets no leader raise its
  promise for that long after it restarts.
- :class:`Decided` (replica): ``batches[i]`` was applied at slot
  ``slot + i``. A replica's ``slot_out`` tells leaders and peers that every
  slot below it is decided and held there (leaders then skip those slots in
  phase 1), so its log must survive a crash; the restarted replica replays
  it into a fresh state machine.
- :class:`Snapshotted` (replica): the state machine's snapshot and the
  client sessions after applying every slot below ``slot``. A restarted
  replica restores it, then replays the log from ``slot`` on.
- :class:`Truncated` (replica): the log entries of slots
  ``start .. below - 1`` are deleted (written in the same step as the
  snapshot that covers them, so a crash never leaves a log with neither).
  It has no key of its own and never comes back from storage.

Storage layout (keys are bytes and scan in byte order; one namespace per
role instance, so the keys need no role prefix):

===================  =======================================================
key                  value
===================  =======================================================
``promised``         the promised ballot
``floor``            the collection floor
``acc/<slot>``       ``(ballot, batch)`` of the slot's accepted pvalue;
                     ``<slot>`` is 8 bytes big-endian, so slots scan in order
``ballot``           the leader's highest used ballot
``lease``            the longest lease the acceptor granted (seconds)
``log/<slot>``       the batch a replica applied at the slot (8 bytes
                     big-endian)
``snap``             ``(slot, state, sessions)`` of the replica's latest
                     snapshot
===================  =======================================================

Values are message values encoded with :func:`actorfw.values.codec.encode`
and framed as ``u32 n_buffers, n x u64 buffer length, u32 body length,
body, buffers`` (all big-endian), so operations holding bytes or arrays
survive too. Only the highest-ballot pvalue of each slot matters, and a
later accept of a slot always has a ballot at least as high as the earlier
one, so overwriting ``acc/<slot>`` keeps exactly what the acceptor needs.

Example::

    with storage.batch() as batch:
        for record in effects.persist:
            for key, value in storage_ops(record):
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
    await storage.sync()
    ...                                   # now send effects.send
    acceptor = Acceptor.restore(config, me, records_from_storage(storage.scan()))
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

from actorfw.kernels import ballot as kb
from actorfw.protocols.paxos.messages import Batch, Sessions, Slots
from actorfw.values.packed import pack_value, unpack_value

__all__ = [
    "CODEC",
    "Accepted",
    "Collected",
    "Decided",
    "LeaderBallot",
    "LeaseGranted",
    "PaxosRecords",
    "Promised",
    "Record",
    "Snapshotted",
    "Truncated",
    "pack_value",
    "records_from_storage",
    "storage_ops",
    "unpack_value",
]


@dataclass(frozen=True)
class Promised:
    """The acceptor's promise is now ``ballot`` (persist before answering the p1a)."""

    ballot: int


@dataclass(frozen=True, eq=False)
class Accepted:
    """The acceptor accepted ``(ballot, slots[i], batches[i])`` for each ``i``.

    Implies a promise of at least ``ballot``.
    """

    ballot: int
    slots: Slots
    batches: tuple[Batch, ...]


@dataclass(frozen=True, eq=False)
class Collected:
    """Pvalues below ``floor`` are gone; ``slots`` are the ones that were stored."""

    floor: int
    slots: Slots


@dataclass(frozen=True)
class LeaderBallot:
    """The leader uses ``ballot`` from now on (persist before its p1a leaves)."""

    ballot: int

    @staticmethod
    def highest(records: Iterable[object]) -> int:
        """The highest ballot a leader's records say it used (``NO_BALLOT``: none).

        Raises:
            TypeError: a record no leader writes.
        """
        used: int = kb.NO_BALLOT
        for record in records:
            if not isinstance(record, LeaderBallot):
                raise TypeError(f"{record!r} is not a leader record")
            used = max(used, record.ballot)
        return used


@dataclass(frozen=True)
class Decided:
    """The replica applied ``batches[i]`` at slot ``slot + i`` (persist before reporting it)."""

    slot: int
    batches: tuple[Batch, ...]


@dataclass(frozen=True)
class LeaseGranted:
    """The acceptor grants leases of up to ``duration`` seconds (persist before the grant)."""

    duration: float


@dataclass(frozen=True, eq=False)
class Snapshotted:
    """The replica's state after applying every slot below ``slot``.

    ``state`` is the state machine's snapshot, ``sessions`` the client
    table (client -> ``(seq, result)``) that keeps commands exactly-once.
    Persist before reporting a ``slot_out`` it covers.
    """

    slot: int
    state: Any
    sessions: Sessions


@dataclass(frozen=True)
class Truncated:
    """The replica's log entries of slots ``start .. below - 1`` are deleted."""

    start: int
    below: int


Record: TypeAlias = (
    Promised
    | Accepted
    | Collected
    | LeaseGranted
    | LeaderBallot
    | Decided
    | Snapshotted
    | Truncated
)
"""Anything a role asks to persist."""

PROMISED_KEY = b"promised"
FLOOR_KEY = b"floor"
BALLOT_KEY = b"ballot"
LEASE_KEY = b"lease"
SNAPSHOT_KEY = b"snap"
ACCEPTED_PREFIX = b"acc/"
LOG_PREFIX = b"log/"

_U64 = struct.Struct(">Q")


def _slot_key(slot: int) -> bytes:
    return ACCEPTED_PREFIX + _U64.pack(slot)


def storage_ops(record: Record) -> list[tuple[bytes, bytes | None]]:
    """The key-value writes that make ``record`` durable: ``(key, value)``, None deletes.

    Apply all the writes of one step's records in one atomic batch.
    """
    if isinstance(record, Accepted):
        ballot = record.ballot
        return [
            (_slot_key(slot), pack_value((ballot, batch)))
            for slot, batch in zip(record.slots.tolist(), record.batches, strict=True)
        ]
    if isinstance(record, Decided):
        return [
            (LOG_PREFIX + _U64.pack(record.slot + i), pack_value(batch))
            for i, batch in enumerate(record.batches)
        ]
    if isinstance(record, Promised):
        return [(PROMISED_KEY, pack_value(record.ballot))]
    if isinstance(record, Collected):
        ops: list[tuple[bytes, bytes | None]] = [
            (_slot_key(slot), None) for slot in record.slots.tolist()
        ]
        ops.append((FLOOR_KEY, pack_value(record.floor)))
        return ops
    if isinstance(record, LeaderBallot):
        return [(BALLOT_KEY, pack_value(record.ballot))]
    if isinstance(record, Snapshotted):
        return [(SNAPSHOT_KEY, pack_value((record.slot, record.state, record.sessions)))]
    if isinstance(record, Truncated):
        return [(LOG_PREFIX + _U64.pack(slot), None) for slot in range(record.start, record.below)]
    if isinstance(record, LeaseGranted):
        return [(LEASE_KEY, pack_value(float(record.duration)))]
    raise TypeError(f"{record!r} is not a Paxos record")


def records_from_storage(items: Iterable[tuple[bytes, bytes]]) -> list[Record]:
    """Rebuild the records a role persisted from its namespace's ``(key, value)`` pairs.

    Consecutive slots accepted under one ballot come back as one
    :class:`Accepted`, consecutive applied slots as one :class:`Decided`.
    The order of ``items`` does not matter.

    Raises:
        ValueError: a key that no Paxos role writes, or a value of the wrong shape.
    """
    records: list[Record] = []
    pvalues: list[tuple[int, int, Batch]] = []
    logged: list[tuple[int, Batch]] = []
    for key, value in items:
        key = bytes(key)
        if key.startswith(LOG_PREFIX) and len(key) == len(LOG_PREFIX) + 8:
            batch = unpack_value(value)
            if type(batch) is not tuple:
                raise ValueError(f"stored batch under {key!r} is not a tuple")
            logged.append((_U64.unpack_from(key, len(LOG_PREFIX))[0], batch))
            continue
        if key.startswith(ACCEPTED_PREFIX) and len(key) == len(ACCEPTED_PREFIX) + 8:
            slot = _U64.unpack_from(key, len(ACCEPTED_PREFIX))[0]
            stored = unpack_value(value)
            if not (type(stored) is tuple and len(stored) == 2 and type(stored[0]) is int):
                raise ValueError(f"stored pvalue of slot {slot} is not (ballot, batch)")
            pvalues.append((slot, stored[0], stored[1]))
            continue
        if key == SNAPSHOT_KEY:
            stored = unpack_value(value)
            if not (
                type(stored) is tuple
                and len(stored) == 3
                and type(stored[0]) is int
                and type(stored[2]) is dict
            ):
                raise ValueError("stored snapshot is not (slot, state, sessions)")
            records.append(Snapshotted(stored[0], stored[1], stored[2]))
            continue
        if key == LEASE_KEY:
            duration = unpack_value(value)
            if type(duration) is not float:
                raise ValueError(f"stored lease duration is {duration!r}, not a float")
            records.append(LeaseGranted(duration))
            continue
        if key in (PROMISED_KEY, FLOOR_KEY, BALLOT_KEY):
            number = unpack_value(value)
            if type(number) is not int:
                raise ValueError(f"stored {key.decode()} is {number!r}, not an int")
            if key == PROMISED_KEY:
                records.append(Promised(number))
            elif key == FLOOR_KEY:
                records.append(Collected(number, np.zeros(0, np.int64)))
            else:
                records.append(LeaderBallot(number))
            continue
        raise ValueError(f"{key!r} is not a key a Paxos role writes")
    pvalues.sort(key=lambda p: p[0])
    start = 0
    while start < len(pvalues):
        end = start + 1
        while end < len(pvalues) and pvalues[end][1] == pvalues[start][1]:
            end += 1
        run = pvalues[start:end]
        records.append(
            Accepted(
                run[0][1],
                np.array([p[0] for p in run], dtype=np.int64),
                tuple(p[2] for p in run),
            )
        )
        start = end
    logged.sort(key=lambda entry: entry[0])
    start = 0
    while start < len(logged):
        end = start + 1
        while end < len(logged) and logged[end][0] == logged[end - 1][0] + 1:
            end += 1
        records.append(Decided(logged[start][0], tuple(b for _, b in logged[start:end])))
        start = end
    return records


class PaxosRecords:
    """The Paxos roles' records as a :class:`~actorfw.protocols.effects.RecordCodec`.

    :func:`storage_ops` and :func:`records_from_storage`, for a driver.
    """

    __slots__ = ()

    def ops(self, record: Record) -> list[tuple[bytes, bytes | None]]:
        """See :func:`storage_ops`."""
        return storage_ops(record)

    def load(self, items: Iterable[tuple[bytes, bytes]]) -> list[Record]:
        """See :func:`records_from_storage`."""
        return records_from_storage(items)


CODEC = PaxosRecords()
"""The codec every Paxos role's driver stores its records with."""
