"""Vector clocks, compiled: the twin of ``actorfw/_pure/vclock.py``.

Same names, same behaviour, same wire encoding as the pure twin; read its
module documentation for the theory of operation and the encoding.

Representation, and why: a clock is one ``PyMem`` block holding an array of
``(node index, counter)`` entries sorted by node index, where the index comes
from a process-wide intern table of node ids. Compare, merge and the
causal-delivery check are then a single merge-walk of two short sorted
arrays of 12-byte integers: no hashing, no Python objects, no branches on
strings, a few nanoseconds per entry. Clocks stay sparse, so nodes that
join and leave cost nothing to the clocks that never saw them (a dense array
indexed by node would grow with every node ever seen). Only the edges touch
names: ``increment``/``get`` look the node id up in a dict, and the codec
sorts entries by node id so that the encoding is canonical (equal clocks,
equal bytes, in every process whatever its intern order); a precomputed
8-byte big-endian prefix of each name makes that sort integer compares.

The intern table only grows; each distinct node id costs one entry for the
life of the process. Only accepted input is interned: arguments and
encodings are checked in full first, so refused input leaves nothing. The
table holds at most ``MAX_NODE_IDS`` (65,536) ids, a few megabytes at
most: a clock that names a new node id past that is refused (``ValueError``,
a malformed body if it came off the wire), so a peer sending clocks with
ever new ids cannot grow the process. The pure twin keeps no table (its
clocks are dicts, freed with them) and has no such limit.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.buffer cimport PyBUF_SIMPLE, PyObject_GetBuffer, PyBuffer_Release
from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport qsort
from libc.string cimport memcmp, memcpy, memmove, memset

from collections.abc import Mapping

from actorfw._order import Order

__all__ = [
    "ENCODING_VERSION",
    "MAX_COUNTER",
    "MAX_NODE_ID_BYTES",
    "Order",
    "VectorClock",
]

MAX_COUNTER = 2**64 - 1
MAX_NODE_ID_BYTES = 255
ENCODING_VERSION = 1

DEF _MAX_NAME = 255
DEF _MAX_NAMES = 65536

MAX_NODE_IDS = _MAX_NAMES
"""Distinct node ids this process interns at most (see the module documentation)."""
DEF _VERSION = 1
DEF _SMALL_SORT = 24

cdef uint64_t _MAX_COUNT = 0xFFFFFFFFFFFFFFFF

cdef tuple _ORDERS = (Order.EQUAL, Order.BEFORE, Order.AFTER, Order.CONCURRENT)
cdef object _BEFORE = Order.BEFORE
cdef object _AFTER = Order.AFTER
cdef object _EQUAL = Order.EQUAL
cdef object _CONCURRENT = Order.CONCURRENT


cdef struct Entry:
    uint32_t node
    uint64_t count


cdef struct Name:
    uint64_t key          # the first 8 UTF-8 bytes, big-endian: orders like the bytes
    const char *ptr       # UTF-8 bytes, owned by _name_bytes
    uint32_t size


# ---------------------------------------------------------------------------
# The intern table: node id <-> dense index, process-wide.

cdef dict _index_of = {}          # str -> int
cdef list _names = []             # int -> str
cdef list _name_bytes = []        # int -> bytes; keeps Name.ptr alive
cdef Name *_info = NULL
cdef Py_ssize_t _info_cap = 0

# UTF-8 bytes -> index, for the decoder: open addressing over a power-of-two
# table of (hash, index + 1) slots, so that a known node id costs a hash and
# a memcmp, not a bytes object and a dict lookup.
cdef struct Slot:
    uint64_t hash
    uint32_t index_plus_one   # 0: empty
cdef Slot *_slots = NULL
cdef Py_ssize_t _slots_mask = -1


cdef inline uint64_t _hash_bytes(const uint8_t *p, Py_ssize_t size) noexcept nogil:
    # FNV-1a, then a final mix so that the low bits (the table index) depend on every byte.
    cdef uint64_t h = 0xCBF29CE484222325ULL
    cdef Py_ssize_t k
    for k in range(size):
        h = (h ^ p[k]) * 0x100000001B3ULL
    h ^= h >> 33
    h *= 0xFF51AFD7ED558CCDULL
    h ^= h >> 33
    return h


cdef inline long long _find_bytes(const uint8_t *p, Py_ssize_t size, uint64_t h) noexcept nogil:
    """The index of the interned node id with these UTF-8 bytes, or -1."""
    cdef Py_ssize_t at
    cdef uint32_t idx
    if _slots == NULL:
        return -1
    at = <Py_ssize_t>(h & <uint64_t>_slots_mask)
    while _slots[at].index_plus_one:
        if _slots[at].hash == h:
            idx = _slots[at].index_plus_one - 1
            if _info[idx].size == size and memcmp(_info[idx].ptr, p, size) == 0:
                return idx
        at = (at + 1) & _slots_mask
    return -1


cdef int _slots_insert(uint64_t h, uint32_t idx) except -1:
    """Add an index; grows the table to keep it at most half full."""
    global _slots, _slots_mask
    cdef Py_ssize_t count = len(_names), cap = _slots_mask + 1, at, k
    cdef Slot *old = _slots
    cdef Slot *grown
    if 2 * count > cap:
        cap = cap * 2 if cap else 256
        grown = <Slot *>PyMem_Malloc(cap * sizeof(Slot))
        if grown == NULL:
            raise MemoryError()
        memset(grown, 0, cap * sizeof(Slot))
        for k in range(_slots_mask + 1):
            if old[k].index_plus_one:
                at = <Py_ssize_t>(old[k].hash & <uint64_t>(cap - 1))
                while grown[at].index_plus_one:
                    at = (at + 1) & (cap - 1)
                grown[at] = old[k]
        _slots = grown
        _slots_mask = cap - 1
        PyMem_Free(old)
    at = <Py_ssize_t>(h & <uint64_t>_slots_mask)
    while _slots[at].index_plus_one:
        at = (at + 1) & _slots_mask
    _slots[at].hash = h
    _slots[at].index_plus_one = idx + 1
    return 0


cdef str _check_node(object node):
    if not isinstance(node, str):
        raise TypeError(f"a node id must be a str, not {type(node).__name__}")
    try:
        size = len(node.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"node id {node!r} cannot be encoded as UTF-8") from None
    if size == 0:
        raise ValueError("a node id must not be empty")
    if size > _MAX_NAME:
        raise ValueError(
            f"node id {node[:20]!r}... is {size} bytes in UTF-8; "
            f"the limit is {_MAX_NAME}"
        )
    return str(node)


def _table_full(node):
    return (
        f"vector clock names node id {node[:20]!r}, new to this process, which already "
        f"interned the limit of {_MAX_NAMES} distinct node ids"
    )


cdef uint32_t _add_name(str node, bytes raw) except? 0xFFFFFFFF:
    """Intern a checked node id whose UTF-8 bytes are ``raw``."""
    global _info, _info_cap
    cdef Py_ssize_t idx = len(_names)
    cdef Name *grown
    cdef uint64_t key = 0
    cdef Py_ssize_t k, size = PyBytes_GET_SIZE(raw)
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(raw)
    if idx >= _MAX_NAMES:
        raise ValueError(_table_full(node))
    if idx >= _info_cap:
        grown = <Name *>PyMem_Realloc(_info, (_info_cap * 2 + 64) * sizeof(Name))
        if grown == NULL:
            raise MemoryError()
        _info = grown
        _info_cap = _info_cap * 2 + 64
    for k in range(8):
        key = (key << 8) | (p[k] if k < size else 0)
    _info[idx].key = key
    _info[idx].ptr = <const char *>p
    _info[idx].size = <uint32_t>size
    _names.append(node)
    _name_bytes.append(raw)
    _index_of[node] = idx
    _slots_insert(_hash_bytes(p, size), <uint32_t>idx)
    return <uint32_t>idx


cdef inline uint32_t _intern(object node) except? 0xFFFFFFFF:
    cdef PyObject *found = PyDict_GetItem(_index_of, node) if type(node) is str else NULL
    if found != NULL:
        return <uint32_t><object>found
    checked = _check_node(node)
    found = PyDict_GetItem(_index_of, checked)
    if found != NULL:
        return <uint32_t><object>found
    return _add_name(checked, checked.encode("utf-8"))


cdef inline long long _lookup(object node) except -2:
    """The index of an interned node id, or -1 if it was never seen (after checking it)."""
    cdef PyObject *found = PyDict_GetItem(_index_of, node) if type(node) is str else NULL
    if found != NULL:
        return <long long><object>found
    checked = _check_node(node)
    found = PyDict_GetItem(_index_of, checked)
    if found != NULL:
        return <long long><object>found
    return -1


cdef inline int _name_cmp(uint32_t a, uint32_t b) noexcept nogil:
    """Compare two interned names as their UTF-8 bytes."""
    cdef uint64_t ka = _info[a].key, kb = _info[b].key
    cdef uint32_t sa, sb
    cdef int c
    if ka != kb:
        return -1 if ka < kb else 1
    sa = _info[a].size
    sb = _info[b].size
    if sa <= 8 or sb <= 8:
        return (sa > sb) - (sa < sb)
    c = memcmp(_info[a].ptr + 8, _info[b].ptr + 8, (sa if sa < sb else sb) - 8)
    if c:
        return c
    return (sa > sb) - (sa < sb)


cdef int _cmp_entry_by_name(const void *a, const void *b) noexcept nogil:
    return _name_cmp((<const Entry *>a).node, (<const Entry *>b).node)


cdef int _cmp_entry_by_node(const void *a, const void *b) noexcept nogil:
    cdef uint32_t x = (<const Entry *>a).node, y = (<const Entry *>b).node
    return (x > y) - (x < y)


cdef void _sort_by_name(Entry *e, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef Entry item
    if n > _SMALL_SORT:
        qsort(e, n, sizeof(Entry), _cmp_entry_by_name)
        return
    for i in range(1, n):
        item = e[i]
        j = i - 1
        while j >= 0 and _name_cmp(e[j].node, item.node) > 0:
            e[j + 1] = e[j]
            j -= 1
        e[j + 1] = item


cdef void _sort_by_node(Entry *e, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef Entry item
    if n > _SMALL_SORT:
        qsort(e, n, sizeof(Entry), _cmp_entry_by_node)
        return
    for i in range(1, n):
        item = e[i]
        j = i - 1
        while j >= 0 and e[j].node > item.node:
            e[j + 1] = e[j]
            j -= 1
        e[j + 1] = item


# ---------------------------------------------------------------------------
# Varints (unsigned LEB128).

cdef inline Py_ssize_t _varint_size(uint64_t v) noexcept nogil:
    cdef Py_ssize_t n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline uint8_t *_put_varint(uint8_t *p, uint64_t v) noexcept nogil:
    while v >= 0x80:
        p[0] = <uint8_t>((v & 0x7F) | 0x80)
        p += 1
        v >>= 7
    p[0] = <uint8_t>v
    return p + 1


cdef Py_ssize_t _get_varint(const uint8_t *buf, Py_ssize_t pos, Py_ssize_t end,
                            uint64_t *out, str what) except -1:
    cdef Py_ssize_t start = pos
    cdef uint64_t value = 0, byte = 0
    cdef int shift = 0
    while True:
        if pos >= end:
            raise ValueError(f"malformed vector clock: truncated {what} at byte {start}")
        byte = buf[pos]
        pos += 1
        if shift == 63 and byte > 1:
            raise ValueError(f"malformed vector clock: {what} at byte {start} exceeds 64 bits")
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            raise ValueError(f"malformed vector clock: {what} at byte {start} exceeds 64 bits")
    if byte == 0 and pos - start > 1:
        raise ValueError(f"malformed vector clock: {what} at byte {start} is not in shortest form")
    out[0] = value
    return pos


# ---------------------------------------------------------------------------
# The kernels proper: walks over two sorted entry arrays.

cdef inline int _compare(const Entry *x, Py_ssize_t nx, const Entry *y, Py_ssize_t ny) noexcept nogil:
    """Order code of x against y: bit 0 = some counter lower, bit 1 = some counter higher."""
    cdef Py_ssize_t i = 0, j = 0
    cdef int lower = 0, higher = 0
    cdef uint32_t a, b
    while i < nx and j < ny:
        a = x[i].node
        b = y[j].node
        if a == b:
            if x[i].count > y[j].count:
                higher = 2
            elif x[i].count < y[j].count:
                lower = 1
            i += 1
            j += 1
        elif a < b:
            higher = 2
            i += 1
        else:
            lower = 1
            j += 1
        if lower and higher:
            return 3
    if i < nx:
        higher = 2
    if j < ny:
        lower = 1
    return lower | higher


cdef inline bint _deliverable(const Entry *v, Py_ssize_t nv, const Entry *m, Py_ssize_t nm,
                              long long sender) noexcept nogil:
    """Birman-Schiper-Stephenson: may message clock m from sender be delivered at v?"""
    cdef Py_ssize_t i, j = 0
    cdef uint64_t mine
    cdef bint seen = False
    cdef uint32_t node
    if sender < 0:
        return False
    for i in range(nm):
        node = m[i].node
        while j < nv and v[j].node < node:
            j += 1
        mine = v[j].count if j < nv and v[j].node == node else 0
        if node == <uint32_t>sender:
            if mine == _MAX_COUNT or m[i].count != mine + 1:
                return False
            seen = True
        elif m[i].count > mine:
            return False
    return seen


cdef inline Py_ssize_t _find(const Entry *e, Py_ssize_t n, uint32_t node) noexcept nogil:
    """The first position whose node is >= ``node`` (binary search)."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if e[mid].node < node:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline VectorClock _new():
    return VectorClock.__new__(VectorClock)


