"""The node engine: what every runtime runs to host actors, whatever carries its bytes.

A :class:`Node` hosts the actors of one node: their cells (instance,
mailbox, timers, watchers), message dispatch, asks and their replies,
supervision, dead letters, watches, and the liveness of peer nodes. It sits
on three things a runtime provides: an asyncio event loop (real, or the
simulator's virtual-time loop), a :class:`Transport` that carries envelopes
to other nodes, and a :class:`~actorfw.core.storage.StorageBackend`.

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
   timeout, or :class:`~actorfw.NodeDown`. Later replies are counted and
   dropped. An ask times out no earlier than its timeout and at most
   :data:`ASK_TIMER_SLACK` later: asks wait in one queue per timeout value
   (in deadline order, as the clock only goes forward) under one loop
   timer, which wakes for the earliest deadline and, when more are
   queued, not again before the slack has passed. An answered ask costs
   no timer operation, where one loop timer per ask would cost several
   microseconds.
5. A handler's exception is answered to its ask, then handed to the
   supervisor (:mod:`actorfw.core.supervision`); it never escapes the node.
   A message no handler takes (:class:`~actorfw.UnhandledMessage`) is not a
   failure: it is counted, logged, and refused to an asker.
6. A crash (:meth:`Node.crash`) ends everything at once: no hook runs, no
   message is sent, and anything the actors' cancelled code still tries is
   dropped.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import hashlib
import logging
import math
import random
import types
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from actorfw.core.actor import Actor, actor_class, actor_path, missing_actor_class
from actorfw.core.arguments import check_actor_class, check_target
from actorfw.core.context import Context
from actorfw.core.messages import (
    Heartbeat,
    LookupRequest,
    SpawnRequest,
    StatusRequest,
    Terminated,
    TerminatedNotice,
    UnwatchRequest,
    WatchRequest,
)
from actorfw.core.storage import Storage, StorageBackend
from actorfw.core.supervision import Directive, SupervisorStrategy
from actorfw.kernels import wire as _wire
from actorfw.protocols.failure_detector import Membership, MembershipEvent
from actorfw.values import codec
from actorfw.values.errors import (
    ActorNotFound,
    AskTimeout,
    MalformedMessage,
    MessageRefused,
    NodeDown,
    UnhandledMessage,
)
from actorfw.values.failures import error_from_failure, failure_of
from actorfw.values.refs import ActorRef, ReplyTo, _current

__all__ = [
    "ASK",
    "FAILURE",
    "NODE_TARGET",
    "REPLY",
    "TELL",
    "Cell",
    "ClientEndpoint",
    "Envelope",
    "Node",
    "NodeConfig",
    "NodeStats",
    "Tracer",
    "Transport",
    "derive_seed",
]

log = logging.getLogger("actorfw")

TELL, ASK, REPLY, FAILURE = 0, 1, 2, 3
"""Envelope kinds."""
NODE_TARGET = "$node"
"""The target name of a node's own protocol (heartbeats, remote spawn, watch)."""

_SENDER_CACHE = 4096


if TYPE_CHECKING:
    from actorfw._pure.wire import Envelope
else:
    Envelope = _wire.Envelope
"""One message between nodes, before (or after) the transport's framing.

Attributes: ``kind`` (``TELL``, ``ASK``, ``REPLY`` or ``FAILURE``),
``source`` (the sending node), ``target`` (the actor's name on the receiving
node; ``$node`` for the node protocol, empty for replies), ``sender`` (the
sending actor's name, or None), ``corr`` (the ask's correlation id on the
asking node; 0 for tells), and ``body``, ``buffers``, ``plain`` (the encoded
message, see :mod:`actorfw.values.codec`). The type is the wire kernel's.
"""


ASK_TIMER_SLACK = 0.01
"""Seconds an ask may time out late, so that one timer wake-up ends every ask due in that time."""

_COMPACT_DEADLINES = 4096
"""A deadline queue this long is rebuilt without its answered asks when they are most of it."""


class Transport(Protocol):
    """Carries envelopes to other nodes (ZeroMQ sockets, or the simulated network).

    A transport that batches may also have a ``flush()`` method, which the
    engine calls after each round of actor turns.
    """

    def send(self, destination: str, envelope: Envelope) -> None:
        """Send ``envelope`` to node ``destination``; never blocks, may drop."""


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
    """Tunables of a node engine.

    Attributes:
        heartbeat_interval: seconds between heartbeats to each peer.
        phi_threshold, acceptable_pause, min_std, join_timeout: the failure
            detector's (see :mod:`actorfw.protocols.failure_detector`).
        mailbox_batch: messages one actor handles before yielding the loop.
        root_strategy: how the node supervises top-level actors.
        dead_letter_log_limit: dead-letter lines logged per ``log_window``;
            the rest are counted and summed up.
        log_window: seconds of the rate-limiting window.
    """

    heartbeat_interval: float = 0.5
    phi_threshold: float = 8.0
    acceptable_pause: float = 1.5
    min_std: float = 0.1
    join_timeout: float = 5.0
    mailbox_batch: int = 1024
    root_strategy: SupervisorStrategy = dataclasses.field(default_factory=SupervisorStrategy)
    dead_letter_log_limit: int = 5
    log_window: float = 10.0


@dataclasses.dataclass
class NodeStats:
    """Counters of a node engine (what happened since it started)."""

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


# The life of a cell, ordered: plain ints, compared on every message.
STARTING, RUNNING, SUSPENDED, STOPPING, STOPPED = range(5)


DEFAULT_STRATEGY = SupervisorStrategy()

Entry = tuple[Any, ActorRef | None, ReplyTo | None, tuple[Any, int] | None]


