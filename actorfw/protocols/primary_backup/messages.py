"""What a primary and its backups say to each other, and the records a backup keeps.

Positions count from 1; position 0 is the empty log. Every entry carries
the epoch of the primary that appended it, so that two logs can be
compared entry by entry: two logs that hold the same epoch at the same
position hold the same entries up to it (a primary appends each position
once in its epoch, and starts its epoch from an in-sync log).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actorfw.values.codec import message as _message

__all__ = [
    "Acked",
    "Append",
    "Applied",
    "Compacted",
    "Discarded",
    "Entry",
    "EpochSeen",
    "InstallSnapshot",
    "Mismatch",
    "Rebuilding",
    "Rebuilt",
    "Record",
    "Refusal",
    "Snapshotted",
    "Stale",
    "Truncated",
    "Written",
]


@_message(name="pb.Entry")
@dataclass(frozen=True)
class Entry:
    """One write in the log: the epoch of the primary that appended it, and the command."""

    epoch: int
    command: Any


@_message(name="pb.Append")
@dataclass(frozen=True)
class Append:
    """Primary to backup: ``entries`` go at positions ``prev + 1`` on.

    Taken only by a backup whose log holds an entry of epoch ``prev_epoch``
    at ``prev`` (0 and 0 for the start of the log). ``committed`` is how far
    the primary has acknowledged writes: the backup may apply up to there.
    An Append with no entries is a heartbeat that carries ``committed``.
    """

    epoch: int
    primary: str
    prev: int
    prev_epoch: int
    entries: tuple[Entry, ...]
    committed: int


@_message(name="pb.Acked")
@dataclass(frozen=True)
class Acked:
    """Backup to primary: my log matches yours up to ``upto``, durably (sent after the write)."""

    epoch: int
    backup: str
    upto: int


@_message(name="pb.Mismatch")
@dataclass(frozen=True)
class Mismatch:
    """Backup to primary: my log does not hold your ``prev``; send again from ``hint + 1``."""

    epoch: int
    backup: str
    hint: int


@_message(name="pb.Stale")
@dataclass(frozen=True)
class Stale:
    """Backup to a primary of an older epoch: I have seen ``epoch``; you are no longer primary."""

    epoch: int
    backup: str


@_message(name="pb.InstallSnapshot")
@dataclass(frozen=True, eq=False)
class InstallSnapshot:
    """Primary to a backup whose next entry it no longer holds: my state at ``position``.

    ``state`` (the state machine's ``snapshot()``) and ``sessions`` (client
    -> ``(seq, result)``) are the primary's after applying every entry up to
    ``position``, whose epoch is ``last_epoch``. ``runs`` are the epoch runs
    of the primary's log up to its ``end`` (``(first position, epoch)``):
    the backup finds with them which of its own entries the primary's log
    does not hold, and reports those as discarded. The whole state travels
    in one message: it must fit the runtime's message limit.
    """

    epoch: int
    primary: str
    position: int
    last_epoch: int
    runs: tuple[tuple[int, int], ...]
    end: int
    state: Any
    sessions: dict[str, tuple[int, Any]]


@dataclass(frozen=True)
class Refusal:
    """An input refused (rule 6 of :mod:`actorfw.protocols.effects`): from whom and why."""

    peer: str
    reason: str


@dataclass(frozen=True)
class Discarded:
    """Output of a rejoining node: its log's tail from ``start`` was not in the new epoch.

    In ``async`` mode such entries may be writes that were acknowledged to a
    client and are now lost: the application must count them, never hide
    them. ``committed`` of them (the first ones) were known committed here:
    acknowledged by their primary.
    """

    start: int
    entries: tuple[Entry, ...]
    committed: int = 0


@dataclass(frozen=True)
class Rebuilt:
    """Output of an ``async`` backup whose applied entries were not the new epoch's.

    Its log is emptied (``starts``: the stored batches to delete); the owner
    resets the application's state to the empty one, and the primary sends
    everything again. ``covered``: when not 0, the divergence lay under the
    snapshot up to that position, so some of the entries it covered (how
    many is unknown) were lost too.
    """

    starts: tuple[int, ...]
    covered: int


@dataclass(frozen=True)
class Applied:
    """Output: the write at ``position`` is committed; apply ``entry.command``."""

    position: int
    entry: Entry


# -- records (what a backup persists; replayed in order by :meth:`Backup.restore`) ----------


@dataclass(frozen=True)
class EpochSeen:
    """Record: the highest epoch this node has taken entries from."""

    epoch: int


@dataclass(frozen=True)
class Written:
    """Record: ``entries`` at positions ``start`` on (after a :class:`Truncated`, if any)."""

    start: int
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Truncated:
    """Record: the log's positions ``start`` to ``end`` are dropped (a rejoining node's tail)."""

    start: int
    end: int


@dataclass(frozen=True, eq=False)
class Snapshotted:
    """Record: the state after every entry up to ``position``; the log holds only above ``base``.

    ``state`` and ``sessions`` as in :class:`InstallSnapshot`; ``epoch`` is
    the entry's at ``position``, ``base_epoch`` the one at ``base`` (at most
    ``position``: the entries between stay in the log for backups a little
    behind); ``runs`` the log's epoch runs when it was taken (reading back
    keeps those that begin at or below ``base``; the stored batches bring
    the rest).
    """

    position: int
    epoch: int
    base: int
    base_epoch: int
    state: Any
    sessions: dict[str, tuple[int, Any]]
    runs: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Compacted:
    """Record: the stored batches that begin at ``starts`` are deleted (a snapshot covers them)."""

    starts: tuple[int, ...]


@dataclass(frozen=True)
class Rebuilding:
    """Record: this member started again from nothing (``on``), or has caught up since.

    While on, it does not act as primary when a view names it (rule 11 of
    the member): it lacks what the group acknowledged.
    """

    on: bool


Record = EpochSeen | Written | Truncated | Snapshotted | Compacted | Rebuilding
