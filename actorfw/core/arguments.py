"""Checks of what callers pass the runtimes, shared so every runtime says the same thing.

A mistake at a call (a string where a ref belongs, a class that is not an
actor) is the caller's to fix; it raises ``TypeError`` at the call with the
same words on the simulator, on node processes and in a connected client,
before anything is sent.
"""

from __future__ import annotations

from typing import Any

from actorfw.core.actor import Actor
from actorfw.values.errors import ActorNotFound
from actorfw.values.refs import ActorRef

__all__ = ["check_actor_class", "check_target", "check_timeout", "no_such_node"]


def check_target(target: Any, call: str) -> ActorRef:
    """``target`` if it is an :class:`ActorRef`; else a ``TypeError`` saying how to make one."""
    if type(target) is ActorRef:
        return target
    hint = ""
    if isinstance(target, str) and target.count("/") == 1:
        node, name = target.split("/")
        hint = f" (for the actor {name!r} on node {node!r}: ActorRef({node!r}, {name!r}))"
    raise TypeError(f"{call} needs an ActorRef to send to, not {type(target).__name__}{hint}")


def no_such_node(target: ActorRef, nodes: Any, call: str) -> ActorNotFound:
    """The error for a ``call`` (``"tell"``, ``"ask"``) to ``target`` on a node not among ``nodes``.

    The same words from every runtime and client, whichever refuses it.
    """
    return ActorNotFound(
        f"no node {target.node!r} in this cluster (nodes: {', '.join(sorted(nodes))}); "
        f"the {call} to {target.path} was not sent"
    )


def check_timeout(timeout: Any) -> float:
    """``timeout`` if it is a positive number of seconds; else a ``ValueError``."""
    if isinstance(timeout, (int, float)) and type(timeout) is not bool and timeout > 0:
        return timeout
    raise ValueError(f"an ask timeout must be a positive number of seconds, not {timeout!r}")


def check_actor_class(actor_class: Any) -> type[Actor]:
    """``actor_class`` if it is an :class:`~actorfw.Actor` subclass; else a ``TypeError``."""
    if isinstance(actor_class, type) and issubclass(actor_class, Actor):
        return actor_class
    raise TypeError(
        f"spawn takes an Actor subclass, not {actor_class!r}: define a class that derives "
        "from actorfw.Actor"
    )