@cython.freelist(64)
@cython.final
cdef class VectorClock:
    """A vector clock over any set of nodes; see the pure twin for the full contract.

    Args:
        entries: another clock, a mapping of node id to counter, or an
            iterable of ``(node, counter)`` pairs. Counters of 0 are dropped.

    Clocks hash by content; do not change a clock used as a dict key or set
    member (copy it first).
    """

    cdef Entry *e
    cdef Py_ssize_t n
    cdef Py_ssize_t cap

    def __init__(self, entries=None):
        cdef dict counts = {}
        cdef Py_ssize_t i
        if entries is None:
            self.n = 0
            return
        if isinstance(entries, VectorClock):
            other = <VectorClock>entries
            self._reserve(other.n)
            memcpy(self.e, other.e, other.n * sizeof(Entry))
            self.n = other.n
            return
        pairs = entries.items() if isinstance(entries, Mapping) else entries
        # Check every pair before interning any node id: refused input leaves
        # nothing behind in the process-wide table.
        checked = []
        for pair in pairs:
            node, count = pair
            checked.append((_check_node(node), count))
            if not isinstance(count, int):
                raise TypeError(
                    f"the counter for node {node!r} must be an int, not {type(count).__name__}"
                )
            if count < 0 or count > MAX_COUNTER:
                raise ValueError(f"the counter for node {node!r} is {count}; it must be in 0..2**64-1")
        for node, count in checked:
            idx = _intern(node)
            if count:
                counts[idx] = count
            else:
                counts.pop(idx, None)
        self._reserve(len(counts))
        i = 0
        for idx in sorted(counts):
            self.e[i].node = idx
            self.e[i].count = counts[idx]
            i += 1
        self.n = i

    def __dealloc__(self):
        PyMem_Free(self.e)

    cdef int _reserve(self, Py_ssize_t need) except -1:
        cdef Entry *grown
        cdef Py_ssize_t cap
        if need <= self.cap:
            return 0
        cap = need if need > 4 else 4
        if cap < self.cap * 2:
            cap = self.cap * 2
        grown = <Entry *>PyMem_Realloc(self.e, cap * sizeof(Entry))
        if grown == NULL:
            raise MemoryError()
        self.e = grown
        self.cap = cap
        return 0

    # -- reading -------------------------------------------------------------

    def get(self, node):
        """The counter of ``node``: 0 for a node this clock has not seen."""
        cdef long long idx = _lookup(node)
        cdef Py_ssize_t pos
        if idx < 0:
            return 0
        pos = _find(self.e, self.n, <uint32_t>idx)
        if pos < self.n and self.e[pos].node == idx:
            return self.e[pos].count
        return 0

    def __getitem__(self, node):
        return self.get(node)

    def __contains__(self, node):
        cdef PyObject *found
        cdef Py_ssize_t pos
        cdef uint32_t idx
        if not isinstance(node, str):
            return False
        found = PyDict_GetItem(_index_of, node)
        if found == NULL:
            return False
        idx = <uint32_t><object>found
        pos = _find(self.e, self.n, idx)
        return pos < self.n and self.e[pos].node == idx

    def __len__(self):
        return self.n

    def __iter__(self):
        return iter([node for node, _ in self.items()])

    def items(self):
        """The ``(node, counter)`` pairs, sorted by node id."""
        cdef Py_ssize_t i
        return sorted([(_names[self.e[i].node], self.e[i].count) for i in range(self.n)])

    def to_dict(self):
        """A new dict of node id to counter, in node id order."""
        return dict(self.items())

    cpdef VectorClock copy(self):
        """An independent copy of this clock."""
        cdef VectorClock new = _new()
        new._reserve(self.n)
        memcpy(new.e, self.e, self.n * sizeof(Entry))
        new.n = self.n
        return new

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        return (VectorClock, (self.to_dict(),))

    def __repr__(self):
        return f"VectorClock({self.to_dict()!r})"

    # -- changing ------------------------------------------------------------

    def increment(self, node, by=1):
        """Count ``by`` (default 1) new events at ``node``; return its new counter.

        Raises:
            TypeError: ``by`` is not an ``int`` (a float is refused, not rounded).
            ValueError: ``by`` is below 1.
            OverflowError: the counter would pass ``2**64-1`` (so does any
                ``by`` above it).
        """
        cdef uint32_t idx
        cdef uint64_t step
        cdef Py_ssize_t pos
        if type(node) is not str or PyDict_GetItem(_index_of, node) == NULL:
            _check_node(node)  # the twin's order: the node id first, then ``by``
        if type(by) is not int and not isinstance(by, int):
            raise TypeError(f"by must be an int, not {type(by).__name__}")
        if by < 1:
            raise ValueError(f"by must be at least 1, not {by}")
        if by > MAX_COUNTER:
            raise OverflowError(f"the counter for node {node!r} would exceed 2**64-1")
        step = by
        idx = _intern(node)
        pos = _find(self.e, self.n, idx)
        if pos < self.n and self.e[pos].node == idx:
            if self.e[pos].count > _MAX_COUNT - step:
                raise OverflowError(f"the counter for node {node!r} would exceed 2**64-1")
            self.e[pos].count += step
            return self.e[pos].count
        self._reserve(self.n + 1)
        memmove(self.e + pos + 1, self.e + pos, (self.n - pos) * sizeof(Entry))
        self.e[pos].node = idx
        self.e[pos].count = step
        self.n += 1
        return step

    def merge(self, VectorClock other not None):
        """A new clock, the pointwise maximum of this one and ``other``."""
        cdef VectorClock new = _new()
        cdef Py_ssize_t i = 0, j = 0, k = 0, nx = self.n, ny = other.n
        cdef const Entry *x = self.e
        cdef const Entry *y = other.e
        cdef Entry *z
        if nx == ny:
            # Clocks of one cluster usually hold the same nodes: a straight,
            # branch-free pass, left for the general walk at the first mismatch.
            new._reserve(nx)
            z = new.e
            for k in range(nx):
                if x[k].node != y[k].node:
                    break
                z[k].node = x[k].node
                z[k].count = x[k].count if x[k].count >= y[k].count else y[k].count
            else:
                new.n = nx
                return new
            k = 0
        new._reserve(nx + ny)
        z = new.e
        while i < nx and j < ny:
            if x[i].node == y[j].node:
                z[k].node = x[i].node
                z[k].count = x[i].count if x[i].count >= y[j].count else y[j].count
                i += 1
                j += 1
            elif x[i].node < y[j].node:
                z[k] = x[i]
                i += 1
            else:
                z[k] = y[j]
                j += 1
            k += 1
        if i < nx:
            memcpy(z + k, x + i, (nx - i) * sizeof(Entry))
            k += nx - i
        if j < ny:
            memcpy(z + k, y + j, (ny - j) * sizeof(Entry))
            k += ny - j
        new.n = k
        return new

    def merge_in(self, VectorClock other not None):
        """Merge ``other`` into this clock, in place (pointwise maximum)."""
        cdef Py_ssize_t i = 0, j = 0, nx = self.n, ny = other.n, union, k
        cdef Entry *x = self.e
        cdef const Entry *y = other.e
        # One pass that raises counters in place, as long as ``other`` brings
        # no node this clock lacks (the steady state).
        while j < ny:
            while i < nx and x[i].node < y[j].node:
                i += 1
            if i == nx or x[i].node != y[j].node:
                break
            if y[j].count > x[i].count:
                x[i].count = y[j].count
            i += 1
            j += 1
        if j == ny:
            return None
        # New nodes: count the union, grow, then merge from the back so that
        # nothing is overwritten before it is read.
        union = nx
        i = 0
        for k in range(ny):
            while i < nx and x[i].node < y[k].node:
                i += 1
            if i == nx or x[i].node != y[k].node:
                union += 1
        self._reserve(union)
        x = self.e
        i = nx - 1
        j = ny - 1
        k = union - 1
        while j >= 0:
            if i >= 0 and x[i].node > y[j].node:
                x[k] = x[i]
                i -= 1
            elif i >= 0 and x[i].node == y[j].node:
                if y[j].count > x[i].count:
                    x[k].count = y[j].count
                else:
                    x[k].count = x[i].count
                x[k].node = x[i].node
                i -= 1
                j -= 1
            else:
                x[k] = y[j]
                j -= 1
            k -= 1
        self.n = union
        return None

    def __or__(self, other):
        if not isinstance(self, VectorClock) or not isinstance(other, VectorClock):
            return NotImplemented
        return (<VectorClock>self).merge(<VectorClock>other)

    def __ior__(self, other):
        if not isinstance(other, VectorClock):
            return NotImplemented
        self.merge_in(<VectorClock>other)
        return self

    def prune(self, node):
        """Forget ``node`` (it left for good); return the counter it had (0 if none)."""
        cdef long long idx = _lookup(node)
        cdef Py_ssize_t pos
        cdef uint64_t count
        if idx < 0:
            return 0
        pos = _find(self.e, self.n, <uint32_t>idx)
        if pos >= self.n or self.e[pos].node != idx:
            return 0
        count = self.e[pos].count
        memmove(self.e + pos, self.e + pos + 1, (self.n - pos - 1) * sizeof(Entry))
        self.n -= 1
        return count

    # -- comparing -----------------------------------------------------------

    def compare(self, VectorClock other not None):
        """How this clock relates to ``other``: EQUAL, BEFORE, AFTER or CONCURRENT."""
        return _ORDERS[_compare(self.e, self.n, other.e, other.n)]

    def happened_before(self, VectorClock other not None):
        """True iff this clock happened before ``other`` (``self < other``)."""
        return _compare(self.e, self.n, other.e, other.n) == 1

    def concurrent_with(self, VectorClock other not None):
        """True iff neither clock happened before the other and they differ."""
        return _compare(self.e, self.n, other.e, other.n) == 3

    def deliverable(self, VectorClock message not None, sender):
        """May a message stamped ``message`` by ``sender`` be delivered here?

        This clock is the receiver's: ``message[sender]`` must be exactly one
        above ours, and every other counter of ``message`` at most ours.
        """
        return _deliverable(self.e, self.n, message.e, message.n, _lookup(sender))

    def compare_many(self, others):
        """Compare this clock with each of ``others``, in one call.

        Returns:
            ``bytes`` with one :class:`Order` value per clock, in order.
        """
        cdef object seq = others if type(others) is list or type(others) is tuple else list(others)
        cdef bint is_list = type(seq) is list
        cdef Py_ssize_t i, count = PyList_GET_SIZE(seq) if is_list else PyTuple_GET_SIZE(seq)
        cdef bytes out = PyBytes_FromStringAndSize(NULL, count)
        cdef uint8_t *codes = <uint8_t *>PyBytes_AS_STRING(out)
        cdef PyObject *item
        cdef VectorClock other
        for i in range(count):
            item = PyList_GET_ITEM(seq, i) if is_list else PyTuple_GET_ITEM(seq, i)
            if type(<object>item) is not VectorClock:
                raise TypeError(
                    f"compare_many takes VectorClocks; item {i} is a {type(<object>item).__name__}"
                )
            other = <VectorClock>item
            codes[i] = <uint8_t>_compare(self.e, self.n, other.e, other.n)
        return out

    def deliverable_many(self, messages, senders):
        """``deliverable`` for each ``(messages[i], senders[i])``, in one call.

        Returns:
            ``bytes`` with 1 where the message is deliverable, else 0.

        Raises:
            ValueError: the two sequences differ in length.
        """
        cdef list ms = list(messages)
        cdef list ss = list(senders)
        cdef Py_ssize_t i, count = len(ms)
        cdef bytes out
        cdef uint8_t *flags
        cdef VectorClock m
        if count != len(ss):
            raise ValueError(
                f"{count} message clocks but {len(ss)} senders; pass one sender per message"
            )
        out = PyBytes_FromStringAndSize(NULL, count)
        flags = <uint8_t *>PyBytes_AS_STRING(out)
        for i in range(count):
            item = ms[i]
            if type(item) is not VectorClock:
                raise TypeError(f"message must be a VectorClock, not {type(item).__name__}")
            m = <VectorClock>item
            flags[i] = _deliverable(self.e, self.n, m.e, m.n, _lookup(ss[i]))
        return out

    def __eq__(self, other):
        if type(other) is not VectorClock:
            return NotImplemented
        return _equal(self, <VectorClock>other)

    def __ne__(self, other):
        if type(other) is not VectorClock:
            return NotImplemented
        return not _equal(self, <VectorClock>other)

    def __hash__(self):
        cdef uint64_t h = 0x9E3779B97F4A7C15ULL ^ <uint64_t>self.n
        cdef Py_ssize_t i
        for i in range(self.n):
            h = (h ^ self.e[i].node) * 0x100000001B3ULL
            h = (h ^ self.e[i].count) * 0xFF51AFD7ED558CCDULL
            h ^= h >> 29
        h &= 0x3FFFFFFFFFFFFFFFULL
        return <Py_ssize_t>h

    def __lt__(self, other):
        if type(other) is not VectorClock:
            return NotImplemented
        return _compare(self.e, self.n, (<VectorClock>other).e, (<VectorClock>other).n) == 1

    def __le__(self, other):
        if type(other) is not VectorClock:
            return NotImplemented
        return _compare(self.e, self.n, (<VectorClock>other).e, (<VectorClock>other).n) <= 1

    def __gt__(self, other):
        if type(other) is not VectorClock:
            return NotImplemented
        return _compare(self.e, self.n, (<VectorClock>other).e, (<VectorClock>other).n) == 2

    def __ge__(self, other):
        if type(other) is not VectorClock:
            return NotImplemented
        return (_compare(self.e, self.n, (<VectorClock>other).e, (<VectorClock>other).n) & 1) == 0

    # -- the wire ------------------------------------------------------------

    def encode(self):
        """The canonical binary encoding (see the pure twin's module documentation)."""
        cdef Py_ssize_t i, size = 1 + _varint_size(<uint64_t>self.n)
        cdef Entry *order = self.e
        cdef Entry *scratch = NULL
        cdef bint by_name = True
        cdef bytes out
        cdef uint8_t *p
        cdef const Name *name
        for i in range(self.n):
            size += 1 + _info[self.e[i].node].size + _varint_size(self.e[i].count)
            if i and by_name and _name_cmp(self.e[i - 1].node, self.e[i].node) > 0:
                by_name = False
        if not by_name:
            scratch = <Entry *>PyMem_Malloc(self.n * sizeof(Entry))
            if scratch == NULL:
                raise MemoryError()
            memcpy(scratch, self.e, self.n * sizeof(Entry))
            _sort_by_name(scratch, self.n)
            order = scratch
        try:
            out = PyBytes_FromStringAndSize(NULL, size)
            p = <uint8_t *>PyBytes_AS_STRING(out)
            p[0] = _VERSION
            p = _put_varint(p + 1, <uint64_t>self.n)
            for i in range(self.n):
                name = &_info[order[i].node]
                p[0] = <uint8_t>name.size
                memcpy(p + 1, name.ptr, name.size)
                p = _put_varint(p + 1 + name.size, order[i].count)
        finally:
            PyMem_Free(scratch)
        return out

    @staticmethod
    def decode(data):
        """Rebuild a clock from :meth:`encode`'s bytes.

        Raises:
            TypeError: ``data`` is not bytes-like.
            ValueError: ``data`` is not a valid encoding; the message says why.
        """
        cdef Py_buffer view
        if isinstance(data, str):
            raise TypeError("decode takes bytes, not str")
        try:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        except (BufferError, ValueError):  # numpy: "ndarray is not C-contiguous"
            raise TypeError(
                f"decode takes a contiguous buffer; this {type(data).__name__} is not one"
            ) from None
        except TypeError:
            raise TypeError(f"decode takes bytes, not {type(data).__name__}") from None
        try:
            return _decode(<const uint8_t *>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)


