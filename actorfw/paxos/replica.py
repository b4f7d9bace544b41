"""The Multi-Paxos replica (PMMC R1-R5), as a sans-IO core.

Theory of operation
-------------------

A replica holds a copy of the application (a deterministic
:class:`~actorfw.paxos.StateMachine`) and the log of decided slots. Clients
send it requests; it proposes them to the leaders, batched many commands
per slot, and applies decisions in slot order. Two counters drive it, as in
PMMC: ``slot_in``, the next slot it may propose into, and ``slot_out``, the
next slot to apply.

Rules:

1. Applied in order (R1, R2): decisions are applied strictly in slot
   order, with no gaps; the log of applied batches only grows. Every
   replica that applied slot ``s`` applied the same batch there (the
   leaders and acceptors guarantee it; a replica that is told two batches
   for one slot raises :class:`~actorfw.paxos.invariants.InvariantViolation`).
2. Window (R5): ``slot_out <= slot_in <= slot_out + window``. Requests
   wait in a queue and are proposed, up to ``max_batch`` per slot, only
   into slots below ``slot_out + window``. So under load batches grow by
   themselves: requests that arrive while the window is full share slots.
   Proposals of one step travel in one :class:`Propose`.
3. Proposals go to every leader (PMMC's choice): the active one proposes
   them at once, and a passive one holds them, so a new leader already has
   the pending proposals when it takes over. A proposal not decided within
   ``propose_timeout`` is sent again (lost messages, a dead leader).
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
   :class:`~actorfw.paxos.records.Decided` record in ``Effects.persist``,
   so they are durable before the step's responses and reports leave (a
   reported ``slot_out`` makes leaders skip those slots in phase 1: the
   log must not be lost). :meth:`Replica.restore` replays the persisted
   log into a fresh state machine (rebuilding the client sessions), then
   the replica catches up from its peers. Snapshots and log truncation are
   the next step (see :class:`~actorfw.paxos.types.Snapshotting`).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from actorfw.paxos.invariants import InvariantViolation
from actorfw.paxos.messages import (
    HANDLED_BY,
    Applied,
    Batch,
    CatchUp,
    CatchUpReply,
    Command,
    Decision,
    Progress,
    Propose,
    Request,
    Response,
    Slots,
)
from actorfw.paxos.records import Decided, Record
from actorfw.paxos.types import FIRST_SLOT, Config, Effects, ReplicaOptions, StateMachine

__all__ = ["Replica"]

_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY.setflags(write=False)


def _slot_array(value: object) -> bool:
    return (
        isinstance(value, np.ndarray)
        and value.dtype == np.int64
        and value.ndim == 1
        and value.flags.c_contiguous
    )


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
        machine: the application, fresh (a restarted replica replays the
            whole log into a new machine).
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
        self._sessions: dict[str, tuple[int, Any]] = {}
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
        runs: list[Decided] = []
        for record in records:
            if not isinstance(record, Decided):
                raise TypeError(f"{record!r} is not a replica record")
            runs.append(record)
        runs.sort(key=lambda r: r.slot)
        for run in runs:
            if run.slot > replica._slot_out:
                raise ValueError(
                    f"replica {me!r}: the persisted log jumps from slot {replica._slot_out} "
                    f"to {run.slot}"
                )
            skip = replica._slot_out - run.slot
            for batch in run.batches[skip:]:
                replica._apply(batch)
                replica._log.append(batch)
            replica._slot_out = replica._slot_in = max(
                replica._slot_out, run.slot + len(run.batches)
            )
        replica._responses = []
        replica._mine.clear()
        replica._applied_from = replica._slot_out
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
        """The applied batches, slot ``FIRST_SLOT`` first (do not modify)."""
        return self._log

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
        """Take one message: ``Request``, ``Decision``, ``Progress``, ``CatchUp``, ``CatchUpReply``.

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
        """Run the timers due at ``now``: status reports, re-proposals, catch-up."""
        self._now = now = max(self._now, now)
        if now >= self._next_status:
            self._report()
        timeout = self.options.propose_timeout
        due = [s for s, at in self._proposed_at.items() if at + timeout <= now]
        if due:
            self.stats["reproposed"] += len(due)
            for slot in due:
                self._proposed_at[slot] = now
                self._new_slots.append(slot)
                self._new_batches.append(self._proposals[slot])
        self._maybe_catch_up()
        self._propose()
        return self._flush()

    def next_deadline(self) -> float:
        """The earliest time :meth:`tick` has work to do (at or before now: tick at once).

        A fresh replica is due at once (its first status report).
        """
        deadline = self._next_status
        if self._proposed_at:
            deadline = min(deadline, min(self._proposed_at.values()) + self.options.propose_timeout)
        if self._peers and self._behind():
            deadline = min(deadline, self._next_ask())
        return deadline

    # -- handlers ----------------------------------------------------------------------

    def _dispatch(self, message: Any) -> None:
        handler = _HANDLERS.get(type(message))
        if handler is None:
            role = HANDLED_BY.get(type(message))
            where = f"the {role.value}" if role is not None else "no Paxos role"
            raise TypeError(
                f"replica {self.me!r} got a {type(message).__name__}, which {where} handles"
            )
        handler(self, message)

    def _on_request(self, msg: Request) -> None:
        command = msg.command
        if not (
            type(command) is Command and type(command.client) is str and type(command.seq) is int
        ):
            self.stats["malformed"] += 1
            return
        self._on_command(command)

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
        if not (_slot_array(msg.slots) and _valid_batches(msg.batches, len(msg.slots))):
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
            and _slot_array(msg.slots)
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
                if known is None:  # below the log's start (future log truncation)
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
            slot += 1
        self._slot_out = slot
        self._slot_in = max(self._slot_in, slot)
        self._behind_since = None  # progress: a new wait starts if still behind

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
            result = apply(command.op)
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

    def _flush(self) -> Effects:
        if self._peers and self._behind():
            if self._behind_since is None:
                self._behind_since = self._now
        else:
            self._behind_since = None
        persist: list[Record] = []
        if self._slot_out > self._applied_from:
            first = self._applied_from
            log_base = self._log_base
            persist.append(
                Decided(first, tuple(self._log[first - log_base : self._slot_out - log_base]))
            )
            self._applied_from = self._slot_out
        send = self._send
        if self._new_slots:
            slots = np.array(self._new_slots, dtype=np.int64)
            slots.setflags(write=False)
            propose = Propose(self.me, self._slot_out, slots, tuple(self._new_batches))
            for leader in self.config.leaders:
                send.append((leader, propose))
            self._new_slots = []
            self._new_batches = []
        out = Effects(persist, send, self._responses)
        self._send = []
        self._responses = []
        return out

    def __repr__(self) -> str:
        return (
            f"<Replica {self.me} slot_in={self._slot_in} slot_out={self._slot_out} "
            f"queued={len(self._requests)} proposed={len(self._proposals)}>"
        )


_HANDLERS: dict[type, Callable[[Replica, Any], None]] = {
    Request: Replica._on_request,
    Decision: Replica._on_decision,
    Progress: Replica._on_progress,
    CatchUp: Replica._on_catchup,
    CatchUpReply: Replica._on_catchup_reply,
}
"""Message type -> handler: the replica's whole input alphabet."""
