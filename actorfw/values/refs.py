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
from typing import TYPE_CHECKING, Any, Protocol

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

_set = object.__setattr__  # how a ref's own __init__ fills its slots


def current_endpoint() -> Endpoint:
    """The endpoint sends go through here, or :class:`NoActorContext`."""
    try:
        return _current.get()
    except LookupError:
        raise _no_context() from None


def _no_context() -> NoActorContext:
    return NoActorContext(
        "no actor context here: tell and ask work inside an actor's handlers, or in "
        "driver code run by a runtime (e.g. Simulation.run / Simulation.ask)"
    )


class _Immutable:
    """A value whose slots are set once, by its own ``__init__`` (through ``_set``)."""

    __slots__ = ()

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError(f"a {type(self).__name__} is immutable: cannot set {attr!r}")

    def __delattr__(self, attr: str) -> None:
        raise AttributeError(f"a {type(self).__name__} is immutable: cannot delete {attr!r}")


class ActorRef(_Immutable):
    """The address of an actor: its node and its name there.

    Refs are immutable, hashable and ordered (by node, then name), and may be
    sent inside messages. Two refs are equal iff they name the same actor.
    """

    __slots__ = {
        "name": "The actor's name, unique on its node.",
        "node": "The id of the node the actor lives on.",
    }
    # Plain slots, not properties: every message reads them, and a slot read is
    # several times cheaper than a property's call. Refs stay immutable:
    # assignment raises, and type checkers see read-only properties.
    if TYPE_CHECKING:

        @property
        def name(self) -> str: ...

        @property
        def node(self) -> str: ...

    def __init__(self, node: str, name: str) -> None:
        if not isinstance(node, str) or not node:
            raise TypeError(f"an ActorRef's node must be a non-empty str, not {node!r}")
        if not isinstance(name, str) or not name:
            raise TypeError(f"an ActorRef's name must be a non-empty str, not {name!r}")
        _set(self, "node", node)
        _set(self, "name", name)

    @property
    def path(self) -> str:
        """``node/name``, as logs and errors print it."""
        return f"{self.node}/{self.name}"

    def tell(self, message: Any) -> None:
        """Send ``message``; do not wait (at-most-once, FIFO per sender and receiver).

        Raises:
            MessageRefused: ``message`` is not a message value.
            NoActorContext: called outside any actor or runtime-driven code.
        """
        try:
            endpoint = _current.get()  # current_endpoint(), inline: a tell's own path
        except LookupError:
            raise _no_context() from None
        endpoint.send(self, message)

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
        return self.node == other.node and self.name == other.name

    def __hash__(self) -> int:
        return hash((self.node, self.name))

    def __lt__(self, other: ActorRef) -> bool:
        return (self.node, self.name) < (other.node, other.name)

    def __repr__(self) -> str:
        return f"ActorRef({self.node!r}, {self.name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (ActorRef, (self.node, self.name))


class ReplyTo(_Immutable):
    """A handle to answer an ask later, or from another actor.

    A handler that cannot answer at once calls ``context.reply_later()``,
    keeps the handle (or sends it to another actor: it is a plain value),
    and later calls :meth:`send` or :meth:`fail`. Each ask is answered at
    most once; later answers are ignored by the asker.
    """

    __slots__ = {
        "corr": "The ask's correlation id on the asker's node.",
        "node": "The node of the asker, where the reply goes.",
    }
    if TYPE_CHECKING:  # plain slots, immutable: see ActorRef

        @property
        def corr(self) -> int: ...

        @property
        def node(self) -> str: ...

    def __init__(self, node: str, corr: int) -> None:
        _set(self, "node", node)
        _set(self, "corr", corr)

    def send(self, value: Any) -> None:
        """Answer the ask with ``value``."""
        current_endpoint().reply(self, value, None)

    def fail(self, error: BaseException) -> None:
        """Answer the ask with an error; the asker raises it as a remote error."""
        current_endpoint().reply(self, None, error)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReplyTo):
            return NotImplemented
        return self.node == other.node and self.corr == other.corr

    def __hash__(self) -> int:
        return hash((self.node, self.corr))

    def __repr__(self) -> str:
        return f"ReplyTo({self.node!r}, {self.corr})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (ReplyTo, (self.node, self.corr))
