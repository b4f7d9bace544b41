"""Paxos ballots and pvalues, in plain Python: the reference twin of ``cext/ballot.pyx``.

These are the pure decisions an acceptor and a leader make in Multi-Paxos,
in the shape of van Renesse and Altinbuken's "Paxos Made Moderately
Complex", written over arrays so that a batch of hundreds of slots costs one
call. They hold no state: the caller (the Paxos roles) keeps the promised
ballot and the accepted values, passes them in and stores what comes out.

Theory of operation
-------------------

1. A ballot is a pair ``(round, leader)`` ordered lexicographically, packed
   into one non-negative ``int`` as ``round << 16 | leader`` so that
   comparing ballots is comparing integers. Rounds go up to ``2**47 - 1`` and
   leader ids up to ``2**16 - 1``, so every ballot fits a signed 64-bit
   integer. ``NO_BALLOT`` (-1) sorts below every ballot: an acceptor that
   has promised nothing has promised ``NO_BALLOT``.
2. Phase 1 (p1a): an acceptor adopts a ballot at or above its promise and
   never lowers its promise (``phase1``).
3. Phase 2 (p2a): an acceptor accepts a pvalue ``(ballot, slot, command)``
   iff its ballot is at or above the promise, and then raises its promise to
   that ballot. Entries of one batch are decided in order, each seeing the
   promise the previous ones left. A slot below the caller's ``floor`` (the
   slot below which decided state was garbage collected) is refused as
   ``COLLECTED`` whatever its ballot, so that collected slots are never
   mistaken for empty ones (``phase2``).
4. A leader whose phase 1 was adopted by a quorum must, for every slot any
   acceptor of that quorum accepted, re-propose the command of the pvalue
   with the highest ballot (``pmax``). Ties (one slot, one ballot, reported
   by several acceptors) carry the same command by the Paxos invariant, and
   ``pmax`` picks the first one in input order.

Arrays are one-dimensional, C-contiguous buffers of 64-bit signed integers
(``numpy.int64`` arrays, ``array.array('q')``, read-only buffers received
off the wire); results are new numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "ACCEPTED",
    "COLLECTED",
    "LEADER_BITS",
    "MAX_LEADER",
    "MAX_ROUND",
    "NO_BALLOT",
    "STALE",
    "ballot_leader",
    "ballot_round",
    "make_ballot",
    "next_ballot",
    "phase1",
    "phase2",
    "pmax",
]

LEADER_BITS = 16
"""Bits of a packed ballot that hold the leader id."""
MAX_LEADER = (1 << LEADER_BITS) - 1
"""The largest leader id a ballot can carry."""
MAX_ROUND = (1 << (63 - LEADER_BITS)) - 1
"""The largest round a ballot can carry."""
NO_BALLOT = -1
"""Below every ballot: the promise of an acceptor that has promised nothing."""

STALE = 0
"""``phase2`` code: refused, the ballot is below the promise."""
ACCEPTED = 1
"""``phase2`` code: accepted."""
COLLECTED = 2
"""``phase2`` code: refused, the slot is below the garbage-collection floor."""

Int64Array = npt.NDArray[np.int64]


def _int(value: object, what: str) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not -(2**63) <= value <= 2**63 - 1:
        raise ValueError(f"{what} is {value}; it does not fit in 64 bits")
    return value


def _ballot(value: object, what: str, allow_none: bool) -> int:
    b = _int(value, what)
    low = NO_BALLOT if allow_none else 0
    if b < low:
        raise ValueError(
            f"{what} is {b}; a ballot is in 0..2**63-1"
            + (" or NO_BALLOT (-1)" if allow_none else "")
        )
    return b


def _int64s(array: Any, what: str) -> list[int]:
    """The items of a 1-D C-contiguous int64 buffer, as a list."""
    view = memoryview(array)
    if view.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, not {view.ndim}-dimensional")
    if view.itemsize != 8 or view.format.lstrip("@=<") not in ("q", "l"):
        raise ValueError(f"{what} must hold 64-bit signed integers, not format {view.format!r}")
    if not view.c_contiguous:
        raise ValueError(f"{what} must be C-contiguous")
    return view.tolist()


def make_ballot(round: int, leader: int) -> int:
    """The ballot ``(round, leader)``, packed (rule 1).

    Raises:
        ValueError: ``round`` is outside ``0..MAX_ROUND`` or ``leader`` outside
            ``0..MAX_LEADER``.
    """
    r = _int(round, "round")
    n = _int(leader, "leader")
    if not 0 <= r <= MAX_ROUND:
        raise ValueError(f"round is {r}; it must be in 0..{MAX_ROUND}")
    if not 0 <= n <= MAX_LEADER:
        raise ValueError(f"leader is {n}; it must be in 0..{MAX_LEADER}")
    return (r << LEADER_BITS) | n


def ballot_round(ballot: int) -> int:
    """The round of a packed ballot."""
    return _ballot(ballot, "ballot", False) >> LEADER_BITS


def ballot_leader(ballot: int) -> int:
    """The leader id of a packed ballot."""
    return _ballot(ballot, "ballot", False) & MAX_LEADER


def next_ballot(above: int, leader: int) -> int:
    """The lowest ballot of ``leader`` strictly above ``above`` (which may be ``NO_BALLOT``).

    Raises:
        OverflowError: no such ballot fits (the round would pass ``MAX_ROUND``).
    """
    b = _ballot(above, "above", True)
    n = _int(leader, "leader")
    if not 0 <= n <= MAX_LEADER:
        raise ValueError(f"leader is {n}; it must be in 0..{MAX_LEADER}")
    if b == NO_BALLOT:
        return n
    r = b >> LEADER_BITS
    if n <= b & MAX_LEADER:
        r += 1
    if r > MAX_ROUND:
        raise OverflowError(f"no ballot of leader {n} above {b}: the round would pass MAX_ROUND")
    return (r << LEADER_BITS) | n


def phase1(promised: int, ballot: int) -> tuple[int, bool]:
    """An acceptor's answer to p1a(``ballot``) given its ``promised`` ballot (rule 2).

    Returns:
        ``(promise, adopted)``: the promise to keep (and to report in p1b),
        and whether ``ballot`` was adopted.
    """
    p = _ballot(promised, "promised", True)
    b = _ballot(ballot, "ballot", False)
    if b >= p:
        return b, True
    return p, False


def phase2(
    promised: int, slots: Any, ballots: Any, floor: int = 0
) -> tuple[int, npt.NDArray[np.uint8]]:
    """An acceptor's answer to a batch of p2a pvalues (rule 3).

    Args:
        promised: the acceptor's promise before the batch.
        slots: the slot of each pvalue (int64 array).
        ballots: the ballot of each pvalue (int64 array of the same length),
            or one ``int`` for a batch sent under a single ballot.
        floor: slots below this were collected; they are refused.

    Returns:
        ``(promise, codes)``: the promise after the batch and, per pvalue,
        ``ACCEPTED``, ``STALE`` or ``COLLECTED`` (a uint8 array).
    """
    p = _ballot(promised, "promised", True)
    low = _int(floor, "floor")
    if low < 0:
        raise ValueError(f"floor is {low}; it must be at least 0")
    slot_list = _int64s(slots, "slots")
    if isinstance(ballots, int):
        _ballot(ballots, "ballot", False)
        ballot_list = [ballots] * len(slot_list)
    else:
        ballot_list = _int64s(ballots, "ballots")
        if len(ballot_list) != len(slot_list):
            raise ValueError(f"{len(slot_list)} slots but {len(ballot_list)} ballots")
    codes = []
    for slot, b in zip(slot_list, ballot_list, strict=True):
        if slot < 0:
            raise ValueError(f"slot {slot} is negative")
        if b < 0:
            raise ValueError(f"ballot {b} for slot {slot} is negative")
        if slot < low:
            codes.append(COLLECTED)
        elif b >= p:
            p = b
            codes.append(ACCEPTED)
        else:
            codes.append(STALE)
    return p, np.array(codes, dtype=np.uint8)


def pmax(slots: Any, ballots: Any) -> tuple[Int64Array, Int64Array, Int64Array]:
    """The highest-ballot pvalue per slot among pvalues from a quorum (rule 4).

    Args:
        slots, ballots: the accepted pvalues reported by the acceptors of a
            quorum, concatenated (two int64 arrays of one length).

    Returns:
        ``(slots, ballots, index)``, three int64 arrays sorted by slot, one
        entry per distinct slot: its highest ballot and the position in the
        input of the pvalue holding it (to find the command).
    """
    slot_list = _int64s(slots, "slots")
    ballot_list = _int64s(ballots, "ballots")
    if len(ballot_list) != len(slot_list):
        raise ValueError(f"{len(slot_list)} slots but {len(ballot_list)} ballots")
    best: dict[int, int] = {}
    for i, (slot, b) in enumerate(zip(slot_list, ballot_list, strict=True)):
        if slot < 0:
            raise ValueError(f"slot {slot} is negative")
        if b < 0:
            raise ValueError(f"ballot {b} for slot {slot} is negative")
        j = best.get(slot)
        if j is None or b > ballot_list[j]:
            best[slot] = i
    order = sorted(best)
    index = [best[s] for s in order]
    return (
        np.array(order, dtype=np.int64),
        np.array([ballot_list[i] for i in index], dtype=np.int64),
        np.array(index, dtype=np.int64),
    )
