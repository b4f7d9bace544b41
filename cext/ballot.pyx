"""Paxos ballots and pvalues, compiled: the twin of ``actorfw/_pure/ballot.py``.

Same names, same behaviour; read the pure twin's module documentation for the
theory of operation (ballot packing, phase 1, phase 2, pmax). Here the array
functions run as C loops over the callers' int64 buffers and write their
results straight into new numpy arrays, so a batch of a thousand slots costs
one call and one pass.
"""

cimport numpy as cnp
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport qsort

cnp.import_array()

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

DEF _LEADER_BITS = 16
DEF _MAX_LEADER = 0xFFFF
DEF _MAX_ROUND = 0x7FFFFFFFFFFF
DEF _STALE = 0
DEF _ACCEPTED = 1
DEF _COLLECTED = 2

LEADER_BITS = _LEADER_BITS
MAX_LEADER = _MAX_LEADER
MAX_ROUND = _MAX_ROUND
NO_BALLOT = -1
STALE = _STALE
ACCEPTED = _ACCEPTED
COLLECTED = _COLLECTED


cdef int64_t _as_int(object value, str what) except? -3:
    cdef int overflow = 0
    cdef long long v
    if not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow:
        raise ValueError(f"{what} is {value}; it does not fit in 64 bits")
    return v


cdef int64_t _as_ballot(object value, str what, bint allow_none) except? -3:
    cdef int64_t b = _as_int(value, what)
    if b < (-1 if allow_none else 0):
        raise ValueError(
            f"{what} is {b}; a ballot is in 0..2**63-1"
            + (" or NO_BALLOT (-1)" if allow_none else "")
        )
    return b


cdef int64_t _as_leader(object value) except? -3:
    cdef int64_t n = _as_int(value, "leader")
    if n < 0 or n > _MAX_LEADER:
        raise ValueError(f"leader is {n}; it must be in 0..{_MAX_LEADER}")
    return n


cdef inline cnp.ndarray _empty(Py_ssize_t n, int typenum):
    cdef cnp.npy_intp dim = n
    return cnp.PyArray_EMPTY(1, &dim, typenum, 0)


def make_ballot(round, leader):
    """The ballot ``(round, leader)``, packed.

    Raises:
        ValueError: ``round`` is outside ``0..MAX_ROUND`` or ``leader`` outside
            ``0..MAX_LEADER``.
    """
    cdef int64_t r = _as_int(round, "round")
    cdef int64_t n
    if r < 0 or r > _MAX_ROUND:
        raise ValueError(f"round is {r}; it must be in 0..{_MAX_ROUND}")
    n = _as_leader(leader)
    return (r << _LEADER_BITS) | n


def ballot_round(ballot):
    """The round of a packed ballot."""
    return _as_ballot(ballot, "ballot", False) >> _LEADER_BITS


def ballot_leader(ballot):
    """The leader id of a packed ballot."""
    return _as_ballot(ballot, "ballot", False) & _MAX_LEADER


def next_ballot(above, leader):
    """The lowest ballot of ``leader`` strictly above ``above`` (which may be ``NO_BALLOT``).

    Raises:
        OverflowError: no such ballot fits (the round would pass ``MAX_ROUND``).
    """
    cdef int64_t b = _as_ballot(above, "above", True)
    cdef int64_t n = _as_leader(leader)
    cdef int64_t r
    if b == -1:
        return n
    r = b >> _LEADER_BITS
    if n <= (b & _MAX_LEADER):
        r += 1
    if r > _MAX_ROUND:
        raise OverflowError(f"no ballot of leader {n} above {b}: the round would pass MAX_ROUND")
    return (r << _LEADER_BITS) | n


def phase1(promised, ballot):
    """An acceptor's answer to p1a(``ballot``) given its ``promised`` ballot.

    Returns:
        ``(promise, adopted)``.
    """
    cdef int64_t p = _as_ballot(promised, "promised", True)
    cdef int64_t b = _as_ballot(ballot, "ballot", False)
    if b >= p:
        return b, True
    return p, False


def phase2(promised, const int64_t[::1] slots not None, ballots, floor=0):
    """An acceptor's answer to a batch of p2a pvalues.

    Args:
        promised: the acceptor's promise before the batch.
        slots: the slot of each pvalue (int64 array).
        ballots: an int64 array of the same length, or one ``int`` for all.
        floor: slots below this were collected; they are refused.

    Returns:
        ``(promise, codes)``: the promise after the batch and a uint8 array of
        ``ACCEPTED``, ``STALE`` or ``COLLECTED`` per pvalue.
    """
    cdef int64_t p = _as_ballot(promised, "promised", True)
    cdef int64_t low = _as_int(floor, "floor")
    cdef const int64_t[::1] bs
    cdef int64_t single = 0, b, slot
    cdef bint one_ballot = isinstance(ballots, int)
    cdef Py_ssize_t i, n = slots.shape[0]
    cdef cnp.ndarray codes_array
    cdef uint8_t *codes
    if low < 0:
        raise ValueError(f"floor is {low}; it must be at least 0")
    if one_ballot:
        single = _as_ballot(ballots, "ballot", False)
    else:
        bs = ballots
        if bs.shape[0] != n:
            raise ValueError(f"{n} slots but {bs.shape[0]} ballots")
    for i in range(n):
        slot = slots[i]
        b = single if one_ballot else bs[i]
        if slot < 0:
            raise ValueError(f"slot {slot} is negative")
        if b < 0:
            raise ValueError(f"ballot {b} for slot {slot} is negative")
    codes_array = _empty(n, cnp.NPY_UINT8)
    codes = <uint8_t *>cnp.PyArray_DATA(codes_array)
    for i in range(n):
        b = single if one_ballot else bs[i]
        if slots[i] < low:
            codes[i] = _COLLECTED
        elif b >= p:
            p = b
            codes[i] = _ACCEPTED
        else:
            codes[i] = _STALE
    return p, codes_array


