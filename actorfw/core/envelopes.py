"""What travels between engines: the envelope and its kinds.

An :data:`Envelope` is one message between nodes, before (or after) the
transport's framing: ``kind`` (:data:`TELL`, :data:`ASK`, :data:`REPLY` or
:data:`FAILURE`), ``source`` (the sending node), ``target`` (the actor's
name on the receiving node; ``$node`` for the node protocol, empty for
replies), ``sender`` (the sending actor's name, or None), ``corr`` (the
ask's correlation id on the asking node; 0 for tells), and ``body``,
``buffers``, ``plain`` (the encoded message, see :mod:`actorfw.values.codec`).
The type is the wire kernel's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from actorfw.kernels import wire as _wire

__all__ = ["ASK", "FAILURE", "REPLY", "TELL", "Envelope", "Receiver"]

TELL, ASK, REPLY, FAILURE = 0, 1, 2, 3
"""Envelope kinds."""

if TYPE_CHECKING:
    from actorfw._pure.wire import Envelope
else:
    Envelope = _wire.Envelope


class Receiver(Protocol):
    """Where a transport hands what comes in: the one inbound contract of every transport.

    The ZeroMQ transport and the simulated network attach to an engine the
    same way, through its :class:`~actorfw.core.inbound.Inbound`. For what
    comes from a peer a transport calls :meth:`heard_from`, then
    :meth:`receive` (or :meth:`reject`) for each envelope, or
    :meth:`receive_batch` for the envelopes of one batch; a transport that
    reads input in bursts then calls :meth:`after_input`, so that the burst
    is handled in the same loop turn (else the engine handles it at the
    next). Input it cannot even split into envelopes goes to
    :meth:`bad_input`. None of these raises for bad input.
    """

    def receive(self, envelope: Envelope) -> None:
        """An envelope from another node."""

    def receive_batch(self, peer: str, envelopes: list[Envelope]) -> None:
        """The envelopes of one batch from ``peer``, in order: :meth:`receive` for each."""

    def reject(self, envelope: Envelope, error: BaseException) -> None:
        """An envelope the transport would not decode (too big): refuse it."""

    def bad_input(self, peer: str, error: BaseException) -> None:
        """Input from ``peer`` that could not be understood (a malformed batch, a spoof)."""

    def heard_from(self, peer: str) -> None:
        """Traffic came from ``peer``: evidence that it lives."""

    def after_input(self) -> None:
        """A burst of input was handed over: handle it now."""
