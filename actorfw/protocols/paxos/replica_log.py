"""A replica's log of applied batches, and what of it is durable (replica rules 8, 9, 10, 13).

The log holds the applied batches from ``base`` on (a snapshot covers the
slots below). Each step, :meth:`ReplicaLog.records` says what to persist so
that storage matches it: the batches applied since the last step (one
:class:`Decided`), the latest snapshot (:class:`Snapshotted`) and what a
snapshot made droppable (:class:`Truncated`). The log also counts the
steps that persisted anything, so that when the driver reports them
durable (:meth:`ReplicaLog.made_durable`) it knows the ``slot_out`` that
is durable: the only progress a proposal may report (rule 13).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt

from actorfw.protocols.paxos.clients import Clients, restore_snapshot
from actorfw.protocols.paxos.messages import Batch
from actorfw.protocols.paxos.records import Decided, Record, Snapshotted, Truncated
from actorfw.protocols.paxos.types import FIRST_SLOT, StateMachine

__all__ = ["ReplicaLog", "read_records"]


def read_records(records: Iterable[Record]) -> tuple[dict[int, Batch], Snapshotted | None]:
    """A replica's persisted records: the logged batches by slot, and the latest snapshot.

    Raises:
        TypeError: a record no replica writes.
    """
    logged: dict[int, Batch] = {}
    snapshot: Snapshotted | None = None
    for record in records:
        if isinstance(record, Decided):
            for i, batch in enumerate(record.batches):
                logged[record.slot + i] = batch
        elif isinstance(record, Snapshotted):
            if snapshot is None or record.slot > snapshot.slot:
                snapshot = record
        else:
            raise TypeError(f"{record!r} is not a replica record")
    return logged, snapshot


class ReplicaLog:
    """The applied batches a replica holds, and their way to storage."""

    __slots__ = (
        "_applied_from",
        "_outs",
        "_persisted_base",
        "_persisting",
        "_snapshot",
        "base",
        "batches",
        "durable_out",
        "snapshot_slot",
    )

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        """The applied batches held, slot :attr:`base` first."""
        self.base = FIRST_SLOT
        """The slot of ``batches[0]``: older slots were truncated after a snapshot."""
        self.snapshot_slot = FIRST_SLOT
        """The slot of the latest snapshot taken, restored or installed (``FIRST_SLOT``: none)."""
        self.durable_out = FIRST_SLOT
        """The highest ``slot_out`` whose records are durable (rule 13)."""
        self._persisted_base = FIRST_SLOT  # persisted entries lie in [this, applied_from)
        self._applied_from = FIRST_SLOT
        self._snapshot: Snapshotted | None = None  # to persist at the end of the step
        self._persisting = 0  # steps that persisted anything
        self._outs: deque[tuple[int, int]] = deque()  # (such a step, slot_out after it)

    def replay(
        self, me: str, records: Iterable[Record], machine: StateMachine, clients: Clients
    ) -> int:
        """After a restart: restore the latest snapshot, re-run the log after it; the slot_out.

        ``machine`` and ``clients`` must be fresh: the snapshot's state and
        sessions go into them, then every logged command after it runs
        through ``clients`` (skipping duplicates as the first run did).

        Raises:
            TypeError: a record no replica writes, or a snapshot and a
                machine that cannot restore one.
            ValueError: the persisted log has a gap.
        """
        logged, snapshot = read_records(records)
        slot = FIRST_SLOT
        if snapshot is not None:
            restore_snapshot(f"replica {me!r}", machine, clients, snapshot.state, snapshot.sessions)
            slot = self.snapshot_slot = snapshot.slot
        # The log tail kept below the snapshot (not applied: the snapshot covers it).
        base = slot
        while base - 1 in logged:
            base -= 1
        batches = [logged[s] for s in range(base, slot)]
        for number in sorted(s for s in logged if s >= slot):
            if number != slot:
                raise ValueError(
                    f"replica {me!r}: the persisted log jumps from slot {slot} to {number}"
                )
            batches.append(logged[number])
            clients.apply(logged[number], machine.apply)
            slot += 1
        clients.forget_owed()
        self.batches = batches
        self.base = self._persisted_base = base
        self._applied_from = self.durable_out = slot
        return slot

    def applied(self, slot: int) -> Batch | None:
        """The batch applied at ``slot``, or None if not held (not applied, or truncated)."""
        index = slot - self.base
        if 0 <= index < len(self.batches):
            return self.batches[index]
        return None

    def between(self, start: int, end: int) -> list[Batch]:
        """The held batches of slots ``start`` to ``end - 1`` (``start >= base``)."""
        return self.batches[start - self.base : end - self.base]

    def decided_between(
        self, start: int, end: int, slot_out: int, decisions: Mapping[int, Batch]
    ) -> tuple[npt.NDArray[np.int64], tuple[Batch, ...]]:
        """The decisions a replica at ``slot_out`` holds for slots ``start`` to ``end - 1``.

        Applied ones from the log (``start >= base``), then those in
        ``decisions`` waiting above ``slot_out``: an answer to a peer's catch-up.
        """
        slots: list[int] = []
        batches: list[Batch] = []
        applied_end = min(end, slot_out)
        if start < applied_end:
            slots.extend(range(start, applied_end))
            batches.extend(self.between(start, applied_end))
        for slot in range(max(start, slot_out), end):
            batch = decisions.get(slot)
            if batch is not None:
                slots.append(slot)
                batches.append(batch)
        return np.array(slots, np.int64), tuple(batches)

    def snapshot(self, record: Snapshotted, log_tail: int) -> None:
        """A snapshot at ``record.slot`` was taken: persist it, drop the log below the tail."""
        slot = record.slot
        self.snapshot_slot = slot
        self._snapshot = record
        base = max(self.base, slot - log_tail)
        if base > self.base:
            del self.batches[: base - self.base]
            self.base = base

    def install(self, record: Snapshotted) -> None:
        """A peer's snapshot was installed at ``record.slot``: the log restarts empty there."""
        self.snapshot_slot = record.slot
        self._snapshot = record
        self.batches = []
        self.base = record.slot

    def records(self, slot_out: int) -> list[Record]:
        """What this step must persist, ``slot_out`` being the replica's at its end."""
        persist: list[Record] = []
        if self._snapshot is not None:
            persist.append(self._snapshot)
            self._snapshot = None
        # Drop persisted entries below the in-memory log (a snapshot covers them),
        # write the new ones.
        base = self.base
        if self._persisted_base < base:
            end = min(base, self._applied_from)
            if self._persisted_base < end:
                persist.append(Truncated(self._persisted_base, end))
            self._persisted_base = base
        if slot_out > self._applied_from:
            first = max(self._applied_from, base)
            if first < slot_out:
                persist.append(Decided(first, tuple(self.between(first, slot_out))))
            self._applied_from = slot_out
        if self._applied_from < base:  # installed past its log: nothing below is kept
            self._applied_from = base
        if persist:
            self._persisting += 1
            self._outs.append((self._persisting, slot_out))
        return persist

    def made_durable(self, steps: int) -> None:
        """The first ``steps`` steps that persisted anything are durable (rule 13)."""
        outs = self._outs
        while outs and outs[0][0] <= steps:
            self.durable_out = max(self.durable_out, outs.popleft()[1])
