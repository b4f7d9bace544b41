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

The rules' parts are collaborators of :class:`Replica`:
:class:`~actorfw.protocols.paxos.clients.Clients` (sessions, the queue of
requests, answers owed: rules 5, 6, 12),
:class:`~actorfw.protocols.paxos.proposals.Proposals` (rules 2, 3, 13),
:class:`~actorfw.protocols.paxos.replica_log.ReplicaLog` (the log and its
records: rules 8, 9, 10), :class:`~actorfw.protocols.paxos.reads.LeaseReads`
(rule 11) and :class:`~actorfw.protocols.paxos.catchup.CatchUpPlan` (rule 7).
The replica holds ``slot_in``, ``slot_out`` and the decisions waiting to be
applied, applies them, and routes messages.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

from actorfw.protocols.dispatch import Dispatch
from actorfw.protocols.paxos.catchup import CatchUpPlan
from actorfw.protocols.paxos.clients import Clients
from actorfw.protocols.paxos.messages import (
    Batch,
    CatchUp,
    CatchUpReply,
    Command,
    Decision,
    InstallSnapshot,
    LeaderIs,
    Progress,
    Read,
    ReadIndexReply,
    Request,
    Sessions,
    Slots,
    handled_where,
)
from actorfw.protocols.paxos.proposals import Proposals
from actorfw.protocols.paxos.reads import LeaseReads
from actorfw.protocols.paxos.records import Record, Snapshotted
from actorfw.protocols.paxos.replica_log import ReplicaLog
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
from actorfw.protocols.paxos.wellformed import handle_checked

