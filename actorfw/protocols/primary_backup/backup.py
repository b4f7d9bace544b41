"""The backup's side of copying: take the primary's entries in order, durably, and fence old epochs.

The rules (numbers are cited by the tests):

1. **Epochs only rise.** An Append from an epoch below the highest this
   backup has seen is refused: the backup answers :class:`Stale`, so a
   deposed primary learns it at once, and takes nothing from it. A higher
   epoch is recorded (:class:`EpochSeen`) before any of its entries.
2. **No gaps, no forks.** An Append is taken only if the log holds an
   entry of ``prev_epoch`` at ``prev``; otherwise the backup answers
   :class:`Mismatch` with where to resume: its log's end, or, when the
   entry at ``prev`` is of another epoch, the position before that
   epoch's first entry (so the primary skips a whole divergent run at once).
3. **Duplicates are harmless.** An entry the log already holds (same
   position, same epoch) is skipped; a re-sent Append is acknowledged again.
4. **A divergent tail is discarded, and said.** An entry at a position the
   log holds with another epoch truncates the log there
   (:class:`Truncated`); the entries dropped are reported in
   :class:`Discarded`. In ``sync`` mode a committed entry is never
   discarded: an Append that would is refused (it cannot come from a
   primary elected by the rules). In ``async`` mode (:attr:`Backup.lossy`)
   committed entries may be lost at a failover: they are discarded too, and
   counted in :attr:`Discarded.committed`; if the divergence reaches what
   the application has applied, or what a snapshot covers, the backup
   starts again from nothing (:class:`Rebuilt`): its log is emptied, it
   answers :class:`Mismatch` with hint 0, and the primary sends its log
   from the start or its snapshot.
5. **Acknowledged after durable.** :class:`Acked` leaves under rule 2 of
   :mod:`actorfw.protocols.effects`: once the entries it acknowledges are
   durable here.
6. **Apply in order.** Entries up to the primary's ``committed`` (and what
   this log matches) are handed to the application as :class:`Applied`,
   each once, in position order, after they are durable.
7. **Below the snapshot, nothing to check** (``sync`` mode). Positions at
   or below the log's base are covered by a snapshot of committed entries,
   which every log holds alike: an Append that resumes below the base
   matches there, and its entries up to the base are skipped as held. In
   ``async`` mode committed entries may differ, so an Append below the base
   is compared with the log's epoch runs (its epoch at ``prev``, then each
   entry's up to the base): on a difference, or an epoch the runs no longer
   know, the backup starts again from nothing (rule 4).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from actorfw.protocols.effects import Effects
from actorfw.protocols.primary_backup.log import Log
from actorfw.protocols.primary_backup.messages import (
    Acked,
    Append,
    Applied,
    Discarded,
    Entry,
    EpochSeen,
    Mismatch,
    Rebuilding,
    Rebuilt,
    Record,
    Refusal,
    Snapshotted,
    Stale,
    Truncated,
    Written,
)

__all__ = ["Backup"]


class Backup:
    """One node's copy of a primary's log (see the module's rules).

    Args:
        name: this node, as primaries address it.
    """

    __slots__ = (
        "applied",
        "committed",
        "epoch",
        "log",
        "lossy",
        "matched",
        "name",
        "rebuilding",
        "refused",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.epoch = 0
        self.log = Log()
        self.committed = 0  # the highest position known committed (and held here)
        self.applied = 0  # handed to the application
        self.refused = 0
        self.lossy = False
        """``async`` mode: committed entries may be discarded (rules 4, 7)."""
        self.matched = False
        """Did the last Append match this log (and was it acknowledged)?"""
        self.rebuilding = False
        """Started again from nothing, not caught up yet (kept by the member, rule 11)."""

    @classmethod
    def restore(cls, name: str, records: Iterable[Record]) -> Backup:
        """The backup that ``records`` leave, as the records codec reads them back.

        That is the epoch, the latest snapshot, then the stored batches in
        position order (:mod:`actorfw.protocols.primary_backup.records`);
        records in the order they were written are not (a snapshot there
        would cut the batches written before it).
        """
        backup = cls(name)
        for record in records:
            backup._replay(record)
        return backup

    def _replay(self, record: Record) -> None:
        if type(record) is EpochSeen:
            self.epoch = max(self.epoch, record.epoch)
        elif type(record) is Truncated:
            self.log.truncate(record.start)
        elif type(record) is Written:
            self.log.write(record.start, record.entries)
        elif type(record) is Snapshotted:
            self.log.reset(record.base, record.base_epoch, record.runs)
            self.committed = self.applied = record.position
        elif type(record) is Rebuilding:
            self.rebuilding = record.on
        else:
            raise TypeError(f"not a backup record: {record!r}")

    @property
    def end(self) -> int:
        """The last position in the log (0: empty)."""
        return self.log.end

    def epoch_at(self, position: int) -> int:
        """The epoch of the entry at ``position`` (0 for position 0; ``position >= base``)."""
        return self.log.epoch_at(position)

    # -- steps ---------------------------------------------------------------------------

    def handle_all(self, messages: list[Any], now: float) -> Effects:
        """Take Appends (anything else is refused): one step."""
        effects = Effects()
        for message in messages:
            if type(message) is Append:
                self._append(message, effects)
            else:
                self._refuse(effects, "?", f"a backup takes Append, not {type(message).__name__}")
        self._apply(effects)
        return effects

    def tick(self, now: float) -> Effects:
        """Nothing is due on time: a backup only answers."""
        return Effects()

    def next_deadline(self) -> float | None:
        """None: only messages wake a backup."""
        return None

    def _refuse(self, effects: Effects, peer: str, reason: str) -> None:
        self.refused += 1
        effects.refused.append(Refusal(peer, reason))

    def _append(self, a: Append, effects: Effects) -> None:
        self.matched = False
        if not _well_formed(a):
            self._refuse(effects, str(getattr(a, "primary", "?")), f"malformed Append {a!r}")
            return
        if a.epoch < self.epoch:  # rule 1
            effects.send_now.append((a.primary, Stale(self.epoch, self.name)))
            return
        if a.epoch > self.epoch:
            self.epoch = a.epoch
            effects.persist.append(EpochSeen(a.epoch))
        if a.prev > self.end:  # rule 2: a gap
            effects.send.append((a.primary, Mismatch(a.epoch, self.name, self.end)))
            return
        log = self.log
        if a.prev < log.base and self.lossy:  # rule 7: compare by the epoch runs
            diverged = self._diverged_below_base(a)
            if diverged:
                self._rebuild(a, diverged, effects)  # rule 4: the snapshot is not theirs
                return
        if a.prev >= log.base and log.epoch_at(a.prev) != a.prev_epoch:  # rule 2: a fork
            if self.lossy and a.prev == log.base:
                self._rebuild(a, a.prev, effects)  # rule 4: the snapshot is not theirs
                return
            effects.send.append((a.primary, Mismatch(a.epoch, self.name, self._run_start(a.prev))))
            return
        position = a.prev
        fresh: list[Entry] = []
        for entry in a.entries:
            position += 1
            if position <= log.base:
                continue  # rule 7
            if not fresh and position <= self.end:
                if log.epoch_at(position) == entry.epoch:
                    continue  # rule 3
                if position <= self.committed:  # rule 4: a committed entry
                    if not self.lossy:
                        self._refuse(
                            effects,
                            a.primary,
                            f"an Append of epoch {a.epoch} would discard committed "
                            f"position {position}",
                        )
                        return
                    if position <= self.applied:
                        self._rebuild(a, position, effects)
                        return
                dropped = log.between(position, self.end - position + 1)
                lost = max(0, self.committed - position + 1)
                effects.persist.append(Truncated(position, self.end))
                log.truncate(position)
                self.committed = min(self.committed, position - 1)
                effects.outputs.append(Discarded(position, dropped, lost))
            fresh.append(entry)
        if fresh:
            start = self.end + 1
            log.write(start, fresh)
            effects.persist.append(Written(start, tuple(fresh)))
        upto = a.prev + len(a.entries)
        effects.send.append((a.primary, Acked(a.epoch, self.name, upto)))  # rule 5
        self.matched = True
        # What this log matches the primary's on is known committed up to its end.
        self.committed = max(self.committed, min(a.committed, upto))

    def install(
        self, position: int, last_epoch: int, runs: Iterable[tuple[int, int]], end: int
    ) -> tuple[Discarded | None, list[int], bool]:
        """Replace the log with a snapshot's at ``position`` (a primary's log ends at ``end``).

        By log matching, this log agrees with the primary's up to the first
        position where their epochs differ (the primary's by its ``runs``);
        from there on (or from an entry whose epoch the runs do not reach)
        its entries are reported discarded, those known committed counted
        (``async`` mode: in ``sync`` mode committed entries agree). Returns
        that report (None: none was discarded), the stored batches to delete
        (every one), and whether the divergence lay under this log's own
        snapshot (then some entries it covered, how many unknown, were lost).
        """
        log = self.log
        theirs = Log()
        theirs.reset(end, 0, runs)
        first = 0
        covered = bool(self.lossy and log.base and theirs.epoch_of(log.base) != log.base_epoch)
        if covered:
            first = log.base + 1
        else:
            floor = log.base if self.lossy else max(self.committed, log.base)
            for p in range(floor + 1, log.end + 1):
                if theirs.epoch_of(p) != log.epoch_at(p):
                    first = p
                    break
        discarded = None
        if first and first <= log.end:
            lost = max(0, self.committed - first + 1)
            discarded = Discarded(first, log.between(first, log.end - first + 1), lost)
        dropped = log.reset(position, last_epoch, runs)
        self.committed = self.applied = position
        return discarded, dropped, covered

    def _diverged_below_base(self, a: Append) -> int:
        """Rule 7, ``async``: where ``a`` disagrees with this log's epoch runs, up to the base.

        0 if it agrees as far as it reaches (at ``prev``, then each entry up to
        the base); a position whose epoch the runs no longer know counts as
        a disagreement.
        """
        log = self.log
        if a.prev > 0 and log.epoch_of(a.prev) != a.prev_epoch:
            return a.prev
        position = a.prev
        for entry in a.entries:
            position += 1
            if position > log.base:
                break
            if log.epoch_of(position) != entry.epoch:
                return position
        return 0

    def _rebuild(self, a: Append, position: int, effects: Effects) -> None:
        """Rule 4, ``async``: the log diverges at ``position`` (or below); start from nothing.

        ``position`` past the base: the divergence is there exactly, and the
        entries from it on are discarded. At or below the base: every entry
        held is, and the snapshot covered some that differ too (how many is
        unknown: :attr:`Rebuilt.covered` says up to where).
        """
        log = self.log
        covered = log.base if position <= log.base else 0
        start = max(position, log.base + 1)
        dropped = log.between(start, log.end - start + 1) if start <= log.end else ()
        # Known committed from the divergence on, under the snapshot too when it is known.
        lost = max(0, self.committed - position + 1)
        effects.outputs.append(Discarded(start, dropped, lost))
        effects.outputs.append(Rebuilt(tuple(log.reset(0, 0, ())), covered))
        self.committed = self.applied = 0
        effects.send.append((a.primary, Mismatch(a.epoch, self.name, 0)))

    def _run_start(self, position: int) -> int:
        """The position before the first entry of the epoch run that holds ``position``."""
        epoch = self.epoch_at(position)
        floor = self.log.base if self.lossy else max(self.committed, self.log.base)
        while position > floor and self.epoch_at(position) == epoch:
            position -= 1
        return position

    def _apply(self, effects: Effects) -> None:
        while self.applied < self.committed:  # rule 6 (outputs leave after durable)
            self.applied += 1
            effects.outputs.append(Applied(self.applied, self.log.entry(self.applied)))


def _well_formed(a: Append) -> bool:
    """Types and ranges right, and the entries' epochs rising from ``prev_epoch`` to ``epoch``."""
    if not (isinstance(a.entries, tuple) and all(type(e) is Entry for e in a.entries)):
        return False
    epochs = [a.prev_epoch, *(e.epoch for e in a.entries), a.epoch]
    if not all(type(e) is int for e in epochs) or epochs != sorted(epochs):
        return False
    return (
        type(a.epoch) is int
        and a.epoch > 0
        and isinstance(a.primary, str)
        and type(a.prev) is int
        and a.prev >= 0
        and type(a.prev_epoch) is int
        and 0 <= a.prev_epoch <= a.epoch
        and (a.prev > 0 or a.prev_epoch == 0)
        and type(a.committed) is int
        and a.committed >= 0
        and all(e.epoch > 0 for e in a.entries)
    )
