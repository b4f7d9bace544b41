"""Primary-backup replication's sans-IO cores: the primary's copying and the backup's log.

- :class:`Primary` — orders writes in its epoch, ships them, commits by mode
  (``sync``: every in-sync backup has it durably; ``async``: written here),
  fenced by its lease and deposed by a higher epoch.
- :class:`Backup` — takes entries in order and durably, refuses older epochs,
  discards (and reports) a divergent tail when it rejoins.
- :class:`Log` — the entries above the latest snapshot, with the epoch runs
  of the whole history.

- :class:`Member` — one node of a group: the backup's log, the state
  machine with its sessions, and the primary's role while the view names
  it (rules in :mod:`actorfw.protocols.primary_backup.member`).
- :class:`ViewMachine` — the configuration service's state machine: the
  view (epoch, primary, in-sync set), elections by the lease's rule, and
  switchover; replicated on a Multi-Paxos group.
"""

from actorfw.protocols.primary_backup.backup import Backup
from actorfw.protocols.primary_backup.log import Log
from actorfw.protocols.primary_backup.member import LeaseGranted, Member, MemberOptions, ViewIs
from actorfw.protocols.primary_backup.messages import (
    Acked,
    Append,
    Applied,
    Compacted,
    Discarded,
    Entry,
    EpochSeen,
    InstallSnapshot,
    Mismatch,
    Rebuilding,
    Rebuilt,
    Refusal,
    Snapshotted,
    Stale,
    Truncated,
    Written,
)
from actorfw.protocols.primary_backup.primary import Primary, PrimaryOptions, SnapshotDue
from actorfw.protocols.primary_backup.view import View, ViewError, ViewMachine

__all__ = [
    "Acked",
    "Append",
    "Applied",
    "Backup",
    "Compacted",
    "Discarded",
    "Entry",
    "EpochSeen",
    "InstallSnapshot",
    "LeaseGranted",
    "Log",
    "Member",
    "MemberOptions",
    "Mismatch",
    "Primary",
    "PrimaryOptions",
    "Rebuilding",
    "Rebuilt",
    "Refusal",
    "SnapshotDue",
    "Snapshotted",
    "Stale",
    "Truncated",
    "View",
    "ViewError",
    "ViewIs",
    "ViewMachine",
    "Written",
]
