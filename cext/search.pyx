"""The linearizability search's hot loop, compiled: the twin of ``actorfw/_pure/search.py``.

Same names, same behaviour, same steps; read the pure twin's module
documentation for the theory of operation. Here the whole loop runs in C:
the event list, the stack and the linearized set are C arrays, transitions
of the register opcodes are compared as ids, and the answers of the
``step`` callback are kept in an open-addressing table.

The memo table stores each configuration as compact words: the state id
and ``p``, the number of ``ok`` operations (in invocation order) that are
all linearized, in one word; then the words of the ``ok`` bitset from
``p`` to the last linearized one; then the bitset of operations of unknown
outcome. In real-time order an ``ok`` operation can only be linearized
before the first unlinearized one completes, so the window after ``p`` is
about as wide as the number of operations in flight, not the history: an
entry costs a few words where a bitset of the whole partition would cost
``n / 8`` bytes. The keys live in one growing arena and are found through
an index of 64-bit hashes, so freeing the table is a few calls to ``free``.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcmp, memset

import math

__all__ = [
    "CAS_FAIL",
    "CAS_MAYBE",
    "CAS_OK",
    "FREE_COST",
    "LINEARIZABLE",
    "NOP",
    "READ",
    "RUNNING",
    "STEP",
    "VIOLATION",
    "WRITE",
    "Search",
    "Transitions",
]

cdef extern from *:
    """
    static inline int actorfw_ctz64(unsigned long long x) { return __builtin_ctzll(x); }
    """
    int actorfw_ctz64(unsigned long long x) nogil

DEF _RUNNING = 0
DEF _LINEARIZABLE = 1
DEF _VIOLATION = 2
DEF _CLOSED = -1

DEF _STEP = 0
DEF _READ = 1
DEF _WRITE = 2
DEF _CAS_OK = 3
DEF _CAS_FAIL = 4
DEF _CAS_MAYBE = 5
DEF _NOP = 6

DEF _MAX_ID = 2147483646
DEF _EMPTY_KEY = 0xFFFFFFFFFFFFFFFF

RUNNING = _RUNNING
LINEARIZABLE = _LINEARIZABLE
VIOLATION = _VIOLATION
STEP = _STEP
READ = _READ
WRITE = _WRITE
CAS_OK = _CAS_OK
CAS_FAIL = _CAS_FAIL
CAS_MAYBE = _CAS_MAYBE
NOP = _NOP

FREE_COST = 1e-8
"""Seconds to reserve per memo entry for freeing the table before a deadline.