cdef inline bint _equal(VectorClock a, VectorClock b) noexcept:
    # Field by field: the 4 padding bytes of an Entry are undefined, so no memcmp.
    cdef Py_ssize_t i
    if a.n != b.n:
        return False
    for i in range(a.n):
        if a.e[i].node != b.e[i].node or a.e[i].count != b.e[i].count:
            return False
    return True


cdef VectorClock _decode(const uint8_t *buf, Py_ssize_t end):
    # Two steps: check the whole input, then intern the node ids it brought.
    # Refused input must leave nothing in the process-wide table (which only
    # grows): a peer sending malformed clocks with ever new ids would make it
    # grow without bound.
    cdef Py_ssize_t pos, size, i, name_at, counter_at
    cdef Py_ssize_t prev_at = 0, prev_size = 0
    cdef uint64_t count, value
    cdef VectorClock clock
    cdef long long known
    cdef int c
    cdef uint32_t idx
    cdef bint in_order = True
    cdef list unknown = None   # (entry position, node id, its UTF-8 bytes) of ids not yet interned
    if end == 0:
        raise ValueError("malformed vector clock: empty input")
    if buf[0] != _VERSION:
        raise ValueError(
            f"malformed vector clock: version byte is {buf[0]}, expected {_VERSION}"
        )
    pos = _get_varint(buf, 1, end, &count, "entry count")
    if count > <uint64_t>((end - pos) // 3):
        raise ValueError(f"malformed vector clock: {count} entries cannot fit in {end - pos} bytes")
    clock = _new()
    clock._reserve(<Py_ssize_t>count)
    for i in range(<Py_ssize_t>count):
        if pos >= end:
            raise ValueError(f"malformed vector clock: truncated node id length at byte {pos}")
        size = buf[pos]
        pos += 1
        if size == 0:
            raise ValueError(f"malformed vector clock: empty node id at byte {pos - 1}")
        if pos + size > end:
            raise ValueError(f"malformed vector clock: truncated node id at byte {pos}")
        name_at = pos
        if i:
            c = memcmp(buf + prev_at, buf + name_at, prev_size if prev_size < size else size)
            if c > 0 or (c == 0 and prev_size >= size):
                raise ValueError(
                    f"malformed vector clock: node id at byte {name_at} is "
                    + ("repeated" if c == 0 and prev_size == size else "out of order")
                )
        known = _find_bytes(buf + name_at, size, _hash_bytes(buf + name_at, size))
        if known >= 0:
            clock.e[i].node = <uint32_t>known
        else:
            raw = PyBytes_FromStringAndSize(<const char *>(buf + name_at), size)
            try:
                node = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(
                    f"malformed vector clock: node id at byte {name_at} is not valid UTF-8"
                ) from None
            if unknown is None:
                unknown = []
            unknown.append((i, node, raw))
        counter_at = name_at + size
        pos = _get_varint(buf, counter_at, end, &value, "counter")
        if value == 0:
            raise ValueError(f"malformed vector clock: zero counter at byte {counter_at}")
        clock.e[i].count = value
        prev_at = name_at
        prev_size = size
    if pos != end:
        raise ValueError(f"malformed vector clock: {end - pos} trailing bytes at byte {pos}")
    # Valid: now the new node ids may be interned, if they all fit.
    if unknown is not None:
        if len(_names) + len(unknown) > _MAX_NAMES:
            raise ValueError(_table_full(unknown[0][1]))
        for i, node, raw in unknown:
            clock.e[i].node = _add_name(node, raw)
    clock.n = <Py_ssize_t>count
    for i in range(1, clock.n):
        if clock.e[i - 1].node > clock.e[i].node:
            in_order = False
            break
    if not in_order:
        _sort_by_node(clock.e, clock.n)
    return clock
