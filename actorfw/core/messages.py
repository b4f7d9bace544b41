"""Messages the framework itself sends: ``Terminated`` for users, and the node protocol.

``Terminated`` is what a watcher receives. The others travel between the
node engines (target ``$node``) and are not part of the user API.
"""

from __future__ import annotations

from typing import Any

from actorfw.values.codec import message
from actorfw.values.refs import ActorRef

__all__ = [
    "Credit",
    "CreditProbe",
    "Heartbeat",
    "LookupRequest",
    "SpawnRequest",
    "StatusRequest",
    "Terminated",
    "TerminatedNotice",
    "UnwatchRequest",
    "WatchRequest",
]


@message(name="actorfw.Terminated")
class Terminated:
    """A watched actor is gone.

    Attributes:
        actor: the ref of the actor that is gone.
        reason: ``"stopped"`` (it stopped or was stopped), ``"failed"`` (its
            supervisor stopped it after a failure), ``"not-found"`` (it did
            not exist when watched), ``"node-down"`` (its node is declared
            down) or ``"node-restarted"`` (its node restarted, and the
            actors it had are gone, though new ones may have the same names).
    """

    actor: ActorRef
    reason: str


@message(name="actorfw.sys.Heartbeat")
class Heartbeat:
    """I am alive; ``incarnation`` grows each time my node restarts."""

    incarnation: int


@message(name="actorfw.sys.Credit")
class Credit:
    """Flow control: I have made room for ``released`` units of your tells, in all.

    Cumulative (counted since the receiver began counting this sender), so a
    lost grant is made good by the next one (see :mod:`actorfw.core.flow`).
    """

    released: int


@message(name="actorfw.sys.CreditProbe")
class CreditProbe:
    """Flow control: I have sent you ``sent`` units of tells in all; how much room is there?

    Sent only by a sender held back for a heartbeat interval. The receiver
    writes off what it never got (lost on the way: it cannot arrive after
    this probe, which travels behind it) and answers with a :class:`Credit`.
    """

    sent: int


@message(name="actorfw.sys.Spawn")
class SpawnRequest:
    """Spawn the registered actor class at ``actor_class`` (``module:QualName``) here."""

    actor_class: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    name: str | None


@message(name="actorfw.sys.Lookup")
class LookupRequest:
    """Is an actor called ``name`` alive on this node? (answered with a bool)"""

    name: str


@message(name="actorfw.sys.Watch")
class WatchRequest:
    """Tell ``watcher`` when the actor ``target`` of this node is gone."""

    target: str
    watcher: ActorRef


@message(name="actorfw.sys.Unwatch")
class UnwatchRequest:
    """Forget a :class:`WatchRequest`."""

    target: str
    watcher: ActorRef


@message(name="actorfw.sys.TerminatedNotice")
class TerminatedNotice:
    """``actor`` (on the sending node) is gone; deliver ``Terminated`` to ``watcher``."""

    actor: ActorRef
    watcher: ActorRef
    reason: str


@message(name="actorfw.sys.Status")
class StatusRequest:
    """What is this node's state? (answered with ``Node.status()``: actors, peers, counters)"""
