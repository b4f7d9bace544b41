"""A stand-in for an engine's inbound side, for tests of a transport alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Sink:
    """Keeps the inbound contract (``actorfw.core.envelopes.Receiver``) with callbacks.

    Each argument is called with what the transport hands over; left out,
    that input is dropped.
    """

    def __init__(
        self,
        receive: Callable[[Any], None] | None = None,
        reject: Callable[[Any, BaseException], None] | None = None,
        bad_input: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self._receive = receive
        self._reject = reject
        self._bad_input = bad_input

    def receive(self, envelope: Any) -> None:
        if self._receive is not None:
            self._receive(envelope)

    def receive_batch(self, peer: str, envelopes: list[Any]) -> None:
        for envelope in envelopes:  # what raises ends the batch: the transport reports it
            self.receive(envelope)

    def reject(self, envelope: Any, error: BaseException) -> None:
        if self._reject is not None:
            self._reject(envelope, error)

    def bad_input(self, peer: str, error: BaseException) -> None:
        if self._bad_input is not None:
            self._bad_input(peer, error)

    def heard_from(self, peer: str) -> None:
        pass

    def after_input(self) -> None:
        pass
