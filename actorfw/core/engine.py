"""The engine: what every runtime runs to host the actors of one node.

An :class:`Engine` hosts the actors of one node and moves their messages:
it sends, asks, replies, and gives each actor with messages its turn. It
sits on three things a runtime provides: an asyncio event loop (real, or
the simulator's virtual-time loop), a :class:`Transport` that carries
envelopes to other nodes, and a :class:`~actorfw.core.storage.StorageBackend`.
The rest is done by collaborators, each in its own module:

========================================  ============================================
:class:`~actorfw.core.asks.Asks`           pending asks and their deadlines
:class:`~actorfw.core.inbound.Inbound`     envelopes from other nodes, bad input
:class:`~actorfw.core.node_protocol.NodeProtocol`  what nodes ask of each other
:class:`~actorfw.core.liveness.Liveness`   heartbeats and the failure detector
:class:`~actorfw.core.watches.Watches`     watches, across nodes
:class:`~actorfw.core.lifecycle.Lifecycle`  spawning, supervision, stopping
:class:`~actorfw.core.timers.Timers`       actors' timers
========================================  ============================================

Theory of operation
-------------------

1. One message at a time per actor: a cell takes the next message only
   when the previous handler (and any ``async`` continuation of it) is done.
2. Delivery is at-most-once and FIFO per sender–receiver pair: local
   messages go straight into the mailbox in send order, remote ones rely on
   the transport keeping order per pair of nodes (ZeroMQ does; the
   simulator does unless told to reorder).
3. Messages to the same node skip serialization but are validated as if
   they were sent (:func:`actorfw.values.codec.check`), so that what works
   locally works across nodes. Everything from another node is decoded by
   the codec, which never evaluates anything; bad input is counted, logged
   with the peer, and answered with an error if it was an ask.
4. Every ask ends exactly once for the asker: a reply, an error reply, a
   timeout, or :class:`~actorfw.NodeDown` (see :mod:`actorfw.core.asks`
   for the timeouts, late by at most :data:`ASK_TIMER_SLACK`).
5. A handler's exception is answered to its ask, then handed to the
   supervisor (:mod:`actorfw.core.supervision`); it never escapes the engine.
   A message no handler takes (:class:`~actorfw.UnhandledMessage`) is not a
   failure: it is counted, logged, and refused to an asker.
6. A crash (:meth:`Engine.crash`) ends everything at once: no hook runs, no
   message is sent, and anything the actors' cancelled code still tries is
   dropped.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import random
import types
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from actorfw.core.asks import ASK_TIMER_SLACK, Asks
from actorfw.core.cell import RUNNING, STOPPING, Cell, Entry, bound_handler, derive_seed
from actorfw.core.dead_letters import DeadLetters
from actorfw.core.envelopes import ASK, FAILURE, REPLY, TELL, Envelope, Receiver
from actorfw.core.flow import FlowControl, Incoming
from actorfw.core.inbound import Inbound
from actorfw.core.lifecycle import Lifecycle
from actorfw.core.liveness import Liveness
from actorfw.core.logs import RateLimitedLog
from actorfw.core.node_protocol import NODE_TARGET, NodeProtocol
from actorfw.core.outbound import Outbound
from actorfw.core.storage import StorageBackend
from actorfw.core.supervision import Directive, SupervisorStrategy
from actorfw.core.timers import Timers
from actorfw.core.tracing import TraceRecorder
from actorfw.core.watches import Watches
from actorfw.values.errors import Overloaded
from actorfw.values.refs import ActorRef, ReplyTo, _current

if TYPE_CHECKING:
    from actorfw.core.actor import Actor

__all__ = [
    "ASK",
    "ASK_TIMER_SLACK",
    "FAILURE",
    "NODE_TARGET",
    "REPLY",
    "TELL",
    "ClientEndpoint",
    "Engine",
    "Envelope",
    "NodeConfig",
    "NodeStats",
    "Tracer",
    "Transport",
    "derive_seed",
    "start_engine",
]

log = logging.getLogger("actorfw")


class Transport(Protocol):
    """Carries envelopes to other nodes (ZeroMQ sockets, or the simulated network).

    A transport that batches may also have a ``flush()`` method, which the
    engine calls after each round of actor turns.
    """

    def send(self, destination: str, envelope: Envelope) -> None:
        """Send ``envelope`` to node ``destination``; never blocks, may drop."""

    def attach(self, inbound: Receiver) -> None:
        """Hand what comes in from now on to ``inbound`` (the engine's)."""


class Tracer(Protocol):
    """Hooks the simulator uses to record what happens, in order."""

    def delivered(self, node: str, actor: str, sender: ActorRef | None, message: Any) -> None:
        """A handler is about to run on ``message``."""

    def timer(self, node: str, actor: str, key: Any) -> None:
        """A timer fired."""

    def failed(self, node: str, actor: str, error: BaseException, directive: Directive) -> None:
        """A handler raised, and its supervisor chose ``directive``."""


@dataclasses.dataclass
class NodeConfig:
    """Tunables of an engine.

    Attributes:
        heartbeat_interval: seconds between heartbeats to each peer.
        phi_threshold, acceptable_pause, min_std, join_timeout: the failure
            detector's (see :mod:`actorfw.protocols.failure_detector`).
        mailbox_batch: messages one actor handles before yielding the loop.
        turn_time: seconds of handlers one actor's turn may take before it
            yields the loop (checked every 16 messages, from the turn's start;
            for a turn that began with 16 messages or fewer and grew as it
            ran, from its 16th message), so that slow handlers do not keep
            the node from its input and heartbeats.
        root_strategy: how the node supervises top-level actors.
        dead_letter_log_limit: dead-letter lines logged per ``log_window``;
            the rest are counted and summed up.
        log_window: seconds of the rate-limiting window.
        trace_dir: a directory to record this node's causal trace in (see
            :mod:`actorfw.core.tracing`); None (the default) traces nothing.
        flow_window: credit units of tells in flight to each peer (see
            :mod:`actorfw.core.flow`); None turns credit between nodes off.
        max_backlog: tells kept per peer while it gives no credit; past it a
            tell is refused with :class:`~actorfw.Overloaded`.
    """

    heartbeat_interval: float = 0.5
    phi_threshold: float = 8.0
    acceptable_pause: float = 1.5
    min_std: float = 0.1
    join_timeout: float = 5.0
    mailbox_batch: int = 1024
    turn_time: float = 0.01
    root_strategy: SupervisorStrategy = dataclasses.field(default_factory=SupervisorStrategy)
    dead_letter_log_limit: int = 5
    log_window: float = 10.0
    trace_dir: str | None = None
    flow_window: int | None = 8192
    max_backlog: int = 65536


@dataclasses.dataclass
class NodeStats:
    """Counters of an engine (what happened since it started)."""

    delivered: int = 0
    sent_remote: int = 0
    received_remote: int = 0
    dead_letters: int = 0
    unhandled: int = 0
    malformed: int = 0
    late_replies: int = 0
    ask_timeouts: int = 0
    failures: int = 0
    restarts: int = 0
    stale: int = 0
    overloaded: int = 0
    held: int = 0
    stalls: int = 0


class ClientEndpoint:
    """Sends on behalf of code outside any actor (a driver, a test, a CLI) from one node.

    Messages it sends have no sender; asks are answered to it.
    """

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def node(self) -> str:
        """The node this client sends from."""
        return self._engine.id

    def send(self, target: ActorRef, message: Any) -> None:
        """Send ``message`` to ``target`` with no sender."""
        self._engine.send(target, message, None)

    def ask(self, target: ActorRef, message: Any, timeout: float) -> Awaitable[Any]:
        """Ask ``target``; an awaitable of the reply."""
        return self._engine.ask(target, message, timeout, None)

    def reply(self, to: ReplyTo, value: Any, error: BaseException | None) -> None:
        """Answer a deferred ask."""
        self._engine.send_reply(to, value, error, f"{self._engine.id}/(client)")

    def bind(self) -> contextvars.Context:
        """A copy of the current context in which tells and asks go through this client.

        Run driver code in it, e.g. ``loop.create_task(main(), context=client.bind())``.
        """
        ctx = contextvars.copy_context()
        ctx.run(_current.set, self)
        return ctx


class Engine:
    """An engine hosting one node's actors; see the module documentation.

    Args:
        node_id: this node's id, unique in the cluster.
        loop: the event loop everything runs on.
        transport: carries envelopes to peers.
        storage: the node's durable store.
        peers: the other nodes, heartbeated and watched for liveness.
        seed: the root of every random source here (actors, supervision).
        incarnation: grows with each restart of the node; peers use it to
            tell a restarted node from a slow one.
        config: tunables.
        tracer: hooks recording deliveries (the simulator's).
        log_time: put the runtime's time in actors' log lines.
        reachable: nodes it can send to without watching them (a client's);
            an ask to a node neither here nor among ``peers`` fails at once.
        probed: nodes it watches by asking them for heartbeats, which they
            do not send it (a client's; see :mod:`actorfw.core.liveness`).
        clock: the engine's monotonic time, :meth:`now` (default: the loop's).
            Node processes pass ``time.monotonic``, what asyncio's loop reads
            anyway: uvloop's loop time counts whole milliseconds, too coarse
            for the round trips actors time and lease margins.
    """

    def __init__(
        self,
        node_id: str,
        loop: asyncio.AbstractEventLoop,
        transport: Transport,
        storage: StorageBackend,
        peers: list[str] | tuple[str, ...] = (),
        seed: int = 0,
        incarnation: int = 0,
        config: NodeConfig | None = None,
        tracer: Tracer | None = None,
        log_time: bool = False,
        reachable: tuple[str, ...] | list[str] = (),
        probed: tuple[str, ...] | list[str] = (),
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(node_id, str) or not node_id or "/" in node_id:
            raise ValueError(f"a node id must be a non-empty str without '/', not {node_id!r}")
        self.id = node_id
        self.loop = loop
        self.transport = transport
        self.storage_backend = storage
        self.seed = seed
        self.incarnation = incarnation
        self.config = config or NodeConfig()
        self.tracer = tracer
        self._clock = clock or loop.time
        outbound = Outbound(self)
        # Bound once here, not wrapped: these are on every message's path.
        self.send = outbound.send
        self.send_all = outbound.send_all
        self.ask = outbound.ask
        self.send_reply = outbound.send_reply
        self.send_envelope = outbound.send_envelope
        self.ask_encoded = outbound.ask_encoded
        self.causal: TraceRecorder | None = (
            TraceRecorder(self.config.trace_dir, node_id) if self.config.trace_dir else None
        )
        self.log_time = log_time
        self.stats = NodeStats()
        self.rng = random.Random(derive_seed(seed, node_id, incarnation, NODE_TARGET))
        self.cells: dict[str, Cell] = {}
        self.roots: dict[str, Cell] = {}
        self.client = ClientEndpoint(self)
        self.asks = Asks(loop, self.stats)
        self.timers = Timers(self)
        self.watches = Watches(self)
        self.lifecycle = Lifecycle(self)
        self.node_protocol = NodeProtocol(self)
        self.inbound = Inbound(self)
        self.liveness = Liveness(self, tuple(peers), tuple(reachable), tuple(probed))
        self.rate_limited = RateLimitedLog(
            log,
            f"[{node_id}] ",
            self.now,
            self.config.dead_letter_log_limit,
            self.config.log_window,
        )
        self.dead_letters = DeadLetters(self)
        self.flow = FlowControl(self, self.config.flow_window, self.config.max_backlog)
        self._dead = False
        self.stopping = False
        """Is the engine stopping gracefully (its actors going down, newest first)?"""
        self._started = False
        self._runnable: deque[Cell] = deque()  # cells with messages, waiting for their turn
        self._pump_scheduled = False
        self._flush: Callable[[], None] | None = getattr(transport, "flush", None)
        self._protocol_refs: dict[str, ActorRef] = {}

    # -- the node -------------------------------------------------------------------------

    def protocol_of(self, node: str) -> ActorRef:
        """The address of ``node``'s node protocol."""
        ref = self._protocol_refs.get(node)
        if ref is None:
            ref = self._protocol_refs[node] = ActorRef(node, NODE_TARGET)
        return ref

    def start(self) -> None:
        """Start heartbeating peers (actors may be spawned before or after)."""
        if self._started:
            return
        self._started = True
        self.liveness.start()

    def now(self) -> float:
        """The runtime's monotonic time."""
        return self._clock()

    @property
    def alive(self) -> bool:
        """False once the engine crashed or stopped."""
        return not self._dead

    def crash(self) -> None:
        """End everything at once, as a process kill would (rule 6)."""
        if self._dead:
            return
        self._dead = True
        if self.causal is not None:
            self.causal.close()
        self.liveness.stop()
        self.lifecycle.crash()
        self.asks.crash(self.id)
        self.lifecycle.wake_stop_waiters()

    async def stop(self) -> None:
        """Stop gracefully: stop top-level actors newest first, let their hooks run, then end."""
        if self._dead:
            return
        self.stopping = True
        await self.lifecycle.stop_all()
        if not self._dead:
            self.crash()

    # -- actors -------------------------------------------------------------------------------

    def spawn(
        self,
        actor_cls: type[Actor],
        *args: Any,
        name: str | None = None,
        parent: Cell | None = None,
        **kwargs: Any,
    ) -> ActorRef:
        """Start an actor here (a child of ``parent``, or top-level); returns its ref.

        Raises:
            TypeError: ``actor_cls`` is not an Actor subclass.
            ValueError: the name is malformed or taken.
        """
        return self.lifecycle.spawn(actor_cls, args, kwargs, name, parent)

    # -- turns --------------------------------------------------------------------------------

    def schedule(self, cell: Cell) -> None:
        """Give ``cell`` a turn if it has messages and may take them."""
        if (
            cell.mailbox
            and not cell.scheduled
            and not cell.busy
            and not cell.held
            and cell.state is RUNNING
        ):
            cell.scheduled = True
            self._runnable.append(cell)
            self.wake()

    def wake(self) -> None:
        """Make sure the pump runs soon if an actor waits for its turn."""
        if self._runnable and not self._pump_scheduled:
            self._pump_scheduled = True
            self.loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._pump_scheduled = False
        self.pump()

    def pump(self) -> None:
        """Give every actor with messages one turn (up to ``mailbox_batch`` of them), then flush.

        Runs on its own at the next loop turn after messages arrive; a
        transport calls it right after a burst of input, so that what came
        in is handled, and what that sent goes out, in the same turn.
        """
        if self._dead:
            return
        runnable = self._runnable
        token = None
        # What every turn of the round reads, read once for the round: with many
        # actors, most turns handle one message, and these loads were a turn's cost.
        start = self.config.mailbox_batch
        turn_time = self.config.turn_time
        time = self.loop.time
        tracer = self.tracer
        stats = self.stats
        try:
            for _ in range(len(runnable)):  # one round: rescheduled actors wait for the next
                cell = runnable.popleft()
                # The actor's door, for refs used in its handlers: set for each actor,
                # and put back once, after the round.
                ctx = cell.context
                entered = _current.set(ctx)
                if token is None:
                    token = entered
                # The actor's turn: its waiting messages handled, up to the turn's bounds.
                cell.scheduled = False
                if self._dead:
                    continue
                budget = start
                mailbox = cell.mailbox
                # The clock is read only for a turn that may reach its 16th message (most
                # are shorter): at its start, or, if the mailbox grew during the turn, then.
                deadline = time() + turn_time if len(mailbox) > 16 else None
                # One message per pass, inline: this loop is every message's path.
                while (
                    mailbox
                    and cell.state is RUNNING
                    and not cell.busy
                    and not cell.held
                    and budget > 0
                ):
                    if not budget & 15 and budget < start:  # every 16 messages, after the first
                        if deadline is None:
                            deadline = time() + turn_time
                        elif time() >= deadline:
                            break  # the turn is over
                    budget -= 1
                    message, sender, reply, timer = mailbox.popleft()
                    if timer is not None and not self._timer_due(cell, timer):
                        continue
                    stats.delivered += 1
                    if tracer is not None:
                        tracer.delivered(self.id, cell.name, sender, message)
                    ctx._sender = sender  # Context.enter, inline
                    ctx._reply = reply
                    ctx._replied = False
                    try:  # the table is read each time: a restart in the turn replaces it
                        handle = cell.handlers.get(type(message))
                        if handle is None:
                            handle = cell.handlers[type(message)] = bound_handler(
                                cell, type(message)
                            )
                        result = handle(message)
                        if type(result) is types.CoroutineType:
                            self._run_async(cell, reply, result)
                            continue
                    except Exception as error:
                        self.lifecycle.handler_failed(cell, reply, error)
                        continue
                    if reply is not None and not ctx._replied:
                        self.send_reply(reply, result, None, cell.ref.path)
                if (cell.owed is not None or cell.waiters is not None) and len(
                    mailbox
                ) < cell.limit:
                    self.flow.room(cell)
                if mailbox:
                    self.schedule(cell)
        finally:
            if token is not None:
                _current.reset(token)
        if self._flush is not None:
            self._flush()

    def _timer_due(self, cell: Cell, timer: tuple[Any, int]) -> bool:
        """Is a timer's message still wanted (not cancelled or replaced since)?"""
        key, generation = timer
        if not self.timers.current(cell, key, generation):
            return False
        if self.tracer is not None:
            self.tracer.timer(self.id, cell.name, key)
        return True

    def _run_async(self, cell: Cell, reply: ReplyTo | None, handling: Any) -> None:
        """Run an async handler's coroutine as the cell's task; the cell waits for it."""
        cell.busy = True
        task = self.loop.create_task(handling, context=contextvars.copy_context())
        cell.task = task
        task.add_done_callback(lambda t: self.lifecycle.handler_done(cell, reply, t))

    def take(self, cell: Cell, limit: int) -> list[tuple[Any, ActorRef | None, ReplyTo | None]]:
        """Pop up to ``limit`` waiting messages of ``cell`` (see ``Context.take``)."""
        mailbox = cell.mailbox
        taken: list[tuple[Any, ActorRef | None, ReplyTo | None]] = []
        while mailbox and len(taken) < limit and mailbox[0][3] is None:  # stop at a timer's
            message, sender, reply, _ = mailbox.popleft()
            self.stats.delivered += 1
            if self.tracer is not None:
                self.tracer.delivered(self.id, cell.name, sender, message)
            taken.append((message, sender, reply))
        if (cell.owed is not None or cell.waiters is not None) and len(mailbox) < cell.limit:
            self.flow.room(cell)
        return taken

    # -- receiving ----------------------------------------------------------------------------

    def enqueue(
        self, name: str, entry: Entry, credit: Incoming | None = None, cost: int = 0
    ) -> None:
        """Put ``entry`` in the mailbox of the actor ``name`` here (a dead letter if none).

        ``credit`` and ``cost``: the entry is a tell from the node ``credit``
        counts, which took ``cost`` credit units, given back now, or when the
        mailbox has room if it is full (see :mod:`actorfw.core.flow`).
        """
        cell = self.cells.get(name)
        if cell is None or cell.state >= STOPPING:
            if name == NODE_TARGET:  # this node's own protocol, asked from here
                message, _, reply, _ = entry
                self.node_protocol.handle(message, reply, self.id)
            else:
                self.dead_letters(name, entry, "not found" if cell is None else "stopping")
            if credit is not None:
                self.flow.release(credit, cost)
            return
        mailbox = cell.mailbox
        if len(mailbox) >= cell.limit and entry[3] is None:
            if not self._overflow(cell, entry):
                if credit is not None:
                    self.flow.release(credit, cost)
                return
            if credit is not None:
                if cell.held and len(mailbox) < 2 * cell.limit:  # rule 5 of core.flow
                    self.flow.release(credit, cost)
                elif not self.flow.owe(cell, credit, cost):
                    return  # the peer ignores its credit (rule 6): dropped
        elif credit is not None:  # the common case, inline: give the units back
            credit.released += cost
            if credit.released >= credit.due:
                self.flow.grant(credit)
        mailbox.append(entry)
        if not cell.scheduled and not cell.busy and not cell.held and cell.state is RUNNING:
            cell.scheduled = True
            self._runnable.append(cell)
            if not self._pump_scheduled:
                self._pump_scheduled = True
                self.loop.call_soon(self._pump)

    def check_room(self, name: str) -> None:
        """Refuse a tell to ``name`` from code outside any actor here, if it is far behind.

        Nobody can be held back for such a tell, so it is taken up to
        ``max_backlog`` past the mailbox's bound (rule 1 of core.flow).

        Raises:
            Overloaded: the mailbox is that full.
        """
        cell = self.cells.get(name)
        if cell is not None and len(cell.mailbox) >= cell.limit + self.flow.max_backlog:
            self.stats.overloaded += 1
            raise Overloaded(
                f"actor {cell.ref.path} has {len(cell.mailbox)} messages waiting, "
                f"max_backlog past its mailbox_limit of {cell.limit}; the tell was not sent"
            )

    def _overflow(self, cell: Cell, entry: Entry) -> bool:
        """``entry`` finds ``cell``'s mailbox full: may it go in (held, rule 1 of core.flow)?"""
        message, sender, reply, _ = entry
        if reply is None and not cell.drop:
            if sender is not None and sender.node == self.id:
                self.flow.hold_local(sender, cell)
            return True
        self.stats.overloaded += 1
        path = cell.ref.path
        if reply is not None:
            self.send_reply(
                reply,
                None,
                Overloaded(
                    f"actor {path} has {len(cell.mailbox)} messages waiting (its mailbox_limit "
                    f"is {cell.limit}); the ask was refused, try again later"
                ),
                path,
            )
        else:
            self.rate_limited(
                logging.INFO,
                "actor %s's mailbox is full (%d); a %s was dropped (mailbox_policy 'drop')",
                path,
                len(cell.mailbox),
                type(message).__name__,
            )
        return False


def start_engine(
    node_id: str,
    loop: asyncio.AbstractEventLoop,
    transport: Transport,
    storage: StorageBackend,
    **options: Any,
) -> Engine:
    """An engine on ``transport``, whose input it takes, started: how every runtime makes one.

    ``options`` are :class:`Engine`'s other arguments. The runtime then
    spawns its top-level actors.
    """
    engine = Engine(node_id, loop, transport, storage, **options)
    transport.attach(engine.inbound)
    engine.start()
    return engine
