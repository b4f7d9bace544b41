"""The Multi-Paxos roles as actors: the cores of this package, driven by the actor runtime.

Each node of a Paxos group runs three actors, named ``<group>-acceptor``,
``<group>-leader`` and ``<group>-replica``; they find each other by those
names on the nodes of the configuration. They run unchanged in the
simulator and on node processes.

Theory of operation
-------------------

Every step of a core returns :class:`~actorfw.protocols.paxos.Effects`. The actor
drives them by these rules:

1. The step's records are written to the role's durable storage in one
   atomic batch, at once.
2. Its messages leave only once a ``sync()`` begun after that write has
   completed. Syncs are group-committed: while one is in flight, further
   steps write and queue, and the next sync covers them all (many steps,
   one fsync). A sync starts only when a message waits for it: a write
   nothing waits for (a follower's log between two reports) is made
   durable by the next sync something needs.
3. Effects leave in the order of their steps, and no step's effects leave
   before everything written so far is durable: a step that persisted
   nothing still waits for earlier writes it may depend on.
4. The leader and the replica run on time: after each step the actor sets
   one timer for the core's ``next_deadline()``, and the timer's message is
   a ``tick``.
5. Client requests are asks to a replica; the replica answers a request
   as soon as the core produces its response, without waiting for its own
   write of the applied batch: the command was chosen, so it is durable on
   a majority of acceptors already, and a replica that crashes before its
   write relearns the decision and applies it again, to the same result
   (what it *reports* to leaders and peers, which lets acceptors forget,
   still waits for its storage, by rule 2). So an answered write is
   durable on a quorum and applied.
6. A role rebuilds its core from its storage when it starts, so a restart
   of the actor or of its node resumes where the durable state was. A
   restarted acceptor that ever granted leases counts its lease wait from
   its start (see :mod:`actorfw.protocols.paxos.acceptor`, rule 7).
7. Reads: a :class:`~actorfw.protocols.paxos.Read` asked of a replica on another node
   than the leader's is passed on once to the leader's replica
   (:class:`ForwardRead`), like a :class:`Submit`. There the core serves it
   by lease or sends it through the log (see
   :mod:`actorfw.protocols.paxos.replica`, rule 11); either way the asker gets an
   :class:`Answered`.

Sizes: a snapshot travels in one message
(:class:`~actorfw.protocols.paxos.InstallSnapshot`). On node processes a message over
``NodeConfig.max_message_size`` (64 MiB by default) is refused by the
receiver, so a state machine whose snapshot encodes larger needs a larger
limit on every node of the group.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from actorfw.core.actor import Actor, handler
from actorfw.kernels import ballot as kb
from actorfw.protocols.paxos.acceptor import Acceptor
from actorfw.protocols.paxos.leader import Leader
from actorfw.protocols.paxos.messages import (
    HANDLED_BY,
    Command,
    LeaderIs,
    Propose,
    Read,
    Request,
    Role,
)
from actorfw.protocols.paxos.records import Record, records_from_storage, storage_ops
from actorfw.protocols.paxos.replica import Replica
from actorfw.protocols.paxos.types import (
    Config,
    Effects,
    LeaderOptions,
    ReplicaOptions,
    StateMachine,
)
from actorfw.values.codec import message
from actorfw.values.refs import ActorRef, ReplyTo

__all__ = [
    "AcceptorActor",
    "Answered",
    "Forward",
    "ForwardRead",
    "LeaderActor",
    "LeaderIs",
    "Observer",
    "ReplicaActor",
    "ReplicaState",
    "ReplicaStatus",
    "Submit",
    "role_name",
]

Observer = Callable[[Role, str, Any, Effects], None]
"""Called after every core step with (role, node, core, effects): a hook for invariant checks.

