"""The linearizability search's hot loop, in pure Python: the twin of ``cext/search.pyx``.

:mod:`actorfw.check.search` prepares a partition (the operations' times,
which are ``ok``, which are completed reads) and runs the search of
:mod:`actorfw.check.linearizability` (rules 3 to 6 there) with this kernel,
a slice of steps at a time. The kernel sees only small integers: operations
by index, model states by an id that the caller interns, so that the
compiled twin can run the whole loop in C.

Theory of operation
-------------------

1. **Transitions.** A :class:`Transitions` table answers "operation ``op``
   in state ``s``: legal, and into which state?" as a state id, or ``-1``
   for illegal. An operation is registered with an *opcode*: the register
   operations that the shipped models reduce to (:data:`READ`,
   :data:`WRITE`, :data:`CAS_OK`, :data:`CAS_FAIL`, :data:`CAS_MAYBE`,
   :data:`NOP`) are answered from their two arguments (state ids of the
   values they read and write) by comparing ids, since equal states have
   equal ids; any other (:data:`STEP`) asks the caller's ``step`` callback
   once per (operation, state) pair and remembers the answer, up to
   ``limit`` answers (past that it asks again each time).
2. **Events.** Each operation gives a call at its invocation and, if its
   outcome is known, a return at its completion, sorted by time with calls
   before returns at equal times (then by index), into a doubly linked list
   (positions ``1..m`` between the head ``0`` and the tail ``m + 1``).
3. **Search.** Depth-first from the head as rule 4 of the checker states it,
   in the time order or (``unknown_last``) the unknown-last order; a
   completed read undone by backtracking sends the search back once more
   (rule 5).
4. **Memo.** A configuration is (set of linearized operations, state id);
   each is entered at most once, and at most ``max_memo`` are remembered
   (past that the search goes on without remembering more). This twin keeps
   the set as a Python ``int`` bitset; the compiled twin as compact words
   (the prefix of ``ok`` operations in invocation order that are all
   linearized is one number, only the window after it is stored), with the
   same answers.
5. **Steps.** :meth:`Search.run` counts one step per list entry visited, as
   the checker's budget does, and stops when the count reaches its
   ``limit``, so that the caller can read the clock between slices. Both
   twins take the same steps and report the same results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

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

RUNNING = 0
"""What :meth:`Search.run` returns when it stopped at its step limit, undecided."""
LINEARIZABLE = 1
"""Every ``ok`` operation is linearized: :meth:`Search.order` is a linearization."""
VIOLATION = 2
"""No valid order: :meth:`Search.order` is the longest valid order found."""

STEP = 0
"""Opcode: ask the ``step`` callback (any model operation)."""
READ = 1
"""Opcode: legal iff the state is ``a``; the state stays."""
WRITE = 2
"""Opcode: always legal; the state becomes ``a``."""
CAS_OK = 3
"""Opcode: a compare-and-set that swapped: legal iff the state is ``a``; it becomes ``b``."""
CAS_FAIL = 4
"""Opcode: a compare-and-set that did not swap: legal iff the state is not ``a``; it stays."""
CAS_MAYBE = 5
"""Opcode: a compare-and-set of unknown outcome: always legal; ``b`` if the state was ``a``."""
NOP = 6
"""Opcode: always legal; the state stays (a read of unknown outcome)."""

_OPCODES = range(STEP, NOP + 1)

FREE_COST = 3e-7
"""Seconds to reserve per memo entry for freeing the table before a deadline.

