"""The node protocol: what nodes ask of each other, addressed to ``$node`` on a node.

Heartbeats (:mod:`actorfw.core.liveness`), remote spawn, name lookup,
watches across nodes (:mod:`actorfw.core.watches`) and a node's status.
Each message type has one handler in a table; anything else sent to
``$node`` is bad input: counted, logged, and refused to an asker.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actorfw.core.actor import actor_class, actor_path, missing_actor_class
from actorfw.core.cell import STOPPING
from actorfw.core.messages import (
    Credit,
    CreditProbe,
    Heartbeat,
    LookupRequest,
    SpawnRequest,
    StatusRequest,
    TerminatedNotice,
    UnwatchRequest,
    WatchRequest,
)
from actorfw.values.errors import AskTimeout, MalformedMessage, NodeDown
from actorfw.values.refs import ActorRef, ReplyTo

if TYPE_CHECKING:
    from actorfw.core.actor import Actor
    from actorfw.core.engine import Engine

__all__ = ["NODE_TARGET", "NodeProtocol"]

NODE_TARGET = "$node"
"""The target name of a node's own protocol (heartbeats, remote spawn, watch)."""

_Handler = Callable[["NodeProtocol", Any, "ReplyTo | None", str], None]


class NodeProtocol:
    """One engine's side of the node protocol (see the module documentation)."""

    __slots__ = ("_engine", "_me")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._me = f"{engine.id}/{NODE_TARGET}"

    def handle(self, message: Any, reply: ReplyTo | None, source: str) -> None:
        """Take a node-protocol message from node ``source`` (an ask if ``reply`` is set)."""
        handler = _TABLE.get(type(message))
        if handler is not None:
            handler(self, message, reply, source)
            return
        name = type(message).__name__
        self._engine.inbound.bad_input(
            source, MalformedMessage(f"unknown node-protocol message {name}")
        )
        self._answer(reply, None, MalformedMessage(f"unknown request {name}"))

    def _answer(self, reply: ReplyTo | None, value: Any, error: BaseException | None) -> None:
        if reply is not None:
            self._engine.send_reply(reply, value, error, self._me)

    # -- the handlers ------------------------------------------------------------------------

    def _heartbeat(self, message: Heartbeat, reply: ReplyTo | None, source: str) -> None:
        self._engine.liveness.heartbeat(source, message.incarnation)
        self._answer(reply, self._engine.incarnation, None)  # a client's probe

    def _credit(self, message: Credit, reply: ReplyTo | None, source: str) -> None:
        if type(message.released) is not int or not 0 <= message.released < 1 << 63:
            self._engine.inbound.bad_input(source, MalformedMessage("a malformed credit grant"))
            return
        self._engine.flow.credit(source, message.released)

    def _credit_probe(self, message: CreditProbe, reply: ReplyTo | None, source: str) -> None:
        if type(message.sent) is not int or not 0 <= message.sent < 1 << 63:
            self._engine.inbound.bad_input(source, MalformedMessage("a malformed credit probe"))
            return
        self._engine.flow.probed(source, message.sent)

    def _spawn(self, request: SpawnRequest, reply: ReplyTo | None, source: str) -> None:
        engine = self._engine
        cls = actor_class(request.actor_class)
        try:
            if cls is None:
                raise LookupError(missing_actor_class(request.actor_class, engine.id))
            ref = engine.spawn(cls, *request.args, name=request.name, **request.kwargs)
        except Exception as error:
            self._answer(reply, None, error)
            return
        self._answer(reply, ref, None)

    def _lookup(self, message: LookupRequest, reply: ReplyTo | None, source: str) -> None:
        cell = self._engine.cells.get(message.name)
        self._answer(reply, cell is not None and cell.state < STOPPING, None)

    def _watch(self, message: WatchRequest, reply: ReplyTo | None, source: str) -> None:
        self._engine.watches.requested(message)

    def _unwatch(self, message: UnwatchRequest, reply: ReplyTo | None, source: str) -> None:
        self._engine.watches.unrequested(message)

    def _terminated(self, message: TerminatedNotice, reply: ReplyTo | None, source: str) -> None:
        self._engine.watches.deliver(message.watcher.name, message.actor, message.reason)

    def _status(self, message: StatusRequest, reply: ReplyTo | None, source: str) -> None:
        self._answer(reply, self.status(), None)

    # -- asking other nodes ------------------------------------------------------------------

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
        engine = self._engine
        if node == engine.id:
            return engine.spawn(actor_cls, *args, name=name, **kwargs)
        path = actor_path(actor_cls)
        if actor_class(path) is not actor_cls:
            raise TypeError(
                f"{actor_cls!r} cannot be spawned on another node: define it at module level "
                "so that the other node can import it by its path"
            )
        request = SpawnRequest(path, tuple(args), dict(kwargs), name)
        ref = await engine.ask(engine.protocol_of(node), request, timeout, sender)
        if not isinstance(ref, ActorRef):
            raise MalformedMessage(f"node {node} answered a spawn with {ref!r}, not an ActorRef")
        return ref

    async def lookup(
        self, name: str, node: str | None, timeout: float, sender: ActorRef | None
    ) -> ActorRef | None:
        """Find a living actor called ``name`` (see ``Context.lookup``)."""
        engine = self._engine
        if node is None or node == engine.id:
            cell = engine.cells.get(name)
            if cell is not None and cell.state < STOPPING:
                return cell.ref
            if node == engine.id:
                return None
        liveness = engine.liveness
        candidates = (
            [node] if node is not None else [p for p in liveness.peers if not liveness.is_down(p)]
        )
        for peer in candidates:
            try:
                found = await engine.ask(
                    engine.protocol_of(peer), LookupRequest(name), timeout, sender
                )
            except (AskTimeout, NodeDown):
                if node is not None:
                    raise  # the node asked for cannot say: not the same as "no such actor"
                continue
            if found is True:
                return ActorRef(peer, name)
        return None

    def status(self) -> dict[str, Any]:
        """What this node is: its actors, what it believes of its peers, its counters."""
        engine = self._engine
        now = engine.now()
        membership = engine.liveness.membership
        return {
            "node": engine.id,
            "incarnation": engine.incarnation,
            "time": now,
            # The event loop's class: asyncio's default, uvloop's, or the simulator's.
            "loop": f"{type(engine.loop).__module__}.{type(engine.loop).__qualname__}",
            "actors": sorted(engine.cells),
            "peers": {
                peer: {
                    "state": membership.state(peer).value,
                    "incarnation": membership.incarnation(peer),
                    "phi": round(min(membership.phi(peer, now), 1e9), 3),
                }
                for peer in engine.liveness.peers
            },
            "stats": dataclasses.asdict(engine.stats),
            "backlog": engine.flow.backlogs(),
        }


_TABLE: dict[type, _Handler] = {
    Heartbeat: NodeProtocol._heartbeat,
    Credit: NodeProtocol._credit,
    CreditProbe: NodeProtocol._credit_probe,
    SpawnRequest: NodeProtocol._spawn,
    LookupRequest: NodeProtocol._lookup,
    WatchRequest: NodeProtocol._watch,
    UnwatchRequest: NodeProtocol._unwatch,
    TerminatedNotice: NodeProtocol._terminated,
    StatusRequest: NodeProtocol._status,
}
"""Message type -> handler: the node protocol's whole alphabet."""
