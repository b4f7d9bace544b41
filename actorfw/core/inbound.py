"""Envelopes from other nodes: decoded by the codec, then delivered, answered or refused.

Everything that comes from another node is decoded by
:mod:`actorfw.values.codec`, which never evaluates anything. A body that
does not decode is bad input: counted and logged with the peer
(rate-limited), answered with an error if it was an ask, and ends the ask
it answers if it was a reply. Nothing from a peer can make the engine
raise.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from actorfw.core.cell import RUNNING, STOPPING
from actorfw.core.envelopes import ASK, FAILURE, REPLY, TELL, Envelope, Receiver
from actorfw.core.flow import UNIT_SHIFT, cost_of
from actorfw.core.node_protocol import NODE_TARGET
from actorfw.core.tracing import Traced
from actorfw.values import codec
from actorfw.values.errors import MalformedMessage
from actorfw.values.failures import error_from_failure, failure_of
from actorfw.values.refs import ActorRef, ReplyTo

if TYPE_CHECKING:
    from actorfw.core.engine import Engine
    from actorfw.core.flow import Incoming

__all__ = ["Inbound"]

_SENDER_CACHE = 4096
"""Refs of remote senders kept per peer (rebuilt from scratch when full)."""

_SENDER_PEERS = 1024
"""Peers whose senders' refs are kept (all forgotten when a new one would pass it)."""


