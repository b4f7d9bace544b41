"""The context: an actor's only door to the world.

``self.context`` gives an actor everything it may touch: its own ref, the
sender of the current message, sending and asking, spawning and stopping,
watching, timers, time, a seeded random source, durable storage, name
lookup and a logger. Actors never import sockets, ``time`` or ``random``:
the same actor class then runs unchanged in the deterministic simulator
and on node processes, which implement this context differently.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any

from actorfw.core.storage import Storage
from actorfw.values.errors import UnhandledMessage
from actorfw.values.refs import DEFAULT_ASK_TIMEOUT, ActorRef, ReplyTo

if TYPE_CHECKING:
    from actorfw.core.actor import Actor
    from actorfw.core.cell import Cell
    from actorfw.core.engine import Engine

__all__ = ["Context"]


class Context:
    """What an actor can do; reach it as ``self.context`` (see the module documentation)."""

    __slots__ = ("_cell", "_engine", "_replied", "_reply", "_sender")

    def __init__(self, engine: Engine, cell: Cell) -> None:
        self._engine = engine
        self._cell = cell
        self._sender: ActorRef | None = None
        self._reply: ReplyTo | None = None
        self._replied = False

    # -- the engine's side ---------------------------------------------------------------

    def enter(self, sender: ActorRef | None, reply: ReplyTo | None) -> None:
        """The engine hands the actor a message from ``sender`` (an ask if ``reply`` is set).

        For the engine; actors do not call it.
        """
        self._sender = sender
        self._reply = reply
        self._replied = False

    def enter_hook(self) -> None:
        """The engine runs one of the actor's hooks: no sender, nothing to answer."""
        self._sender = None
        self._reply = None

    @property
    def replied(self) -> bool:
        """Did the actor take the current ask's answer over (:meth:`reply_later`)?"""
        return self._replied

    # -- who and where -----------------------------------------------------------------

    @property
    def ref(self) -> ActorRef:
        """This actor's own ref."""
        return self._cell.ref

    @property
    def name(self) -> str:
        """This actor's name on its node."""
        return self._cell.name

    @property
    def node(self) -> str:
        """The id of the node this actor runs on."""
        return self._engine.id

    @property
    def sender(self) -> ActorRef | None:
        """The sender of the message being handled (None if it had none, e.g. a client)."""
        return self._sender

    @property
    def parent(self) -> ActorRef | None:
        """The parent's ref; None for a top-level actor."""
        parent = self._cell.parent
        return parent.ref if parent is not None else None

    @property
    def children(self) -> list[ActorRef]:
        """The refs of this actor's living children, oldest first."""
        return [child.ref for child in self._cell.children.values()]

    # -- sending -----------------------------------------------------------------------

    def tell(self, target: ActorRef, message: Any) -> None:
        """Send ``message`` to ``target`` from this actor (same as ``target.tell``)."""
        self._engine.send(target, message, self._cell.ref)

    def tell_checked(self, target: ActorRef, message: Any) -> None:
        """Like :meth:`tell`, for a message built only from values already checked.

        A tell to an actor of the same node normally checks that the message
        is a message value (so that code behaves the same whether the target
        is local or remote). A protocol that forwards values it received (and
        so decoded, or checked) can skip that walk over them; a message that
        leaves the node is encoded, and so checked, all the same.
        """
        self._engine.send(target, message, self._cell.ref, True)

    def tell_all(self, targets: Iterable[ActorRef], message: Any, checked: bool = False) -> None:
        """Tell each of ``targets`` the same ``message``, encoding it once for all of them.

        Equivalent to :meth:`tell` (or, with ``checked``, :meth:`tell_checked`)
        to each target in order, but a message that leaves the node is
        encoded once, not once per target: for a protocol that sends one
        value to many peers (a leader's proposal to every acceptor, say).
        """
        self._engine.send_all(list(targets), message, self._cell.ref, checked)

    send = tell  # the name refs use (see actorfw.values.refs.Endpoint)

    def unhandled(self, message: Any, reply: ReplyTo | None = None) -> None:
        """Refuse a message this actor does not take, as the engine refuses one no handler takes.

        For an actor that takes messages in bulk (:meth:`take`) and finds one
        it has no use for: counted (``stats.unhandled``), logged (rate-limited),
        and refused to an asker (``reply``) with :class:`~actorfw.UnhandledMessage`.
        """
        engine = self._engine
        path = self._cell.ref.path
        error = UnhandledMessage(
            f"actor {path} ({type(self._cell.instance).__qualname__}) does not take "
            f"{type(message).__name__}"
        )
        if reply is not None:
            engine.send_reply(reply, None, error, path)
        engine.stats.unhandled += 1
        engine.rate_limited(logging.INFO, "unhandled: %s", error)

    def backlog(self, node: str) -> int:
        """Messages this node keeps for ``node`` because it gives no credit for more now.

        Non-zero means ``node`` (or an actor there) is slower than what is sent
        to it; a tell from this actor while there is a backlog holds it back
        until the backlog has left (see ``docs/actors.md``, "Flow control").
        """
        return self._engine.flow.backlog(node)

    def reply(self, to: ReplyTo, value: Any, error: BaseException | None) -> None:
        """Answer the ask ``to`` (what ``ReplyTo.send`` and ``ReplyTo.fail`` call)."""
        self._engine.send_reply(to, value, error, self._cell.ref.path)

    def ask(
        self, target: ActorRef, message: Any, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> Awaitable[Any]:
        """Ask ``target``; await the result (same as ``target.ask``)."""
        return self._engine.ask(target, message, timeout, self._cell.ref)

    def reply_later(self) -> ReplyTo:
        """Take over the answer to the current ask; answer with the handle later.

        The handler's return value is then not sent. The handle is a plain
        value: it may be kept, or sent to another actor that answers.

        Raises:
            RuntimeError: the current message is not an ask.
        """
        if self._reply is None:
            raise RuntimeError(
                f"reply_later() in {self._cell.ref.path}: the current message is a tell, "
                "not an ask; there is nobody to answer"
            )
        self._replied = True
        return self._reply

    def take(self, limit: int = 1024) -> list[tuple[Any, ActorRef | None, ReplyTo | None]]:
        """Take messages already waiting in this actor's mailbox, in order.

        For actors that handle a burst better at once than one by one (a
        Paxos replica proposing many commands in one slot, say): call it from
        a handler to get up to ``limit`` more ``(message, sender, reply)``
        triples, answering asks through their ``reply`` handles (``None`` for
        tells). Stops at a timer's message, which keeps its place.
        """
        return self._engine.take(self._cell, limit)

    # -- the hierarchy -----------------------------------------------------------------

    def spawn(
        self, actor_class: type[Actor], *args: Any, name: str | None = None, **kwargs: Any
    ) -> ActorRef:
        """Start a child actor on this node, supervised by this actor; returns its ref.

        Args:
            actor_class: an :class:`~actorfw.Actor` subclass.
            args, kwargs: passed to its constructor (again at each restart).
            name: unique among this actor's children; generated if None.
        """
        return self._engine.spawn(actor_class, *args, name=name, parent=self._cell, **kwargs)

    async def spawn_on(
        self,
        node: str,
        actor_class: type[Actor],
        *args: Any,
        name: str | None = None,
        timeout: float = DEFAULT_ASK_TIMEOUT,
        **kwargs: Any,
    ) -> ActorRef:
        """Start a top-level actor on another node; returns its ref once it runs.

        Only the class's import path and the (message-value) arguments
        travel; the class must be imported on that node. Raises what the
        remote node answered if it could not (unknown class, name taken).
        """
        return await self._engine.node_protocol.spawn_remote(
            node, actor_class, args, kwargs, name, timeout, self._cell.ref
        )

    def stop(self, target: ActorRef | None = None) -> None:
        """Stop this actor (no argument) or another actor of this node."""
        self._engine.lifecycle.stop_actor(target or self._cell.ref)

    def watch(self, target: ActorRef) -> None:
        """Get a :class:`~actorfw.Terminated` message when ``target`` stops or its node is lost."""
        self._engine.watches.watch(self._cell, target)

    def unwatch(self, target: ActorRef) -> None:
        """Stop watching ``target``."""
        self._engine.watches.unwatch(self._cell, target)

    # -- time, randomness, storage -----------------------------------------------------

    def now(self) -> float:
        """The runtime's monotonic time in seconds (virtual in the simulator)."""
        return self._engine.now()

    def start_timer(self, key: Any, message: Any, delay: float, *, repeat: bool = False) -> None:
        """Deliver ``message`` to this actor after ``delay`` seconds (and every ``delay`` after).

        Starting a timer under a key replaces the timer of that key; a
        cancelled or replaced timer never delivers, even if it already fired.
        Timers end when the actor stops or restarts.
        """
        self._engine.timers.start(self._cell, key, message, delay, repeat)

    def cancel_timer(self, key: Any) -> None:
        """Cancel the timer under ``key`` (a no-op if there is none)."""
        self._engine.timers.cancel(self._cell, key)

    def timer_active(self, key: Any) -> bool:
        """Is a timer under ``key`` pending?"""
        return key in self._cell.timers

    @property
    def random(self) -> random.Random:
        """This actor's random source, seeded by the runtime (reproducible in the simulator)."""
        rng = self._cell.rng
        return rng if rng is not None else self._cell.random_source(self._engine)

    @property
    def storage(self) -> Storage:
        """This actor's durable key-value store (see :mod:`actorfw.core.storage`)."""
        return self._cell.storage

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose lines say the node, the actor (and the virtual time in the simulator)."""
        return self._cell.log

    # -- names -------------------------------------------------------------------------

    def actor_ref(self, name: str, node: str | None = None) -> ActorRef:
        """The ref of the actor ``name`` on ``node`` (default: this node), unchecked."""
        return ActorRef(node or self._engine.id, name)

    async def lookup(
        self, name: str, node: str | None = None, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> ActorRef | None:
        """Find a living actor by name: here, on ``node``, or on any known node.

        Returns None when no node that answered in time has it.

        Raises:
            NodeDown, AskTimeout: ``node`` is given and is down or does not answer.
        """
        return await self._engine.node_protocol.lookup(name, node, timeout, self._cell.ref)

    def __repr__(self) -> str:
        return f"<Context of {self._cell.ref.path}>"