__all__ = ["Replica"]


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
        self.stats: Counter[str] = Counter()
        """Counts of notable events: ``duplicate_request``, ``requeued``, ``catchup_asked``, ..."""
        self._slot_in = FIRST_SLOT
        self._slot_out = FIRST_SLOT
        self._proposals = Proposals(config, me, self.stats)
        self._decisions: dict[int, Batch] = {}
        self._snapshots = isinstance(machine, Snapshotting)
        self._clients = Clients(self.options.max_sessions, self.stats)
        self._log = ReplicaLog()
        reader = machine if isinstance(machine, Querying) and config.is_leader(me) else None
        self._reads = LeaseReads(me, reader, self._clients, self.stats)
        peers = tuple(r for r in config.replicas if r != me)
        self._catchup = CatchUpPlan(me, peers, self.options, self.stats)
        self._now = -math.inf
        # this step's output
        self._send: list[tuple[str, Any]] = []
        self._step_from = FIRST_SLOT
        self._step_batches: list[Batch] = []
        self._last_applied: tuple[int, list[Batch]] = (FIRST_SLOT, [])

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
        slot = replica._log.replay(me, records, machine, replica._clients)
        replica._slot_in = replica._slot_out = replica._step_from = slot
        replica._last_applied = (slot, [])
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
        return self._log.batches

    @property
    def log_base(self) -> int:
        """The slot of ``log[0]``: older slots were truncated after a snapshot (rule 9)."""
        return self._log.base

    @property
    def snapshot_slot(self) -> int:
        """The slot of the latest snapshot taken, restored or installed (``FIRST_SLOT``: none)."""
        return self._log.snapshot_slot

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
        return self._reads.pending

    def applied(self, slot: int) -> Batch | None:
        """The batch applied at ``slot``, or None if not applied (yet)."""
        return self._log.applied(slot)

    def decided(self, slot: int) -> Batch | None:
        """The batch known decided for ``slot`` (applied or waiting to be), or None."""
        batch = self._log.applied(slot)
        return batch if batch is not None else self._decisions.get(slot)

    @property
    def pending_requests(self) -> int:
        """Requests waiting for a slot."""
        return len(self._clients.requests)

    @property
    def proposals(self) -> dict[int, Batch]:
        """This replica's proposals not decided yet, by slot (do not modify)."""
        return self._proposals.pending

    def session(self, client: str) -> tuple[int, Any] | None:
        """``(highest executed seq, its result)`` of ``client``, or None."""
        return self._clients.sessions.get(client)

    # -- inputs ------------------------------------------------------------------------

    def request(self, command: Command, now: float) -> Effects:
        """A client's command arrived here: propose it (or answer it, if it already ran).

        Raises:
            TypeError: ``command`` is not a :class:`Command`.
        """
        if type(command) is not Command:
            raise TypeError(f"request() takes a Command, not {type(command).__name__}")
        self._now = max(self._now, now)
        self._clients.take(command)
        self._propose()
        return self._flush()

    def handle(self, message: Any, now: float) -> Effects:
        """Take one message of the replica's alphabet (see ``_DISPATCH`` at the end of the module).

        ``Request``, ``Read``, ``Decision``, ``Progress``, ``CatchUp``,
        ``CatchUpReply``, ``InstallSnapshot`` or ``ReadIndexReply``.

        Raises:
            TypeError: ``message`` is for another role.
        """
        return self.handle_all((message,), now)

    def handle_all(self, messages: Iterable[Any], now: float) -> Effects:
        """Take several messages in order: their proposals go out batched in one ``Propose``."""
        self._now = max(self._now, now)
        for message in messages:
            handle_checked(_DISPATCH, self, message)
        self._propose()
        return self._flush()

    def tick(self, now: float) -> Effects:
        """Run the timers due at ``now``: status reports, re-proposals, catch-up, read asks."""
        self._now = now = max(self._now, now)
        self._catchup.report_due(now, self._slot_out, self.config.leaders, self._send)
        timeout = self.options.propose_timeout
        self._proposals.resend_due(now, timeout)
        self._reads.unanswered(now, timeout)  # rule 11: the log, then
        self._catchup.maybe_ask(now, self._slot_out, self._decisions, self._send)
        self._propose()
        return self._flush()

    def next_deadline(self) -> float:
        """The earliest time :meth:`tick` has work to do (at or before now: tick at once).

        A fresh replica is due at once (its first status report).
        """
        timeout = self.options.propose_timeout
        deadline = min(
            self._catchup.next_status,
            self._proposals.next_deadline(timeout),
            self._reads.next_deadline(timeout),
        )
        catchup = self._catchup
        if catchup.peers and catchup.behind(self._slot_out, self._decisions):
            deadline = min(deadline, catchup.next_ask(self._now))
        return deadline

    # -- handlers ----------------------------------------------------------------------

    def _on_request(self, msg: Request) -> None:
        self._clients.take(msg.command)

    def _on_leader_is(self, msg: LeaderIs) -> None:
        self._proposals.leader_is(msg.node, self._now)

    def _on_read(self, msg: Read) -> None:
        self._reads.take(msg.command)

    def _on_read_index_reply(self, msg: ReadIndexReply) -> None:
        self._reads.answered(msg, self._slot_out)

    def _on_decision(self, msg: Decision) -> None:
        self._learn(msg.slots, msg.batches)

    def _on_progress(self, msg: Progress) -> None:
        self._catchup.progress[msg.replica] = msg.slot_out

    def _on_catchup(self, msg: CatchUp) -> None:
        log = self._log
        if msg.from_slot < log.base and self._snapshots:
            # Rule 10: the asker needs slots this log no longer holds.
            machine: Snapshotting = self.machine  # type: ignore[assignment]
            self.stats["snapshot_sent"] += 1
            snapshot = InstallSnapshot(
                self.me,
                self._slot_out,
                self._slot_out,
                machine.snapshot(),
                dict(self._clients.sessions),
            )
            self._send.append((msg.replica, snapshot))
            return
        start = max(msg.from_slot, log.base)
        end = start + self.options.max_catchup_slots
        slots, batches = log.decided_between(start, end, self._slot_out, self._decisions)
        self.stats["catchup_answered"] += 1
        reply = CatchUpReply(self.me, self._slot_out, slots, batches)
        self._send.append((msg.replica, reply))

    def _on_catchup_reply(self, msg: CatchUpReply) -> None:
        catchup = self._catchup
        catchup.progress[msg.replica] = msg.slot_out
        before = self._slot_out
        self._learn(msg.slots, msg.batches)
        catchup.helped = self._slot_out > before
        if catchup.helped and self._slot_out < msg.slot_out:
            catchup.ask(msg.replica, self._now, self._slot_out, self._send)  # more: at once

    def _on_install_snapshot(self, msg: InstallSnapshot) -> None:
        catchup = self._catchup
        progress = catchup.progress
        progress[msg.replica] = max(progress.get(msg.replica, 0), msg.slot_out)
        if msg.slot <= self._slot_out or not self._snapshots:
            self.stats["snapshot_useless"] += 1
            catchup.helped = False
            return
        self._install(msg.slot, msg.state, msg.sessions)
        catchup.helped = True
        if self._slot_out < msg.slot_out:
            catchup.ask(msg.replica, self._now, self._slot_out, self._send)  # more: at once

    def _install(self, slot: int, state: Any, sessions: Sessions) -> None:
        """Replace the state with a peer's snapshot at ``slot`` (rule 10)."""
        machine: Snapshotting = self.machine  # type: ignore[assignment]
        machine.restore(state)
        clients = self._clients
        clients.installed(sessions)
        self.stats["snapshot_installed"] += 1
        # Persist the machine's own snapshot, not the received object: restore() may
        # have kept that object, and the slots applied next would change it.
        self._log.install(Snapshotted(slot, machine.snapshot(), clients.sessions.copy()))
        self._slot_out = slot
        self._slot_in = max(self._slot_in, slot)
        self._step_from = slot
        self._step_batches = []
        for number in [s for s in self._decisions if s < slot]:
            del self._decisions[number]
        for own in self._proposals.lost_below(slot):
            clients.requeue([c for c in own if not clients.ran(c)])
        self._catchup.moved()
        if slot in self._decisions:
            self._perform()
        self._reads.serve(self._slot_out)

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
                known = self._log.applied(slot)
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
        clients, apply, log = self._clients, self.machine.apply, self._log.batches
        slot = self._slot_out
        while True:
            batch = decisions.pop(slot, None)
            if batch is None:
                break
            own = proposals.decided(slot)
            if own is not None and own is not batch and own != batch:
                # Rule 4: the commands of a lost proposal go back to the front.
                taken = {(c.client, c.seq) for c in batch}
                clients.requeue([c for c in own if (c.client, c.seq) not in taken])
            clients.apply(batch, apply)
            log.append(batch)
            self._step_batches.append(batch)
            slot += 1
        self._slot_out = slot
        self._slot_in = max(self._slot_in, slot)
        self._catchup.moved()
        self._reads.serve(self._slot_out)

    # -- proposing and reporting ---------------------------------------------------------

    def _propose(self) -> None:
        """Fill the window with batches of queued requests (rules 2, 3)."""
        if self._clients.requests:
            self._slot_in = self._proposals.fill(
                self._slot_in,
                self._slot_out + self.options.window,
                self._decisions,
                self._clients,
                self.options.max_batch,
                self._now,
            )

    def _snapshot_due(self) -> None:
        """Rule 9: snapshot at ``slot_out`` and drop the log below the tail, if due."""
        interval = self.options.snapshot_interval
        slot = self._slot_out
        if self._snapshots and interval is not None and slot - self._log.snapshot_slot >= interval:
            machine: Snapshotting = self.machine  # type: ignore[assignment]
            self.stats["snapshots"] += 1
            record = Snapshotted(slot, machine.snapshot(), dict(self._clients.sessions))
            self._log.snapshot(record, self.options.log_tail)

    def _flush(self) -> Effects:
        self._catchup.end_of_step(self._now, self._slot_out, self._decisions)
        self._last_applied = (self._step_from, self._step_batches)
        self._step_from = self._slot_out
        self._step_batches = []
        self._snapshot_due()
        persist = self._log.records(self._slot_out)
        self._reads.ask(self._now, self._send)
        clients = self._clients
        out = Effects(persist, self._send, clients.responses)
        # Rule 13: the proposals leave now, with the progress that is durable.
        self._proposals.send(min(self._log.durable_out, self._slot_out), out.send_now)
        self._send = []
        clients.responses = []
        return out

    def made_durable(self, steps: int) -> None:
        """The records of the first ``steps`` steps that persisted anything are durable.

        From the driver (rule 8 of :mod:`actorfw.protocols.effects`), counted
        from this replica's restore; it raises the progress that proposals
        report (rule 13).
        """
        self._log.made_durable(steps)

    def __repr__(self) -> str:
        return (
            f"<Replica {self.me} slot_in={self._slot_in} slot_out={self._slot_out} "
            f"queued={len(self._clients.requests)} proposed={len(self._proposals.pending)}>"
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