class Inbound:
    """Takes one engine's input from its transport: the engine's :class:`Receiver`.

    See the module documentation.
    """

    __slots__ = ("_credit", "_engine", "_senders")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._senders: dict[str, dict[str, ActorRef]] = {}  # refs of recent remote senders
        # The credit count of the peer whose envelopes come now (see heard_from);
        # None while credit is off.
        self._credit: Incoming | None = None

    def receive(self, envelope: Envelope) -> None:
        """Take an envelope from another node; never raises for bad input."""
        engine = self._engine
        if not engine.alive:
            return
        engine.stats.received_remote += 1
        kind = envelope.kind
        body = envelope.body
        buffers = envelope.buffers
        try:
            value = codec.decode(body, buffers, envelope.plain)
        except Exception as caught:
            self.reject(envelope, _malformed(caught))
            return
        if type(value) is Traced:  # from a tracing node: take the body out (and merge its clock)
            causal = engine.causal
            if causal is None:
                value = value.body
            else:
                actor = (
                    f"{engine.id}/{envelope.target}" if kind == TELL or kind == ASK else "(asker)"
                )
                what = "reply" if kind == REPLY else "failure" if kind == FAILURE else None
                value = causal.incoming(value, actor, envelope.source, what)
            if type(value) is Traced:  # wrapped twice: no engine sends that
                self.reject(envelope, MalformedMessage("a Traced message inside a Traced one"))
                return
        if kind == REPLY:
            engine.asks.resolve(envelope.corr, value, None)
        elif kind == FAILURE:
            failed = error_from_failure(value)
            if failed is None:
                bad = MalformedMessage(f"node {envelope.source} sent a malformed error reply")
                self.bad_input(envelope.source, bad)
                engine.asks.resolve(envelope.corr, None, bad)
            else:
                engine.asks.resolve(envelope.corr, None, failed)
        elif kind == TELL or kind == ASK:
            sender = None
            if envelope.sender is not None:
                known = self._senders_of(envelope.source)
                sender = known.get(envelope.sender) or _sender(known, envelope)
                if sender is None:
                    self.reject(envelope, _unnamed(envelope))
                    return
            reply = ReplyTo(envelope.source, envelope.corr) if kind == ASK else None
            if envelope.target == NODE_TARGET:
                engine.node_protocol.handle(value, reply, envelope.source)
            elif kind == ASK or self._credit is None:
                engine.enqueue(envelope.target, (value, sender, reply, None))
            else:  # a tell under credit (see core.flow): its units go back as it is queued
                state = self._credit
                if state.peer != envelope.source:  # a transport that did not say who sends
                    state = self._credit = engine.flow.incoming(envelope.source)
                cost = 1 + (len(body) >> UNIT_SHIFT) if not buffers else cost_of(envelope)
                engine.enqueue(envelope.target, (value, sender, None, None), state, cost)
        else:
            self.bad_input(envelope.source, MalformedMessage(f"unknown envelope kind {kind!r}"))

    def receive_batch(self, peer: str, envelopes: list[Envelope]) -> None:
        """Take the envelopes of one batch from ``peer``, in order; never raises for bad input.

        The same as :meth:`receive` for each of them, with the common cases
        inline, on a node that does not trace: a tell or an ask to an actor
        here that is not stopping and whose mailbox has room is decoded and queued without a
        call per message into the engine (the actor scheduled at its first
        message of the batch), and a reply ends its ask. Anything else goes
        through :meth:`receive`, one envelope at a time; an error there
        spoils only its envelope.
        """
        engine = self._engine
        if not engine.alive:
            return
        if engine.causal is not None:  # every message is traced: the general path
            self._receive_each(peer, envelopes)
            return
        cells = engine.cells
        decode = codec.decode
        runnable = engine._runnable
        stats = engine.stats
        credit = self._credit
        if credit is not None and credit.peer != peer:  # a transport that did not say who sends
            credit = self._credit = engine.flow.incoming(peer)
        known = self._senders_of(peer)
        counts = engine.flow.counts
        asks = engine.asks
        for envelope in envelopes:
            kind = envelope.kind
            cell = None  # stays None for a reply
            if kind == REPLY and envelope.source == peer:
                if not engine.alive:  # as receive() would (a tell or an ask finds no cell)
                    return
            else:
                cell = cells.get(envelope.target) if kind == TELL or kind == ASK else None
                if (
                    cell is None
                    or cell.state >= STOPPING
                    or len(cell.mailbox) >= cell.limit
                    or envelope.source != peer  # from a transport that mixes its senders
                ):
                    self._receive_each(peer, (envelope,))
                    if not engine.alive:
                        return
                    # The slow path may have begun a new count for the peer (a restarted
                    # peer's heartbeat ends the old one), or counted another peer.
                    credit = self._credit
                    if credit is not None and (
                        credit.peer != peer or counts.get(peer) is not credit
                    ):
                        credit = self._credit = engine.flow.incoming(peer)
                    known = self._senders_of(peer)
                    continue
            try:  # as receive() would, and as there, an error spoils only its envelope
                stats.received_remote += 1
                body = envelope.body
                buffers = envelope.buffers
                try:
                    value = decode(body, buffers, envelope.plain)
                except Exception as caught:
                    self.reject(envelope, _malformed(caught))
                    continue
                if type(value) is Traced:  # from a tracing node; this one does not trace
                    value = value.body
                    if type(value) is Traced:
                        self.reject(
                            envelope, MalformedMessage("a Traced message inside a Traced one")
                        )
                        continue
                if cell is None:  # a reply: it ends its ask
                    asks.resolve(envelope.corr, value, None)
                    continue
                sender = None
                if envelope.sender is not None:
                    sender = known.get(envelope.sender) or _sender(known, envelope)
                    if sender is None:
                        self.reject(envelope, _unnamed(envelope))
                        continue
                if kind == ASK:  # asks take no credit
                    cell.mailbox.append((value, sender, ReplyTo(peer, envelope.corr), None))
                else:
                    if credit is not None:  # give its units back (Engine.enqueue's common case)
                        cost = 1 + (len(body) >> UNIT_SHIFT) if not buffers else cost_of(envelope)
                        credit.released += cost
                        if credit.released >= credit.due:
                            engine.flow.grant(credit)
                    cell.mailbox.append((value, sender, None, None))
                if not cell.scheduled and not cell.busy and not cell.held and cell.state is RUNNING:
                    cell.scheduled = True  # Engine.schedule, inline; the pump is woken below
                    runnable.append(cell)
            except Exception as error:
                self.bad_input(peer, error)
                if not engine.alive:
                    return
        engine.wake()

    def _senders_of(self, peer: str) -> dict[str, ActorRef]:
        """The refs of ``peer``'s recent senders, by name (bounded, like the peers)."""
        known = self._senders.get(peer)
        if known is None:
            if len(self._senders) >= _SENDER_PEERS:
                self._senders.clear()
            known = self._senders[peer] = {}
        return known

    def _receive_each(self, peer: str, envelopes: tuple[Envelope, ...] | list[Envelope]) -> None:
        for envelope in envelopes:
            try:
                self.receive(envelope)
            except Exception as error:  # one bad envelope spoils only itself
                self.bad_input(peer, error)

    def reject(self, envelope: Envelope, error: BaseException) -> None:
        """Refuse an envelope that could not be decoded (or was too big): count, log, answer."""
        engine = self._engine
        if not engine.alive:
            return
        self.bad_input(envelope.source, error)
        flow = engine.flow
        if envelope.kind == TELL and envelope.target != NODE_TARGET and flow.window is not None:
            # The sender counted it: its units go back.
            flow.release(flow.incoming(envelope.source), cost_of(envelope))
        if envelope.kind == ASK:
            failure = failure_of(error, f"{engine.id}/{envelope.target}")
            body, buffers, plain = codec.encode(failure)
            engine.transport.send(
                envelope.source,
                Envelope(FAILURE, engine.id, "", None, envelope.corr, body, buffers, plain),
            )
        elif envelope.kind in (REPLY, FAILURE):
            engine.asks.resolve(envelope.corr, None, error)

    def bad_input(self, peer: str, error: BaseException) -> None:
        """Count and log (rate-limited) input from ``peer`` that could not be understood."""
        engine = self._engine
        if engine.alive:
            engine.stats.malformed += 1
            engine.rate_limited(logging.WARNING, "bad input from node %s: %s", peer, error)

    def heard_from(self, peer: str) -> None:
        """Traffic came from ``peer``: evidence it is alive (see the failure detector).

        What follows comes from ``peer`` (the transports' contract), so its
        credit count is looked up once here rather than for every tell.
        """
        engine = self._engine
        engine.liveness.heard_from(peer)
        flow = engine.flow
        if flow.window is not None:
            self._credit = flow.incoming(peer)

    def after_input(self) -> None:
        """Handle what came in now, and send what that sends (one round of turns)."""
        self._engine.pump()


def _sender(known: dict[str, ActorRef], envelope: Envelope) -> ActorRef | None:
    """The ref of the envelope's sender, kept in ``known`` (its peer's); None for a bad name."""
    name = envelope.sender
    if not name:  # no actor has an empty name
        return None
    ref = ActorRef(envelope.source, name)
    if len(known) >= _SENDER_CACHE:
        known.clear()
    known[name] = ref
    return ref


def _unnamed(envelope: Envelope) -> MalformedMessage:
    return MalformedMessage(f"a message from node {envelope.source} names no sender actor")


def _malformed(caught: Exception) -> MalformedMessage:
    """What the codec raised for a body, as the error it is: it raises MalformedMessage;
    anything else is one too."""
    if isinstance(caught, MalformedMessage):
        return caught
    return MalformedMessage(f"malformed message body: {type(caught).__name__}: {caught}")


_CONTRACT: type[Receiver] = Inbound  # mypy checks that Inbound keeps the contract