An observer may also have ``restarted(role, node, core)`` (called when a
role rebuilt its core from storage) and ``delivered(role, node, sends)``
(called with the ``(address, message)`` pairs of a step when they are sent,
their records being durable).
"""

_ROLE_SUFFIX = {Role.ACCEPTOR: "acceptor", Role.LEADER: "leader", Role.REPLICA: "replica"}


def role_name(group: str, role: Role) -> str:
    """The actor name of a Paxos role of ``group`` on every node."""
    return f"{group}-{_ROLE_SUFFIX[role]}"


@message(name="paxos.actor.Tick")
class Tick:
    """Time for the core to look at its deadlines (rule 4)."""


@message(name="paxos.actor.Synced")
class Synced:
    """Everything written up to ``generation`` is durable (rule 2)."""

    generation: int


@message(name="paxos.Submit")
class Submit:
    """A client's command, asked of any replica; answered with :class:`Answered`.

    A replica on another node than the leader's passes it on to the
    leader's replica (once), which proposes it: replicas then do not race
    each other for slots.
    """

    command: Command


@message(name="paxos.Forward")
class Forward:
    """A :class:`Submit` passed on to the leader's replica, with whom to answer."""

    command: Command
    reply: ReplyTo


@message(name="paxos.ForwardRead")
class ForwardRead:
    """A :class:`~actorfw.protocols.paxos.Read` passed on to the leader's replica, and its asker."""

    command: Command
    reply: ReplyTo


@message(name="paxos.Answered")
class Answered:
    """The result of a submitted command, and the node that leads (a hint for the client)."""

    result: Any
    leader: str


@message(name="paxos.ReplicaStatus")
class ReplicaStatus:
    """Asked of a replica: where it is; answered at once with :class:`ReplicaState`."""


@message(name="paxos.ReplicaState")
class ReplicaState:
    """A replica's progress, as it stands in memory (its storage may lag by one sync).

    Attributes:
        node: the replica's node.
        slot_out: every slot below it is applied.
        log_base: the first slot its log still holds (below: in the snapshot).
        snapshot_slot: the slot its latest snapshot was taken at.
        leader: the node it believes leads ("" if unknown).
    """

    node: str
    slot_out: int
    log_base: int
    snapshot_slot: int
    leader: str


@message(name="paxos.actor.SyncFailed")
class SyncFailed:
    """A sync failed: the role fails, and its supervisor restarts it from storage."""

    reason: str


_ROUTES: dict[type, tuple[type | None, type]] = {
    Submit: (Forward, Request),
    Forward: (None, Request),
    Read: (ForwardRead, Read),
    ForwardRead: (None, Read),
}
"""What a replica does with a client's command, by message type: the message to pass
it on to the leader's replica in (None: it was passed on already), and the message
its core takes."""


def _config(nodes: Any) -> Config:
    if isinstance(nodes, Config):
        return nodes
    return Config.colocated(tuple(nodes))