cdef struct PValue:
    int64_t slot
    int64_t ballot
    int64_t index


cdef int _cmp_pvalue(const void *a, const void *b) noexcept nogil:
    # Slot ascending, then ballot descending, then input position ascending.
    cdef const PValue *x = <const PValue *>a
    cdef const PValue *y = <const PValue *>b
    if x.slot != y.slot:
        return -1 if x.slot < y.slot else 1
    if x.ballot != y.ballot:
        return -1 if x.ballot > y.ballot else 1
    return (x.index > y.index) - (x.index < y.index)


def pmax(const int64_t[::1] slots not None, const int64_t[::1] ballots not None):
    """The highest-ballot pvalue per slot among pvalues from a quorum.

    Returns:
        ``(slots, ballots, index)``, int64 arrays sorted by slot, one entry per
        distinct slot: its highest ballot and the input position holding it.
    """
    cdef Py_ssize_t i, k, n = slots.shape[0], distinct = 0, span
    cdef int64_t lo = 0, hi = 0, s, b
    cdef int64_t *best = NULL
    cdef PValue *sorted_pv = NULL
    cdef cnp.ndarray out_slots, out_ballots, out_index
    cdef int64_t *os
    cdef int64_t *ob
    cdef int64_t *oi
    if ballots.shape[0] != n:
        raise ValueError(f"{n} slots but {ballots.shape[0]} ballots")
    for i in range(n):
        s = slots[i]
        b = ballots[i]
        if s < 0:
            raise ValueError(f"slot {s} is negative")
        if b < 0:
            raise ValueError(f"ballot {b} for slot {s} is negative")
        if i == 0 or s < lo:
            lo = s
        if i == 0 or s > hi:
            hi = s
    if n == 0:
        return _empty(0, cnp.NPY_INT64), _empty(0, cnp.NPY_INT64), _empty(0, cnp.NPY_INT64)
    if hi - lo <= 4 * n + 64:
        # Dense: slots of a quorum's reports cluster in a window, so index by slot.
        span = <Py_ssize_t>(hi - lo + 1)
        best = <int64_t *>PyMem_Malloc(span * sizeof(int64_t))
        if best == NULL:
            raise MemoryError()
        try:
            for k in range(span):
                best[k] = -1
            for i in range(n):
                k = <Py_ssize_t>(slots[i] - lo)
                if best[k] < 0:
                    best[k] = i
                    distinct += 1
                elif ballots[i] > ballots[best[k]]:
                    best[k] = i
            out_slots = _empty(distinct, cnp.NPY_INT64)
            out_ballots = _empty(distinct, cnp.NPY_INT64)
            out_index = _empty(distinct, cnp.NPY_INT64)
            os = <int64_t *>cnp.PyArray_DATA(out_slots)
            ob = <int64_t *>cnp.PyArray_DATA(out_ballots)
            oi = <int64_t *>cnp.PyArray_DATA(out_index)
            i = 0
            for k in range(span):
                if best[k] >= 0:
                    os[i] = lo + k
                    ob[i] = ballots[best[k]]
                    oi[i] = best[k]
                    i += 1
        finally:
            PyMem_Free(best)
        return out_slots, out_ballots, out_index
    # Sparse: sort (slot, -ballot, index) and keep the first of each slot.
    sorted_pv = <PValue *>PyMem_Malloc(n * sizeof(PValue))
    if sorted_pv == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            sorted_pv[i].slot = slots[i]
            sorted_pv[i].ballot = ballots[i]
            sorted_pv[i].index = i
        qsort(sorted_pv, n, sizeof(PValue), _cmp_pvalue)
        for i in range(n):
            if i == 0 or sorted_pv[i].slot != sorted_pv[i - 1].slot:
                distinct += 1
        out_slots = _empty(distinct, cnp.NPY_INT64)
        out_ballots = _empty(distinct, cnp.NPY_INT64)
        out_index = _empty(distinct, cnp.NPY_INT64)
        os = <int64_t *>cnp.PyArray_DATA(out_slots)
        ob = <int64_t *>cnp.PyArray_DATA(out_ballots)
        oi = <int64_t *>cnp.PyArray_DATA(out_index)
        k = 0
        for i in range(n):
            if i == 0 or sorted_pv[i].slot != sorted_pv[i - 1].slot:
                os[k] = sorted_pv[i].slot
                ob[k] = sorted_pv[i].ballot
                oi[k] = sorted_pv[i].index
                k += 1
    finally:
        PyMem_Free(sorted_pv)
    return out_slots, out_ballots, out_index
