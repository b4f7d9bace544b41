"""The exceptions of the actor core.

They sort into the four kinds the project distinguishes: misuse by the
caller (:class:`MessageRefused`, :class:`NoActorContext`, plain
``TypeError``/``ValueError`` at the call), failures a caller must expect
from a distributed system (:class:`AskTimeout`, :class:`NodeDown`,
:class:`ActorNotFound`), errors raised by the remote handler
(:class:`RemoteError`), and bad input from a peer (:class:`MalformedMessage`,
counted and answered, never fatal to a node).
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "ActorNotFound",
    "ActorfwError",
    "AskTimeout",
    "MalformedMessage",
    "MessageRefused",
    "NoActorContext",
    "NodeDown",
    "Overloaded",
    "RemoteError",
    "UnhandledMessage",
    "remote_error",
]


class ActorfwError(Exception):
    """Base class of every error actorfw raises on purpose."""


class MessageRefused(TypeError, ActorfwError):
    """A value that is not a message value was given to ``tell`` or ``ask``.

    Message values are JSON-shaped data (None, bool, int within 64 bits,
    float, str, list, tuple, dict with str keys), bytes, numpy arrays, actor
    refs, and instances of frozen dataclasses registered with
    :func:`actorfw.message`. The message says which part was refused and why.
    """


class MalformedMessage(ValueError, ActorfwError):
    """Bytes from a peer that do not decode to a message value."""


class NoActorContext(RuntimeError, ActorfwError):
    """``tell`` or ``ask`` was called with no actor context to send from.

    Inside an actor's handler the context is set; outside, send through the
    runtime (``Simulation.ask``, ``Simulation.run``, or the node runtime's
    client).
    """


class AskTimeout(TimeoutError, ActorfwError):
    """No reply to an ask came within its timeout."""


class NodeDown(ActorfwError):
    """The node an ask was sent to is declared down by the failure detector."""


class Overloaded(ActorfwError):
    """The target cannot take more now: its mailbox is full, or the backlog to its node is.

    An ask to an actor whose mailbox is at its bound is refused with it (the
    caller may retry later); so is a tell from code outside any actor when
    the node's backlog to the target's node is full. See ``docs/actors.md``,
    "Flow control".
    """


class ActorNotFound(ActorfwError):
    """The target actor does not exist (never spawned, or stopped): a dead letter."""


class UnhandledMessage(ActorfwError):
    """The target actor has no handler for the message's type."""


class RemoteError(ActorfwError):
    """The remote handler raised; carries what it raised.

    Attributes:
        type_name: the qualified name of the remote exception's type.
        message: ``str()`` of the remote exception.
        remote_traceback: the remote traceback, as text.
        actor: the path (``node/name``) of the actor whose handler raised.

    When the remote type is a built-in exception (``KeyError``,
    ``ValueError``, ...), the raised error is also an instance of it, so
    ``except KeyError`` catches a remote ``KeyError``.
    """

    def __init__(
        self, type_name: str, message: str, remote_traceback: str = "", actor: str = ""
    ) -> None:
        super().__init__(f"{type_name}: {message}" + (f" (in actor {actor})" if actor else ""))
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback
        self.actor = actor

    def __reduce__(self) -> tuple[Any, ...]:
        return (remote_error, (self.type_name, self.message, self.remote_traceback, self.actor))


_REMOTE_TYPES: dict[str, type[RemoteError]] = {}

# Framework errors that travel by name and are rebuilt as themselves.
_FRAMEWORK = {
    cls.__name__: cls
    for cls in (ActorNotFound, UnhandledMessage, NodeDown, AskTimeout, MessageRefused, Overloaded)
}


def remote_error(
    type_name: str, message: str, remote_traceback: str = "", actor: str = ""
) -> Exception:
    """The exception to raise at the asker for an error reply.

    Framework errors come back as their own type; anything else as a
    :class:`RemoteError`, also an instance of the built-in exception of the
    same name if there is one.
    """
    if type_name in _FRAMEWORK:
        return _FRAMEWORK[type_name](message)
    cls = _REMOTE_TYPES.get(type_name)
    if cls is None:
        cls = RemoteError
        base = getattr(builtins, type_name, None)
        if (
            isinstance(base, type)
            and issubclass(base, Exception)
            and not issubclass(base, (ActorfwError, OSError))
        ):
            try:
                mixed = type(f"Remote{type_name}", (RemoteError, base), {"__module__": __name__})
                mixed(type_name, "probe")
                cls = mixed
            except Exception:  # a built-in whose layout or constructor does not mix
                cls = RemoteError
        _REMOTE_TYPES[type_name] = cls
    return cls(type_name, message, remote_traceback, actor)