A memo entry here is a tuple of an ``int`` and a state id in a ``set``: about
0.2 us each to free, measured; the reserve is half again as much."""


class Transitions:
    """Model transitions by (operation, state id), for any number of searches.

    Args:
        step: ``step(op, state)`` for an operation registered with opcode
            :data:`STEP`: the id of the state after it, or ``-1`` if it is
            illegal in ``state``. Called once per pair while fewer than
            ``limit`` answers are remembered.
        limit: answers remembered at most (a float, so ``math.inf`` lifts
            the bound).

    Example::

        table = Transitions(lambda op, state: -1, 100)
        write = table.add(WRITE, 1, 0)
        assert table.lookup(write, 0) == 1
    """

    def __init__(self, step: Callable[[int, int], int], limit: float = math.inf) -> None:
        if not callable(step):
            raise TypeError(f"step must be callable, not {type(step).__name__}")
        self._step = step
        self._limit = limit
        self._kinds: list[int] = []
        self._a: list[int] = []
        self._b: list[int] = []
        self._known: dict[tuple[int, int], int] = {}

    def add(self, kind: int, a: int = 0, b: int = 0) -> int:
        """Register an operation with opcode ``kind`` and its state ids ``a``, ``b``.

        Returns:
            The operation's id, for :meth:`lookup` and :class:`Search`.

        Raises:
            ValueError: ``kind`` is not an opcode, or ``a`` or ``b`` is negative.
        """
        if kind not in _OPCODES:
            raise ValueError(f"kind must be an opcode {STEP}..{NOP}, not {kind!r}")
        if a < 0 or b < 0 or a > _MAX_ID or b > _MAX_ID:
            raise ValueError(f"state ids must be in 0..{_MAX_ID}, not {a!r} and {b!r}")
        self._kinds.append(kind)
        self._a.append(a)
        self._b.append(b)
        return len(self._kinds) - 1

    def __len__(self) -> int:
        """How many operations are registered."""
        return len(self._kinds)

    @property
    def remembered(self) -> int:
        """How many answers of the ``step`` callback are remembered."""
        return len(self._known)

    def lookup(self, op: int, state: int) -> int:
        """The id of the state after operation ``op`` in state ``state``, or ``-1`` if illegal.

        Raises:
            IndexError: ``op`` is not a registered operation.
            ValueError: the ``step`` callback answered something other than
                a state id or ``-1``.
        """
        if not 0 <= op < len(self._kinds):
            raise IndexError(f"no operation {op} (registered: {len(self._kinds)})")
        kind = self._kinds[op]
        if kind == READ:
            return state if state == self._a[op] else -1
        if kind == WRITE:
            return self._a[op]
        if kind == CAS_OK:
            return self._b[op] if state == self._a[op] else -1
        if kind == CAS_FAIL:
            return state if state != self._a[op] else -1
        if kind == CAS_MAYBE:
            return self._b[op] if state == self._a[op] else state
        if kind == NOP:
            return state
        pair = (op, state)
        after = self._known.get(pair)
        if after is None:
            after = self._step(op, state)
            if isinstance(after, bool) or not isinstance(after, int) or not -1 <= after <= _MAX_ID:
                raise ValueError(
                    f"step({op}, {state}) must return a state id in 0..{_MAX_ID} or -1, "
                    f"not {after!r}"
                )
            if len(self._known) < self._limit:
                self._known[pair] = after
        return after


_MAX_ID = 2**31 - 2


class Search:
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

    def __init__(
        self,
        transitions: Transitions,
        ops: Sequence[int],
        invoke: Sequence[float],
        complete: Sequence[float],
        known: Sequence[bool],
        read_only: Sequence[bool],
        initial: int,
        unknown_last: bool = False,
        max_memo: float = math.inf,
    ) -> None:
        n = len(ops)
        if not len(invoke) == len(complete) == len(known) == len(read_only) == n:
            raise ValueError(
                "ops, invoke, complete, known and read_only must have one entry per operation; "
                f"lengths {n}, {len(invoke)}, {len(complete)}, {len(known)}, {len(read_only)}"
            )
        for op in ops:
            if not 0 <= op < len(transitions):
                raise ValueError(f"operation id {op} is not in the transitions table")
        if not 0 <= initial <= _MAX_ID:
            raise ValueError(f"initial must be a state id in 0..{_MAX_ID}, not {initial!r}")
        self._table = transitions
        events: list[tuple[float, int, int]] = []
        for i in range(n):
            events.append((float(invoke[i]), 0, i))
            if known[i]:
                events.append((float(complete[i]), 1, i))
        events.sort()
        m = len(events)
        self._tail = m + 1
        self._nxt = [*range(1, m + 2), m + 1]
        self._prv = [0, *range(0, m + 1)]
        self._is_call = [False] * (m + 2)
        self._owner = [-1] * (m + 2)
        self._call_pos = [0] * n
        self._ret_pos = [-1] * n
        for pos, (_, kind, i) in enumerate(events, start=1):
            self._owner[pos] = i
            if kind == 0:
                self._is_call[pos] = True
                self._call_pos[i] = pos
            else:
                self._ret_pos[i] = pos
        self._ops = list(ops)
        self._known = [bool(k) for k in known]
        self._read_only = [bool(known[i]) and bool(read_only[i]) for i in range(n)]
        self._unknown_last = bool(unknown_last)
        self._max_memo = max_memo
        self._state = initial
        self._linearized = 0
        self._remaining = sum(self._known)
        self._stack: list[tuple[int, int]] = []
        self._seen: set[tuple[int, int]] = set()
        self._deepest: tuple[int, ...] = ()
        self._deepest_state = initial
        self._record = 0
        self._peak = False
        self._steps = 0
        self._entry = self._nxt[0]
        self._unknown_turn = False
        self._outcome = RUNNING

    @property
    def steps(self) -> int:
        """Steps taken so far (list entries visited)."""
        return self._steps

    @property
    def memo_size(self) -> int:
        """Configurations remembered so far."""
        return len(self._seen)

    @property
    def outcome(self) -> int:
        """:data:`RUNNING`, :data:`LINEARIZABLE` or :data:`VIOLATION`."""
        return self._outcome

    @property
    def state(self) -> int:
        """The state id after :meth:`order` (once decided)."""
        return self._state if self._outcome == LINEARIZABLE else self._deepest_state

    def order(self) -> tuple[int, ...]:
        """Linearizable: a linearization; violation: the longest valid order found;
        running: the current stack. Operations by index."""
        if self._outcome == VIOLATION:
            return self._deepest
        return tuple(i for i, _ in self._stack)

    def close(self) -> None:
        """Release the memo table now (the search cannot go on afterwards)."""
        self._seen = set()
        if self._outcome == RUNNING:
            self._outcome = -1

    def run(self, limit: int) -> int:
        """Search until decided or until :attr:`steps` reaches ``limit``.

        Returns:
            :data:`RUNNING`, :data:`LINEARIZABLE` or :data:`VIOLATION`.

        Raises:
            RuntimeError: the search was closed before it was decided.
        """
        if self._outcome != RUNNING:
            if self._outcome < 0:
                raise RuntimeError("this search was closed before it was decided")
            return self._outcome
        nxt, prv, is_call, owner = self._nxt, self._prv, self._is_call, self._owner
        call_pos, ret_pos, known, read_only = (
            self._call_pos,
            self._ret_pos,
            self._known,
            self._read_only,
        )
        ops, lookup, seen, stack = self._ops, self._table.lookup, self._seen, self._stack
        unknown_last, max_memo, tail = self._unknown_last, self._max_memo, self._tail
        state, linearized, remaining = self._state, self._linearized, self._remaining
        record, peak, steps = self._record, self._peak, self._steps
        entry, unknown_turn = self._entry, self._unknown_turn
        outcome = RUNNING
        while True:
            if not remaining:
                outcome = LINEARIZABLE
                break
            if steps >= limit:
                break
            steps += 1
            if is_call[entry]:
                i = owner[entry]
                if unknown_last and known[i] is unknown_turn:  # not this scan's kind
                    entry = nxt[entry]
                    continue
                after = lookup(ops[i], state)
                if after >= 0:
                    config = (linearized | (1 << i), after)
                    if config not in seen:
                        if len(seen) < max_memo:
                            seen.add(config)
                        stack.append((i, state))
                        state = after
                        linearized = config[0]
                        nxt[prv[entry]] = nxt[entry]  # lift the call ...
                        prv[nxt[entry]] = prv[entry]
                        ret = ret_pos[i]
                        if ret >= 0:  # ... and the return
                            nxt[prv[ret]] = nxt[ret]
                            prv[nxt[ret]] = prv[ret]
                            remaining -= 1
                        if len(stack) > record:
                            record, peak = len(stack), True
                        entry = nxt[0]
                        unknown_turn = False
                        continue
                entry = nxt[entry]
            elif unknown_last and not unknown_turn:
                unknown_turn = True  # the ok operations here are tried: now the unknown ones
                entry = nxt[0]
            else:  # a return (or the tail): its operation should have been linearized
                if peak:
                    self._deepest = tuple(j for j, _ in stack)
                    self._deepest_state, peak = state, False
                if not stack:
                    outcome = VIOLATION
                    break
                i, state = stack.pop()
                linearized ^= 1 << i
                ret = ret_pos[i]
                if ret >= 0:  # unlift in the reverse order
                    nxt[prv[ret]] = ret
                    prv[nxt[ret]] = ret
                    remaining += 1
                call = call_pos[i]
                nxt[prv[call]] = call
                prv[nxt[call]] = call
                unknown_turn = unknown_last and (not known[i] or read_only[i])
                entry = tail if read_only[i] else nxt[call]
        self._state, self._linearized, self._remaining = state, linearized, remaining
        self._record, self._peak, self._steps = record, peak, steps
        self._entry, self._unknown_turn = entry, unknown_turn
        self._outcome = outcome
        return outcome
