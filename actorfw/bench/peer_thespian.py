"""Thespian actors for ``actorfw bench peers``: the same work as actorfw's sink and source.

Imported only when Thespian is installed (``pip install thespian``).
Thespian's multiprocess bases start each actor in a process of its own and
pickle what they send, so these classes must be importable by module path.
"""

from __future__ import annotations

from typing import Any

from thespian.actors import Actor

__all__ = ["Receiver", "Sender"]


class Receiver(Actor):  # type: ignore[misc]
    """Counts the ints it is sent; answers ``("expect", n)`` once it has had ``n``; pongs."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.waiting: list[tuple[int, Any]] = []

    def receiveMessage(self, message: Any, sender: Any) -> None:
        """Handle one message (Thespian's entry point)."""
        if type(message) is int:
            self.count += 1
            if self.waiting:
                self._settle()
        elif isinstance(message, tuple) and message[0] == "expect":
            self.waiting.append((message[1], sender))
            self._settle()
        elif isinstance(message, tuple) and message[0] == "ping":
            self.send(sender, message[1])

    def _settle(self) -> None:
        still = []
        for count, who in self.waiting:
            if self.count >= count:
                self.send(who, self.count)
            else:
                still.append((count, who))
        self.waiting = still


class Sender(Actor):  # type: ignore[misc]
    """On ``("blast", receiver, n)``, sends the receiver ``n`` ints, one message each."""

    def receiveMessage(self, message: Any, sender: Any) -> None:
        """Handle one message (Thespian's entry point)."""
        if isinstance(message, tuple) and message[0] == "blast":
            target, count = message[1], message[2]
            for n in range(count):
                self.send(target, n)
