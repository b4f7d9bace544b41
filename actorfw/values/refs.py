"""Actor references and reply handles: plain values that travel in messages.

An :class:`ActorRef` names an actor by ``(node, name)``. It holds no
pointer to a runtime: ``ref.tell(msg)`` and ``ref.ask(msg)`` send through
the *current* context, the actor whose handler is running (or the client a
runtime set up for driver code). So a ref received in a message on another
node works there exactly as at home, and refs stay valid across restarts of
the actor and of its node.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable
from typing import Any, Protocol

from actorfw.values.errors import NoActorContext

__all__ = ["DEFAULT_ASK_TIMEOUT", "ActorRef", "Endpoint", "ReplyTo", "current_endpoint"]

DEFAULT_ASK_TIMEOUT = 5.0
"""Seconds an ask waits for its reply unless told otherwise."""


class Endpoint(Protocol):
    """What a context offers refs to send through (an actor's context, or a client)."""

    def send(self, target: ActorRef, message: Any) -> None:
        """Send ``message`` to ``target`` with this endpoint as the sender."""

    def ask(self, target: ActorRef, message: Any, timeout: float) -> Awaitable[Any]:
        """Send ``message`` to ``target`` and wait for the reply."""

    def reply(self, to: ReplyTo, value: Any, error: BaseException | None) -> None:
        """Complete a deferred ask."""


_current: contextvars.ContextVar[Endpoint] = contextvars.ContextVar("actorfw_endpoint")


def current_endpoint() -> Endpoint:
    """The endpoint sends go through here, or :class:`NoActorContext`."""
    try:
        return _current.get()
    except LookupError:
        raise NoActorContext(
            "no actor context here: tell and ask work inside an actor's handlers, or in "
            "driver code run by a runtime (e.g. Simulation.run / Simulation.ask)"
        ) from None


class ActorRef:
    """The address of an actor: its node and its name there.

    Refs are immutable, hashable and ordered (by node, then name), and may be
    sent inside messages. Two refs are equal iff they name the same actor.
    """

    __slots__ = ("_name", "_node")

    def __init__(self, node: str, name: str) -> None:
        if not isinstance(node, str) or not node:
            raise TypeError(f"an ActorRef's node must be a non-empty str, not {node!r}")
        if not isinstance(name, str) or not name:
            raise TypeError(f"an ActorRef's name must be a non-empty str, not {name!r}")
        self._node = node
        self._name = name

    @property
    def node(self) -> str:
        """The id of the node the actor lives on."""
        return self._node

    @property
    def name(self) -> str:
        """The actor's name, unique on its node."""
        return self._name

    @property
    def path(self) -> str:
        """``node/name``, as logs and errors print it."""
        return f"{self._node}/{self._name}"

    def tell(self, message: Any) -> None:
        """Send ``message``; do not wait (at-most-once, FIFO per sender and receiver).

        Raises:
            MessageRefused: ``message`` is not a message value.
            NoActorContext: called outside any actor or runtime-driven code.
        """
        current_endpoint().send(self, message)

    def ask(self, message: Any, timeout: float = DEFAULT_ASK_TIMEOUT) -> Awaitable[Any]:
        """Send ``message`` and return an awaitable of the handler's reply.

        Awaiting it raises :class:`~actorfw.AskTimeout` after ``timeout``
        seconds, :class:`~actorfw.RemoteError` if the handler raised,
        :class:`~actorfw.ActorNotFound` if there is no such actor, and
        :class:`~actorfw.NodeDown` if its node is declared down.
        """
        return current_endpoint().ask(self, message, timeout)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActorRef):
            return NotImplemented
        return self._node == other._node and self._name == other._name

    def __hash__(self) -> int:
        return hash((self._node, self._name))

    def __lt__(self, other: ActorRef) -> bool:
        return (self._node, self._name) < (other._node, other._name)

    def __repr__(self) -> str:
        return f"ActorRef({self._node!r}, {self._name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (ActorRef, (self._node, self._name))


class ReplyTo:
    """A handle to answer an ask later, or from another actor.

    A handler that cannot answer at once calls ``context.reply_later()``,
    keeps the handle (or sends it to another actor: it is a plain value),
    and later calls :meth:`send` or :meth:`fail`. Each ask is answered at
    most once; later answers are ignored by the asker.
    """

    __slots__ = ("_corr", "_node")

    def __init__(self, node: str, corr: int) -> None:
        self._node = node
        self._corr = corr

    @property
    def node(self) -> str:
        """The node of the asker, where the reply goes."""
        return self._node

    @property
    def corr(self) -> int:
        """The ask's correlation id on the asker's node."""
        return self._corr

    def send(self, value: Any) -> None:
        """Answer the ask with ``value``."""
        current_endpoint().reply(self, value, None)

    def fail(self, error: BaseException) -> None:
        """Answer the ask with an error; the asker raises it as a remote error."""
        current_endpoint().reply(self, None, error)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReplyTo):
            return NotImplemented
        return self._node == other._node and self._corr == other._corr

    def __hash__(self) -> int:
        return hash((self._node, self._corr))

    def __repr__(self) -> str:
        return f"ReplyTo({self._node!r}, {self._corr})"
