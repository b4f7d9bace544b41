"""Dead letters: messages for an actor that is not here, or no longer takes them.

A dead letter is counted (``stats.dead_letters``), logged at INFO with a
hint (the node's top-level actors), rate-limited, and refused to an asker
with :class:`~actorfw.ActorNotFound`; a timer's message for an actor that
is gone is dropped silently. Two kinds are expected, and logged at DEBUG
instead of INFO (still counted, still refused): a message registered as
``routine`` (a periodic report a protocol expects to lose, e.g. to a peer
role not spawned yet while a group starts), and any dead letter while the
node stops gracefully (its actors go down one by one while peers still
talk to them).

A tell to a node that is not in the cluster (neither this node nor one it
knows) is a dead letter of the sending node: counted and logged the same
way (at DEBUG for a routine message or while the node stops), and never
sent.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from actorfw.core.cell import Entry
from actorfw.values.codec import is_routine
from actorfw.values.errors import ActorNotFound
from actorfw.values.refs import ActorRef

if TYPE_CHECKING:
    from actorfw.core.engine import Engine

__all__ = ["DeadLetters"]


class DeadLetters:
    """Where an engine's undeliverable messages go (see the module documentation)."""

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __call__(self, name: str, entry: Entry, why: str) -> None:
        """``entry`` cannot be delivered to ``name`` (``why``): count, log, refuse an ask."""
        engine = self._engine
        message, sender, reply, timer = entry
        if timer is not None:
            return  # a timer of an actor that is gone
        engine.stats.dead_letters += 1
        if why == "not found":
            known = ", ".join(sorted(n for n in engine.cells if "/" not in n)[:8]) or "none"
            text = (
                f"actor {name!r} is not on node {engine.id} (known there: {known}); "
                "was it spawned on another node, or has it stopped?"
            )
        else:
            text = f"actor {engine.id}/{name} is {why}; the message was not delivered"
        engine.rate_limited(
            logging.DEBUG if engine.stopping or is_routine(type(message)) else logging.INFO,
            "dead letter: %s from %s: %s",
            type(message).__name__,
            sender.path if sender else "(no sender)",
            text,
        )
        if reply is not None:
            engine.send_reply(reply, None, ActorNotFound(text), f"{engine.id}/{name}")

    def no_node(self, target: ActorRef, message: Any, sender: ActorRef | None) -> None:
        """A tell to ``target``, on a node not in the cluster, is not sent: count and log it.

        ``message`` is None for a tell encoded already (a driver's).
        """
        engine = self._engine
        engine.stats.dead_letters += 1
        nodes = ", ".join(sorted(engine.liveness.known)) or "none"
        quiet = engine.stopping or (message is not None and is_routine(type(message)))
        engine.rate_limited(
            logging.DEBUG if quiet else logging.INFO,
            "dead letter: %s from %s: no node %r in this cluster (the nodes %s knows: %s); "
            "the tell to %s was not sent",
            "a message" if message is None else type(message).__name__,
            sender.path if sender else "(no sender)",
            target.node,
            engine.id,
            nodes,
            target.path,
        )
