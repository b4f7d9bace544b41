"""Checking that a causal broadcast delivered in causal order, each message exactly once.

Give :func:`check_causal` the messages of a run (each with its sender and
the vector clock it was stamped with) and, for each member of the group,
the order in which it delivered them. It says whether the run kept the
guarantees of causal broadcast, and if not shows the smallest violation:
one member, and at most two messages.

Theory of operation
-------------------

The clocks are those of causal broadcast (Birman, Schiper and Stephenson,
1991): a message's entry for its sender is its sequence number among that
sender's broadcasts (1, 2, ...), and its entry for another member ``k`` is
how many of ``k``'s broadcasts the sender had delivered when it broadcast.
So ``m`` happened before ``m'`` iff ``m.clock < m'.clock``, and the message
that the ``c``-th entry for ``k`` stands for is ``k``'s ``c``-th broadcast.

1. **Well-formed.** Each message's clock names its sender; no two messages
   have the same sender and sequence number (a sender's sequence numbers
   identify its messages); every delivered message is one of the messages
   given; every member is one of the members given.
2. **At most once.** No member delivers a message twice.
3. **Causal order.** When a member delivers ``m`` from ``s``, it has
   delivered exactly ``m[s] - 1`` of ``s``'s messages, and at least
   ``m[k]`` of every other member ``k``'s: the kernel's
   :meth:`~actorfw.VectorClock.deliverable` against the member's count of
   deliveries per sender (a clock). This is equivalent to "everything that
   happened before ``m`` was delivered first" for such clocks, and costs one
   kernel call per delivery, not a comparison with every other message.
   When it fails, the witness is the message the member lacked: ``s``'s
   previous message or ``k``'s ``(count + 1)``-th.
4. **At least once** (``complete=True``, for a run that was let settle):
   every member delivered every message.

The first violation in each member's delivery order is found; the one
reported is the first of the member that comes first in ``members``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from actorfw.kernels import vclock as _vclock

__all__ = ["CausalMessage", "CausalResult", "CausalViolation", "check_causal"]

VectorClock = _vclock.VectorClock


@dataclass(frozen=True)
class CausalMessage:
    """A broadcast message as the checker sees it: its sender and the clock it was stamped with."""

    sender: str
    clock: Any  # a VectorClock (compiled or pure, as the active kernel makes them)


class CausalViolation(enum.StrEnum):
    """What kind of guarantee a run broke (the rules of this module)."""

    MALFORMED = "malformed"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out of order"
    MISSING = "missing"


@dataclass(frozen=True)
class CausalResult:
    """What :func:`check_causal` found; ``str(result)`` explains it.

    Attributes:
        ok: whether every rule held.
        violation: the kind of the reported violation (None if ok).
        member: the member where it happened (None if ok, or malformed input).
        message: the message delivered wrongly (or never, for ``missing``).
        needed: the message that should have been delivered before it (``out
            of order``), else None.
        position: the index in ``member``'s delivery order where it happened.
        explanation: one sentence saying what went wrong.
        deliveries: how many deliveries were checked.
    """

    ok: bool
    deliveries: int
    violation: CausalViolation | None = None
    member: str | None = None
    message: Any = None
    needed: Any = None
    position: int | None = None
    explanation: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"causal order and exactly-once delivery held ({self.deliveries} deliveries)"
        return f"not causal ({self.violation}): {self.explanation}"


def _fail(deliveries: int, kind: CausalViolation, explanation: str, **where: Any) -> CausalResult:
    return CausalResult(False, deliveries, kind, explanation=explanation, **where)


def check_causal(
    messages: Mapping[Any, CausalMessage],
    deliveries: Mapping[str, Sequence[Any]],
    *,
    members: Iterable[str] | None = None,
    complete: bool = False,
) -> CausalResult:
    """Check a causal broadcast run (see the module's rules).

    Args:
        messages: every message broadcast, by id (any hashable).
        deliveries: for each member, the ids of the messages it delivered,
            in the order it delivered them.
        members: the group's members (default: the keys of ``deliveries``);
            a member without deliveries delivered nothing.
        complete: also require that every member delivered every message
            (rule 4): for a run that was healed and let settle.

    Returns:
        a :class:`CausalResult`; it is truthy-checked with ``.ok``.
    """
    group = list(deliveries) if members is None else list(members)
    known = set(group)
    by_sequence: dict[tuple[str, int], Any] = {}
    for mid, msg in messages.items():
        if not isinstance(msg, CausalMessage):
            return _fail(0, CausalViolation.MALFORMED, f"message {mid!r} is not a CausalMessage")
        if not isinstance(msg.clock, VectorClock):
            return _fail(
                0,
                CausalViolation.MALFORMED,
                f"the clock of message {mid!r} is a {type(msg.clock).__name__}, not a VectorClock",
                message=mid,
            )
        number = msg.clock.get(msg.sender)
        if number < 1:
            return _fail(
                0,
                CausalViolation.MALFORMED,
                f"the clock of message {mid!r}, {msg.clock!r}, has no entry for its sender "
                f"{msg.sender!r}: it cannot be a broadcast of {msg.sender!r}",
                message=mid,
            )
        other = by_sequence.setdefault((msg.sender, number), mid)
        if other != mid:
            return _fail(
                0,
                CausalViolation.MALFORMED,
                f"messages {other!r} and {mid!r} are both broadcast number {number} "
                f"of {msg.sender!r}",
                message=mid,
            )
    for member in deliveries:
        if member not in known:
            return _fail(
                0,
                CausalViolation.MALFORMED,
                f"{member!r} delivered messages but is not a member ({', '.join(group)})",
                member=member,
            )
    total = 0
    for member in group:
        order = deliveries.get(member, ())
        seen: set[Any] = set()
        delivered = VectorClock()
        for position, mid in enumerate(order):
            total += 1
            found = messages.get(mid)
            where = {"member": member, "message": mid, "position": position}
            if found is None:
                return _fail(
                    total,
                    CausalViolation.MALFORMED,
                    f"{member!r} delivered {mid!r} (delivery {position}), which nobody broadcast",
                    **where,
                )
            if mid in seen:
                return _fail(
                    total,
                    CausalViolation.DUPLICATE,
                    f"{member!r} delivered {mid!r} twice (the second time at delivery {position})",
                    **where,
                )
            seen.add(mid)
            msg = found
            if not delivered.deliverable(msg.clock, msg.sender):
                needed = _lacking(msg, delivered, by_sequence)
                return _fail(
                    total,
                    CausalViolation.OUT_OF_ORDER,
                    f"{member!r} delivered {mid!r} (broadcast number {msg.clock.get(msg.sender)} "
                    f"of {msg.sender!r}, clock {msg.clock!r}) at delivery {position}, "
                    f"before {needed[1]}",
                    needed=needed[0],
                    **where,
                )
            delivered.increment(msg.sender)
        if complete and len(seen) < len(messages):
            mid = next(m for m in messages if m not in seen)
            return _fail(
                total,
                CausalViolation.MISSING,
                f"{member!r} never delivered {mid!r} (broadcast number "
                f"{messages[mid].clock.get(messages[mid].sender)} of {messages[mid].sender!r}); "
                "it delivered "
                f"{len(seen)} of {len(messages)} messages",
                member=member,
                message=mid,
            )
    return CausalResult(True, total)


def _lacking(
    msg: CausalMessage, delivered: Any, by_sequence: Mapping[tuple[str, int], Any]
) -> tuple[Any, str]:
    """The message a member should have delivered before ``msg`` (rule 3), described."""
    sender = msg.sender
    number = msg.clock.get(sender)
    have = delivered.get(sender)
    if number != have + 1:  # (it cannot be lower: rule 1 and the checks before it)
        wanted = (sender, have + 1)
    else:
        node = next(
            node
            for node in msg.clock
            if node != sender and msg.clock.get(node) > delivered.get(node)
        )
        wanted = (node, delivered.get(node) + 1)
    mid = by_sequence.get(wanted)
    what = f"broadcast number {wanted[1]} of {wanted[0]!r}"
    if mid is None:
        return None, f"{what}, which it depends on and which is not among the messages"
    return mid, f"{mid!r} ({what}), which happened before it"
