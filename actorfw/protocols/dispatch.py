"""What every protocol core shares: a table from message types to handlers.

A sans-IO core (``actorfw.protocols.paxos``, ``causal``, ``sharding``) takes
messages of a fixed alphabet. :class:`Dispatch` is that alphabet as a table,
message type to handler, written once for every core: a core's step looks
its handler up instead of branching on types, and a message outside the
alphabet is a misuse by the driver (it routed the message to the wrong
core), refused with a ``TypeError`` that names the core and, where the
protocol knows it, the core that does take such a message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["Dispatch"]

C = TypeVar("C")


class Dispatch(Generic[C]):
    """A core's input alphabet: message type -> handler (see the module documentation).

    Args:
        role: what the core is called in messages (``"acceptor"``).
        table: each message type the core takes, and the method handling it.
        elsewhere: given a message type outside the table, which role takes
            it (``"the leader"``), or None if no role of the protocol does.

    Example::

        _DISPATCH = Dispatch("acceptor", {P1a: Acceptor._on_p1a, P2a: Acceptor._on_p2a})
        ...
        _DISPATCH(self, self.me, message)
    """

    __slots__ = ("_elsewhere", "role", "table")

    def __init__(
        self,
        role: str,
        table: Mapping[type, Callable[[C, Any], None]],
        elsewhere: Callable[[type], str | None] | None = None,
    ) -> None:
        self.role = role
        self.table: dict[type, Callable[[C, Any], None]] = dict(table)
        self._elsewhere = elsewhere

    def __call__(self, core: C, me: str, message: Any) -> None:
        """Hand ``message`` to ``core``'s handler for its type.

        Raises:
            TypeError: the core does not take messages of that type.
        """
        self.handler(me, message)(core, message)

    def handler(self, me: str, message: Any) -> Callable[[C, Any], None]:
        """The handler for ``message``, for a core that checks the message before handling it.

        Raises:
            TypeError: the core does not take messages of that type.
        """
        handler = self.table.get(type(message))
        if handler is None:
            raise self.refusal(me, message)
        return handler

    def refusal(self, me: str, message: Any) -> TypeError:
        """The error for ``message``, outside the alphabet, given to the core at ``me``."""
        kind = type(message)
        where = self._elsewhere(kind) if self._elsewhere is not None else None
        return TypeError(
            f"{self.role} {me!r} got a {kind.__name__}, which {where or 'no role here'} handles"
        )