def _bound_handler(cell: Cell, kind: type) -> Callable[[Any], Any]:
    instance = cell.instance
    assert instance is not None
    name = type(instance).handler_for(kind)
    bound: Callable[[Any], Any] = instance.receive if name is None else getattr(instance, name)
    return bound


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from ``parts``, the same in every process (unlike ``hash``)."""
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


class _ActorLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    def __init__(self, node: Node, path: str) -> None:
        super().__init__(log, {})
        self._node = node
        self._path = path

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        if self._node.log_time:
            return f"[t={self._node.now():.6f} {self._path}] {msg}", kwargs
        return f"[{self._path}] {msg}", kwargs


class Cell:
    """The engine's record of one actor: instance, mailbox, timers, watches, children."""

    __slots__ = (
        "actor_class",
        "args",
        "busy",
        "children",
        "context",
        "escalated",
        "handlers",
        "instance",
        "kwargs",
        "log",
        "mailbox",
        "name",
        "parent",
        "ref",
        "restarts",
        "rng",
        "scheduled",
        "state",
        "stop_reason",
        "stopping_children",
        "storage",
        "task",
        "timer_gen",
        "timers",
        "watchers",
        "watching",
    )

    def __init__(
        self,
        node: Node,
        name: str,
        actor_class: type[Actor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        parent: Cell | None,
    ) -> None:
        self.name = name
        self.ref = ActorRef(node.id, name)
        self.actor_class = actor_class
        self.args = args
        self.kwargs = kwargs
        self.parent = parent
        self.children: dict[str, Cell] = {}
        self.instance: Actor | None = None
        self.handlers: dict[type, Callable[[Any], Any]] = {}  # message type -> bound handler
        self.context = Context(node, self)
        self.mailbox: deque[Entry] = deque()
        self.state = STARTING
        self.scheduled = False
        self.busy = False
        self.task: asyncio.Task[Any] | None = None
        # key -> [handle, generation, repeat, delay, message]
        self.timers: dict[Any, list[Any]] = {}
        self.timer_gen = 0
        self.watchers: dict[ActorRef, None] = {}
        self.watching: dict[ActorRef, None] = {}
        self.restarts: list[float] = []
        self.escalated = False
        self.stopping_children = 0
        self.stop_reason = "stopped"
        self.rng = random.Random(derive_seed(node.seed, node.id, node.incarnation, name))
        self.storage: Storage = node.storage_backend.namespace(name)
        self.log = _ActorLog(node, self.ref.path)


class ClientEndpoint:
    """Sends on behalf of code outside any actor (a driver, a test, a CLI) from one node.

    Messages it sends have no sender; asks are answered to it.
    """

    __slots__ = ("_node",)

    def __init__(self, node: Node) -> None:
        self._node = node

    @property
    def node(self) -> str:
        """The node this client sends from."""
        return self._node.id

    def send(self, target: ActorRef, message: Any) -> None:
        """Send ``message`` to ``target`` with no sender."""
        self._node.send(target, message, None)

    def ask(self, target: ActorRef, message: Any, timeout: float) -> Awaitable[Any]:
        """Ask ``target``; an awaitable of the reply."""
        return self._node.ask(target, message, timeout, None)

    def reply(self, to: ReplyTo, value: Any, error: BaseException | None) -> None:
        """Answer a deferred ask."""
        self._node.send_reply(to, value, error, f"{self._node.id}/(client)")

    def bind(self) -> contextvars.Context:
        """A copy of the current context in which tells and asks go through this client.

        Run driver code in it, e.g. ``loop.create_task(main(), context=client.bind())``.
        """
        ctx = contextvars.copy_context()
        ctx.run(_current.set, self)
        return ctx


class Node:
    """A node engine; see the module documentation.

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
        reachable: nodes it can send to without watching them (a client's);
            an ask to a node neither here nor among ``peers`` fails at once.
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
        self.log_time = log_time
        self.stats = NodeStats()
        self.membership = Membership(
            threshold=self.config.phi_threshold,
            acceptable_pause=self.config.acceptable_pause,
            min_std=self.config.min_std,
            first_interval=self.config.heartbeat_interval,
            join_timeout=self.config.join_timeout,
        )
        self.peers: list[str] = []
        self._peer_set: set[str] = set(reachable) - {node_id}
        for peer in peers:
            self.add_peer(peer)
        self.rng = random.Random(derive_seed(seed, node_id, incarnation, NODE_TARGET))
        self.cells: dict[str, Cell] = {}
        self.roots: dict[str, Cell] = {}
        # corr -> (future, target, timeout) of each ask not yet ended (rule 4)
        self._pending: dict[int, tuple[asyncio.Future[Any], ActorRef, float]] = {}
        self._deadlines: dict[float, deque[tuple[float, int]]] = {}  # timeout -> (deadline, corr)
        self._ask_timer: asyncio.TimerHandle | None = None
        self._ask_timer_at = math.inf
        self._corr = 0
        self._auto = 0
        self._dead = False
        self._started = False
        self._heartbeat: asyncio.TimerHandle | None = None
        # peer node -> watched ref on it -> watcher cell names here
        self._remote_watches: dict[str, dict[ActorRef, dict[str, None]]] = {}
        self._log_window_start = -math.inf
        self._log_count = 0
        self._log_suppressed = 0
        self.client = ClientEndpoint(self)
        self._runnable: deque[Cell] = deque()  # cells with messages, waiting for their turn
        self._pump_scheduled = False
        self._flush: Callable[[], None] | None = getattr(transport, "flush", None)
        self._senders: dict[str, dict[str, ActorRef]] = {}  # refs of recent remote senders
        self._stopped_waiters: list[asyncio.Future[None]] = []

    # -- lifecycle -----------------------------------------------------------------------

    def add_peer(self, peer: str) -> None:
        """Track ``peer``: heartbeat it and watch its liveness."""
        if peer != self.id and peer not in self.peers:
            self.peers.append(peer)
            self._peer_set.add(peer)
            self.membership.add(peer, self.loop.time())

    def start(self) -> None:
        """Start heartbeating peers (actors may be spawned before or after)."""
        if self._started:
            return
        self._started = True
        if self.peers:
            self._heartbeat = self.loop.call_later(0.0, self._beat)

    def now(self) -> float:
        """The runtime's monotonic time."""
        return self.loop.time()

    @property
    def alive(self) -> bool:
        """False once the node crashed or stopped."""
        return not self._dead

    def crash(self) -> None:
        """End everything at once, as a process kill would (rule 6)."""
        if self._dead:
            return
        self._dead = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for cell in list(self.cells.values()):
            for timer in cell.timers.values():
                timer[0].cancel()
            cell.timers.clear()
            if cell.task is not None and not cell.task.done():
                cell.task.cancel()
            cell.state = STOPPED
            cell.mailbox.clear()
        self.cells.clear()
        self.roots.clear()
        for future, _, _ in self._pending.values():
            if not future.done():
                future.set_exception(NodeDown(f"node {self.id} crashed"))
                future.exception()  # mark retrieved: nobody may be left to await it
        self._pending.clear()
        self._deadlines.clear()
        if self._ask_timer is not None:
            self._ask_timer.cancel()
            self._ask_timer = None
        for waiter in self._stopped_waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def stop(self) -> None:
        """Stop gracefully: stop top-level actors newest first, let their hooks run, then end."""
        if self._dead:
            return
        for cell in reversed(list(self.roots.values())):
            self._stop(cell, "stopped")
        if self.cells:
            waiter = self.loop.create_future()
            self._stopped_waiters.append(waiter)
            await waiter
        if not self._dead:
            self.crash()

    # -- spawning ------------------------------------------------------------------------

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
        if self._dead:
            raise NodeDown(f"node {self.id} is not running")
        check_actor_class(actor_cls)
        if name is None:
            self._auto += 1
            local = f"{actor_cls.__name__.lower()}-{self._auto}"
        else:
            if not isinstance(name, str) or not name or "/" in name or name.startswith("$"):
                raise ValueError(
                    f"an actor name must be a non-empty str without '/' and not starting "
                    f"with '$', not {name!r}"
                )
            local = name
        full = f"{parent.name}/{local}" if parent is not None else local
        if full in self.cells:
            raise ValueError(f"an actor named {full!r} already runs on node {self.id}")
        cell = Cell(self, full, actor_cls, args, kwargs, parent)
        instance = actor_cls.__new__(actor_cls)
        instance.context = cell.context
        token = _current.set(cell.context)
        try:
            instance.__init__(*args, **kwargs)  # type: ignore[misc]
        finally:
            _current.reset(token)
        cell.instance = instance
        self.cells[full] = cell
        if parent is not None:
            parent.children[full] = cell
        else:
            self.roots[full] = cell
        self._run_hook(cell, instance.on_start, lambda error: self._started_hook(cell, error))
        return cell.ref

    async def spawn_remote(
        self,
        node: str,
        actor_cls: type[Actor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None,
        timeout: float,
        sender: ActorRef | None,
    ) -> ActorRef:
        """Spawn a top-level actor on ``node`` (see ``Context.spawn_on``)."""
        if node == self.id:
            return self.spawn(actor_cls, *args, name=name, **kwargs)
        path = actor_path(actor_cls)
        if actor_class(path) is not actor_cls:
            raise TypeError(
                f"{actor_cls!r} cannot be spawned on another node: define it at module level "
                "so that the other node can import it by its path"
            )
        request = SpawnRequest(path, tuple(args), dict(kwargs), name)
        ref = await self.ask(ActorRef(node, NODE_TARGET), request, timeout, sender)
        if not isinstance(ref, ActorRef):
            raise MalformedMessage(f"node {node} answered a spawn with {ref!r}, not an ActorRef")
        return ref

    # -- hooks and the mailbox ------------------------------------------------------------

    def _run_hook(
        self, cell: Cell, hook: Callable[[], Any], then: Callable[[BaseException | None], None]
    ) -> None:
        ctx = cell.context
        ctx._sender = None
        ctx._reply = None
        token = _current.set(ctx)
        try:
            result = hook()
        except Exception as error:
            then(error)
            return
        finally:
            _current.reset(token)
        if type(result) is types.CoroutineType:
            cell.busy = True
            run_ctx = contextvars.copy_context()
            run_ctx.run(_current.set, ctx)
            task = self.loop.create_task(result, context=run_ctx)
            cell.task = task

            def done(t: asyncio.Task[Any]) -> None:
                if cell.task is t:
                    cell.task = None
                    cell.busy = False
                if self._dead:
                    return
                then(None if t.cancelled() else t.exception())

            task.add_done_callback(done)
        else:
            then(None)

    def _started_hook(self, cell: Cell, error: BaseException | None) -> None:
        if cell.state >= STOPPING:
            return
        if error is not None:
            self._failed(cell, error)
            return
        cell.state = RUNNING
        self._schedule(cell)

    def _schedule(self, cell: Cell) -> None:
        if cell.mailbox and not cell.scheduled and not cell.busy and cell.state is RUNNING:
            cell.scheduled = True
            self._runnable.append(cell)
            if not self._pump_scheduled:
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
        for _ in range(len(runnable)):  # one round: actors rescheduled meanwhile wait for the next
            self._drain(runnable.popleft())
        if self._flush is not None:
            self._flush()

    def _drain(self, cell: Cell) -> None:
        cell.scheduled = False
        if self._dead:
            return
        budget = self.config.mailbox_batch
        mailbox = cell.mailbox
        token = _current.set(cell.context)  # the actor's door, for refs used in its handlers
        try:
            while mailbox and cell.state is RUNNING and not cell.busy and budget > 0:
                budget -= 1
                self._invoke(cell, mailbox.popleft())
        finally:
            _current.reset(token)
        self._schedule(cell)

    def _invoke(self, cell: Cell, entry: Entry) -> None:
        message, sender, reply, timer = entry
        if timer is not None:
            key, gen = timer
            current = cell.timers.get(key)
            if current is None or current[1] != gen:
                return  # cancelled or replaced after it fired
            if not current[2]:
                del cell.timers[key]
            if self.tracer is not None:
                self.tracer.timer(self.id, cell.name, key)
        self.stats.delivered += 1
        if self.tracer is not None:
            self.tracer.delivered(self.id, cell.name, sender, message)
        ctx = cell.context
        ctx._sender = sender
        ctx._reply = reply
        ctx._replied = False
        try:
            handle = cell.handlers.get(type(message))
            if handle is None:
                handle = cell.handlers[type(message)] = _bound_handler(cell, type(message))
            result = handle(message)
            if type(result) is types.CoroutineType:
                cell.busy = True
                task = self.loop.create_task(result, context=contextvars.copy_context())
                cell.task = task
                task.add_done_callback(lambda t: self._handler_done(cell, reply, t))
                return
        except Exception as error:
            self._handler_failed(cell, reply, error)
            return
        if reply is not None and not ctx._replied:
            self.send_reply(reply, result, None, cell.ref.path)

    def take(self, cell: Cell, limit: int) -> list[tuple[Any, ActorRef | None, ReplyTo | None]]:
        """Pop up to ``limit`` waiting messages of ``cell`` (see ``Context.take``)."""
        mailbox = cell.mailbox
        taken: list[tuple[Any, ActorRef | None, ReplyTo | None]] = []
        while mailbox and len(taken) < limit and mailbox[0][3] is None:  # stop at a timer
            message, sender, reply, _ = mailbox.popleft()
            self.stats.delivered += 1
            if self.tracer is not None:
                self.tracer.delivered(self.id, cell.name, sender, message)
            taken.append((message, sender, reply))
        return taken

    def _handler_done(self, cell: Cell, reply: ReplyTo | None, task: asyncio.Task[Any]) -> None:
        if cell.task is task:
            cell.task = None
            cell.busy = False
        if self._dead:
            return
        replied = cell.context._replied
        if task.cancelled():
            if reply is not None and not replied:
                self.send_reply(
                    reply,
                    None,
                    ActorNotFound(f"actor {cell.ref.path} stopped before answering"),
                    cell.ref.path,
                )
        else:
            error = task.exception()
            if error is not None:
                if cell.state < STOPPING:
                    self._handler_failed(cell, reply, error)
                elif reply is not None and not replied:
                    self.send_reply(reply, None, error, cell.ref.path)
            elif reply is not None and not replied:
                self.send_reply(reply, task.result(), None, cell.ref.path)
        self._schedule(cell)

    def _handler_failed(self, cell: Cell, reply: ReplyTo | None, error: BaseException) -> None:
        if reply is not None and not cell.context._replied:
            self.send_reply(reply, None, error, cell.ref.path)
        if isinstance(error, UnhandledMessage):
            # Not a failure: the actor is fine, the message was not for it.
            self.stats.unhandled += 1
            self._rate_limited(logging.INFO, "unhandled: %s", error)
            return
        self._failed(cell, error)

    # -- supervision ---------------------------------------------------------------------

    def _strategy(self, cell: Cell) -> SupervisorStrategy:
        parent = cell.parent
        if parent is None:
            return self.config.root_strategy
        strategy = getattr(parent.instance, "supervisor_strategy", None)
        return strategy if isinstance(strategy, SupervisorStrategy) else DEFAULT_STRATEGY

    def _failed(self, cell: Cell, error: BaseException) -> None:
        if self._dead or cell.state >= STOPPING:
            return
        self.stats.failures += 1
        cell.state = SUSPENDED
        strategy = self._strategy(cell)
        directive, delay = strategy.decide(error, cell.restarts, self.now(), self.rng)
        if self.tracer is not None:
            self.tracer.failed(self.id, cell.name, error, directive)
        cell.log.error(
            "failed with %s: %s; supervisor decides %s",
            type(error).__name__,
            error,
            directive.value,
            exc_info=(type(error), error, error.__traceback__),
        )
        parent = cell.parent
        group = [cell]
        if (
            strategy.all_for_one
            and parent is not None
            and directive in (Directive.RESTART, Directive.STOP)
        ):
            group = [c for c in parent.children.values() if c.state < STOPPING]
        if directive is Directive.RESUME:
            self._resume(cell)
        elif directive is Directive.RESTART:
            for member in group:
                member.state = SUSPENDED
                self.loop.call_later(delay, self._restart, member, error)
        elif directive is Directive.STOP:
            for member in group:
                self._stop(member, "failed")
        elif parent is None:
            cell.log.error("escalated to the node: stopping it")
            self._stop(cell, "failed")
        else:
            cell.escalated = True
            self._failed(parent, error)

    def _resume(self, cell: Cell) -> None:
        cell.state = RUNNING
        for child in cell.children.values():
            if child.escalated and child.state is SUSPENDED:
                child.escalated = False
                self._resume(child)
        self._schedule(cell)

    def _restart(self, cell: Cell, error: BaseException) -> None:
        if self._dead or cell.state is not SUSPENDED:
            return
        cell.escalated = False
        self._cancel_timers(cell)
        if cell.task is not None and not cell.task.done():
            cell.task.cancel()
        for child in reversed(list(cell.children.values())):
            self._stop(child, "stopped")
        old = cell.instance
        assert old is not None

        def replace(stop_error: BaseException | None) -> None:
            if stop_error is not None:
                cell.log.warning("on_stop raised before a restart: %r", stop_error)
            if self._dead or cell.state is not SUSPENDED:
                return
            self.stats.restarts += 1
            instance = cell.actor_class.__new__(cell.actor_class)
            instance.context = cell.context
            token = _current.set(cell.context)
            try:
                instance.__init__(*cell.args, **cell.kwargs)  # type: ignore[misc]
            except Exception as init_error:
                self._failed(cell, init_error)
                return
            finally:
                _current.reset(token)
            cell.instance = instance
            cell.handlers = {}
            cell.state = STARTING
            self._run_hook(
                cell, lambda: instance.on_restart(error), lambda e: self._started_hook(cell, e)
            )

        self._run_hook(cell, old.on_stop, replace)

    # -- stopping ------------------------------------------------------------------------

    def stop_actor(self, target: ActorRef) -> None:
        """Stop a local actor (and its children); a no-op if it is already gone."""
        if target.node != self.id:
            raise ValueError(f"stop() stops actors of this node ({self.id}), not {target.path}")
        cell = self.cells.get(target.name)
        if cell is not None:
            self._stop(cell, "stopped")

    def _stop(self, cell: Cell, reason: str) -> None:
        if cell.state >= STOPPING:
            return
        cell.state = STOPPING
        cell.stop_reason = reason
        self._cancel_timers(cell)
        if cell.task is not None and not cell.task.done():
            cell.task.cancel()
        children = list(cell.children.values())
        cell.stopping_children = len(children)
        if children:
            for child in reversed(children):
                self._stop(child, "stopped")
        else:
            self._children_stopped(cell)

    def _children_stopped(self, cell: Cell) -> None:
        instance = cell.instance
        if instance is None:
            self._finish_stop(cell, None)
            return
        self._run_hook(cell, instance.on_stop, lambda error: self._finish_stop(cell, error))

    def _finish_stop(self, cell: Cell, error: BaseException | None) -> None:
        if error is not None and not isinstance(error, asyncio.CancelledError):
            cell.log.warning("on_stop raised: %r", error)
        if cell.state is STOPPED or self._dead:
            return
        cell.state = STOPPED
        self.cells.pop(cell.name, None)
        self.roots.pop(cell.name, None)
        parent = cell.parent
        if parent is not None:
            parent.children.pop(cell.name, None)
        while cell.mailbox:
            self._dead_letter(cell.name, cell.mailbox.popleft(), "stopped")
        for watcher in cell.watchers:
            self._notify_terminated(watcher, cell.ref, cell.stop_reason)
        cell.watchers.clear()
        for target in list(cell.watching):
            self.unwatch(cell, target)
        if parent is not None and parent.state is STOPPING:
            parent.stopping_children -= 1
            if parent.stopping_children == 0:
                self._children_stopped(parent)
        if not self.cells:
            for waiter in self._stopped_waiters:
                if not waiter.done():
                    waiter.set_result(None)

    # -- sending -------------------------------------------------------------------------

    def send(
        self, target: ActorRef, message: Any, sender: ActorRef | None, checked: bool = False
    ) -> None:
        """Tell ``target`` ``message`` from ``sender`` (rules 2 and 3).

        ``checked``: the caller vouches that ``message`` is a message value
        (built from values that were checked already), so a local delivery
        skips the check; a remote one encodes it, which checks it anyway.
        """
        if type(target) is not ActorRef:
            raise TypeError(f"tell needs an ActorRef to send to, not {type(target).__name__}")
        if self._dead:
            return
        if target.node == self.id:
            if not checked:
                codec.check(message)
            self._enqueue(target.name, (message, sender, None, None))
            return
        body, buffers, plain = codec.encode(message)
        self.stats.sent_remote += 1
        self.transport.send(
            target.node,
            Envelope(
                TELL, self.id, target.name, sender.name if sender else None, 0, body, buffers, plain
            ),
        )

    def send_all(
        self,
        targets: list[ActorRef],
        message: Any,
        sender: ActorRef | None,
        checked: bool = False,
    ) -> None:
        """Tell every one of ``targets`` the same ``message`` (rules 2 and 3), encoding it once.

        The same as :meth:`send` to each target in turn, except that the body
        is encoded once for all the targets off this node (and checked once
        for those on it): a protocol sending one value to its peers pays for
        one encoding, not one per peer. A refused message raises before any
        target is sent anything.
        """
        for target in targets:
            if type(target) is not ActorRef:
                raise TypeError(f"tell needs an ActorRef to send to, not {type(target).__name__}")
        if self._dead:
            return
        # Refused before anything is sent, as by send().
        me = self.id
        body, buffers, plain = b"", [], False
        if any(target.node != me for target in targets):
            body, buffers, plain = codec.encode(message)  # checks it too
        elif not checked and targets:
            codec.check(message)
        name = sender.name if sender else None
        for target in targets:
            if target.node == me:
                self._enqueue(target.name, (message, sender, None, None))
                continue
            # The envelopes share the body and the buffers: nothing changes them.
            self.stats.sent_remote += 1
            self.transport.send(
                target.node, Envelope(TELL, me, target.name, name, 0, body, buffers, plain)
            )

    def ask(
        self, target: ActorRef, message: Any, timeout: float, sender: ActorRef | None
    ) -> asyncio.Future[Any]:
        """Ask ``target``; a future of the reply (rule 4).

        Raises:
            MessageRefused: ``message`` is not a message value (raised here, at the call).
        """
        check_target(target, "ask")
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(
                f"an ask timeout must be a positive number of seconds, not {timeout!r}"
            )
        future: asyncio.Future[Any] = self.loop.create_future()
        if self._dead:
            future.set_exception(NodeDown(f"node {self.id} is not running"))
            return future
        local = target.node == self.id
        if local:
            codec.check(message)
        else:
            body, buffers, plain = codec.encode(message)
            if target.node not in self._peer_set:
                future.set_exception(
                    ActorNotFound(
                        f"no node {target.node!r} in this cluster (nodes: "
                        f"{', '.join(sorted([self.id, *self.peers]))}); the ask to "
                        f"{target.path} was not sent"
                    )
                )
                return future
            if self.membership.is_down(target.node):
                future.set_exception(
                    NodeDown(
                        f"node {target.node} is declared down (no heartbeat for "
                        f"{self._silence(target.node):.1f}s); the ask to {target.path} was not sent"
                    )
                )
                return future
        self._corr += 1
        corr = self._corr
        self._pending[corr] = (future, target, timeout)
        self._add_deadline(corr, timeout)
        if local:
            self._enqueue(target.name, (message, sender, ReplyTo(self.id, corr), None))
        else:
            self.stats.sent_remote += 1
            self.transport.send(
                target.node,
                Envelope(
                    ASK,
                    self.id,
                    target.name,
                    sender.name if sender else None,
                    corr,
                    body,
                    buffers,
                    plain,
                ),
            )
        return future

    def _silence(self, peer: str) -> float:
        last = self.membership.last_heartbeat(peer)
        return math.inf if last is None else self.now() - last

    def _add_deadline(self, corr: int, timeout: float) -> None:
        """Queue ask ``corr``'s deadline; wake earlier if it is the earliest (rule 4)."""
        deadline = self.loop.time() + timeout
        queue = self._deadlines.get(timeout)
        if queue is None:
            queue = self._deadlines[timeout] = deque()
        elif len(queue) >= _COMPACT_DEADLINES and len(queue) > 2 * len(self._pending):
            # Answered asks stay queued until their deadline; bound what they hold.
            pending = self._pending
            queue = self._deadlines[timeout] = deque(e for e in queue if e[1] in pending)
        queue.append((deadline, corr))
        if deadline < self._ask_timer_at:
            self._arm_ask_timer(deadline)

    def _arm_ask_timer(self, when: float) -> None:
        if self._ask_timer is not None:
            self._ask_timer.cancel()
        self._ask_timer_at = when
        self._ask_timer = self.loop.call_at(when, self._expire_asks)

    def _expire_asks(self) -> None:
        """Time out every ask whose deadline has come; wake again for the next (rule 4)."""
        self._ask_timer = None
        self._ask_timer_at = math.inf
        now = self.loop.time()
        earliest = math.inf
        pending = self._pending
        for timeout, queue in list(self._deadlines.items()):
            while queue and queue[0][0] <= now:
                entry = pending.pop(queue.popleft()[1], None)
                if entry is not None:
                    future, target, _ = entry
                    self.stats.ask_timeouts += 1
                    if not future.done():
                        future.set_exception(
                            AskTimeout(f"no reply from {target.path} within {timeout:g}s")
                        )
            if queue:
                earliest = min(earliest, queue[0][0])
            else:
                del self._deadlines[timeout]
        if earliest < math.inf:
            self._arm_ask_timer(max(earliest, now + ASK_TIMER_SLACK))

    def _resolve(self, corr: int, value: Any, error: BaseException | None) -> None:
        pending = self._pending.pop(corr, None)
        if pending is None:
            self.stats.late_replies += 1
            return
        future = pending[0]
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def send_reply(self, to: ReplyTo, value: Any, error: BaseException | None, actor: str) -> None:
        """Answer the ask ``to`` with ``value`` or ``error``; ``actor`` is who answers (a path)."""
        if self._dead:
            return
        if type(to) is not ReplyTo:
            raise TypeError(f"a reply goes to a ReplyTo, not {type(to).__name__}")
        if error is None:
            try:
                if to.node == self.id:
                    codec.check(value)
                else:
                    body, buffers, plain = codec.encode(value)
            except MessageRefused as refused:
                error = MessageRefused(f"the reply of {actor} was refused: {refused}")
        if error is not None:
            failure = failure_of(error, actor)
        if to.node == self.id:
            if error is not None:
                self._resolve(to.corr, None, error_from_failure(failure))
            else:
                self._resolve(to.corr, value, None)
            return
        if error is not None:
            body, buffers, plain = codec.encode(failure)
            kind = FAILURE
        else:
            kind = REPLY
        self.stats.sent_remote += 1
        self.transport.send(
            to.node, Envelope(kind, self.id, "", None, to.corr, body, buffers, plain)
        )

    # -- receiving -----------------------------------------------------------------------

    def _enqueue(self, name: str, entry: Entry) -> None:
        cell = self.cells.get(name)
        if cell is None or cell.state >= STOPPING:
            self._dead_letter(name, entry, "not found" if cell is None else "stopping")
            return
        cell.mailbox.append(entry)
        if not cell.scheduled and not cell.busy and cell.state is RUNNING:
            cell.scheduled = True
            self._runnable.append(cell)
            if not self._pump_scheduled:
                self._pump_scheduled = True
                self.loop.call_soon(self._pump)

    def receive(self, envelope: Envelope) -> None:
        """Take an envelope from another node (rule 3); never raises for bad input."""
        if self._dead:
            return
        self.stats.received_remote += 1
        kind = envelope.kind
        try:
            value = codec.decode(envelope.body, envelope.buffers, envelope.plain)
        except Exception as caught:  # the codec raises MalformedMessage; anything else is one too
            error = (
                caught
                if isinstance(caught, MalformedMessage)
                else MalformedMessage(f"malformed message body: {type(caught).__name__}: {caught}")
            )
            self._bad_input(envelope.source, error)
            if kind == ASK:
                self._reply_remote_error(envelope, error)
            elif kind in (REPLY, FAILURE):
                self._resolve(envelope.corr, None, error)
            return
        if kind == REPLY:
            self._resolve(envelope.corr, value, None)
        elif kind == FAILURE:
            failed = error_from_failure(value)
            if failed is None:
                bad = MalformedMessage(f"node {envelope.source} sent a malformed error reply")
                self._bad_input(envelope.source, bad)
                self._resolve(envelope.corr, None, bad)
            else:
                self._resolve(envelope.corr, None, failed)
        elif kind == TELL or kind == ASK:
            sender = None
            if envelope.sender is not None:
                known = self._senders.get(envelope.source)
                if known is None:
                    known = self._senders[envelope.source] = {}
                sender = known.get(envelope.sender)
                if sender is None:
                    if len(known) >= _SENDER_CACHE:
                        known.clear()
                    sender = known[envelope.sender] = ActorRef(envelope.source, envelope.sender)
            reply = ReplyTo(envelope.source, envelope.corr) if kind == ASK else None
            if envelope.target == NODE_TARGET:
                self._system(value, sender, reply, envelope.source)
            else:
                self._enqueue(envelope.target, (value, sender, reply, None))
        else:
            self._bad_input(envelope.source, MalformedMessage(f"unknown envelope kind {kind!r}"))

    def reject(self, envelope: Envelope, error: BaseException) -> None:
        """Refuse an envelope the transport would not decode (too big): count, log, answer."""
        if self._dead:
            return
        self._bad_input(envelope.source, error)
        if envelope.kind == ASK:
            self._reply_remote_error(envelope, error)
        elif envelope.kind in (REPLY, FAILURE):
            self._resolve(envelope.corr, None, error)

    def heard_from(self, peer: str) -> None:
        """Traffic came from ``peer``: evidence it is alive (see the failure detector)."""
        self.membership.seen(peer, self.loop.time())

    def bad_input(self, peer: str, error: BaseException) -> None:
        """Count and log (rate-limited) input from ``peer`` that could not be understood."""
        if not self._dead:
            self._bad_input(peer, error)

    def _reply_remote_error(self, envelope: Envelope, error: BaseException) -> None:
        failure = failure_of(error, f"{self.id}/{envelope.target}")
        body, buffers, plain = codec.encode(failure)
        self.transport.send(
            envelope.source,
            Envelope(FAILURE, self.id, "", None, envelope.corr, body, buffers, plain),
        )

    def _bad_input(self, peer: str, error: BaseException) -> None:
        self.stats.malformed += 1
        self._rate_limited(logging.WARNING, "bad input from node %s: %s", peer, error)

    def _rate_limited(self, level: int, fmt: str, *args: Any) -> None:
        now = self.now()
        if now - self._log_window_start >= self.config.log_window:
            if self._log_suppressed:
                log.log(level, "[%s] %d more like this not logged", self.id, self._log_suppressed)
            self._log_window_start = now
            self._log_count = 0
            self._log_suppressed = 0
        if self._log_count < self.config.dead_letter_log_limit:
            self._log_count += 1
            log.log(level, f"[{self.id}] {fmt}", *args)
        else:
            self._log_suppressed += 1

    def _dead_letter(self, name: str, entry: Entry, why: str) -> None:
        message, sender, reply, timer = entry
        if timer is not None:
            return  # a timer of an actor that is gone
        self.stats.dead_letters += 1
        if why == "not found":
            known = ", ".join(sorted(n for n in self.cells if "/" not in n)[:8]) or "none"
            text = (
                f"actor {name!r} is not on node {self.id} (known there: {known}); "
                "was it spawned on another node, or has it stopped?"
            )
        else:
            text = f"actor {self.id}/{name} is {why}; the message was not delivered"
        self._rate_limited(
            logging.INFO,
            "dead letter: %s from %s: %s",
            type(message).__name__,
            sender.path if sender else "(no sender)",
            text,
        )
        if reply is not None:
            self.send_reply(reply, None, ActorNotFound(text), f"{self.id}/{name}")

    # -- the node protocol ---------------------------------------------------------------

    def _system(
        self, message: Any, sender: ActorRef | None, reply: ReplyTo | None, source: str
    ) -> None:
        kind = type(message)
        if kind is Heartbeat:
            self._heard(source, message.incarnation)
        elif kind is SpawnRequest:
            self._remote_spawn(message, reply)
        elif kind is LookupRequest:
            if reply is not None:
                cell = self.cells.get(message.name)
                alive = cell is not None and cell.state < STOPPING
                self.send_reply(reply, alive, None, f"{self.id}/{NODE_TARGET}")
        elif kind is WatchRequest:
            cell = self.cells.get(message.target)
            if cell is None or cell.state >= STOPPING:
                self._notify_terminated(
                    message.watcher, ActorRef(self.id, message.target), "not-found"
                )
            else:
                cell.watchers[message.watcher] = None
        elif kind is UnwatchRequest:
            cell = self.cells.get(message.target)
            if cell is not None:
                cell.watchers.pop(message.watcher, None)
        elif kind is TerminatedNotice:
            self._deliver_terminated(message.watcher.name, message.actor, message.reason)
        elif kind is StatusRequest:
            if reply is not None:
                self.send_reply(reply, self.status(), None, f"{self.id}/{NODE_TARGET}")
        else:
            self._bad_input(
                source, MalformedMessage(f"unknown node-protocol message {kind.__name__}")
            )
            if reply is not None:
                self.send_reply(
                    reply,
                    None,
                    MalformedMessage(f"unknown request {kind.__name__}"),
                    f"{self.id}/{NODE_TARGET}",
                )

    def _remote_spawn(self, request: SpawnRequest, reply: ReplyTo | None) -> None:
        cls = actor_class(request.actor_class)
        try:
            if cls is None:
                raise LookupError(missing_actor_class(request.actor_class, self.id))
            ref = self.spawn(cls, *request.args, name=request.name, **request.kwargs)
        except Exception as error:
            if reply is not None:
                self.send_reply(reply, None, error, f"{self.id}/{NODE_TARGET}")
            return
        if reply is not None:
            self.send_reply(reply, ref, None, f"{self.id}/{NODE_TARGET}")

    async def lookup(
        self, name: str, node: str | None, timeout: float, sender: ActorRef | None
    ) -> ActorRef | None:
        """Find a living actor called ``name`` (see ``Context.lookup``)."""
        if node is None or node == self.id:
            cell = self.cells.get(name)
            if cell is not None and cell.state < STOPPING:
                return cell.ref
            if node == self.id:
                return None
        candidates = (
            [node]
            if node is not None
            else [p for p in self.peers if not self.membership.is_down(p)]
        )
        for peer in candidates:
            try:
                found = await self.ask(
                    ActorRef(peer, NODE_TARGET), LookupRequest(name), timeout, sender
                )
            except (AskTimeout, NodeDown):
                continue
            if found is True:
                return ActorRef(peer, name)
        return None

    def status(self) -> dict[str, Any]:
        """What this node is: its actors, what it believes of its peers, its counters."""
        now = self.now()
        return {
            "node": self.id,
            "incarnation": self.incarnation,
            "time": now,
            "actors": sorted(self.cells),
            "peers": {
                peer: {
                    "state": self.membership.state(peer).value,
                    "incarnation": self.membership.incarnation(peer),
                    "phi": round(min(self.membership.phi(peer, now), 1e9), 3),
                }
                for peer in self.peers
            },
            "stats": dataclasses.asdict(self.stats),
        }

    # -- watching ------------------------------------------------------------------------

    def watch(self, cell: Cell, target: ActorRef) -> None:
        """``cell`` watches ``target``."""
        if type(target) is not ActorRef:
            raise TypeError(f"watch needs an ActorRef, not {type(target).__name__}")
        if self._dead or target in cell.watching:
            return
        cell.watching[target] = None
        if target.node == self.id:
            other = self.cells.get(target.name)
            if other is None or other.state >= STOPPING:
                self._deliver_terminated(cell.name, target, "not-found")
            else:
                other.watchers[cell.ref] = None
            return
        if self.membership.is_down(target.node):
            self._deliver_terminated(cell.name, target, "node-down")
            return
        self._remote_watches.setdefault(target.node, {}).setdefault(target, {})[cell.name] = None
        self.send(ActorRef(target.node, NODE_TARGET), WatchRequest(target.name, cell.ref), None)

    def unwatch(self, cell: Cell, target: ActorRef) -> None:
        """``cell`` stops watching ``target``."""
        if cell.watching.pop(target, False) is False:
            return
        if target.node == self.id:
            other = self.cells.get(target.name)
            if other is not None:
                other.watchers.pop(cell.ref, None)
            return
        watched = self._remote_watches.get(target.node, {}).get(target)
        if watched is not None:
            watched.pop(cell.name, None)
        self.send(ActorRef(target.node, NODE_TARGET), UnwatchRequest(target.name, cell.ref), None)

    def _notify_terminated(self, watcher: ActorRef, actor: ActorRef, reason: str) -> None:
        if watcher.node == self.id:
            self._deliver_terminated(watcher.name, actor, reason)
        else:
            self.send(
                ActorRef(watcher.node, NODE_TARGET), TerminatedNotice(actor, watcher, reason), None
            )

    def _deliver_terminated(self, watcher_name: str, actor: ActorRef, reason: str) -> None:
        cell = self.cells.get(watcher_name)
        if cell is None or actor not in cell.watching:
            return
        del cell.watching[actor]
        if actor.node != self.id:
            watched = self._remote_watches.get(actor.node, {}).get(actor)
            if watched is not None:
                watched.pop(watcher_name, None)
        self._enqueue(watcher_name, (Terminated(actor, reason), actor, None, None))

    # -- liveness ------------------------------------------------------------------------

    def _beat(self) -> None:
        if self._dead:
            return
        beat = Heartbeat(self.incarnation)
        target_name = NODE_TARGET
        for peer in self.peers:
            self.send(ActorRef(peer, target_name), beat, None)
        for peer, _ in self.membership.tick(self.now()):
            self._peer_lost(peer, "node-down")
        self._heartbeat = self.loop.call_later(self.config.heartbeat_interval, self._beat)

    def _heard(self, peer: str, incarnation: int) -> None:
        if peer not in self.peers:
            return  # not a peer of ours (a client, say): its liveness is not tracked
        for event in self.membership.heartbeat(peer, incarnation, self.now()):
            if event is MembershipEvent.RESTARTED:
                self._peer_lost(peer, "node-restarted")
            elif event is MembershipEvent.UP:
                log.info("[%s] node %s is up (incarnation %d)", self.id, peer, incarnation)

    def _peer_lost(self, peer: str, reason: str) -> None:
        log.warning(
            "[%s] node %s is %s", self.id, peer, "down" if reason == "node-down" else "restarted"
        )
        for corr, (future, target, _) in list(self._pending.items()):
            if target.node == peer:
                del self._pending[corr]
                if not future.done():
                    future.set_exception(NodeDown(f"node {peer} is {reason.removeprefix('node-')}"))
        watched = self._remote_watches.pop(peer, {})
        for actor, watchers in watched.items():
            for watcher_name in list(watchers):
                self._deliver_terminated(watcher_name, actor, reason)
        # Actors of the lost node that watched ours are gone too: forget them.
        for cell in self.cells.values():
            if cell.watchers:
                for watcher in [w for w in cell.watchers if w.node == peer]:
                    del cell.watchers[watcher]

    # -- timers --------------------------------------------------------------------------

    def start_timer(self, cell: Cell, key: Any, message: Any, delay: float, repeat: bool) -> None:
        """Start (or replace) ``cell``'s timer ``key`` (see ``Context.start_timer``)."""
        codec.check(message)
        if not (isinstance(delay, (int, float)) and math.isfinite(delay) and delay >= 0):
            raise ValueError(
                f"a timer delay must be a finite number of seconds >= 0, not {delay!r}"
            )
        if repeat and delay <= 0:
            raise ValueError("a repeating timer needs a delay above 0")
        if self._dead or cell.state >= STOPPING:
            return
        self.cancel_timer(cell, key)
        cell.timer_gen += 1
        gen = cell.timer_gen
        handle = self.loop.call_later(delay, self._timer_fire, cell, key, gen)
        cell.timers[key] = [handle, gen, repeat, delay, message]

    def cancel_timer(self, cell: Cell, key: Any) -> None:
        """Cancel ``cell``'s timer ``key``, if any."""
        timer = cell.timers.pop(key, None)
        if timer is not None:
            timer[0].cancel()

    def _cancel_timers(self, cell: Cell) -> None:
        for timer in cell.timers.values():
            timer[0].cancel()
        cell.timers.clear()

    def _timer_fire(self, cell: Cell, key: Any, gen: int) -> None:
        timer = cell.timers.get(key)
        if self._dead or timer is None or timer[1] != gen or cell.state >= STOPPING:
            return
        if timer[2]:
            timer[0] = self.loop.call_later(timer[3], self._timer_fire, cell, key, gen)
        cell.mailbox.append((timer[4], cell.ref, None, (key, gen)))
        self._schedule(cell)