class _Role(Actor):
    """What every role does: route, persist then send in order, keep one timer."""

    role: Role
    core: Any

    def __init__(self, group: str, nodes: Any, observer: Observer | None = None) -> None:
        self.group = group
        self.config = _config(nodes)
        self.me = self.context.node
        self.observer = observer
        self._written = 0
        self._durable = 0
        self._syncing = False
        self._queue: deque[tuple[int, list[tuple[str, Any]], list[Any]]] = deque()
        self._refs: dict[tuple[str, Role], ActorRef] = {}
        self._armed: float | None = None  # the deadline the tick timer is set for

    # -- rules 1-3 ------------------------------------------------------------------------

    def _records(self) -> list[Record]:
        return records_from_storage(self.context.storage.scan())

    def _step(self, core: Any, effects: Effects) -> None:
        if self.observer is not None:
            self.observer(self.role, self.me, core, effects)
        if effects.persist:
            with self.context.storage.batch() as batch:
                for record in effects.persist:
                    for key, value in storage_ops(record):
                        if value is None:
                            batch.delete(key)
                        else:
                            batch.put(key, value)
            self._written += 1
        needs = self._written
        responses = effects.responses
        if responses:  # rule 5: at once
            self._answer(responses)
            responses = []
        if not self._queue and needs <= self._durable:
            self._deliver(effects.send, responses)
        elif effects.send:
            self._queue.append((needs, effects.send, responses))
        self._sync()
        self._rearm(core)

    def _sync(self) -> None:
        # Only what waits to leave needs a sync (rule 2): writes that nothing waits for
        # (a replica's log between its reports) go with the next sync that something needs.
        if self._syncing or self._durable >= self._written or not self._queue:
            return
        self._syncing = True
        target = self._written
        tell, me = self.context.tell, self.context.ref

        def done(future: Any) -> None:
            if future.cancelled():
                return
            error = future.exception()
            if error is not None:
                tell(me, SyncFailed(f"{type(error).__name__}: {error}"))
            else:
                tell(me, Synced(target))

        self.context.storage.sync().add_done_callback(done)  # type: ignore[attr-defined]

    @handler
    def synced(self, msg: Synced) -> None:
        self._syncing = False
        self._durable = max(self._durable, msg.generation)
        self._became_durable()
        while self._queue and self._queue[0][0] <= self._durable:
            _, sends, responses = self._queue.popleft()
            self._deliver(sends, responses)
        self._sync()

    @handler
    def sync_failed(self, msg: SyncFailed) -> None:
        raise OSError(
            f"{role_name(self.group, self.role)} could not sync its storage: {msg.reason}"
        )

    def _became_durable(self) -> None:
        """Everything written up to ``self._durable`` is now durable (a hook)."""

    def _deliver(self, sends: list[tuple[str, Any]], responses: list[Any]) -> None:
        if sends and self.observer is not None and hasattr(self.observer, "delivered"):
            self.observer.delivered(self.role, self.me, sends)
        # The cores build their messages from values checked when they came in, and
        # send one message object to several peers in a row (a P2a to every acceptor,
        # a Decision to every replica): each run of them is encoded once.
        tell_all = self.context.tell_all
        refs = self._refs
        run: list[ActorRef] = []
        last: Any = None
        for address, msg in sends:
            if msg is not last and run:
                tell_all(run, last, True)
                run = []
            last = msg
            role = HANDLED_BY[type(msg)]
            ref = refs.get((address, role))
            if ref is None:
                ref = refs[(address, role)] = ActorRef(address, role_name(self.group, role))
            run.append(ref)
        if run:
            tell_all(run, last, True)
        if responses:
            self._answer(responses)

    def _answer(self, responses: list[Any]) -> None:
        """Deliver client responses (only replicas produce them)."""

    def _burst(self, first: Any) -> list[Any]:
        """What the core should see of the message in hand and of those already waiting.

        One core step then takes them all. Our own messages (``Synced``, ...)
        are handled on the way; :meth:`_taken` says what each of the others
        becomes for the core (None: nothing).
        """
        messages = [] if first is None else [first]
        for msg, _, reply in self.context.take(self.BURST):
            kind = type(msg)
            if kind is Synced:
                self.synced(msg)  # our own: it concerns earlier steps only
            elif kind is SyncFailed:
                self.sync_failed(msg)
            elif kind is Tick:
                continue  # the step re-arms the timer for whatever is due
            else:
                core_msg = self._taken(msg, reply)
                if core_msg is not None:
                    messages.append(core_msg)
        return messages

    def _reply_handle(self) -> ReplyTo | None:
        """The current message's reply handle if it is an ask (we answer it ourselves)."""
        try:
            return self.context.reply_later()
        except RuntimeError:
            return None  # a tell: nobody waits for an answer

    def _taken(self, msg: Any, reply: ReplyTo | None) -> Any:
        """What the core sees of ``msg`` (None: nothing); answers asks it cannot."""
        if reply is not None:
            reply.fail(
                TypeError(
                    f"{type(msg).__name__} is not an ask to {role_name(self.group, self.role)}"
                )
            )
        return msg

    BURST = 1024
    """Messages handled together in one core step at most."""

    # -- rule 4 ---------------------------------------------------------------------------

    def _rearm(self, core: Any) -> None:
        deadline = core.next_deadline() if hasattr(core, "next_deadline") else None
        if deadline == self._armed:
            return  # the timer already set is the right one (most steps)
        self._armed = deadline
        if deadline is None:
            self.context.cancel_timer("tick")
        else:
            self.context.start_timer("tick", Tick(), max(0.0, deadline - self.context.now()))

    @handler
    def tick(self, msg: Tick) -> None:
        self._armed = None  # it fired
        self._step(self.core, self.core.tick(self.context.now()))


