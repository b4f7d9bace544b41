"""A member's log: the entries above a snapshot's base, and the epochs of every run.

Positions count from 1 and never restart. The log holds the entries at
positions ``base + 1`` to ``end``; those at and below ``base`` are covered by
the member's latest snapshot (or there are none: ``base`` 0). It keeps the
epoch of the entry at ``base``, so that an Append resuming at ``base`` can be
matched, and the epoch *runs* of its whole history (the first position of
each epoch's entries), so that a member installing a snapshot can tell which
of its own entries the snapshot's log also holds, and which it discards.

Each :meth:`Log.write` is one stored batch (one key, see
:mod:`actorfw.protocols.primary_backup.records`); the log remembers where its
stored batches start, so that compaction deletes exactly the keys it no
longer needs.

Bounds: the entries (the member compacts every ``snapshot_interval``),
the batch starts (one per batch held), and the runs: at most
:data:`MAX_RUNS` (the oldest go first; a position below the oldest run
kept has an unknown epoch, and an install counts such an entry of its own
as discarded rather than guess).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

from actorfw.protocols.primary_backup.messages import Entry

__all__ = ["MAX_RUNS", "Log"]

MAX_RUNS = 1024
"""Epoch runs a log remembers at most (one per epoch that appended entries it holds)."""


class Log:
    """Entries above a base, with the epochs of their runs (see the module)."""

    __slots__ = ("_entries", "base", "base_epoch", "run_epochs", "run_starts", "starts")

    def __init__(self) -> None:
        self._entries: list[Entry] = []  # position p is _entries[p - base - 1]
        self.base = 0
        """The last position covered by the snapshot, not held here (0: none)."""
        self.base_epoch = 0
        """The epoch of the entry at :attr:`base`."""
        self.run_starts: list[int] = []
        """The first position of each epoch run, rising (parallel to :attr:`run_epochs`)."""
        self.run_epochs: list[int] = []
        """The epoch of each run, rising."""
        self.starts: list[int] = []
        """Where each stored batch of the entries held begins, rising."""

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        """The entries held, from ``base + 1`` on."""
        return iter(self._entries)

    def __repr__(self) -> str:
        return f"Log(base={self.base}, end={self.end})"

    @property
    def end(self) -> int:
        """The last position in the log (``base`` when it holds no entry)."""
        return self.base + len(self._entries)

    def epoch_at(self, position: int) -> int:
        """The epoch of the entry at ``position`` (``base`` <= position <= ``end``)."""
        if position == self.base:
            return self.base_epoch
        return self._entries[position - self.base - 1].epoch

    def entry(self, position: int) -> Entry:
        """The entry at ``position`` (``base`` < position <= ``end``)."""
        return self._entries[position - self.base - 1]

    def between(self, start: int, count: int) -> tuple[Entry, ...]:
        """At most ``count`` entries from ``start`` on (``start > base``)."""
        first = start - self.base - 1
        return tuple(self._entries[first : first + count])

    def epoch_of(self, position: int) -> int | None:
        """The epoch this log's history has at ``position``, from its runs (None: unknown).

        Known for every position from the oldest run kept to ``end``, the
        compacted ones included.
        """
        if not 0 < position <= self.end:
            return None
        index = bisect.bisect_right(self.run_starts, position) - 1
        return self.run_epochs[index] if index >= 0 else None

    def runs(self) -> tuple[tuple[int, int], ...]:
        """The epoch runs as ``(first position, epoch)`` pairs."""
        return tuple(zip(self.run_starts, self.run_epochs, strict=True))

    # -- changes -------------------------------------------------------------------------

    def write(self, start: int, entries: Iterable[Entry]) -> None:
        """Put a stored batch at ``start`` on, cutting whatever the log held from there.

        Entries at or below ``base`` are skipped (the snapshot covers them): a
        batch read back may begin below a compacted base.
        """
        if start > self.end + 1:
            raise ValueError(f"a batch at {start} leaves a hole after {self.end}")
        self.truncate(max(start, self.base + 1))
        skip = self.base + 1 - start
        for entry in entries:
            if skip > 0:
                skip -= 1
                continue
            if not self.run_epochs or self.run_epochs[-1] != entry.epoch:
                self.run_starts.append(self.end + 1)
                self.run_epochs.append(entry.epoch)
                if len(self.run_starts) > MAX_RUNS:
                    del self.run_starts[0], self.run_epochs[0]
            self._entries.append(entry)
        if not self.starts or self.starts[-1] < start:
            self.starts.append(start)

    def truncate(self, start: int) -> None:
        """Drop the entries from ``start`` on (``start > base``), and their runs and batches."""
        if start <= self.base:
            raise ValueError(f"cannot truncate at {start}: the snapshot covers up to {self.base}")
        if start > self.end:
            return
        del self._entries[start - self.base - 1 :]
        cut = bisect.bisect_left(self.run_starts, start)
        del self.run_starts[cut:], self.run_epochs[cut:]
        del self.starts[bisect.bisect_left(self.starts, start) :]

    def compact(self, base: int) -> list[int]:
        """Drop the entries up to ``base`` (a snapshot covers them); the batch keys to delete.

        A stored batch that still holds an entry above ``base`` is kept.
        """
        if base <= self.base:
            return []
        if base > self.end:
            raise ValueError(f"cannot compact to {base}: the log ends at {self.end}")
        self.base_epoch = self.epoch_at(base)
        del self._entries[: base - self.base]
        self.base = base
        starts = self.starts
        # batch i is wholly at or below base when batch i + 1 starts at or below base + 1
        keep = max(bisect.bisect_right(starts, base + 1) - 1, 0)
        if not self._entries:
            keep = len(starts)
        dropped, self.starts = starts[:keep], starts[keep:]
        return dropped

    def reset(self, base: int, base_epoch: int, runs: Iterable[tuple[int, int]]) -> list[int]:
        """Hold nothing above ``base`` (a snapshot's), with that snapshot's runs.

        Only the runs that begin at or below ``base`` are kept (the
        entries above it come as they are written). Returns the batch keys
        to delete: all of them.
        """
        dropped = self.starts
        kept = [(start, epoch) for start, epoch in runs if start <= base][-MAX_RUNS:]
        self._entries = []
        self.starts = []
        self.base = base
        self.base_epoch = base_epoch
        self.run_starts = [start for start, _ in kept]
        self.run_epochs = [epoch for _, epoch in kept]
        return dropped