The table is an arena of words and an index, freed with a few calls to
``free``: returning their pages costs about 6 ns an entry, measured (two
million entries in 13 ms); the reserve is half again as much."""


cdef void* _grow(void* buffer, Py_ssize_t nbytes) except NULL:
    cdef void* out = PyMem_Realloc(buffer, nbytes)
    if out == NULL:
        raise MemoryError(f"the linearizability search could not grow a table to {nbytes} bytes")
    return out


cdef inline uint64_t _mix(uint64_t h) nogil:
    h ^= h >> 33
    h *= <uint64_t>0xff51afd7ed558ccd
    h ^= h >> 33
    h *= <uint64_t>0xc4ceb9fe1a85ec53
    h ^= h >> 33
    return h


cdef class Transitions:
    """Model transitions by (operation, state id), for any number of searches.

    Args:
        step: ``step(op, state)`` for an operation registered with opcode
            :data:`STEP`: the id of the state after it, or ``-1`` if it is
            illegal in ``state``. Called once per pair while fewer than
            ``limit`` answers are remembered.
        limit: answers remembered at most (a float, so ``math.inf`` lifts
            the bound).
    """

    cdef object _step
    cdef int64_t _limit
    cdef int32_t* kinds
    cdef int32_t* first
    cdef int32_t* second
    cdef Py_ssize_t count
    cdef Py_ssize_t capacity
    cdef uint64_t* keys
    cdef int32_t* values
    cdef Py_ssize_t cache_size
    cdef Py_ssize_t cache_mask

    def __cinit__(self):
        self.kinds = NULL
        self.first = NULL
        self.second = NULL
        self.keys = NULL
        self.values = NULL

    def __init__(self, step, limit=math.inf):
        if not callable(step):
            raise TypeError(f"step must be callable, not {type(step).__name__}")
        self._step = step
        self._limit = <int64_t>min(float(limit), 9.0e18)
        self.count = 0
        self.capacity = 0
        self.cache_size = 0
        self.cache_mask = 0

    def __dealloc__(self):
        PyMem_Free(self.kinds)
        PyMem_Free(self.first)
        PyMem_Free(self.second)
        PyMem_Free(self.keys)
        PyMem_Free(self.values)

    def add(self, int kind, long long a=0, long long b=0):
        """Register an operation with opcode ``kind`` and its state ids ``a``, ``b``.

        Returns:
            The operation's id, for :meth:`lookup` and :class:`Search`.

        Raises:
            ValueError: ``kind`` is not an opcode, or ``a`` or ``b`` is negative.
        """
        if kind < _STEP or kind > _NOP:
            raise ValueError(f"kind must be an opcode {_STEP}..{_NOP}, not {kind!r}")
        if a < 0 or b < 0 or a > _MAX_ID or b > _MAX_ID:
            raise ValueError(f"state ids must be in 0..{_MAX_ID}, not {a!r} and {b!r}")
        if self.count == self.capacity:
            self.capacity = max(16, 2 * self.capacity)
            self.kinds = <int32_t*>_grow(self.kinds, self.capacity * sizeof(int32_t))
            self.first = <int32_t*>_grow(self.first, self.capacity * sizeof(int32_t))
            self.second = <int32_t*>_grow(self.second, self.capacity * sizeof(int32_t))
        self.kinds[self.count] = kind
        self.first[self.count] = <int32_t>a
        self.second[self.count] = <int32_t>b
        self.count += 1
        return self.count - 1

    def __len__(self):
        """How many operations are registered."""
        return self.count

    @property
    def remembered(self):
        """How many answers of the ``step`` callback are remembered."""
        return self.cache_size

    def lookup(self, Py_ssize_t op, Py_ssize_t state):
        """The id of the state after operation ``op`` in state ``state``, or ``-1`` if illegal.

        Raises:
            IndexError: ``op`` is not a registered operation.
            ValueError: the ``step`` callback answered something other than
                a state id or ``-1``.
        """
        if not 0 <= op < self.count:
            raise IndexError(f"no operation {op} (registered: {self.count})")
        if not 0 <= state <= _MAX_ID:
            raise ValueError(f"state ids are in 0..{_MAX_ID}, not {state}")
        return self.get(<int32_t>op, <int32_t>state)

    cdef inline int32_t get(self, int32_t op, int32_t state) except -2:
        cdef int32_t kind = self.kinds[op]
        if kind == _READ:
            return state if state == self.first[op] else -1
        if kind == _WRITE:
            return self.first[op]
        if kind == _CAS_OK:
            return self.second[op] if state == self.first[op] else -1
        if kind == _CAS_FAIL:
            return state if state != self.first[op] else -1
        if kind == _CAS_MAYBE:
            return self.second[op] if state == self.first[op] else state
        if kind == _NOP:
            return state
        return self._stepped(op, state)

    cdef int32_t _stepped(self, int32_t op, int32_t state) except -2:
        cdef uint64_t key = (<uint64_t>op << 32) | <uint64_t>state
        cdef Py_ssize_t slot
        if self.cache_mask:
            slot = <Py_ssize_t>(_mix(key) & <uint64_t>self.cache_mask)
            while self.keys[slot] != _EMPTY_KEY:
                if self.keys[slot] == key:
                    return self.values[slot]
                slot = (slot + 1) & self.cache_mask
        answer = self._step(op, state)
        if isinstance(answer, bool) or not isinstance(answer, int) or not -1 <= answer <= _MAX_ID:
            raise ValueError(
                f"step({op}, {state}) must return a state id in 0..{_MAX_ID} or -1, "
                f"not {answer!r}"
            )
        cdef int32_t after = <int32_t>answer
        if self.cache_size < self._limit:
            if 2 * (self.cache_size + 1) > self.cache_mask:
                self._rehash()
            slot = <Py_ssize_t>(_mix(key) & <uint64_t>self.cache_mask)
            while self.keys[slot] != _EMPTY_KEY:
                slot = (slot + 1) & self.cache_mask
            self.keys[slot] = key
            self.values[slot] = after
            self.cache_size += 1
        return after

    cdef int _rehash(self) except -1:
        cdef Py_ssize_t old_size = self.cache_mask + 1 if self.cache_mask else 0
        cdef Py_ssize_t size = max(64, 2 * old_size)
        cdef uint64_t* old_keys = self.keys
        cdef int32_t* old_values = self.values
        cdef uint64_t* keys = <uint64_t*>PyMem_Malloc(size * sizeof(uint64_t))
        cdef int32_t* values = <int32_t*>PyMem_Malloc(size * sizeof(int32_t))
        cdef Py_ssize_t k, slot
        if keys == NULL or values == NULL:
            PyMem_Free(keys)
            PyMem_Free(values)
            raise MemoryError("the linearizability search could not grow its transitions table")
        memset(keys, 0xFF, size * sizeof(uint64_t))
        for k in range(old_size):
            if old_keys[k] != _EMPTY_KEY:
                slot = <Py_ssize_t>(_mix(old_keys[k]) & <uint64_t>(size - 1))
                while keys[slot] != _EMPTY_KEY:
                    slot = (slot + 1) & (size - 1)
                keys[slot] = old_keys[k]
                values[slot] = old_values[k]
        self.keys = keys
        self.values = values
        self.cache_mask = size - 1
        PyMem_Free(old_keys)
        PyMem_Free(old_values)
        return 0


cdef class Search:
    """One search of one partition (see the module docstring), run a slice at a time.

    Args:
        transitions: the table of model transitions.
        ops: each operation's id in ``transitions``; the search names
            operations by their index in this sequence.
        invoke: each operation's invocation time.
        complete: each operation's completion time (ignored when not known).
        known: whether each operation's outcome is known (``ok``): it must
            be linearized, before its completion.
        read_only: whether each operation is a completed read (rule 5).
        initial: the id of the state before any operation.
        unknown_last: search in the unknown-last order (else the time order).
        max_memo: configurations remembered at most (``math.inf``: no bound).

    Raises:
        ValueError: the sequences differ in length, or an id is out of range.
    """

    cdef Transitions table
    cdef Py_ssize_t n
    cdef Py_ssize_t tail
    # the event list: positions 0 (head) .. m + 1 (tail)
    cdef int32_t* nxt
    cdef int32_t* prv
    cdef char* is_call
    cdef int32_t* owner
    # per operation
    cdef int32_t* call_pos
    cdef int32_t* ret_pos
    cdef char* known
    cdef char* read_only
    cdef int32_t* ops
    cdef int32_t* rank  # among the ok operations, or among the others, in invocation order
    # the stack, and what each push changed
    cdef int32_t* stack_op
    cdef int32_t* stack_state
    cdef int32_t* stack_p
    cdef int32_t* stack_hi
    cdef Py_ssize_t depth
    cdef int32_t* deepest
    cdef Py_ssize_t deepest_len
    cdef int32_t deepest_state
    # the linearized set
    cdef uint64_t* kbits
    cdef uint64_t* ubits
    cdef Py_ssize_t kcount
    cdef Py_ssize_t kwords
    cdef Py_ssize_t uwords
    cdef int32_t p
    cdef int32_t hi
    cdef uint64_t* key
    # the memo table
    cdef uint64_t* memo_hash
    cdef int64_t* memo_at
    cdef int32_t* memo_len
    cdef Py_ssize_t memo_mask
    cdef Py_ssize_t memo_count
    cdef uint64_t* arena
    cdef int64_t arena_len
    cdef int64_t arena_cap
    cdef int64_t max_memo
    # the search's registers
    cdef int32_t current
    cdef Py_ssize_t remaining
    cdef Py_ssize_t record
    cdef bint peak
    cdef int64_t _steps
    cdef int32_t entry
    cdef bint unknown_turn
    cdef bint unknown_last
    cdef int _outcome

    def __cinit__(self):
        self.nxt = self.prv = self.owner = NULL
        self.is_call = self.known = self.read_only = NULL
        self.call_pos = self.ret_pos = self.ops = self.rank = NULL
        self.stack_op = self.stack_state = self.stack_p = self.stack_hi = NULL
        self.deepest = NULL
        self.kbits = self.ubits = self.key = NULL
        self.memo_hash = NULL
        self.memo_at = NULL
        self.memo_len = NULL
        self.arena = NULL

    def __init__(
        self,
        Transitions transitions not None,
        ops,
        invoke,
        complete,
        known,
        read_only,
        long long initial,
        unknown_last=False,
        max_memo=math.inf,
    ):
        cdef Py_ssize_t n = len(ops)
        cdef Py_ssize_t i, pos, m, kc = 0, uc = 0
        if not len(invoke) == len(complete) == len(known) == len(read_only) == n:
            raise ValueError(
                "ops, invoke, complete, known and read_only must have one entry per operation; "
                f"lengths {n}, {len(invoke)}, {len(complete)}, {len(known)}, {len(read_only)}"
            )
        if n > _MAX_ID // 2:
            raise ValueError(f"a search takes at most {_MAX_ID // 2} operations, not {n}")
        for op in ops:
            if not 0 <= op < transitions.count:
                raise ValueError(f"operation id {op} is not in the transitions table")
        if not 0 <= initial <= _MAX_ID:
            raise ValueError(f"initial must be a state id in 0..{_MAX_ID}, not {initial!r}")
        self.table = transitions
        self.n = n
        events = []
        for i in range(n):
            events.append((float(invoke[i]), 0, i))
            if known[i]:
                events.append((float(complete[i]), 1, i))
        events.sort()
        m = len(events)
        self.tail = m + 1
        self.nxt = <int32_t*>_grow(NULL, (m + 2) * sizeof(int32_t))
        self.prv = <int32_t*>_grow(NULL, (m + 2) * sizeof(int32_t))
        self.is_call = <char*>_grow(NULL, (m + 2) * sizeof(char))
        self.owner = <int32_t*>_grow(NULL, (m + 2) * sizeof(int32_t))
        cdef Py_ssize_t size = max(n, 1)
        self.call_pos = <int32_t*>_grow(NULL, size * sizeof(int32_t))
        self.ret_pos = <int32_t*>_grow(NULL, size * sizeof(int32_t))
        self.known = <char*>_grow(NULL, size * sizeof(char))
        self.read_only = <char*>_grow(NULL, size * sizeof(char))
        self.ops = <int32_t*>_grow(NULL, size * sizeof(int32_t))
        self.rank = <int32_t*>_grow(NULL, size * sizeof(int32_t))
        self.stack_op = <int32_t*>_grow(NULL, size * sizeof(int32_t))
        self.stack_state = <int32_t*>_grow(NULL, size * sizeof(int32_t))
        self.stack_p = <int32_t*>_grow(NULL, size * sizeof(int32_t))
        self.stack_hi = <int32_t*>_grow(NULL, size * sizeof(int32_t))
        self.deepest = <int32_t*>_grow(NULL, size * sizeof(int32_t))
        for pos in range(m + 2):
            self.nxt[pos] = <int32_t>(pos + 1 if pos <= m else m + 1)
            self.prv[pos] = <int32_t>(pos - 1 if pos >= 1 else 0)
            self.is_call[pos] = 0
            self.owner[pos] = -1
        for i in range(n):
            self.ops[i] = <int32_t>ops[i]
            self.known[i] = 1 if known[i] else 0
            self.read_only[i] = 1 if (known[i] and read_only[i]) else 0
            self.ret_pos[i] = -1
            self.call_pos[i] = 0
        pos = 0
        for _, kind, i in events:
            pos += 1
            self.owner[pos] = <int32_t>i
            if kind == 0:
                self.is_call[pos] = 1
                self.call_pos[i] = <int32_t>pos
                if self.known[i]:  # ranks in invocation order (the order of the calls)
                    self.rank[i] = <int32_t>kc
                    kc += 1
                else:
                    self.rank[i] = <int32_t>uc
                    uc += 1
            else:
                self.ret_pos[i] = <int32_t>pos
        self.kcount = kc
        self.kwords = (kc + 63) // 64 + 1  # one spare word: the scan for the next gap stops there
        self.uwords = (uc + 63) // 64
        self.kbits = <uint64_t*>_grow(NULL, self.kwords * sizeof(uint64_t))
        memset(self.kbits, 0, self.kwords * sizeof(uint64_t))
        self.ubits = <uint64_t*>_grow(NULL, max(self.uwords, 1) * sizeof(uint64_t))
        memset(self.ubits, 0, max(self.uwords, 1) * sizeof(uint64_t))
        self.key = <uint64_t*>_grow(NULL, (1 + self.kwords + self.uwords) * sizeof(uint64_t))
        self.p = 0
        self.hi = -1
        self.memo_mask = 0
        self.memo_count = 0
        self.arena_len = 0
        self.arena_cap = 0
        self.max_memo = <int64_t>min(float(max_memo), 9.0e18)
        self.current = <int32_t>initial
        self.deepest_state = <int32_t>initial
        self.deepest_len = 0
        self.depth = 0
        self.remaining = kc
        self.record = 0
        self.peak = False
        self._steps = 0
        self.entry = self.nxt[0]
        self.unknown_turn = False
        self.unknown_last = bool(unknown_last)
        self._outcome = _RUNNING

    def __dealloc__(self):
        self._free_memo()
        PyMem_Free(self.nxt)
        PyMem_Free(self.prv)
        PyMem_Free(self.is_call)
        PyMem_Free(self.owner)
        PyMem_Free(self.call_pos)
        PyMem_Free(self.ret_pos)
        PyMem_Free(self.known)
        PyMem_Free(self.read_only)
        PyMem_Free(self.ops)
        PyMem_Free(self.rank)
        PyMem_Free(self.stack_op)
        PyMem_Free(self.stack_state)
        PyMem_Free(self.stack_p)
        PyMem_Free(self.stack_hi)
        PyMem_Free(self.deepest)
        PyMem_Free(self.kbits)
        PyMem_Free(self.ubits)
        PyMem_Free(self.key)

    cdef void _free_memo(self) noexcept:
        PyMem_Free(self.memo_hash)
        PyMem_Free(self.memo_at)
        PyMem_Free(self.memo_len)
        PyMem_Free(self.arena)
        self.memo_hash = NULL
        self.memo_at = NULL
        self.memo_len = NULL
        self.arena = NULL
        self.memo_mask = 0
        self.memo_count = 0
        self.arena_len = 0
        self.arena_cap = 0

    @property
    def steps(self):
        """Steps taken so far (list entries visited)."""
        return self._steps

    @property
    def memo_size(self):
        """Configurations remembered so far."""
        return self.memo_count

    @property
    def outcome(self):
        """:data:`RUNNING`, :data:`LINEARIZABLE` or :data:`VIOLATION`."""
        return self._outcome

    @property
    def state(self):
        """The state id after :meth:`order` (once decided)."""
        return self.current if self._outcome == _LINEARIZABLE else self.deepest_state

    def order(self):
        """Linearizable: a linearization; violation: the longest valid order found;
        running: the current stack. Operations by index."""
        cdef Py_ssize_t k
        if self._outcome == _VIOLATION:
            return tuple([self.deepest[k] for k in range(self.deepest_len)])
        return tuple([self.stack_op[k] for k in range(self.depth)])

    def close(self):
        """Release the memo table now (the search cannot go on afterwards)."""
        self._free_memo()
        if self._outcome == _RUNNING:
            self._outcome = _CLOSED

    cdef inline int32_t _next_gap(self, int32_t from_rank) noexcept:
        """The first ok rank at or after ``from_rank`` that is not linearized."""
        cdef Py_ssize_t w = from_rank >> 6
        cdef uint64_t x = (~self.kbits[w]) >> (from_rank & 63)
        if x:
            return from_rank + actorfw_ctz64(x)
        w += 1
        while True:  # the spare last word is all zeros: the scan stops there
            x = ~self.kbits[w]
            if x:
                return <int32_t>(w * 64 + actorfw_ctz64(x))
            w += 1

    cdef inline Py_ssize_t _make_key(self, int32_t state) noexcept:
        """The current configuration's compact key in ``self.key``; returns its length."""
        cdef Py_ssize_t length = 1, w, last
        self.key[0] = <uint64_t><uint32_t>state | (<uint64_t><uint32_t>self.p << 32)
        if self.hi > self.p:
            last = self.hi >> 6
            for w in range(self.p >> 6, last + 1):
                self.key[length] = self.kbits[w]
                length += 1
        for w in range(self.uwords):
            self.key[length] = self.ubits[w]
            length += 1
        return length

    cdef int _seen_or_add(self, Py_ssize_t length) except -1:
        """1 if the key in ``self.key`` is remembered; else 0, and remember it if there is room."""
        cdef uint64_t h = <uint64_t>length * <uint64_t>0x9E3779B97F4A7C15
        cdef Py_ssize_t w, slot
        for w in range(length):
            h = _mix(h ^ self.key[w])
        if h == 0:
            h = 1  # 0 marks an empty slot
        if self.memo_mask:
            slot = <Py_ssize_t>(h & <uint64_t>self.memo_mask)
            while self.memo_hash[slot]:
                if (
                    self.memo_hash[slot] == h
                    and self.memo_len[slot] == length
                    and memcmp(
                        &self.arena[self.memo_at[slot]], self.key, length * sizeof(uint64_t)
                    ) == 0
                ):
                    return 1
                slot = (slot + 1) & self.memo_mask
        if self.memo_count >= self.max_memo:
            return 0
        if 2 * (self.memo_count + 1) > self.memo_mask:
            self._grow_memo()
        if self.arena_len + length > self.arena_cap:
            self.arena_cap = max(1024, 2 * self.arena_cap, self.arena_len + length)
            self.arena = <uint64_t*>_grow(self.arena, self.arena_cap * sizeof(uint64_t))
        for w in range(length):
            self.arena[self.arena_len + w] = self.key[w]
        slot = <Py_ssize_t>(h & <uint64_t>self.memo_mask)
        while self.memo_hash[slot]:
            slot = (slot + 1) & self.memo_mask
        self.memo_hash[slot] = h
        self.memo_at[slot] = self.arena_len
        self.memo_len[slot] = <int32_t>length
        self.arena_len += length
        self.memo_count += 1
        return 0

    cdef int _grow_memo(self) except -1:
        cdef Py_ssize_t old_size = self.memo_mask + 1 if self.memo_mask else 0
        cdef Py_ssize_t size = max(1024, 2 * old_size)
        cdef uint64_t* old_hash = self.memo_hash
        cdef int64_t* old_at = self.memo_at
        cdef int32_t* old_len = self.memo_len
        cdef uint64_t* hashes = <uint64_t*>PyMem_Malloc(size * sizeof(uint64_t))
        cdef int64_t* at = <int64_t*>PyMem_Malloc(size * sizeof(int64_t))
        cdef int32_t* lengths = <int32_t*>PyMem_Malloc(size * sizeof(int32_t))
        cdef Py_ssize_t k, slot
        if hashes == NULL or at == NULL or lengths == NULL:
            PyMem_Free(hashes)
            PyMem_Free(at)
            PyMem_Free(lengths)
            raise MemoryError("the linearizability search could not grow its memo table")
        memset(hashes, 0, size * sizeof(uint64_t))
        for k in range(old_size):
            if old_hash[k]:
                slot = <Py_ssize_t>(old_hash[k] & <uint64_t>(size - 1))
                while hashes[slot]:
                    slot = (slot + 1) & (size - 1)
                hashes[slot] = old_hash[k]
                at[slot] = old_at[k]
                lengths[slot] = old_len[k]
        self.memo_hash = hashes
        self.memo_at = at
        self.memo_len = lengths
        self.memo_mask = size - 1
        PyMem_Free(old_hash)
        PyMem_Free(old_at)
        PyMem_Free(old_len)
        return 0

    cdef inline void _set(self, int32_t i) noexcept:
        cdef int32_t r = self.rank[i]
        if self.known[i]:
            self.kbits[r >> 6] |= (<uint64_t>1) << (r & 63)
            if r > self.hi:
                self.hi = r
            if r == self.p:
                self.p = self._next_gap(r)
        else:
            self.ubits[r >> 6] |= (<uint64_t>1) << (r & 63)

    cdef inline void _clear(self, int32_t i, int32_t p, int32_t hi) noexcept:
        cdef int32_t r = self.rank[i]
        if self.known[i]:
            self.kbits[r >> 6] &= ~((<uint64_t>1) << (r & 63))
        else:
            self.ubits[r >> 6] &= ~((<uint64_t>1) << (r & 63))
        self.p = p
        self.hi = hi

    def run(self, long long limit):
        """Search until decided or until :attr:`steps` reaches ``limit``.

        Returns:
            :data:`RUNNING`, :data:`LINEARIZABLE` or :data:`VIOLATION`.

        Raises:
            RuntimeError: the search was closed before it was decided.
        """
        if self._outcome != _RUNNING:
            if self._outcome == _CLOSED:
                raise RuntimeError("this search was closed before it was decided")
            return self._outcome
        self._outcome = self._run(limit)
        return self._outcome

    cdef int _run(self, int64_t limit) except -1:
        cdef int32_t* nxt = self.nxt
        cdef int32_t* prv = self.prv
        cdef int32_t entry = self.entry, i, after, ret, call, old_p, old_hi
        cdef int32_t state = self.current
        cdef int64_t steps = self._steps
        cdef Py_ssize_t k, length
        cdef bint unknown_last = self.unknown_last, unknown_turn = self.unknown_turn
        cdef int outcome = _RUNNING
        cdef Transitions table = self.table
        try:
            while True:
                if not self.remaining:
                    outcome = _LINEARIZABLE
                    break
                if steps >= limit:
                    break
                steps += 1
                if self.is_call[entry]:
                    i = self.owner[entry]
                    if unknown_last and (self.known[i] != 0) == unknown_turn:
                        entry = nxt[entry]  # not this scan's kind
                        continue
                    after = table.get(self.ops[i], state)
                    if after >= 0:
                        old_p, old_hi = self.p, self.hi
                        self._set(i)
                        length = self._make_key(after)
                        if self._seen_or_add(length):
                            self._clear(i, old_p, old_hi)
                        else:
                            self.stack_op[self.depth] = i
                            self.stack_state[self.depth] = state
                            self.stack_p[self.depth] = old_p
                            self.stack_hi[self.depth] = old_hi
                            self.depth += 1
                            state = after
                            nxt[prv[entry]] = nxt[entry]  # lift the call ...
                            prv[nxt[entry]] = prv[entry]
                            ret = self.ret_pos[i]
                            if ret >= 0:  # ... and the return
                                nxt[prv[ret]] = nxt[ret]
                                prv[nxt[ret]] = prv[ret]
                                self.remaining -= 1
                            if self.depth > self.record:
                                self.record = self.depth
                                self.peak = True
                            entry = nxt[0]
                            unknown_turn = False
                            continue
                    entry = nxt[entry]
                elif unknown_last and not unknown_turn:
                    unknown_turn = True  # the ok operations here are tried: now the others
                    entry = nxt[0]
                else:  # a return (or the tail): its operation should have been linearized
                    if self.peak:
                        for k in range(self.depth):
                            self.deepest[k] = self.stack_op[k]
                        self.deepest_len = self.depth
                        self.deepest_state = state
                        self.peak = False
                    if not self.depth:
                        outcome = _VIOLATION
                        break
                    self.depth -= 1
                    i = self.stack_op[self.depth]
                    state = self.stack_state[self.depth]
                    self._clear(i, self.stack_p[self.depth], self.stack_hi[self.depth])
                    ret = self.ret_pos[i]
                    if ret >= 0:  # unlift in the reverse order
                        nxt[prv[ret]] = ret
                        prv[nxt[ret]] = ret
                        self.remaining += 1
                    call = self.call_pos[i]
                    nxt[prv[call]] = call
                    prv[nxt[call]] = call
                    unknown_turn = unknown_last and (not self.known[i] or self.read_only[i])
                    entry = <int32_t>self.tail if self.read_only[i] else nxt[call]
        finally:
            self.entry = entry
            self.current = state
            self._steps = steps
            self.unknown_turn = unknown_turn
        return outcome
