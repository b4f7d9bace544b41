"""One node of a primary-backup group: a backup, and the primary when the view names it.

A :class:`Member` holds the node's log (a :class:`Backup`'s), the
application's state machine with its clients' sessions, and, while the
configuration service's view names this node primary of an epoch it
started, a :class:`Primary` working on the same log. Its inputs are the
peers' copying messages, the clients' commands, and two notes from the
node's view keeper (:class:`ViewIs`, :class:`LeaseGranted`), which talks
to the configuration service (:mod:`actorfw.protocols.primary_backup.view`).

The rules (numbers are cited by the tests):

1. **Primary only of an epoch it starts.** The member becomes primary when
   a view names it for an epoch above every epoch it has seen; it records
   the epoch (:class:`EpochSeen`) first, and appends nothing until that
   record is durable. A member that restarts into a view naming it for an
   epoch it had seen does *not* act: the entries it shipped before its
   crash may not all be in its log, and appending others at their
   positions in the same epoch would fork the logs. It waits for the
   configuration service to elect again (the lease lapses).
2. **Nothing acknowledged without a lease.** The primary's first entry of
   its epoch is a no-op, appended once its first lease is granted and its
   epoch is durable (its earlier epochs' entries commit under it); no
   command is answered before the no-op commits. A lease of another epoch
   is ignored.
3. **Deposed by a newer view or a newer epoch.** A view that names another
   primary or a later epoch, or a backup's :class:`Stale` of a later epoch,
   ends the primary role (the log stays; the member goes on as a backup). The commands it
   owed an answer are answered :class:`Moved` (they may still run: the
   client retries under the same session, exactly once).
4. **Commands.** At the primary each client command is queued (at most
   ``max_queue``; past that, :class:`Busy`) and appended in batches of at
   most ``max_batch``, while the log holds fewer than ``2 * lag_bound``
   entries past what is committed. Every member applies each committed entry once, in
   position order, through the sessions (a command retried after a
   failover runs once; its answer is the first one). The member that took
   a command answers it once applied here (:class:`Response`, an output:
   it leaves once this node's records are durable). A member that is not
   the primary answers :class:`Moved` with the primary it knows.
5. **Reads.** A read-only operation (the state machine's
   ``is_read_only``) asked as a read of a primary that holds its lease and
   has committed its no-op is answered from the state, outside the log:
   no other primary can have acknowledged a write since its lease began.
   Anything else asked as a read goes through the log. A read with a
   ``max_staleness`` may be answered by a backup from its own state, if
   the last Append it took from the primary of its epoch arrived at most
   that long ago on its clock and it has applied every entry that Append
   said was committed: its state then holds every write acknowledged
   before the primary sent that Append (a write is acknowledged only once
   durable at the primary, and an Append carries what is committed and
   durable there). So the answer misses only writes acknowledged in the
   last ``max_staleness`` seconds plus that Append's time in flight.
   Otherwise the backup answers :class:`Moved`.
6. **In sync.** The primary waits for the view's in-sync backups and for
   those it asked to add; it asks to add a backup that holds every
   committed entry, and to drop an in-sync backup that lags
   (:meth:`Primary.lagging_at`), and keeps waiting for a backup the view
   still has (rule 4 of the view). What it asks for is :attr:`Member.wanted`;
   the keeper proposes it.
7. **Bad input** (a malformed note, a copying message of an unknown node,
   an Append of the view's epoch from another node than its primary) is
   refused and counted, and changes nothing. A view older than the last
   one (a lower epoch, or fewer grants in the same epoch) is ignored.
   **Entries follow the view.** A member takes an Append only of the epoch
   of the latest view its keeper told it, from that view's primary. One of
   an older epoch is answered :class:`Stale` (its primary learns at once
   that it is deposed). One of a later epoch is not taken, and not
   recorded: a forged epoch could otherwise lock out the real primary. It
   is counted, and the keeper is woken to read the view (the primary's
   heartbeats then bring the entries again).
8. **Durability.** The member learns from its driver which of its steps
   are durable (``made_durable``): rule 1 waits for it, and the primary
   lets backups apply only entries durable here (rule 8 of
   :mod:`actorfw.protocols.primary_backup.primary`).
9. **Planned switchover.** On :class:`Handover` the primary of that epoch
   stops acknowledging and serving reads (its keeper then asks the
   configuration service to hand over to ``target``, an in-sync backup,
   once the target holds the whole log or a short wait has passed). The
   new view deposes it (rule 3); a refusal ends the hold. Entries the
   target lacks were never acknowledged; their clients retry at the new
   primary, exactly once.

10. **Snapshots.** With a state machine that can snapshot itself
    (:class:`~actorfw.protocols.paxos.Snapshotting`), a member whose
    applied position is ``snapshot_interval`` past its last snapshot
    records one (:class:`Snapshotted`: the state, the sessions and the
    log's epoch runs) and drops its log below ``applied - log_tail``
    (:class:`Compacted`), in the same atomic write. It restarts from its
    snapshot, then its log. A primary sends a backup whose next entry it
    compacted its own state instead (:class:`InstallSnapshot`, rule 9 of
    :mod:`actorfw.protocols.primary_backup.primary`), after this step's
    records are durable. A backup takes one under the same rule as an
    Append (rule 7); it replaces its state and log with the snapshot's,
    counts as discarded each entry of its own that the snapshot's log (by
    its epoch runs) does not hold, and acknowledges the snapshot's
    position. A malformed snapshot, or one its state machine cannot
    restore, is refused and changes nothing.

11. **Async mode.** The primary acknowledges a write once it is durable
    here, while every in-sync backup holds all but the last ``lag_bound``
    entries (rule 2 of the primary); one that falls further behind is
    dropped (rule 6). A failover may lose the writes the elected backup
    lacked: ``lag_bound`` at most. A member holding such entries
    discards them when it follows the new primary and counts those it knew
    committed (:attr:`Member.lost`, ``MemberStatus`` ``lost``): they were
    acknowledged (after a restart it knows committed only what its
    snapshot covers). If it had applied any (or its snapshot covers where its
    log diverges), it starts again from the empty state: its state, sessions
    and log go (:class:`~actorfw.protocols.primary_backup.messages.Rebuilt`),
    and the primary sends its log from the start, or its snapshot; its
    keeper is woken to report the emptied log at once. Until it has caught
    up (it has applied what an Append of its primary says is committed) it
    is marked rebuilding, durably (:class:`Rebuilding`), and does not act
    as primary when a view names it: the group then waits, as a ``sync``
    group waits for its only in-sync member, rather than lose what it
    lacks. An ``async`` member needs a state machine that can snapshot.

Bounds: sessions (``max_sessions``), the queue (``max_queue``), one log end
per step not yet durable (the driver syncs whatever waits), and the log.
The primary appends at most ``2 * lag_bound`` entries past what is
committed (rule 4); with a snapshotting machine, the committed part holds
at most ``snapshot_interval + log_tail`` entries above the last snapshot's
base after any step, plus, at a primary, what a backup installing a
snapshot resumes from, kept for ``snapshot_retry`` seconds after it was
sent. With a machine that cannot snapshot, the log is kept whole.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from actorfw.protocols.effects import Effects
from actorfw.protocols.paxos.clients import Clients, restore_snapshot
from actorfw.protocols.paxos.messages import Command, Read, Request
from actorfw.protocols.paxos.types import Snapshotting
from actorfw.protocols.primary_backup.backup import Backup
from actorfw.protocols.primary_backup.durability import Durability
from actorfw.protocols.primary_backup.messages import (
    Acked,
    Append,
    Applied,
    Compacted,
    Discarded,
    EpochSeen,
    InstallSnapshot,
    Mismatch,
    Rebuilding,
    Rebuilt,
    Record,
    Refusal,
    Snapshotted,
    Stale,
)
from actorfw.protocols.primary_backup.notes import (
    KEEPER,
    Busy,
    Handover,
    LeaseGranted,
    MemberOptions,
    Moved,
    Response,
    ViewIs,
    Wake,
    well_formed_install,
    well_formed_view,
)
from actorfw.protocols.primary_backup.primary import Primary, SnapshotDue
from actorfw.values.packed import pack_value, unpack_value

__all__ = [
    "KEEPER",
    "Busy",
    "Handover",
    "LeaseGranted",
    "Member",
    "MemberOptions",
    "Moved",
    "Response",
    "ViewIs",
]


class Member:
    """One node of a primary-backup group (see the module's rules).

    Args:
        name: this node.
        members: every node of the group (this one included).
        machine: the application's state machine (``apply``; ``is_read_only``
            and ``query`` for reads outside the log).
        options: tuning.
        backup: the node's log as its records left it (default: empty).
    """

    def __init__(
        self,
        name: str,
        members: Iterable[str],
        machine: Any,
        options: MemberOptions | None = None,
        backup: Backup | None = None,
    ) -> None:
        self.name = name
        self.members = tuple(sorted(members))
        if name not in self.members:
            raise ValueError(f"{name} is not a member of {self.members}")
        self.others = [m for m in self.members if m != name]
        self.machine = machine
        self.options = options or MemberOptions()
        self.backup = backup or Backup(name)
        self.primary: Primary | None = None
        self.view = ViewIs(0, "", (), 0)
        self.stats: Counter[str] = Counter()
        self.clients = Clients(self.options.max_sessions, self.stats)
        self.opened = 0  # the position of the primary's no-op (0: not appended yet)
        self.adding: set[str] = set()  # backups the primary waits for, not yet in the view
        self.wanted: tuple[str, ...] = ()  # the in-sync set the primary asks for (rule 6)
        self.discarded = 0  # entries a rejoin discarded (in sync mode: never acknowledged)
        self.lost = 0  # of those, known committed here: acknowledged writes lost (async mode)
        self.refused = 0
        self.durability = Durability(self.backup.end)  # rule 8
        self._epoch_step = 0  # the step that recorded the epoch this member is primary of
        self.handing_to = ""  # the target of a switchover under way (rule 9)
        self.heard = float("-inf")  # when this backup last held all its primary committed
        self._woke = float("-inf")  # when the keeper was last woken for an unknown epoch
        snapshotting = isinstance(machine, Snapshotting)
        self._snapshots = snapshotting and self.options.snapshot_interval is not None
        self.backup.lossy = self.options.primary.mode == "async"
        if self.backup.lossy and not snapshotting:
            raise ValueError(
                f"an 'async' member needs a state machine with snapshot()/restore(), not "
                f"{type(machine).__name__}: a member that applied writes a failover lost "
                "starts again from the empty state (rule 11)"
            )
        # The empty state, packed: what a rebuild restores (rule 11).
        self._empty = pack_value(machine.snapshot()) if snapshotting else b""
        self.snapshot_position = self.backup.applied  # the latest snapshot's (rule 10)
        self.applied = self.backup.applied  # applied to the machine (a restored snapshot's)
        self._installed = False  # this step installed a snapshot (its log restarts)

    @classmethod
    def restore(
        cls,
        name: str,
        members: Iterable[str],
        machine: Any,
        records: Iterable[Record],
        options: MemberOptions | None = None,
    ) -> Member:
        """The member its records leave: its snapshot, its log and epoch; not a primary (rule 1).

        ``records`` as the records codec reads them back (the epoch, the
        snapshot, then the stored batches in position order: see
        :mod:`actorfw.protocols.primary_backup.records`). ``machine`` must
        be fresh: a snapshot's state goes into it, and the entries after it
        are applied as the primary's Appends say they are committed.

        Raises:
            TypeError: a snapshot was stored but ``machine`` cannot restore one.
        """
        records = list(records)
        backup = Backup.restore(name, records)
        snapshots = [r for r in records if type(r) is Snapshotted]
        snapshot = max(snapshots, key=lambda r: r.position) if snapshots else None
        member = cls(name, members, machine, options, backup)
        if snapshot is not None:
            owner = f"member {name!r}"
            restore_snapshot(owner, machine, member.clients, snapshot.state, snapshot.sessions)
        return member

    # -- what it knows ------------------------------------------------------------------

    @property
    def acting(self) -> int:
        """The epoch this member is primary of (0: it is not)."""
        primary = self.primary
        return primary.epoch if primary is not None and not primary.deposed else 0

    def status(self) -> dict[str, Any]:
        """What the keeper reports and proposes: the log's end, the role, the wanted set.

        Also the log's base and latest snapshot, and how many snapshots this
        member took, installed from a primary and sent (rule 10); the
        entries discarded and, of those, the ones known committed (``lost``,
        rule 11); and, at the acting primary, how many entries each backup
        is behind (``lag``).
        """
        backup = self.backup
        stats = self.stats
        return {
            "epoch": backup.epoch,
            "last_epoch": backup.epoch_at(backup.end),
            "position": backup.end,
            "base": backup.log.base,
            "snapshot": self.snapshot_position,
            "snapshots": stats["snapshots"],
            "installed": stats["snapshot_installed"],
            "sent": stats["snapshot_sent"],
            "committed": backup.committed,
            "acting": self.acting,
            "wanted": list(self.wanted),
            "discarded": self.discarded,
            "lost": self.lost,
            "rebuilding": self.backup.rebuilding,
            "holding": bool(self.handing_to),
            "handover": self._handover_ready(),
            "lag": self._lag(),
        }

    def _lag(self) -> dict[str, int]:
        """At the acting primary: how many entries each backup is behind (else empty)."""
        primary = self.primary
        if primary is None or primary.deposed:
            return {}
        return {backup: primary.end - primary.match[backup] for backup in primary.backups}

    def _handover_ready(self) -> bool:
        """Does the target of the switchover under way hold this primary's whole log?"""
        primary = self.primary
        target = self.handing_to
        if primary is None or primary.deposed or not target or target not in primary.match:
            return False
        return primary.match[target] >= primary.end

    # -- steps ----------------------------------------------------------------------------

    def handle_all(self, messages: list[Any], now: float) -> Effects:
        """Take peers' messages, clients' commands and the keeper's notes: one step."""
        effects = Effects()
        for message in messages:
            kind = type(message)
            if kind is Append:
                self._append(message, now, effects)
            elif kind is InstallSnapshot:
                self._install(message, now, effects)
            elif kind is Acked or kind is Mismatch or kind is Stale:
                primary = self.primary
                if primary is None:
                    continue  # an answer to a primary role this member no longer has
                self._absorb(primary.handle_all([message], now), effects)
                if primary.deposed:
                    self._depose(effects)
            elif kind is Request or kind is Read:
                self._command(message, now, effects)
            elif kind is ViewIs:
                self._view(message, now, effects)
            elif kind is LeaseGranted:
                self._lease(message, now, effects)
            elif kind is Handover:
                self._handover(message, effects)
            else:
                self._refuse(effects, "?", f"a member does not take {kind.__name__}")
        self._flush(now, effects)
        self._count(effects)
        return effects

    def tick(self, now: float) -> Effects:
        """The primary's heartbeats and its lag checks: one step."""
        effects = Effects()
        if self.primary is not None:
            self._absorb(self.primary.tick(now), effects)
        self._flush(now, effects)
        self._count(effects)
        return effects

    def made_durable(self, steps: int) -> None:
        """The records of the first ``steps`` steps that persisted any are durable (rule 8)."""
        self.durability.made_durable(steps)
        primary = self.primary
        if primary is not None:
            primary.durable = min(self.durability.end, primary.end)

    def _count(self, effects: Effects) -> None:
        """A step that persisted is one more the driver counts (rule 8)."""
        if effects.persist:
            if self.acting:
                # The primary's writes are shipped at once and its answers will wait for
                # them: its own fsync runs beside its backups' (rule 10 of the effects).
                effects.sync = True
            self.durability.counted(effects.persist, self.backup.end, self._installed)
        self._installed = False

    def next_deadline(self) -> float | None:
        """The primary's next heartbeat (None for a backup: only messages wake it)."""
        return self.primary.next_deadline() if self.primary is not None else None

    # -- the rules ----------------------------------------------------------------------------

    def _refuse(self, effects: Effects, peer: str, reason: str) -> None:
        self.refused += 1
        effects.refused.append(Refusal(peer, reason))

    def _absorb(self, step: Effects, effects: Effects) -> None:
        """Take a copying core's step into this one: apply what it committed (rule 4)."""
        for output in step.outputs:
            if type(output) is Applied:
                self._apply(output)
            elif type(output) is SnapshotDue:
                self._send_snapshot(output.backup, effects)
            elif type(output) is Discarded:
                self._discarded(output)
            elif type(output) is Rebuilt:
                self._rebuilt(output, effects)
        step.outputs = []
        self.refused += len(step.refused)
        effects.extend(step)

    def _discarded(self, discarded: Discarded) -> None:
        """Count the entries a rejoin or a snapshot discarded, and the committed ones (rule 11)."""
        self.discarded += len(discarded.entries)
        self.stats["discarded"] += len(discarded.entries)
        self.lost += discarded.committed
        self.stats["lost_committed"] += discarded.committed

    def _apply(self, applied: Applied) -> None:
        if applied.position != self.applied + 1:
            raise AssertionError(f"applied {applied.position} after {self.applied}")
        self.applied = applied.position
        command = applied.entry.command
        if type(command) is Command:
            self.clients.apply((command,), self.machine.apply)
        # anything else is a primary's no-op

    def _from_primary(
        self, message: Append | InstallSnapshot, now: float, effects: Effects
    ) -> bool:
        """May this member take ``message`` from the primary it names (rule 7)?"""
        primary = self.primary
        epoch = message.epoch if type(message.epoch) is int else -1
        kind = type(message).__name__
        if message.primary not in self.others:
            self._refuse(effects, str(message.primary), f"an {kind} from a non-member")
            return False
        view = self.view
        if epoch > view.epoch:  # rule 7: not (yet) in any view this member knows
            self.stats["append_ahead_of_view"] += 1
            if now >= self._woke + self.options.primary.heartbeat:
                self._woke = now
                effects.send_now.append((KEEPER, Wake()))
            return False
        if epoch == view.epoch and message.primary != view.primary:
            self._refuse(
                effects,
                message.primary,
                f"an {kind} of epoch {epoch}, whose primary is {view.primary or 'none'}",
            )
            return False
        if epoch < view.epoch:
            effects.send_now.append((message.primary, Stale(view.epoch, self.name)))
            return False
        if primary is not None and not primary.deposed and epoch > primary.epoch:
            primary.deposed = True  # rule 3 (the view said so first)
            self._depose(effects)
        return True

    def _append(self, append: Append, now: float, effects: Effects) -> None:
        if not self._from_primary(append, now, effects):
            return
        epoch = append.epoch
        self._absorb(self.backup.handle_all([append], now), effects)
        backup = self.backup
        if (
            backup.rebuilding
            and backup.matched
            and epoch == backup.epoch
            and type(append.committed) is int
            and self.applied >= append.committed
        ):
            # It holds what the primary had committed when it sent this: caught up.
            backup.rebuilding = False
            effects.persist.append(Rebuilding(False))
            self.stats["rebuilt_caught_up"] += 1
        if (
            self.primary is None
            and epoch == backup.epoch
            and backup.matched  # its log is the primary's as far as the Append went
            and type(append.committed) is int
            and self.applied >= append.committed
        ):
            self.heard = now  # rule 5: fresh as of this Append

    def _install(self, snapshot: InstallSnapshot, now: float, effects: Effects) -> None:
        """Take the primary's snapshot in place of the entries it no longer holds (rule 10)."""
        if not self._from_primary(snapshot, now, effects):
            return
        primary = snapshot.primary
        if not well_formed_install(snapshot):
            self._refuse(effects, primary, f"a malformed snapshot at {snapshot.position!r}")
            return
        machine = self.machine
        if not isinstance(machine, Snapshotting):
            self._refuse(effects, primary, f"{type(machine).__name__} cannot restore a snapshot")
            return
        backup = self.backup
        if snapshot.epoch < backup.epoch:  # rule 1 of the backup
            effects.send_now.append((primary, Stale(backup.epoch, self.name)))
            return
        position = snapshot.position
        log = backup.log
        if backup.lossy:  # committed entries may differ: only the epochs tell (rule 11)
            holds = position <= log.end and log.epoch_of(position) == snapshot.last_epoch
        else:
            holds = position <= backup.committed or (
                log.base <= position <= log.end and log.epoch_at(position) == snapshot.last_epoch
            )
        if holds:
            # It holds the log up to there already: the Appends go on from it.
            self._saw_epoch(snapshot.epoch, effects)
            self.stats["snapshot_useless"] += 1
            upto = min(position, backup.end)
            effects.send.append((primary, Acked(snapshot.epoch, self.name, upto)))
            return
        before = machine.snapshot()
        try:
            machine.restore(snapshot.state)
        except Exception as error:  # the state came off the wire: refuse it, keep ours
            machine.restore(before)
            self._refuse(effects, primary, f"a snapshot its state machine refused: {error!r}")
            return
        self._saw_epoch(snapshot.epoch, effects)
        self.clients.installed({c: (s[0], s[1]) for c, s in snapshot.sessions.items()})
        discarded, dropped, covered = backup.install(
            position, snapshot.last_epoch, snapshot.runs, snapshot.end
        )
        if discarded is not None:
            self._discarded(discarded)
        if covered:
            self.stats["lost_under_snapshot"] += 1
        self.applied = backup.applied = position
        self.snapshot_position = position
        self.heard = float("-inf")  # fresh again after its next Append (rule 5)
        self._installed = True
        self.stats["snapshot_installed"] += 1
        # Persist the machine's own snapshot: restore() may keep the received object
        # as its state, and the entries applied next would change it.
        effects.persist.append(self._snapshotted(position, machine.snapshot()))
        effects.persist.append(Compacted(tuple(dropped)))
        effects.send.append((primary, Acked(snapshot.epoch, self.name, position)))

    def _rebuilt(self, rebuilt: Rebuilt, effects: Effects) -> None:
        """Rule 11: the backup emptied its log; the state goes back to the empty one."""
        machine: Snapshotting = self.machine
        machine.restore(unpack_value(self._empty))
        self.clients.sessions = {}
        self.applied = self.snapshot_position = 0
        self.heard = float("-inf")
        self._installed = True
        self.stats["rebuilt"] += 1
        if rebuilt.covered:
            self.stats["lost_under_snapshot"] += 1
        effects.persist.append(Snapshotted(0, 0, 0, 0, machine.snapshot(), {}, ()))
        effects.persist.append(Compacted(rebuilt.starts))
        if not self.backup.rebuilding:
            self.backup.rebuilding = True  # no primary role until it has caught up
            effects.persist.append(Rebuilding(True))
        # Its keeper reports the emptied log at once: elections compare the latest ends.
        effects.send_now.append((KEEPER, Wake()))

    def _saw_epoch(self, epoch: int, effects: Effects) -> None:
        """A higher epoch is recorded before what it brings (rule 1 of the backup)."""
        backup = self.backup
        if epoch > backup.epoch:
            backup.epoch = epoch
            effects.persist.append(EpochSeen(epoch))

    def _snapshotted(self, position: int, state: Any) -> Snapshotted:
        """The record of a snapshot of ``state`` at ``position``, over the log as it is now."""
        log = self.backup.log
        return Snapshotted(
            position,
            log.epoch_at(position),
            log.base,
            log.base_epoch,
            state,
            dict(self.clients.sessions),
            log.runs(),
        )

    def _snapshot_due(self, now: float, effects: Effects) -> None:
        """Snapshot at the applied position and compact the log, every ``snapshot_interval``."""
        interval = self.options.snapshot_interval
        position = self.applied
        if not self._snapshots or interval is None or position - self.snapshot_position < interval:
            return
        machine: Snapshotting = self.machine
        log = self.backup.log
        base = position - self.options.log_tail
        if self.primary is not None:
            # Keep what a backup installing a snapshot resumes from (rule 9 of the primary).
            base = min(base, self.primary.pinned(now))
        dropped = log.compact(max(log.base, base))
        effects.persist.append(self._snapshotted(position, machine.snapshot()))
        if dropped:
            effects.persist.append(Compacted(tuple(dropped)))
        self.snapshot_position = position
        self.stats["snapshots"] += 1

    def _send_snapshot(self, backup: str, effects: Effects) -> None:
        """Send ``backup`` this primary's state, for the entries it compacted (rule 10)."""
        primary = self.primary
        machine = self.machine
        if primary is None or not isinstance(machine, Snapshotting):
            return
        log = self.backup.log
        position = self.applied
        snapshot = InstallSnapshot(
            primary.epoch,
            self.name,
            position,
            log.epoch_at(position),
            log.runs(),
            log.end,
            machine.snapshot(),
            dict(self.clients.sessions),
        )
        # After this step's records are durable: then every entry it covers is, here.
        effects.send.append((backup, snapshot))
        primary.snapshot_sent(backup, position)
        self.stats["snapshot_sent"] += 1

    def _command(self, message: Request | Read, now: float, effects: Effects) -> None:
        command = message.command
        if not (
            type(command) is Command
            and type(command.client) is str
            and type(command.seq) is int
            and command.seq > 0
        ):
            self._refuse(effects, "?", f"a malformed command {command!r}")
            return
        primary = self.primary
        if primary is None or primary.deposed:
            if type(message) is Read and self._stale_read(message, now, effects):
                return
            effects.responses.append(Moved(command.client, command.seq, self._primary_hint()))
            return
        if len(self.clients.requests) >= self.options.max_queue:
            effects.responses.append(Busy(command.client, command.seq))
            return
        serving = not primary.fenced(now) and self._open()
        if serving and type(message) is Read and self._read(command, effects):
            return
        # Queued; while the lease or the no-op is awaited, until then (rule 2).
        self.clients.take(command)

    def _read(self, command: Command, effects: Effects) -> bool:
        """Answer a read-only command from the state, under the lease (rule 5)."""
        return self.applied >= self.opened and self._query(command, effects, "read_by_lease")

    def _stale_read(self, read: Read, now: float, effects: Effects) -> bool:
        """Answer a read at a backup, if it is as fresh as the client asks (rule 5)."""
        bound = read.max_staleness
        if not (isinstance(bound, int | float) and bound > 0):
            return False
        if now - self.heard > bound:
            self.stats["read_too_stale"] += 1
            return False
        return self._query(read.command, effects, "read_by_backup")

    def _query(self, command: Command, effects: Effects, counted_as: str) -> bool:
        """Answer ``command`` from the state, outside the log, if it only reads (rule 5)."""
        machine = self.machine
        is_read_only = getattr(machine, "is_read_only", None)
        if is_read_only is None or not is_read_only(command.op):
            return False
        self.stats[counted_as] += 1
        effects.outputs.append(Response(command.client, command.seq, machine.query(command.op)))
        return True

    def _open(self) -> bool:
        """Has this primary's no-op committed (rule 2)?"""
        return self.opened > 0 and self.backup.committed >= self.opened

    def _primary_hint(self) -> str:
        primary = self.view.primary
        return "" if primary == self.name and not self.acting else primary

    def _view(self, view: ViewIs, now: float, effects: Effects) -> None:
        if not well_formed_view(view, self.members):
            self._refuse(effects, KEEPER, f"a malformed view {view!r}")
            return
        if (view.epoch, view.grants) < (self.view.epoch, self.view.grants):
            return  # an older read of the view (rule 7)
        self.view = ViewIs(view.epoch, view.primary, tuple(view.in_sync), view.grants)
        primary = self.primary
        if primary is not None and not primary.deposed:
            if view.epoch > primary.epoch or view.primary != self.name:
                primary.deposed = True  # rule 3
                self._depose(effects)
            elif view.epoch == primary.epoch:
                in_view = set(view.in_sync)
                self.adding -= in_view
                self._absorb(primary.set_in_sync(in_view | self.adding, now), effects)
            return
        if view.primary == self.name and view.epoch > self.backup.epoch:
            if self.backup.rebuilding:  # rule 11: it lacks what the group acknowledged
                self.stats["declined_while_rebuilding"] += 1
                return
            self._start(view, now, effects)

    def _start(self, view: ViewIs, now: float, effects: Effects) -> None:
        """Become the primary of ``view.epoch`` (rule 1)."""
        backup = self.backup
        backup.epoch = view.epoch
        effects.persist.append(EpochSeen(view.epoch))
        self._epoch_step = self.durability.persisted + 1  # this step, once counted
        effects.sync = True  # synced at once: nothing is appended until it is (rule 1)
        in_sync = {b for b in view.in_sync if b != self.name}
        self.primary = Primary(
            self.name,
            view.epoch,
            backup.log,
            backup.committed,
            self.others,
            in_sync,
            self.options.primary,
        )
        self.primary.durable = min(self.durability.end, backup.end)
        self.opened = 0
        self.adding = set()
        self.handing_to = ""
        self.stats["became_primary"] += 1

    def _lease(self, lease: LeaseGranted, now: float, effects: Effects) -> None:
        primary = self.primary
        if not (type(lease.epoch) is int and isinstance(lease.until, int | float)):
            self._refuse(effects, KEEPER, f"a malformed lease {lease!r}")
            return
        if primary is None or primary.deposed or lease.epoch != primary.epoch:
            return  # rule 2: another epoch's
        self._absorb(primary.grant_lease(float(lease.until), now), effects)

    def _handover(self, handover: Handover, effects: Effects) -> None:
        primary = self.primary
        if not (
            type(handover.epoch) is int
            and isinstance(handover.target, str)
            and (handover.target == "" or handover.target in self.others)
        ):
            self._refuse(effects, KEEPER, f"a malformed handover {handover!r}")
            return
        if primary is None or primary.deposed or handover.epoch != primary.epoch:
            return  # another epoch's (rule 9)
        self.handing_to = handover.target
        primary.held = bool(handover.target)
        if not primary.held:
            self.stats["handover_refused"] += 1

    def _depose(self, effects: Effects) -> None:
        """The primary role ends (rule 3): answer what it owed, go on as a backup."""
        primary = self.primary
        if primary is None:
            return
        self.stats["deposed"] += 1
        backup = self.backup
        backup.committed = max(backup.committed, primary.committed)
        backup.applied = self.applied
        self.primary = None
        self.opened = 0
        self.handing_to = ""
        self.adding = set()
        self.wanted = ()
        self._answer(effects)  # what ran in this step is answered with its result
        hint = self._primary_hint()
        for client, seq in self.clients.drop_pending():
            effects.responses.append(Moved(client, seq, hint))

    def _flush(self, now: float, effects: Effects) -> None:
        """End of a step: append what is queued, keep the roles in step, answer (rules 4, 6)."""
        primary = self.primary
        if primary is not None and not primary.deposed:
            if (
                not self.opened
                and not primary.fenced(now)
                and self.durability.steps >= self._epoch_step
            ):
                self.opened = primary.end + 1
                self._absorb(primary.submit([None], now), effects)  # the no-op (rules 1, 2)
            # Commands follow the no-op (rule 2), at most twice lag_bound entries past what
            # is committed (so a backup more than lag_bound behind is seen lagging, rule 6):
            # the rest wait in the queue (rule 4).
            room = 2 * self.options.primary.lag_bound - (primary.end - primary.committed)
            if self.opened and room > 0:
                if not primary.fenced(now) and self.clients.requests:
                    batch = self.clients.next_batch(min(self.options.primary.max_batch, room))
                    if batch:
                        self._absorb(primary.submit(batch, now), effects)
            self.backup.committed = primary.committed
            self.backup.applied = self.applied
            self._keep_in_sync(primary, now, effects)
        self._snapshot_due(now, effects)
        self._answer(effects)

    def _answer(self, effects: Effects) -> None:
        """The commands taken here that ran are answered (outputs: after durable, rule 4)."""
        responses = self.clients.responses
        if responses:
            for response in responses:
                effects.outputs.append(Response(response.client, response.seq, response.result))
            self.clients.responses = []

    def _keep_in_sync(self, primary: Primary, now: float, effects: Effects) -> None:
        """Rule 6: add backups that hold the whole log, ask to drop those that lag."""
        in_view = set(self.view.in_sync) if self.view.epoch == primary.epoch else set()
        for backup in self.others:
            if (
                backup not in primary.in_sync
                and primary.match[backup] >= primary.committed  # holds every acknowledged write
                and primary.committed >= self.opened > 0
            ):
                self.adding.add(backup)
                self._absorb(primary.set_in_sync(primary.in_sync | {backup}, now), effects)
        lagging = set(primary.lagging_at(now)) - self.adding
        wanted = tuple(sorted((in_view | self.adding) - lagging))
        if wanted != self.wanted:
            self.wanted = wanted
            effects.send_now.append((KEEPER, Wake()))