class AcceptorActor(_Role):
    """The acceptor of ``group`` on this node (see :class:`~actorfw.protocols.paxos.Acceptor`).

    Args:
        group: the Paxos group's name (actors of the group share it).
        nodes: the group's nodes (each runs all three roles) or a :class:`Config`.
        observer: called after every step (invariant checks in tests).
    """

    role = Role.ACCEPTOR

    def on_start(self) -> None:
        self.core = Acceptor.restore(self.config, self.me, self._records(), now=self.context.now())
        if self.observer is not None and hasattr(self.observer, "restarted"):
            self.observer.restarted(self.role, self.me, self.core)

    def receive(self, msg: Any) -> None:
        messages = self._burst(self._taken(msg, self._reply_handle()))
        if messages:
            self._step(self.core, self.core.handle_all(messages, self.context.now()))


class LeaderActor(_Role):
    """The leader of ``group`` on this node (see :class:`~actorfw.protocols.paxos.Leader`).

    Args:
        group, nodes, observer: as for :class:`AcceptorActor`.
        options: the leader's tuning.
    """

    role = Role.LEADER

    def __init__(
        self,
        group: str,
        nodes: Any,
        observer: Observer | None = None,
        options: LeaderOptions | None = None,
    ) -> None:
        super().__init__(group, nodes, observer)
        self.options = options or LeaderOptions()

    def on_start(self) -> None:
        self.core = Leader.restore(
            self.config, self.me, self._records(), self.context.random, self.options
        )
        if self.observer is not None and hasattr(self.observer, "restarted"):
            self.observer.restarted(self.role, self.me, self.core)
        self._reported: str | None = None
        self._step(self.core, self.core.start(self.context.now()))

    def receive(self, msg: Any) -> None:
        messages = self._burst(self._taken(msg, self._reply_handle()))
        if messages:
            self._step(self.core, self.core.handle_all(messages, self.context.now()))

    def _step(self, core: Any, effects: Effects) -> None:
        super()._step(core, effects)
        leader = self.leader_node()
        if leader != self._reported:
            self._reported = leader
            replica = ActorRef(self.me, role_name(self.group, Role.REPLICA))
            self.context.tell(replica, LeaderIs(leader))

    def leader_node(self) -> str:
        """The node whose leader leads, as far as this one knows ("" if it does not)."""
        if self.core.is_active:
            return self.me
        ballot = self.core.following
        if ballot == kb.NO_BALLOT:
            return ""
        index = kb.ballot_leader(ballot)
        leaders = self.config.leaders
        return leaders[index] if index < len(leaders) else ""


def resolve_machine(machine: Any) -> Callable[[], StateMachine]:
    """A factory of fresh state machines from a class, a factory, or ``"module:QualName"``.

    A path names a class of a module already imported in this process (a
    node's apps): nothing is imported on behalf of a message.

    Raises:
        LookupError: the module is not loaded here, or has no such name.
        TypeError: what was given makes no state machines.
    """
    if isinstance(machine, str):
        module_name, _, name = machine.partition(":")
        module = sys.modules.get(module_name)
        if module is None or not name:
            raise LookupError(
                f"state machine {machine} is not loaded on this node: import its module there "
                "(e.g. with the node's --app option)"
            )
        target: Any = module
        try:
            for part in name.split("."):
                target = getattr(target, part)
        except AttributeError:
            raise LookupError(f"module {module_name} has no {name}") from None
        machine = target
    if not callable(machine):
        raise TypeError(f"a state machine is given by its class or factory, not {machine!r}")
    factory: Callable[[], StateMachine] = machine
    return factory


