"""What a primary-backup member is told and answers, its tuning, and the checks of its inputs.

The view keeper's notes to its member (:class:`ViewIs`, :class:`LeaseGranted`,
:class:`Handover`) and the member's wake-up note back (:class:`Wake`); the
member's answers to clients (:class:`Response`, :class:`Moved`,
:class:`Busy`); :class:`MemberOptions`; and the well-formedness checks of a
view and of a snapshot that the member applies (rules 7 and 10 of
:mod:`actorfw.protocols.primary_backup.member`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from actorfw.protocols.primary_backup.messages import InstallSnapshot
from actorfw.protocols.primary_backup.primary import PrimaryOptions
from actorfw.values.codec import message as _message

__all__ = [
    "KEEPER",
    "Busy",
    "Handover",
    "LeaseGranted",
    "MemberOptions",
    "Moved",
    "Response",
    "ViewIs",
    "Wake",
    "well_formed_install",
    "well_formed_view",
]

KEEPER = "keeper"
"""The address of this node's view keeper, in a member's ``send_now`` (a wake-up note)."""


@_message(name="pb.ViewIs")
@dataclasses.dataclass(frozen=True)
class ViewIs:
    """The keeper to its member: the configuration service's view, as last read."""

    epoch: int
    primary: str
    in_sync: tuple[str, ...]
    grants: int


@_message(name="pb.LeaseGranted")
@dataclasses.dataclass(frozen=True)
class LeaseGranted:
    """The keeper to its member: the primary of ``epoch`` holds its lease until ``until``.

    ``until`` is on this node's clock: when the keeper first sent the
    renewal that committed, plus the lease's length.
    """

    epoch: int
    until: float


@_message(name="pb.Handover")
@dataclasses.dataclass(frozen=True)
class Handover:
    """The keeper to its member: stop acknowledging, a switchover to ``target`` is asked.

    ``target`` "" ends the hold (the switchover was refused): the primary of
    ``epoch`` acknowledges again (rule 9).
    """

    epoch: int
    target: str


@_message(name="pb.Wake")
@dataclasses.dataclass(frozen=True)
class Wake:
    """A member to its keeper: what it wants of the view changed; look now."""


@dataclasses.dataclass(frozen=True)
class Response:
    """Output: the answer to a command this member took."""

    client: str
    seq: int
    result: Any


@dataclasses.dataclass(frozen=True)
class Moved:
    """Response: this member is not an acknowledging primary; ``primary`` may be ("": unknown)."""

    client: str
    seq: int
    primary: str


@dataclasses.dataclass(frozen=True)
class Busy:
    """Response: the primary's queue is full; the command did not run (ask again later)."""

    client: str
    seq: int


@_message(name="pb.MemberOptions")
@dataclasses.dataclass(frozen=True)
class MemberOptions:
    """A member's tuning.

    Attributes:
        primary: the primary's tuning (its ``mode`` is the group's).
        max_sessions: client sessions kept at most (None: unbounded), as for Paxos.
        max_queue: commands waiting at the primary at most (rule 4).
        snapshot_interval: with a snapshotting state machine, a snapshot every
            this many applied entries (rule 10); None: never (the log then
            grows without bound).
        log_tail: applied entries kept in the log below the latest snapshot,
            so that a backup a little behind catches up from the log rather
            than by a whole snapshot.
    """

    primary: PrimaryOptions = dataclasses.field(default_factory=PrimaryOptions)
    max_sessions: int | None = 100_000
    max_queue: int = 65_536
    snapshot_interval: int | None = 16_384
    log_tail: int = 1024

    def __post_init__(self) -> None:
        if not (type(self.max_queue) is int and self.max_queue > 0):
            raise ValueError(f"max_queue must be a positive int, not {self.max_queue!r}")
        sessions = self.max_sessions
        if sessions is not None and not (type(sessions) is int and sessions > 0):
            raise ValueError(f"max_sessions must be a positive int or None, not {sessions!r}")
        interval = self.snapshot_interval
        if interval is not None and not (type(interval) is int and interval > 0):
            raise ValueError(f"snapshot_interval must be a positive int or None, not {interval!r}")
        if not (type(self.log_tail) is int and self.log_tail >= 0):
            raise ValueError(f"log_tail must be a non-negative int, not {self.log_tail!r}")


def well_formed_install(snapshot: InstallSnapshot) -> bool:
    """Types and ranges right: positions, runs rising, sessions ``client -> (seq, result)``."""
    runs = snapshot.runs
    sessions = snapshot.sessions
    if not (
        type(snapshot.position) is int
        and snapshot.position > 0
        and type(snapshot.last_epoch) is int
        and 0 < snapshot.last_epoch <= snapshot.epoch
        and type(snapshot.end) is int
        and snapshot.end >= snapshot.position
        and isinstance(runs, tuple | list)
        and isinstance(sessions, dict)
    ):
        return False
    previous = (0, 0)
    for run in runs:
        if not (
            isinstance(run, tuple | list)
            and len(run) == 2
            and type(run[0]) is int
            and type(run[1]) is int
            and run[0] > previous[0]
            and run[1] > previous[1]
        ):
            return False
        previous = (run[0], run[1])
    return all(
        type(client) is str
        and isinstance(session, tuple | list)
        and len(session) == 2
        and type(session[0]) is int
        for client, session in sessions.items()
    )


def well_formed_view(view: ViewIs, members: tuple[str, ...]) -> bool:
    """Types and ranges right, and every in-sync backup a member (rule 7)."""
    return (
        type(view.epoch) is int
        and view.epoch >= 0
        and isinstance(view.primary, str)
        and isinstance(view.in_sync, tuple | list)
        and all(b in members for b in view.in_sync)
        and type(view.grants) is int
    )
