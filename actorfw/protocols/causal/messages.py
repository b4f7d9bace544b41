"""Causal broadcast's values: the messages members exchange, their records, and options.

The rules they serve are stated in :mod:`actorfw.protocols.causal.delivery`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actorfw.kernels import vclock as _vclock
from actorfw.values.codec import message as _message

__all__ = [
    "CausalOptions",
    "Data",
    "DataRun",
    "Delivery",
    "Forgotten",
    "Logged",
    "LoggedRun",
    "Record",
    "Refusal",
    "Status",
    "VectorClock",
]

VectorClock = _vclock.VectorClock


@_message(name="causal.Data")
@dataclass(frozen=True)
class Data:
    """A broadcast message: its sender, its stamp (a clock) and the application's payload."""

    sender: str
    clock: Any
    payload: Any


@_message(name="causal.DataRun")
@dataclass(frozen=True)
class DataRun:
    """Consecutive broadcasts of one sender in one step (rule 1), as one message.

    The ``i``-th payload (from 0) stands for a :class:`Data` stamped
    ``clock`` with the sender's own entry raised by ``i``.
    """

    sender: str
    clock: Any
    payloads: tuple[Any, ...]


@_message(name="causal.Status")
@dataclass(frozen=True)
class Status:
    """Anti-entropy: ``member`` has delivered ``clock`` (rule 5); send it what it lacks."""

    member: str
    clock: Any


@_message(name="causal.Delivery")
@dataclass(frozen=True)
class Delivery:
    """A message delivered to the application, in causal order."""

    sender: str
    seq: int
    clock: Any
    payload: Any

    def concurrent_with(self, other: Delivery) -> bool:
        """Whether neither this message nor ``other`` happened before the other."""
        return bool(self.clock.concurrent_with(other.clock))


@dataclass(frozen=True)
class Logged:
    """Record: a delivered message, kept for peers that may lack it (rule 4)."""

    sender: str
    seq: int
    clock: Any
    payload: Any


@dataclass(frozen=True)
class LoggedRun:
    """Record: consecutive delivered messages of one sender, delivered in one step (rule 4).

    The ``i``-th payload (from 0) is message ``seq + i`` of ``sender``,
    stamped ``clock`` with the sender's own entry raised by ``i``, as in a
    :class:`DataRun`: one record for what would be ``len(payloads)``
    :class:`Logged` ones.
    """

    sender: str
    seq: int
    clock: Any
    payloads: tuple[Any, ...]


@dataclass(frozen=True)
class Forgotten:
    """Record: every message from ``sender`` up to ``seq`` is stable and left the log (rule 6).

    ``dropped`` lists the first sequence numbers of the :class:`Logged` and
    :class:`LoggedRun` records it deletes: those whose every message is
    stable now.
    """

    sender: str
    seq: int
    dropped: tuple[int, ...] = ()


Record = Logged | LoggedRun | Forgotten
"""What a member persists."""


@dataclass(frozen=True)
class Refusal:
    """A message refused by rule 7: who sent it (the peer it came from) and why."""

    peer: str
    reason: str


@_message(name="causal.Options")
@dataclass(frozen=True)
class CausalOptions:
    """A member's tuning.

    Attributes:
        gossip_interval: seconds between two rounds of :class:`Status`.
        max_holdback: messages held back at most (rule 7).
        max_ahead: how far beyond the delivered count of its sender a
            message may be and still be held back (rule 7).
        max_resend: messages sent at most in answer to one :class:`Status`.
    """

    gossip_interval: float = 0.5
    max_holdback: int = 10_000
    max_ahead: int = 10_000
    max_resend: int = 256

    def __post_init__(self) -> None:
        if not self.gossip_interval > 0:
            raise ValueError(f"gossip_interval must be positive, not {self.gossip_interval!r}")
        for name in ("max_holdback", "max_ahead", "max_resend"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be a positive int, not {value!r}")
