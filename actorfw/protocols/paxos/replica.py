"""The Multi-Paxos replica (PMMC R1-R5), as a sans-IO core.

Theory of operation
-------------------

A replica holds a copy of the application (a deterministic
:class:`~actorfw.protocols.paxos.StateMachine`) and the log of decided slots. Clients
send it requests; it proposes them to the leaders, batched many commands
per slot, and applies decisions in slot order. Two counters drive it, as in
PMMC: ``slot_in``, the next slot it may propose into, and ``slot_out``, the
next slot to apply.

Rules:

1. Applied in order (R1, R2): decisions are applied strictly in slot
   order, with no gaps; the log of applied batches only grows. Every
   replica that applied slot ``s`` applied the same batch there (the
   leaders and acceptors guarantee it; a replica that is told two batches
   for one slot raises :class:`~actorfw.protocols.paxos.invariants.InvariantViolation`).
2. Window (R5): ``slot_out <= slot_in <= slot_out + window``. Requests
   wait in a queue and are proposed, up to ``max_batch`` per slot, only
   into slots below ``slot_out + window``. So under load batches grow by
   themselves: requests that arrive while the window is full share slots.
   Proposals of one step travel in one :class:`Propose`.
3. Proposals go to the leader the replica's node believes leads
   (:class:`LeaderIs`, from the leader of its node), else to every leader
   (PMMC's choice: a passive leader holds them, so a new leader already
   has them when it takes over). When the believed leader changes, every
   pending proposal goes to the new one at once. A proposal not decided
   within ``propose_timeout`` is sent again, to every leader (lost
   messages, a dead leader, a wrong belief). Sending to one leader spares
   the others decoding every command a third time.
4. Re-queue (R3): when a slot is decided with a batch other than this
   replica's proposal for it, the proposal's commands that the decided
   batch does not hold go back to the front of the queue.
5. Exactly once (R4): a command ``(client, seq)`` runs only if ``seq`` is
   above the highest seq the client had run; the replica remembers that
   seq and its result per client. A retried command is answered with the
   remembered result, not run again. Clients have at most one command
   outstanding.
6. Answers: the replica that took a client's request answers it (a
   :class:`Response` in ``Effects.responses``); the others apply silently.
7. Catch-up: a replica reports ``slot_out`` to its peers
   (:class:`Progress`) and to the leaders (:class:`Applied`) every
   ``status_interval``. When it has been stuck for ``catchup_delay`` below
   a peer's ``slot_out``, or with a gap below decisions it already holds,
   it asks a peer (the one furthest ahead, else the next in turn) for the
   missing decisions with :class:`CatchUp`; the peer answers with up to
   ``max_catchup_slots`` decisions in a :class:`CatchUpReply`, and it asks
   again at once while still behind that peer.

8. Durable log: the batches a step applies are returned as one
   :class:`~actorfw.protocols.paxos.records.Decided` record in ``Effects.persist``,
   so they are durable before the step's responses and reports leave (a
   reported ``slot_out`` makes leaders skip those slots in phase 1, and
   lets acceptors collect them: the log must not be lost).
   :meth:`Replica.restore` restores the latest snapshot, then replays the
   persisted log after it (rebuilding the client sessions), then the
   replica catches up from its peers.
9. Snapshots: with a :class:`~actorfw.protocols.paxos.types.Snapshotting` machine
   and ``snapshot_interval`` set, once ``slot_out`` is that many slots past
   the last snapshot, the step ends by snapshotting the machine and the
   client sessions at ``slot_out`` (:class:`Snapshotted`), and dropping the
   log below ``slot_out - log_tail`` (:class:`Truncated`), in the same
   atomic write. The sessions travel with the state, so exactly-once
   survives compaction, restarts and installs.
10. Catch-up by snapshot: a peer asked for slots below its log's start
    answers with :class:`InstallSnapshot`, a snapshot of its state at its
    own ``slot_out`` (taken then, not the persisted one). The asker, if
    behind that slot, installs it: the machine and sessions are replaced,
    ``slot_out`` jumps to the snapshot's slot, held decisions and own
    proposals below it are dropped (the commands of those proposals not run
    according to the new sessions go back to the queue, and requests it
    took that did run are answered from the sessions), its log restarts
    empty at that slot, and the snapshot is persisted (replacing its log)
    before the step's reports leave.
11. Reads (:class:`Read`): a read-only operation (the machine is a
    :class:`~actorfw.protocols.paxos.types.Querying` and says so) taken at a replica
    that shares its address with a leader is not proposed: the replica
    asks that leader for a read index (:class:`ReadIndex`, one for all the
    reads of a step). If the leader holds a valid lease it grants an
    index, and the replica answers each read (``Response.by_lease``) with
    ``machine.query`` as soon as its ``slot_out`` reaches the index. If the
    leader refuses (leases off, not leading, no lease), or does not answer
    within ``propose_timeout``, the reads become ordinary requests through
    the log: the fallback is always the log, never a redirect. A read
    served by lease does not touch the client's session.
12. Bounded sessions: a client opens its session with its first command
    (``seq`` 1) through the log, and a client that abandons a command
    continues under a new id (:mod:`actorfw.services.replication.client` does
    both), so a command of a client without a session and with a ``seq``
    above 1 comes from a client whose session was dropped. With
    ``max_sessions`` set, applying the first command of a client when the
    table is full first drops the session of the client that ran a command
    longest ago (the table is kept in that order: a client's session moves
    to the end whenever one of its commands runs, and snapshots keep the
    order). Every replica applies the same commands in the same order, so
    every replica drops the same sessions. A command of a dropped client
    may have run before its session was dropped: it does not run, and it
    is answered with :class:`~actorfw.protocols.paxos.SessionExpired`.
13. Proposals leave now: a :class:`Propose` goes in ``Effects.send_now``,
    not waiting for the step's records, and carries as its ``slot_out``
    the progress that is durable (raised by :meth:`Replica.made_durable`),
    never more. A lower ``slot_out`` is always true, so the proposal needs
    no write of its own, and a request reaches the leader without waiting
    for this replica's sync.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

import numpy as np

from actorfw.protocols.dispatch import Dispatch
from actorfw.protocols.paxos.messages import (
    Applied,
    Batch,
    CatchUp,
    CatchUpReply,
    Command,
    Decision,
    InstallSnapshot,
    LeaderIs,
    Progress,
    Propose,
    Read,
    ReadIndex,
    ReadIndexReply,
    Request,
    Response,
    SessionExpired,
    Sessions,
    Slots,
    handled_where,
    is_slots,
)
from actorfw.protocols.paxos.records import Decided, Record, Snapshotted, Truncated
from actorfw.protocols.paxos.types import (
    FIRST_SLOT,
    Config,
    Effects,
    InvariantViolation,
    Querying,
    ReplicaOptions,
    Snapshotting,
    StateMachine,
)

__all__ = ["Replica"]

_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY.setflags(write=False)


def _valid_sessions(sessions: object) -> bool:
    if type(sessions) is not dict:
        return False
    for client, session in sessions.items():
        if not (
            type(client) is str
            and type(session) is tuple
            and len(session) == 2
            and type(session[0]) is int
        ):
            return False
    return True


def _valid_command(command: object) -> bool:
    return type(command) is Command and type(command.client) is str and type(command.seq) is int


def _valid_batches(batches: object, count: int) -> bool:
    if type(batches) is not tuple or len(batches) != count:
        return False
    for batch in batches:
        if type(batch) is not tuple:
            return False
        for command in batch:
            if type(command) is not Command:
                return False
    return True


class Replica:
    """One replica: proposes client commands, applies decisions, answers its clients.

    Args:
        config: the configuration (the leaders to propose to, the peers).
        me: this replica's address, one of ``config.replicas``.
        machine: the application, fresh (a restarted replica restores its
            snapshot and replays its log into a new machine). A
            :class:`~actorfw.protocols.paxos.Snapshotting` machine allows snapshots
            and log truncation (rule 9), a
            :class:`~actorfw.protocols.paxos.Querying` one reads by lease (rule 11).
        options: tuning.

    Raises:
        ValueError: ``me`` is not a replica of ``config``.

    Example::

        replica = Replica(config, "n1", KeyValueStore())
        effects = replica.request(Command("c1", 1, ("put", "x", 1)), now=0.0)
        # effects.send: a Propose to every leader
    """

    def __init__(
        self,
        config: Config,
        me: str,
        machine: StateMachine,
        options: ReplicaOptions | None = None,
    ) -> None:
        if not config.is_replica(me):
            raise ValueError(f"{me!r} is not a replica of this configuration {config.replicas}")
        self.config = config
        self.me = me
        self.machine = machine
        self.options = options if options is not None else ReplicaOptions()
        self._peers = tuple(r for r in config.replicas if r != me)
        self._leader_hint = ""  # rule 3: where proposals go ("": every leader)
        self._to_all = False  # this step's proposals go to every leader
        self._slot_in = FIRST_SLOT
        self._slot_out = FIRST_SLOT
        self._requests: deque[Command] = deque()
        self._waiting: set[tuple[str, int]] = set()
        self._mine: set[tuple[str, int]] = set()
        self._proposals: dict[int, Batch] = {}
        self._proposed_at: dict[int, float] = {}
        self._decisions: dict[int, Batch] = {}
        self._log: list[Batch] = []
        self._log_base = FIRST_SLOT
        self._persisted_base = FIRST_SLOT
        self._snapshot_slot = FIRST_SLOT
        self._snapshot_record: Snapshotted | None = None
        self._snapshots = isinstance(machine, Snapshotting)
        self._queries = isinstance(machine, Querying) and config.is_leader(me)
        self._sessions: dict[str, tuple[int, Any]] = {}
        # reads (rule 11): asked of the leader, then waiting for their index
        self._read_batch: list[Command] = []
        self._read_asks: dict[int, tuple[float, list[Command]]] = {}
        self._read_id = 0
        self._reads: list[tuple[int, int, Command]] = []  # heap of (index, order, command)
        self._read_order = 0
        self._peer_progress: dict[str, int] = {}
        self._now = -math.inf
        self._next_status = -math.inf
        self._behind_since: float | None = None
        self._asked_at = -math.inf
        self._ask_helped = True
        self._catchup_turn = 0
        # this step's output
        self._send: list[tuple[str, Any]] = []
        self._responses: list[Response] = []
        self._new_slots: list[int] = []
        self._new_batches: list[Batch] = []
        self._applied_from = FIRST_SLOT
        self._step_from = FIRST_SLOT
        self._step_batches: list[Batch] = []
        self._last_applied: tuple[int, list[Batch]] = (FIRST_SLOT, [])
        # rule 13: slot_out as far as it is durable, and the steps that will raise it
        self._durable_out = FIRST_SLOT
        self._persisting = 0  # steps that persisted anything
        self._outs: deque[tuple[int, int]] = deque()  # (such a step, slot_out after it)
        self.stats: Counter[str] = Counter()
        """Counts of notable events: ``duplicate_request``, ``requeued``, ``catchup_asked``, ..."""

    @classmethod
    def restore(
        cls,
        config: Config,
        me: str,
        machine: StateMachine,
        records: Iterable[Record],
        options: ReplicaOptions | None = None,
    ) -> Replica:
        """A replica rebuilt after a crash: its persisted log replayed into ``machine``.

        ``machine`` must be fresh; replaying re-runs every logged command in
        order (skipping duplicates as the first run did) and rebuilds the
        client sessions. Nothing is answered.

        Raises:
            TypeError: a record no replica writes.
            ValueError: the persisted log has a gap or does not start at ``FIRST_SLOT``.
        """
        replica = cls(config, me, machine, options)
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
        slot = FIRST_SLOT
        if snapshot is not None:
            if not isinstance(machine, Snapshotting):
                raise TypeError(
                    f"replica {me!r} persisted a snapshot but its state machine "
                    f"{type(machine).__name__} has no snapshot()/restore()"
                )
            machine.restore(snapshot.state)
            replica._sessions = dict(snapshot.sessions)
            slot = replica._snapshot_slot = snapshot.slot
        # The log tail kept below the snapshot (not applied: the snapshot covers it).
        base = slot
        while base - 1 in logged:
            base -= 1
        replica._log = [logged[s] for s in range(base, slot)]
        replica._log_base = replica._persisted_base = base
        replica._slot_out = slot
        above = sorted(s for s in logged if s >= slot)
        if above and above[0] != slot:
            raise ValueError(
                f"replica {me!r}: the persisted log jumps from slot {slot} to {above[0]}"
            )
        for number in above:
            if number != replica._slot_out:
                raise ValueError(
                    f"replica {me!r}: the persisted log jumps from slot {replica._slot_out} "
                    f"to {number}"
                )
            batch = logged[number]
            replica._apply(batch)
            replica._log.append(batch)
            replica._slot_out += 1
        replica._slot_in = replica._slot_out
        replica._responses = []
        replica._mine.clear()
        replica._applied_from = replica._slot_out
        replica._step_from = replica._slot_out
        replica._step_batches = []
        replica._last_applied = (replica._slot_out, [])
        replica._durable_out = replica._slot_out
        return replica

    # -- state -------------------------------------------------------------------------

    @property
    def slot_in(self) -> int:
        """The next slot this replica may propose into."""
        return self._slot_in

    @property
    def slot_out(self) -> int:
        """The next slot to apply: every slot below it is applied."""
        return self._slot_out

    @property
    def log(self) -> list[Batch]:
        """The applied batches still held, slot :attr:`log_base` first (do not modify)."""
        return self._log

    @property
    def log_base(self) -> int:
        """The slot of ``log[0]``: older slots were truncated after a snapshot (rule 9)."""
        return self._log_base

    @property
    def snapshot_slot(self) -> int:
        """The slot of the latest snapshot taken, restored or installed (``FIRST_SLOT``: none)."""
        return self._snapshot_slot

    @property
    def last_applied(self) -> tuple[int, list[Batch]]:
        """``(first slot, batches)`` the last step applied, for invariant checkers.

        The batches are slots ``first, first + 1, ...`` up to ``slot_out``;
        ``first`` is above the previous ``slot_out`` only after installing
        a snapshot there. A snapshot may already have truncated them from
        :attr:`log`.
        """
        return self._last_applied

    @property
    def pending_reads(self) -> int:
        """Reads waiting for the leader's read index or for the replica to reach it."""
        return len(self._reads) + sum(len(c) for _, c in self._read_asks.values())

    def applied(self, slot: int) -> Batch | None:
        """The batch applied at ``slot``, or None if not applied (yet)."""
        index = slot - self._log_base
        if 0 <= index < len(self._log):
            return self._log[index]
        return None

    def decided(self, slot: int) -> Batch | None:
        """The batch known decided for ``slot`` (applied or waiting to be), or None."""
        batch = self.applied(slot)
        return batch if batch is not None else self._decisions.get(slot)

    @property
    def pending_requests(self) -> int:
        """Requests waiting for a slot."""
        return len(self._requests)

    @property
    def proposals(self) -> dict[int, Batch]:
        """This replica's proposals not decided yet, by slot (do not modify)."""
        return self._proposals

    def session(self, client: str) -> tuple[int, Any] | None:
        """``(highest executed seq, its result)`` of ``client``, or None."""
        return self._sessions.get(client)

    # -- inputs ------------------------------------------------------------------------

    def request(self, command: Command, now: float) -> Effects:
        """A client's command arrived here: propose it (or answer it, if it already ran).

        Raises:
            TypeError: ``command`` is not a :class:`Command`.
        """
        if type(command) is not Command:
            raise TypeError(f"request() takes a Command, not {type(command).__name__}")
        self._now = max(self._now, now)
        self._on_command(command)
        self._propose()
        return self._flush()

    def handle(self, message: Any, now: float) -> Effects:
        """Take one message of the replica's alphabet (see ``_DISPATCH`` at the end of the module).

        ``Request``, ``Read``, ``Decision``, ``Progress``, ``CatchUp``,
        ``CatchUpReply``, ``InstallSnapshot`` or ``ReadIndexReply``.

        Raises:
            TypeError: ``message`` is for another role.
        """
        self._now = max(self._now, now)
        self._dispatch(message)
        self._propose()
        return self._flush()

    def handle_all(self, messages: Iterable[Any], now: float) -> Effects:
        """Take several messages in order: their proposals go out batched in one ``Propose``."""
        self._now = max(self._now, now)
        for message in messages:
            self._dispatch(message)
        self._propose()
        return self._flush()

    def tick(self, now: float) -> Effects:
        """Run the timers due at ``now``: status reports, re-proposals, catch-up, read asks."""
        self._now = now = max(self._now, now)
        if now >= self._next_status:
            self._report()
        timeout = self.options.propose_timeout
        due = [s for s, at in self._proposed_at.items() if at + timeout <= now]
        if due:
            self.stats["reproposed"] += len(due)
            self._to_all = True  # rule 3: the leader we believed in may be gone
            for slot in due:
                self._proposed_at[slot] = now
                self._new_slots.append(slot)
                self._new_batches.append(self._proposals[slot])
        unanswered = [i for i, (at, _) in self._read_asks.items() if at + timeout <= now]
        for ask in unanswered:
            self.stats["read_index_unanswered"] += 1
            for command in self._read_asks.pop(ask)[1]:
                self._on_command(command)  # rule 11: the log, then
        self._maybe_catch_up()
        self._propose()
        return self._flush()

    def next_deadline(self) -> float:
        """The earliest time :meth:`tick` has work to do (at or before now: tick at once).

        A fresh replica is due at once (its first status report).
        """
        deadline = self._next_status
        timeout = self.options.propose_timeout
        if self._proposed_at:
            deadline = min(deadline, min(self._proposed_at.values()) + timeout)
        if self._read_asks:
            deadline = min(deadline, min(at for at, _ in self._read_asks.values()) + timeout)
        if self._peers and self._behind():
            deadline = min(deadline, self._next_ask())
        return deadline

    # -- handlers ----------------------------------------------------------------------

    def _dispatch(self, message: Any) -> None:
        _DISPATCH(self, self.me, message)

    def _on_request(self, msg: Request) -> None:
        command = msg.command
        if not _valid_command(command):
            self.stats["malformed"] += 1
            return
        self._on_command(command)

    def _on_leader_is(self, msg: LeaderIs) -> None:
        node = msg.node
        if type(node) is not str or (node and not self.config.is_leader(node)):
            self.stats["malformed"] += 1
            return
        if node == self._leader_hint:
            return
        self._leader_hint = node
        if node:  # rule 3: the pending proposals go to the new leader now
            fresh = set(self._new_slots)
            for slot, batch in self._proposals.items():
                if slot not in fresh:
                    self._proposed_at[slot] = self._now
                    self._new_slots.append(slot)
                    self._new_batches.append(batch)

    def _on_read(self, msg: Read) -> None:
        command = msg.command
        if not _valid_command(command):
            self.stats["malformed"] += 1
            return
        session = self._sessions.get(command.client)
        if (
            not self._queries
            or (session is not None and command.seq <= session[0])
            or not self._read_only(command.op)
        ):
            self.stats["read_through_log"] += 1
            self._on_command(command)
            return
        self._read_batch.append(command)

    def _read_only(self, op: Any) -> bool:
        try:
            return self.machine.is_read_only(op) is True  # type: ignore[attr-defined]
        except Exception:  # a machine's bug must not stop the replica: use the log
            self.stats["is_read_only_failed"] += 1
            return False

    def _on_read_index_reply(self, msg: ReadIndexReply) -> None:
        if not (
            self.config.is_leader(msg.leader)
            and type(msg.id) is int
            and type(msg.granted) is bool
            and type(msg.index) is int
        ):
            self.stats["malformed"] += 1
            return
        ask = self._read_asks.pop(msg.id, None)
        if ask is None:
            self.stats["stale_read_index"] += 1
            return
        if not msg.granted:
            self.stats["read_refused"] += len(ask[1])
            for command in ask[1]:
                self._on_command(command)
            return
        for command in ask[1]:
            self._read_order += 1
            heapq.heappush(self._reads, (msg.index, self._read_order, command))
        self._serve_reads()

    def _serve_reads(self) -> None:
        """Answer the reads whose read index the replica has reached (rule 11)."""
        reads = self._reads
        if not reads or reads[0][0] > self._slot_out:
            return
        query = self.machine.query  # type: ignore[attr-defined]
        while reads and reads[0][0] <= self._slot_out:
            command = heapq.heappop(reads)[2]
            key = (command.client, command.seq)
            self._mine.discard(key)  # answered now; a copy through the log stays silent
            self.stats["read_by_lease"] += 1
            result = query(command.op)
            self._responses.append(Response(command.client, command.seq, result, by_lease=True))

    def _on_command(self, command: Command) -> None:
        key = (command.client, command.seq)
        session = self._sessions.get(command.client)
        if session is not None and command.seq <= session[0]:
            if command.seq == session[0]:
                self.stats["answered_from_session"] += 1
                self._responses.append(Response(command.client, command.seq, session[1]))
            else:
                self.stats["stale_request"] += 1
            return
        self._mine.add(key)
        if key in self._waiting:
            self.stats["duplicate_request"] += 1
            return
        self._waiting.add(key)
        self._requests.append(command)

    def _on_decision(self, msg: Decision) -> None:
        if not (is_slots(msg.slots) and _valid_batches(msg.batches, len(msg.slots))):
            self.stats["malformed"] += 1
            return
        self._learn(msg.slots, msg.batches)

    def _on_progress(self, msg: Progress) -> None:
        if not (msg.replica in self._peers and type(msg.slot_out) is int):
            self.stats["malformed"] += 1
            return
        self._peer_progress[msg.replica] = msg.slot_out

    def _on_catchup(self, msg: CatchUp) -> None:
        if not (msg.replica in self._peers and type(msg.from_slot) is int):
            self.stats["malformed"] += 1
            return
        if msg.from_slot < self._log_base and self._snapshots:
            # Rule 10: the asker needs slots this log no longer holds.
            machine: Snapshotting = self.machine  # type: ignore[assignment]
            self.stats["snapshot_sent"] += 1
            snapshot = InstallSnapshot(
                self.me, self._slot_out, self._slot_out, machine.snapshot(), dict(self._sessions)
            )
            self._send.append((msg.replica, snapshot))
            return
        start = max(msg.from_slot, self._log_base)
        end = start + self.options.max_catchup_slots
        slots: list[int] = []
        batches: list[Batch] = []
        applied_end = min(end, self._slot_out)
        if start < applied_end:
            slots.extend(range(start, applied_end))
            batches.extend(self._log[start - self._log_base : applied_end - self._log_base])
        for slot in range(max(start, self._slot_out), end):
            batch = self._decisions.get(slot)
            if batch is not None:
                slots.append(slot)
                batches.append(batch)
        self.stats["catchup_answered"] += 1
        reply = CatchUpReply(self.me, self._slot_out, np.array(slots, np.int64), tuple(batches))
        self._send.append((msg.replica, reply))

    def _on_catchup_reply(self, msg: CatchUpReply) -> None:
        if not (
            msg.replica in self._peers
            and type(msg.slot_out) is int
            and is_slots(msg.slots)
            and _valid_batches(msg.batches, len(msg.slots))
        ):
            self.stats["malformed"] += 1
            return
        self._peer_progress[msg.replica] = msg.slot_out
        before = self._slot_out
        self._learn(msg.slots, msg.batches)
        self._ask_helped = self._slot_out > before
        if self._ask_helped and self._slot_out < msg.slot_out:
            self._ask(msg.replica)  # more to fetch: keep going without waiting for a tick

    def _on_install_snapshot(self, msg: InstallSnapshot) -> None:
        if not (
            msg.replica in self._peers
            and type(msg.slot_out) is int
            and type(msg.slot) is int
            and msg.slot >= FIRST_SLOT
            and _valid_sessions(msg.sessions)
        ):
            self.stats["malformed"] += 1
            return
        progress = self._peer_progress
        progress[msg.replica] = max(progress.get(msg.replica, 0), msg.slot_out)
        if msg.slot <= self._slot_out or not self._snapshots:
            self.stats["snapshot_useless"] += 1
            self._ask_helped = False
            return
        self._install(msg.slot, msg.state, msg.sessions)
        self._ask_helped = True
        if self._slot_out < msg.slot_out:
            self._ask(msg.replica)  # more to fetch from its log: at once

    def _install(self, slot: int, state: Any, sessions: Sessions) -> None:
        """Replace the state with a peer's snapshot at ``slot`` (rule 10)."""
        machine: Snapshotting = self.machine  # type: ignore[assignment]
        machine.restore(state)
        self._sessions = dict(sessions)
        self.stats["snapshot_installed"] += 1
        self._snapshot_slot = slot
        # Persist the machine's own snapshot, not the received object: restore() may
        # have kept that object, and the slots applied next would change it.
        self._snapshot_record = Snapshotted(slot, machine.snapshot(), self._sessions.copy())
        self._log = []
        self._log_base = slot
        self._slot_out = slot
        self._slot_in = max(self._slot_in, slot)
        self._step_from = slot
        self._step_batches = []
        for number in [s for s in self._decisions if s < slot]:
            del self._decisions[number]
        lost = [s for s in self._proposals if s < slot]
        for number in lost:
            self._proposed_at.pop(number, None)
            own = self._proposals.pop(number)
            back = [c for c in own if not self._ran(c)]
            if back:
                self.stats["requeued"] += len(back)
                self._requests.extendleft(reversed(back))
        sessions_now = self._sessions
        for key in [k for k in self._mine if self._ran_key(k)]:
            self._mine.discard(key)
            self._waiting.discard(key)
            session = sessions_now[key[0]]
            if session[0] == key[1]:
                self._responses.append(Response(key[0], key[1], session[1]))
        self._behind_since = None
        if slot in self._decisions:
            self._perform()
        self._serve_reads()

    def _ran(self, command: Command) -> bool:
        return self._ran_key((command.client, command.seq))

    def _ran_key(self, key: tuple[str, int]) -> bool:
        session = self._sessions.get(key[0])
        return session is not None and key[1] <= session[0]

    # -- deciding and applying -----------------------------------------------------------

    def _learn(self, slots: Slots, batches: tuple[Batch, ...]) -> None:
        """Take decisions in; apply whatever became contiguous (rule 1)."""
        slot_out = self._slot_out
        decisions = self._decisions
        for slot, batch in zip(slots.tolist(), batches, strict=True):
            if slot >= slot_out:
                known = decisions.get(slot)
                if known is None:
                    decisions[slot] = batch
                    continue
            else:
                known = self.applied(slot)
                if known is None:  # below the log's start: truncated after a snapshot
                    continue
            if known is not batch and known != batch:
                raise InvariantViolation(
                    f"replica {self.me!r} was told two batches for slot {slot}: "
                    f"{known!r} and {batch!r}"
                )
        if slot_out in decisions:
            self._perform()

    def _perform(self) -> None:
        decisions, proposals = self._decisions, self._proposals
        slot = self._slot_out
        while True:
            batch = decisions.pop(slot, None)
            if batch is None:
                break
            own = proposals.pop(slot, None)
            if own is not None:
                del self._proposed_at[slot]
                if own is not batch and own != batch:
                    self._requeue(own, batch)
            self._apply(batch)
            self._log.append(batch)
            self._step_batches.append(batch)
            slot += 1
        self._slot_out = slot
        self._slot_in = max(self._slot_in, slot)
        self._behind_since = None  # progress: a new wait starts if still behind
        if self._reads:
            self._serve_reads()

    def _requeue(self, own: Batch, decided: Batch) -> None:
        """Rule 4: the commands of a lost proposal go back to the front of the queue."""
        taken = {(c.client, c.seq) for c in decided}
        back = [c for c in own if (c.client, c.seq) not in taken]
        if back:
            self.stats["requeued"] += len(back)
            self._requests.extendleft(reversed(back))

    def _apply(self, batch: Batch) -> None:
        sessions, mine, waiting = self._sessions, self._mine, self._waiting
        apply = self.machine.apply
        limit = self.options.max_sessions
        for command in batch:
            client, seq = command.client, command.seq
            key = (client, seq)
            session = sessions.get(client)
            if session is not None and seq <= session[0]:
                # Already executed (decided twice: re-proposed elsewhere): answer, do not run.
                waiting.discard(key)
                if key in mine:
                    mine.discard(key)
                    if seq == session[0]:
                        self._responses.append(Response(client, seq, session[1]))
                continue
            if session is None and seq != 1:
                # Rule 12: its session was dropped, and it may have run already.
                self.stats["session_expired"] += 1
                waiting.discard(key)
                if key in mine:
                    mine.discard(key)
                    self._responses.append(Response(client, seq, SessionExpired(client, seq)))
                continue
            result = apply(command.op)
            if session is not None:
                del sessions[client]  # to the end: its client is the most recently active
            elif limit is not None and len(sessions) >= limit:
                del sessions[next(iter(sessions))]  # the least recently active client
                self.stats["sessions_dropped"] += 1
            sessions[client] = (seq, result)
            waiting.discard(key)
            if key in mine:
                mine.discard(key)
                self._responses.append(Response(client, seq, result))

    # -- proposing ---------------------------------------------------------------------

    def _propose(self) -> None:
        """Fill the window with batches of queued requests (rules 2, 3)."""
        requests = self._requests
        if not requests:
            return
        limit = self._slot_out + self.options.window
        max_batch = self.options.max_batch
        sessions, decisions = self._sessions, self._decisions
        slot = self._slot_in
        now = self._now
        while slot < limit and requests:
            if slot in decisions:
                slot += 1
                continue
            batch: list[Command] = []
            while requests and len(batch) < max_batch:
                command = requests.popleft()
                session = sessions.get(command.client)
                if session is not None and command.seq <= session[0]:
                    self._waiting.discard((command.client, command.seq))
                    continue  # executed meanwhile (another replica proposed it)
                batch.append(command)
            if not batch:
                break
            proposal = tuple(batch)
            self._proposals[slot] = proposal
            self._proposed_at[slot] = now
            self._new_slots.append(slot)
            self._new_batches.append(proposal)
            slot += 1
        self._slot_in = slot

    # -- status and catch-up -------------------------------------------------------------

    def _report(self) -> None:
        self._next_status = self._now + self.options.status_interval
        progress = Progress(self.me, self._slot_out)
        for peer in self._peers:
            self._send.append((peer, progress))
        applied = Applied(self.me, self._slot_out)
        for leader in self.config.leaders:
            self._send.append((leader, applied))

    def _behind(self) -> bool:
        decisions = self._decisions
        if decisions and self._slot_out not in decisions:
            return True
        return any(p > self._slot_out for p in self._peer_progress.values())

    def _next_ask(self) -> float:
        """When a stuck replica may ask a peer (again) for decisions (rule 7)."""
        return max(
            (self._behind_since if self._behind_since is not None else self._now)
            + self.options.catchup_delay,
            self._asked_at + self.options.catchup_timeout,
        )

    def _maybe_catch_up(self) -> None:
        if not self._peers or not self._behind() or self._now < self._next_ask():
            return
        progress = self._peer_progress
        ahead = max(self._peers, key=lambda p: progress.get(p, -1))
        if progress.get(ahead, -1) <= self._slot_out or not self._ask_helped:
            # Nobody is known to be ahead (a gap only), or the last ask did not
            # help (unanswered, or the peer lacked the slots): take peers in turn.
            ahead = self._peers[self._catchup_turn % len(self._peers)]
            self._catchup_turn += 1
        self._ask(ahead)

    def _ask(self, peer: str) -> None:
        self.stats["catchup_asked"] += 1
        self._asked_at = self._now
        self._ask_helped = False
        self._send.append((peer, CatchUp(self.me, self._slot_out)))

    def _snapshot_due(self) -> None:
        """Rule 9: snapshot at ``slot_out`` and drop the log below the tail, if due."""
        interval = self.options.snapshot_interval
        if (
            interval is None
            or not self._snapshots
            or self._slot_out - self._snapshot_slot < interval
        ):
            return
        machine: Snapshotting = self.machine  # type: ignore[assignment]
        slot = self._slot_out
        self.stats["snapshots"] += 1
        self._snapshot_slot = slot
        self._snapshot_record = Snapshotted(slot, machine.snapshot(), dict(self._sessions))
        base = max(self._log_base, slot - self.options.log_tail)
        if base > self._log_base:
            del self._log[: base - self._log_base]
            self._log_base = base

    def _flush(self) -> Effects:
        if self._peers and self._behind():
            if self._behind_since is None:
                self._behind_since = self._now
        else:
            self._behind_since = None
        self._last_applied = (self._step_from, self._step_batches)
        self._step_from = self._slot_out
        self._step_batches = []
        self._snapshot_due()
        persist: list[Record] = []
        if self._snapshot_record is not None:
            persist.append(self._snapshot_record)
            self._snapshot_record = None
        # Persisted log entries lie in [persisted_base, applied_from); drop those
        # below the in-memory log (a snapshot covers them), write the new ones.
        log_base = self._log_base
        if self._persisted_base < log_base:
            end = min(log_base, self._applied_from)
            if self._persisted_base < end:
                persist.append(Truncated(self._persisted_base, end))
            self._persisted_base = log_base
        if self._slot_out > self._applied_from:
            first = max(self._applied_from, log_base)
            if first < self._slot_out:
                persist.append(
                    Decided(first, tuple(self._log[first - log_base : self._slot_out - log_base]))
                )
            self._applied_from = self._slot_out
        if self._applied_from < log_base:  # installed past its log: nothing below is kept
            self._applied_from = log_base
        if self._read_batch:
            self._read_id += 1
            self._read_asks[self._read_id] = (self._now, self._read_batch)
            self._read_batch = []
            self._send.append((self.me, ReadIndex(self.me, self._read_id)))
        out = Effects(persist, self._send, self._responses)
        if self._new_slots:
            # Rule 13: the proposal leaves now, with the progress that is durable.
            slots = np.array(self._new_slots, dtype=np.int64)
            slots.setflags(write=False)
            out_now = min(self._durable_out, self._slot_out)
            propose = Propose(self.me, out_now, slots, tuple(self._new_batches))
            hint = self._leader_hint
            if hint and not self._to_all:
                out.send_now.append((hint, propose))
            else:
                for leader in self.config.leaders:
                    out.send_now.append((leader, propose))
            self._new_slots = []
            self._new_batches = []
        self._to_all = False
        if persist:
            self._persisting += 1
            self._outs.append((self._persisting, self._slot_out))
        self._send = []
        self._responses = []
        return out

    def made_durable(self, steps: int) -> None:
        """The records of the first ``steps`` steps that persisted anything are durable.

        From the driver (rule 8 of :mod:`actorfw.protocols.effects`), counted
        from this replica's restore; it raises the progress that proposals
        report (rule 13).
        """
        outs = self._outs
        while outs and outs[0][0] <= steps:
            self._durable_out = max(self._durable_out, outs.popleft()[1])

    def __repr__(self) -> str:
        return (
            f"<Replica {self.me} slot_in={self._slot_in} slot_out={self._slot_out} "
            f"queued={len(self._requests)} proposed={len(self._proposals)}>"
        )


_DISPATCH: Dispatch[Replica] = Dispatch(
    "replica",
    {
        Request: Replica._on_request,
        LeaderIs: Replica._on_leader_is,
        Decision: Replica._on_decision,
        Progress: Replica._on_progress,
        CatchUp: Replica._on_catchup,
        CatchUpReply: Replica._on_catchup_reply,
        InstallSnapshot: Replica._on_install_snapshot,
        Read: Replica._on_read,
        ReadIndexReply: Replica._on_read_index_reply,
    },
    handled_where,
)
"""Message type -> handler: the replica's whole input alphabet."""
