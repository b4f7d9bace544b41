"""Messages leaving an engine: tells, asks and replies, checked, encoded (once) and sent.

The engine's rules 2 to 4 (see :mod:`actorfw.core.engine`): a message to an
actor of this node goes to its mailbox; one to another node is encoded and
handed to the transport. With causal tracing on (:mod:`actorfw.core.tracing`),
what leaves for another node is stamped with the node's clock first.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from actorfw.core.arguments import check_target, check_timeout
from actorfw.core.envelopes import ASK, FAILURE, REPLY, TELL, Envelope
from actorfw.core.flow import UNIT_SHIFT, cost_of
from actorfw.core.node_protocol import NODE_TARGET
from actorfw.values import codec
from actorfw.values.errors import MessageRefused, NodeDown, Overloaded
from actorfw.values.failures import error_from_failure, failure_of
from actorfw.values.refs import ActorRef, ReplyTo

if TYPE_CHECKING:
    from actorfw.core.engine import Engine

__all__ = ["Outbound"]


class Outbound:
    """The sending half of an engine; the engine exposes its methods as its own."""

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def send(
        self, target: ActorRef, message: Any, sender: ActorRef | None, checked: bool = False
    ) -> None:
        """Tell ``target`` ``message`` from ``sender`` (rules 2 and 3).

        ``checked``: the caller vouches that ``message`` is a message value
        (built from values that were checked already), so a local delivery
        skips the check; a remote one encodes it, which checks it anyway.
        """
        engine = self._engine
        if type(target) is not ActorRef:
            raise TypeError(f"tell needs an ActorRef to send to, not {type(target).__name__}")
        if engine._dead:
            return
        node = target.node
        name = target.name
        if node == engine.id:
            if not checked:
                codec.check(message)
            if sender is None:
                engine.check_room(name)
            engine.enqueue(name, (message, sender, None, None))
            return
        if engine.causal is not None and name != NODE_TARGET:
            if node not in engine.liveness.known:  # never sent, so never traced
                codec.check(message)
                engine.dead_letters.no_node(target, message, sender)
                return
            message = engine.causal.outgoing(_path(sender), node, message)
        body, buffers, plain = codec.encode(message)
        envelope = Envelope(
            TELL, engine.id, name, sender.name if sender else None, 0, body, buffers, plain
        )
        if name != NODE_TARGET:  # under credit: FlowControl.take, its fast path inline
            flow = engine.flow
            out = flow.outgoing.get(node)
            cost = 1 + (len(body) >> UNIT_SHIFT) if not buffers else cost_of(envelope)
            if out is not None and out.room >= cost:  # credit is only ever given to known nodes
                out.room -= cost
                out.sent += cost
            elif node not in engine.liveness.known:
                engine.dead_letters.no_node(target, message, sender)
                return
            elif flow.window is not None and not flow.admit(node, envelope, sender):
                engine.stats.sent_remote += 1
                return  # kept in the backlog
        engine.stats.sent_remote += 1
        engine.transport.send(node, envelope)

    def send_envelope(self, node: str, envelope: Envelope) -> None:
        """Send a tell encoded already (by a driver's thread, see :mod:`actorfw.node.handoff`).

        The remote half of :meth:`send` for a tell with no sender: counted,
        under credit (:meth:`FlowControl.take <actorfw.core.flow.FlowControl.take>`), handed
        to the transport. It is never refused: its call checked the backlog,
        so a backlog that filled since keeps it anyway.
        """
        engine = self._engine
        if engine._dead:
            return
        if envelope.target != NODE_TARGET and node not in engine.liveness.known:
            engine.dead_letters.no_node(ActorRef(node, envelope.target), None, None)
            return
        engine.stats.sent_remote += 1
        if envelope.target == NODE_TARGET or engine.flow.take(node, envelope, None, False):
            engine.transport.send(node, envelope)

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
        target is sent anything; ``Overloaded`` (a full backlog, or a full
        mailbox here for a tell from outside any actor) stops the loop at that
        target, after the ones before it were sent.
        """
        engine = self._engine
        for target in targets:
            if type(target) is not ActorRef:
                raise TypeError(f"tell needs an ActorRef to send to, not {type(target).__name__}")
        if engine._dead:
            return
        # Refused before anything is sent, as by send().
        me = engine.id
        body, buffers, plain = b"", [], False
        if any(target.node != me for target in targets):
            sent = message
            known = engine.liveness.known  # a node not in the cluster is sent nothing
            peers = ",".join(sorted({t.node for t in targets if t.node in known}))
            if engine.causal is not None and peers:
                sent = engine.causal.outgoing(_path(sender), peers, message)
            body, buffers, plain = codec.encode(sent)  # checks it too
        elif not checked and targets:
            codec.check(message)
        name = sender.name if sender else None
        flow = engine.flow
        for target in targets:
            if target.node == me:
                if sender is None:
                    engine.check_room(target.name)
                engine.enqueue(target.name, (message, sender, None, None))
                continue
            if target.name != NODE_TARGET and target.node not in engine.liveness.known:
                engine.dead_letters.no_node(target, message, sender)
                continue
            # The envelopes share the body and the buffers: nothing changes them.
            envelope = Envelope(TELL, me, target.name, name, 0, body, buffers, plain)
            accepted = target.name == NODE_TARGET or flow.take(target.node, envelope, sender)
            engine.stats.sent_remote += 1  # sent or kept in the backlog; not if refused
            if accepted:
                engine.transport.send(target.node, envelope)

    def ask(
        self,
        target: ActorRef,
        message: Any,
        timeout: float,
        sender: ActorRef | None,
        *,
        even_if_down: bool = False,
    ) -> asyncio.Future[Any]:
        """Ask ``target``; a future of the reply (rule 4).

        An ask to a node declared down is refused with :class:`~actorfw.NodeDown`
        before it leaves, unless ``even_if_down`` (a liveness probe).

        Raises:
            MessageRefused: ``message`` is not a message value (raised here, at the call).
        """
        engine = self._engine
        check_target(target, "ask")
        check_timeout(timeout)
        if engine._dead:
            return self._down()
        if target.node == engine.id:
            codec.check(message)
            future: asyncio.Future[Any] = engine.loop.create_future()
            corr = engine.asks.open(future, target, timeout)
            engine.enqueue(target.name, (message, sender, ReplyTo(engine.id, corr), None))
            return future
        if engine.causal is not None and target.name != NODE_TARGET:
            message = engine.causal.outgoing(_path(sender), target.node, message)
        return self.ask_encoded(target, codec.encode(message), timeout, sender, even_if_down)

    def ask_encoded(
        self,
        target: ActorRef,
        encoded: tuple[bytes, list[Any], bool],
        timeout: float,
        sender: ActorRef | None,
        even_if_down: bool = False,
    ) -> asyncio.Future[Any]:
        """The remote half of :meth:`ask`, for a message encoded already (``codec.encode``'s).

        Also what a driver's thread hands over (:mod:`actorfw.node.handoff`),
        its message encoded, and so checked, at its call.
        """
        engine = self._engine
        if engine._dead:
            return self._down()
        future: asyncio.Future[Any] = engine.loop.create_future()
        refusal = engine.liveness.unreachable(target, even_if_down)
        if refusal is not None:
            future.set_exception(refusal)
            return future
        corr = engine.asks.open(future, target, timeout)
        body, buffers, plain = encoded
        envelope = Envelope(
            ASK, engine.id, target.name, sender.name if sender else None, corr, body, buffers, plain
        )
        engine.stats.sent_remote += 1
        try:
            ready = target.name == NODE_TARGET or engine.flow.admit_ask(target.node, envelope)
        except Overloaded as full:
            engine.asks.resolve(corr, None, full)
            return future
        if ready:
            engine.transport.send(target.node, envelope)
        return future

    def _down(self) -> asyncio.Future[Any]:
        engine = self._engine
        future: asyncio.Future[Any] = engine.loop.create_future()
        future.set_exception(NodeDown(f"node {engine.id} is not running"))
        return future

    def send_reply(self, to: ReplyTo, value: Any, error: BaseException | None, actor: str) -> None:
        """Answer the ask ``to`` with ``value`` or ``error``; ``actor`` is who answers (a path)."""
        engine = self._engine
        if engine._dead:
            return
        if type(to) is not ReplyTo:
            raise TypeError(f"a reply goes to a ReplyTo, not {type(to).__name__}")
        causal = engine.causal
        if causal is not None and actor == f"{engine.id}/{NODE_TARGET}":
            causal = None  # the node protocol's traffic is not traced, either way
        if error is None:
            try:
                if to.node == engine.id:
                    codec.check(value)
                elif causal is not None:
                    body, buffers, plain = codec.encode(
                        causal.outgoing(actor, to.node, value, "reply")
                    )
                else:
                    body, buffers, plain = codec.encode(value)
            except MessageRefused as refused:
                error = MessageRefused(f"the reply of {actor} was refused: {refused}")
        if error is not None:
            failure = failure_of(error, actor)
        if to.node == engine.id:
            if error is not None:
                engine.asks.resolve(to.corr, None, error_from_failure(failure))
            else:
                engine.asks.resolve(to.corr, value, None)
            return
        if error is not None:
            if causal is not None:
                body, buffers, plain = codec.encode(
                    causal.outgoing(actor, to.node, failure, "failure")
                )
            else:
                body, buffers, plain = codec.encode(failure)
            kind = FAILURE
        else:
            kind = REPLY
        engine.stats.sent_remote += 1
        engine.transport.send(
            to.node, Envelope(kind, engine.id, "", None, to.corr, body, buffers, plain)
        )


def _name(sender: ActorRef | None) -> str | None:
    """The sender's name, as an envelope carries it."""
    return sender.name if sender is not None else None


def _path(sender: ActorRef | None) -> str:
    """Who sends, as a trace records it."""
    return sender.path if sender is not None else "(client)"
