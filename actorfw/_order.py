"""The causal order between two vector clocks, shared by both kernel twins."""

from __future__ import annotations

import enum

__all__ = ["Order"]


class Order(enum.IntEnum):
    """How clock ``a`` relates to clock ``b`` in ``a.compare(b)``.

    The values are bit flags: bit 0 says "some counter of ``a`` is lower",
    bit 1 says "some counter of ``a`` is higher", so ``CONCURRENT`` is
    ``BEFORE | AFTER``. :meth:`VectorClock.compare_many` returns these values
    as the bytes of a ``bytes`` object.
    """

    EQUAL = 0
    """Every counter is the same."""
    BEFORE = 1
    """``a`` happened before ``b``: no counter higher, at least one lower."""
    AFTER = 2
    """``a`` happened after ``b``: no counter lower, at least one higher."""
    CONCURRENT = 3
    """Neither happened before the other."""
