"""The primary's side of copying: order writes, ship them to the backups, acknowledge by mode.

The primary of epoch *e* starts from its own log (it was the in-sync backup
with the highest (epoch, position) when the configuration service elected
it; see the issue's election) and appends each write at the next position
with epoch *e*. The rules:

1. **Write, then ship.** A write is persisted here (:class:`Written`) and
   sent to every backup in the same step without waiting for the write
   (``send_now``): a backup holding an entry the primary lost in a crash is
   harmless, since nothing unacknowledged was promised.
2. **Acknowledge by mode.** ``sync``: a write is committed once every
   backup of the in-sync set has acknowledged it (:class:`Acked` leaves a
   backup only after its durable write). ``async``: once it is written
   here, while every backup of the in-sync set holds all but the last
   ``lag_bound`` entries (past that, commits wait, as in ``sync`` mode,
   until the backup catches up or the configuration service drops it).
   Either way the :class:`Applied` output (the application's answer to its
   client) leaves only after this node's own write is durable (rule 5 of
   :mod:`actorfw.protocols.effects`).
3. **A lagging backup is reported, not waited for silently.** A backup of
   the in-sync set more than ``lag_bound`` entries behind, or behind with
   no progress for ``lag_time`` seconds (a crashed backup, when writes are
   few), is named in :meth:`Primary.lagging_at`; in ``sync`` mode commits
   wait until the
   configuration service removes it (:meth:`Primary.set_in_sync`), so
   nothing is acknowledged without it while it is still in the set.
4. **Repair.** A :class:`Mismatch` moves the backup's next position back
   to the hint and re-sends from there, at most ``max_batch`` entries per
   Append; acknowledgements move it forward.
5. **Deposed on a higher epoch.** A message of a higher epoch (a
   :class:`Stale` from a backup that has seen one) ends this primary: it
   acknowledges nothing more. A :class:`Stale` of this epoch or an older
   one is an answer to an older primary, delayed or duplicated: ignored.
6. **Fenced by its lease.** The primary acknowledges nothing at or after
   ``lease_until - drift`` (the lease granted by the configuration
   service, less the clock-drift bound): a new primary can be elected only
   after the lease has run out, so two primaries never acknowledge at once.
   Commits reached while fenced are held until a new lease comes. It is
   fenced too while :attr:`Primary.held` (a planned switchover: it stops
   acknowledging before it asks to hand over).
7. **Heartbeats.** Every ``heartbeat`` seconds each backup gets an Append
   (empty if it is up to date, else what it lacks) carrying ``committed``.
8. **Backups apply only what this node holds durably.** The ``committed``
   an Append carries is capped at :attr:`Primary.durable` (when the owner
   sets it): a backup applies an entry only once the primary could not lose
   it in a crash, so a primary re-elected after one (the only holder of
   the acknowledged writes) never finds a backup that applied an entry it
   no longer has. The primary's own answers wait for its durable write
   anyway (rule 2).
9. **A backup behind the log's base gets a snapshot.** When a backup's next
   entry lies at or below the base (the member compacted it into a
   snapshot), the primary asks its owner for one (the output
   :class:`SnapshotDue`) instead of an Append, at most once per
   ``snapshot_retry`` for each backup (a whole state is costly to send),
   and resumes shipping after the snapshot's position. For
   ``snapshot_retry`` seconds after sending one, its owner keeps the log
   from that position (:meth:`Primary.pinned`), so that the backup, once it
   has installed it, resumes from the log even if compaction came due.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from actorfw.protocols.effects import Effects
from actorfw.protocols.primary_backup.log import Log
from actorfw.protocols.primary_backup.messages import (
    Acked,
    Append,
    Applied,
    Entry,
    Mismatch,
    Refusal,
    Stale,
    Written,
)
from actorfw.values.codec import message as _message

__all__ = ["Primary", "PrimaryOptions", "SnapshotDue"]


@dataclasses.dataclass(frozen=True)
class SnapshotDue:
    """Output: ``backup`` needs entries this log compacted; send it a snapshot (rule 9).

    The owner answers with :meth:`Primary.snapshot_sent` once it has sent one.
    """

    backup: str


@_message(name="pb.PrimaryOptions")
@dataclasses.dataclass(frozen=True)
class PrimaryOptions:
    """A primary's tuning.

    Attributes:
        mode: ``"sync"`` or ``"async"`` (rule 2).
        lag_bound: entries an in-sync backup may be behind before it is reported (rule 3).
        lag_time: seconds an in-sync backup may be behind with no progress before it is
            reported (rule 3).
        max_batch: entries per Append at most (rule 4).
        heartbeat: seconds between heartbeats to each backup (rule 7).
        drift: the bound on clock drift, taken off the lease's end (rule 6).
        snapshot_retry: seconds before a backup that still lacks what a snapshot
            covers is sent another (rule 9).
    """

    mode: str = "sync"
    lag_bound: int = 10_000
    lag_time: float = 0.5
    max_batch: int = 512
    heartbeat: float = 0.05
    drift: float = 0.1
    snapshot_retry: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in ("sync", "async"):
            raise ValueError(f"mode is 'sync' or 'async', not {self.mode!r}")
        for name in ("lag_bound", "max_batch"):
            value = getattr(self, name)
            if not (type(value) is int and value > 0):
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        for name in ("heartbeat", "drift", "lag_time"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"{name} must be a non-negative number, not {value!r}")
        retry = self.snapshot_retry
        if not (isinstance(retry, (int, float)) and retry > 0):
            raise ValueError(f"snapshot_retry must be a positive number, not {retry!r}")


class Primary:
    """The primary of ``epoch`` (see the module's rules).

    Args:
        name: this node.
        epoch: the epoch the configuration service started for it.
        log: its log when elected (a backup's); kept, not copied.
        committed: what it knows committed (a backup's ``committed``).
        backups: the other nodes of the group.
        in_sync: the backups whose acknowledgement a ``sync`` commit needs.
        options: tuning.
    """

    def __init__(
        self,
        name: str,
        epoch: int,
        log: Log,
        committed: int,
        backups: list[str],
        in_sync: set[str] | frozenset[str],
        options: PrimaryOptions | None = None,
    ) -> None:
        if not set(in_sync) <= set(backups):
            raise ValueError(f"in_sync {sorted(in_sync)} is not a subset of {sorted(backups)}")
        self.name = name
        self.epoch = epoch
        self.log = log
        self.options = options or PrimaryOptions()
        self.backups = list(backups)
        self.in_sync = frozenset(in_sync)
        self.committed = committed  # acknowledged (or, before election, known committed)
        self.applied = committed
        self.next = {b: log.end + 1 for b in backups}  # the next position to send each
        self._snapshot_at: dict[str, float] = {}  # when each backup was last sent a snapshot
        self._snapshot_pos: dict[str, int] = {}  # and at which position
        self._heard: set[str] = set()  # the backups that have answered this primary
        self.match = {b: 0 for b in backups}  # how far each is known to hold this log
        # since when each backup is behind with no progress (None: caught up, or moving)
        self._stuck_since: dict[str, float | None] = {b: None for b in backups}
        self._now = 0.0  # the time of the step under way
        self.lease_until = 0.0
        self.durable: int | None = None  # rule 8: how far this log is durable (None: no cap)
        self.held = False  # rule 6: a switchover under way
        self.deposed = False
        self.refused = 0
        self._beat_at = 0.0

    # -- what it knows -------------------------------------------------------------------

    @property
    def end(self) -> int:
        """The last position in the log."""
        return self.log.end

    @property
    def lagging(self) -> list[str]:
        """In-sync backups more than ``lag_bound`` entries behind (rule 3), sorted.

        Only backups that have answered this primary count: before its first
        answer a backup's match is not known, only assumed 0 (one that never
        answers is caught by ``lag_time`` in :meth:`lagging_at`).
        """
        floor = self.end - self.options.lag_bound
        return sorted(b for b in self.in_sync if b in self._heard and self.match[b] < floor)

    def lagging_at(self, now: float) -> list[str]:
        """In-sync backups too far behind, or behind with no progress for ``lag_time`` (rule 3)."""
        lagging = set(self.lagging)
        limit = now - self.options.lag_time
        end = self.end
        for backup in self.in_sync:
            since = self._stuck_since[backup]
            if self.match[backup] < end and since is not None and since <= limit:
                lagging.add(backup)
        return sorted(lagging)

    def fenced(self, now: float) -> bool:
        """May it not acknowledge at ``now`` (rule 6, or deposed)?"""
        return self.deposed or self.held or now >= self.lease_until - self.options.drift

    # -- inputs from the configuration service -------------------------------------------

    def grant_lease(self, until: float, now: float) -> Effects:
        """The configuration service granted the lease to ``until``: one step."""
        self.lease_until = max(self.lease_until, until)
        effects = Effects()
        self._commit(now, effects)
        return effects

    def set_in_sync(self, in_sync: set[str] | frozenset[str], now: float) -> Effects:
        """The configuration service changed the in-sync set (same epoch): one step."""
        if not set(in_sync) <= set(self.backups):
            raise ValueError(f"in_sync {sorted(in_sync)} is not a subset of {self.backups}")
        self.in_sync = frozenset(in_sync)
        effects = Effects()
        self._commit(now, effects)
        return effects

    def snapshot_sent(self, backup: str, position: int) -> None:
        """The owner sent ``backup`` a snapshot at ``position`` (rule 9): ship after it."""
        self.next[backup] = max(self.next[backup], position + 1)
        self._snapshot_pos[backup] = position

    def pinned(self, now: float) -> int:
        """The lowest position the log must keep for backups installing a snapshot (rule 9).

        A snapshot sent less than ``snapshot_retry`` ago, to a backup that has
        not acknowledged past it yet, pins the log at its position; with none,
        the log's end.
        """
        limit = now - self.options.snapshot_retry
        pins = [
            position
            for backup, position in self._snapshot_pos.items()
            if self.match[backup] < position and self._snapshot_at.get(backup, limit) > limit
        ]
        return min(pins, default=self.end)

    # -- steps ---------------------------------------------------------------------------

    def submit(self, commands: list[Any], now: float) -> Effects:
        """Append ``commands`` (rule 1); each is answered by its :class:`Applied` output.

        Raises:
            RuntimeError: this primary is deposed or its lease has run out
                (the caller answers its clients "not the primary").
        """
        if self.fenced(now):
            raise RuntimeError(f"{self.name} is not an acknowledging primary at {now}")
        effects = Effects()
        if not commands:
            return effects
        self._now = now
        start = self.end + 1
        entries = tuple(Entry(self.epoch, command) for command in commands)
        self.log.write(start, entries)
        effects.persist.append(Written(start, entries))
        for backup in self.backups:
            if self.next[backup] == start:  # up to date: pipeline the new entries
                self._ship(backup, effects)
        self._commit(now, effects)
        return effects

    def handle_all(self, messages: list[Any], now: float) -> Effects:
        """Take backups' answers: one step."""
        effects = Effects()
        self._now = now
        for message in messages:
            kind = type(message)
            if kind is Acked or kind is Mismatch or kind is Stale:
                if message.backup not in self.next or type(message.epoch) is not int:
                    self._refuse(effects, str(message.backup), f"not a backup: {message!r}")
                    continue
                if message.epoch > self.epoch:
                    self.deposed = True  # rule 5
                    continue
                if message.epoch < self.epoch or kind is Stale:
                    continue  # an answer to an older primary: nothing to learn
                self._heard.add(message.backup)
                if kind is Acked:
                    self._acked(message, effects)
                else:
                    self._mismatch(message, effects)
            else:
                self._refuse(effects, "?", f"a primary takes Acked, Mismatch or Stale, not {kind}")
        self._commit(now, effects)
        return effects

    def tick(self, now: float) -> Effects:
        """Heartbeats and repairs due at ``now`` (rule 7): one step."""
        effects = Effects()
        self._now = now
        if not self.deposed and now >= self._beat_at:
            self._beat_at = now + self.options.heartbeat
            for backup in self.backups:
                self._ship(backup, effects)
        self._commit(now, effects)
        return effects

    def next_deadline(self) -> float | None:
        """The next heartbeat (None once deposed)."""
        return None if self.deposed else self._beat_at

    # -- the rules -----------------------------------------------------------------------

    def _refuse(self, effects: Effects, peer: str, reason: str) -> None:
        self.refused += 1
        effects.refused.append(Refusal(peer, reason))

    def _ship(self, backup: str, effects: Effects) -> None:
        """Send ``backup`` what it lacks from its next position (or a heartbeat)."""
        start = self.next[backup]
        prev = start - 1
        log = self.log
        if prev < log.base:  # rule 9
            sent = self._snapshot_at.get(backup)
            if sent is None or self._now >= sent + self.options.snapshot_retry:
                self._snapshot_at[backup] = self._now
                effects.outputs.append(SnapshotDue(backup))
            return
        entries = log.between(start, self.options.max_batch)
        prev_epoch = log.epoch_at(prev)
        committed = self.committed if self.durable is None else min(self.committed, self.durable)
        append = Append(self.epoch, self.name, prev, prev_epoch, entries, committed)
        effects.send_now.append((backup, append))
        self.next[backup] = start + len(entries)  # optimistic; a Mismatch moves it back
        if self._stuck_since[backup] is None and self.match[backup] < self.end:
            self._stuck_since[backup] = self._now  # behind from now, until it moves

    def _acked(self, acked: Acked, effects: Effects) -> None:
        if not (type(acked.upto) is int and 0 <= acked.upto <= self.end):
            self._refuse(effects, acked.backup, f"acknowledged {acked.upto} > end {self.end}")
            return
        backup = acked.backup
        if acked.upto > self.match[backup]:
            # progress: behind from now on only if it is still (its clock starts again)
            self._stuck_since[backup] = self._now if acked.upto < self.end else None
        self.match[backup] = max(self.match[backup], acked.upto)
        self.next[backup] = max(self.next[backup], self.match[backup] + 1)
        if self.match[backup] + 1 == self.next[backup] <= self.end:
            self._ship(backup, effects)  # rule 4: nothing in flight and more to send

    def _mismatch(self, mismatch: Mismatch, effects: Effects) -> None:
        backup = mismatch.backup
        hint = mismatch.hint
        if not (type(hint) is int and 0 <= hint):
            self._refuse(effects, backup, f"a malformed hint {hint!r}")
            return
        self.next[backup] = min(hint, self.end) + 1
        self.match[backup] = min(self.match[backup], hint)
        self._ship(backup, effects)

    def _commit(self, now: float, effects: Effects) -> None:
        """Advance ``committed`` by mode (rule 2) unless fenced (rule 6); output what is new."""
        if self.fenced(now):
            return
        slowest = min((self.match[b] for b in self.in_sync), default=self.end)
        if self.options.mode == "async":
            # Ahead of the in-sync backups by lag_bound entries at most: a failover to one
            # of them loses no more (rule 3 drops one that falls further behind).
            target = min(self.end, slowest + self.options.lag_bound)
        else:
            target = slowest
        # Only entries of this epoch commit by counting; earlier ones ride along under
        # them (the service appends a no-op at the start of each epoch for that).
        if target > self.committed and self.log.epoch_at(target) == self.epoch:
            self.committed = target
        while self.applied < self.committed:
            self.applied += 1
            effects.outputs.append(Applied(self.applied, self.log.entry(self.applied)))