class ReplicaActor(_Role):
    """The replica of ``group`` on this node (see :class:`~actorfw.protocols.paxos.Replica`).

    Clients ask it a :class:`Submit` (answered with :class:`Answered`, which
    names the leader) or a :class:`~actorfw.protocols.paxos.Request` (answered with the
    bare result), once the command is decided and applied (rule 5). A
    replica that knows another node leads passes a ``Submit`` on to that
    node's replica, so that replicas do not race each other for slots. A
    :class:`ReplicaStatus` ask is answered at once with its progress.
    A :class:`~actorfw.protocols.paxos.Read` (a read-only command) is answered with
    :class:`Answered` too, and passed on the same way (rule 7).

    Args:
        group, nodes, observer: as for :class:`AcceptorActor`.
        machine: the state machine: a class (or factory) making a fresh one,
            or its ``"module:QualName"``; it must be deterministic.
        options: the replica's tuning.
    """

    role = Role.REPLICA

    def __init__(
        self,
        group: str,
        nodes: Any,
        machine: Any,
        observer: Observer | None = None,
        options: ReplicaOptions | None = None,
    ) -> None:
        super().__init__(group, nodes, observer)
        self.machine = resolve_machine(machine)
        self.options = options or ReplicaOptions()
        # (client, seq) -> who waits, and whether they asked with Submit (answer Answered)
        self._waiting: dict[tuple[str, int], list[tuple[ReplyTo, bool]]] = {}
        self.leader = ""

    def on_start(self) -> None:
        self.core = Replica.restore(
            self.config, self.me, self.machine(), self._records(), self.options
        )
        if self.observer is not None and hasattr(self.observer, "restarted"):
            self.observer.restarted(self.role, self.me, self.core)
        # slot_out as far as it is durable, and the generations that will raise it
        self._durable_out: int = self.core.slot_out
        self._outs: deque[tuple[int, int]] = deque()
        self._rearm(self.core)

    def receive(self, msg: Any) -> None:
        messages = self._burst(self._taken(msg, self._reply_handle()))
        if messages:
            self._step(self.core, self.core.handle_all(messages, self.context.now()))

    def _step(self, core: Any, effects: Effects) -> None:
        # A Propose does not wait for this replica's storage: it carries the slot_out
        # that is durable already (a lower slot_out is always true), not the one in
        # memory, so the proposal goes to the leader at once (rule 2 still holds).
        sends = effects.send
        proposes = [pair for pair in sends if type(pair[1]) is Propose]
        if proposes:
            effects.send = [pair for pair in sends if type(pair[1]) is not Propose]
        super()._step(core, effects)
        if effects.persist:
            self._outs.append((self._written, core.slot_out))
        if proposes:
            out = self._durable_out
            self._deliver(
                [
                    (to, Propose(p.replica, min(out, p.slot_out), p.slots, p.batches))
                    for to, p in proposes
                ],
                [],
            )

    def _became_durable(self) -> None:
        outs = self._outs
        while outs and outs[0][0] <= self._durable:
            self._durable_out = max(self._durable_out, outs.popleft()[1])

    def _taken(self, msg: Any, reply: ReplyTo | None) -> Any:
        """Register who waits for ``msg``; returns what the core should see (None: nothing)."""
        kind = type(msg)
        if kind is LeaderIs:
            self.leader = msg.node
            return msg  # the core sends its proposals there
        if kind is ReplicaStatus:
            if reply is not None:
                core = self.core
                reply.send(
                    ReplicaState(
                        self.me, core.slot_out, core.log_base, core.snapshot_slot, self.leader
                    )
                )
            return None
        route = _ROUTES.get(kind)
        if route is not None:
            passed_on, to_core = route
            command = msg.command
            waiter = msg.reply if passed_on is None else reply
            if passed_on and self.leader and self.leader != self.me and waiter is not None:
                # Not the leader's node: pass it on once. Replicas then do not race for
                # slots, and a read can be served by the leader's lease (rule 7).
                target = ActorRef(self.leader, role_name(self.group, Role.REPLICA))
                self.context.tell(target, passed_on(command, waiter))
                return None
            if waiter is not None:
                self._waiting.setdefault((command.client, command.seq), []).append((waiter, True))
            return to_core(command)
        if reply is None:
            return msg
        if kind is Request:
            command = msg.command
            self._waiting.setdefault((command.client, command.seq), []).append((reply, False))
            return msg
        return super()._taken(msg, reply)

    def _answer(self, responses: list[Any]) -> None:
        for response in responses:
            for reply, wrapped in self._waiting.pop((response.client, response.seq), ()):
                reply.send(Answered(response.result, self.leader) if wrapped else response.result)
