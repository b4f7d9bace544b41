"""The search of :mod:`actorfw.check.linearizability` (rules 3 to 6 there): one partition at a time.

What it takes is a partition's operations, each :func:`prepare`-d (frozen
values, a return time or +infinity); what it gives is a
:class:`SearchResult`: linearizable with a valid order, a violation with the
longest valid order it found, or out of time or steps.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Generator, Hashable, Sequence
from dataclasses import dataclass

from actorfw.check.history import Operation
from actorfw.check.models import UNKNOWN, Model, freeze

__all__ = [
    "CLOCK_EVERY",
    "FREE_COST",
    "Outcome",
    "Prepared",
    "SearchResult",
    "decide",
    "deciding",
    "prepare",
    "search",
]


@dataclass(frozen=True, slots=True)
class Prepared:
    """An operation ready for the search: frozen input and output, return time or +inf."""

    op: Operation
    value: Hashable
    output: Hashable  # UNKNOWN for info
    known: bool  # status ok: must be linearized
    invoke: float
    complete: float  # +inf for info


class Outcome(enum.Enum):
    """How a search ended."""

    LINEARIZABLE = "linearizable"
    VIOLATION = "violation"
    TIMEOUT = "timeout"
    GAVE_UP = "gave up"  # more steps than allowed: undecided, the clock aside


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A search's outcome, the order it found, the model state after it, and its steps."""

    outcome: Outcome
    order: tuple[int, ...] = ()  # linearizable: a linearization; violation: a longest valid order
    state: Hashable = None  # the model state after ``order``
    steps: int = 0


CLOCK_EVERY = 1023
"""The clock is read when ``steps & CLOCK_EVERY == 0`` (every 1,024 steps)."""

FREE_COST = 3e-7
"""Seconds reserved per memo entry for freeing the table before the deadline.

Measured at about 0.2 us an entry (a set of ``(int, state)`` tuples); the
reserve is half again as much, so a search that times out has released its
memory by the deadline."""


def search(
    ops: Sequence[Prepared],
    model: Model,
    deadline: float,
    *,
    max_steps: float = math.inf,
    unknown_last: bool = False,
    max_memo: float = math.inf,
) -> SearchResult:
    """Run :func:`_searching` to its end."""
    return _to_end(_searching(ops, model, deadline, max_steps, unknown_last, max_memo))


def deciding(
    ops: Sequence[Prepared],
    model: Model,
    deadline: float,
    *,
    max_memo: float = math.inf,
    max_steps: float = math.inf,
) -> Generator[None, None, SearchResult]:
    """Search ``ops`` in both orders of rule 4 side by side, a slice of steps each,
    until one decides: at most twice the steps of the order that suits them.

    A generator that pauses after each slice (so that several partitions can
    share the time, see :func:`~actorfw.check.linearizability.check`) and
    returns the outcome. ``max_memo`` bounds each order's memo table, and
    ``max_steps`` each order's steps (past them: ``GAVE_UP``).
    """
    runs = [_searching(ops, model, deadline, max_steps, False, max_memo)]
    if not all(p.known for p in ops):  # otherwise the two orders are the same
        runs.append(_searching(ops, model, deadline, max_steps, True, max_memo))
    while True:
        for run in runs:
            try:
                next(run)
            except StopIteration as done:
                for other in runs:
                    other.close()  # its memo table goes now, not when collected
                result: SearchResult = done.value
                return result
        yield


def decide(
    ops: Sequence[Prepared], model: Model, deadline: float, *, max_memo: float = math.inf
) -> SearchResult:
    """Run :func:`deciding` to its end."""
    return _to_end(deciding(ops, model, deadline, max_memo=max_memo))


def _to_end(run: Generator[None, None, SearchResult]) -> SearchResult:
    while True:
        try:
            next(run)
        except StopIteration as done:
            result: SearchResult = done.value
            return result


def _searching(
    ops: Sequence[Prepared],
    model: Model,
    deadline: float,
    max_steps: float,
    unknown_last: bool,
    max_memo: float = math.inf,
) -> Generator[None, None, SearchResult]:
    """Wing–Gong–Lowe search over one partition (rules 3 to 6 of the module docstring).

    A generator that pauses every 1,024 steps and returns the outcome.
    ``unknown_last``: scan each point for ``ok`` operations first, then for
    ``info`` ones (rule 4); otherwise every call in time order. The memo
    table holds at most ``max_memo`` configurations: past that the search
    goes on without remembering more (still sound and complete, it may only
    visit a configuration again).

    A violation comes with the longest valid order found (the deepest stack,
    copied when the search first backtracks from a new depth record).
    """
    n = len(ops)
    events: list[tuple[float, int, int]] = []
    for i, p in enumerate(ops):
        events.append((p.invoke, 0, i))
        if p.known:
            events.append((p.complete, 1, i))
    events.sort()
    m = len(events)
    tail = m + 1  # the list is positions 1..m between the head 0 and the tail m + 1
    nxt = [*range(1, m + 2), tail]
    prv = [0, *range(0, m + 1)]
    is_call = [False] * (m + 2)
    owner = [-1] * (m + 2)
    call_pos = [0] * n
    ret_pos = [-1] * n
    for pos, (_, kind, i) in enumerate(events, start=1):
        owner[pos] = i
        if kind == 0:
            is_call[pos] = True
            call_pos[i] = pos
        else:
            ret_pos[i] = pos
    known = [p.known for p in ops]
    fs = [p.op.f for p in ops]
    values = [p.value for p in ops]
    outputs = [p.output for p in ops]
    read_only = [p.known and model.is_read_only(p.op.f) for p in ops]
    step = model.step
    monotonic = time.monotonic

    state = model.init()
    linearized = 0
    remaining = sum(1 for p in ops if p.known)
    stack: list[tuple[int, Hashable]] = []
    seen: set[tuple[int, Hashable]] = set()
    deepest: tuple[int, ...] = ()
    deepest_state = state
    record = 0  # the greatest depth so far; ``peak``: the stack is at it, not yet copied
    peak = False
    steps = 0
    entry = nxt[0]
    unknown_turn = False  # trying operations of unknown outcome (the second pass of a level)
    while remaining:
        if not steps & CLOCK_EVERY:
            # Stop early enough to free the memo table by the deadline too: freeing
            # takes about 0.2 us an entry, which for millions is seconds.
            if monotonic() + len(seen) * FREE_COST >= deadline:
                return SearchResult(Outcome.TIMEOUT, steps=steps)
            if steps > max_steps:
                return SearchResult(Outcome.GAVE_UP, steps=steps)
            if steps:
                yield  # a slice done (see _decide)
        steps += 1
        if is_call[entry]:
            i = owner[entry]
            if unknown_last and known[i] is unknown_turn:  # not this scan's kind
                entry = nxt[entry]
                continue
            legal, after = step(state, fs[i], values[i], outputs[i])
            if legal:
                config = (linearized | (1 << i), after)
                if config not in seen:
                    if len(seen) < max_memo:  # past the bound: search on, remember no more
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
            # The completed operations that could go here are tried; now those of
            # unknown outcome, from the head again (rule 4, unknown-last order).
            unknown_turn = True
            entry = nxt[0]
        else:  # a return (or the tail): its operation should have been linearized by now
            if peak:
                deepest, deepest_state, peak = tuple(j for j, _ in stack), state, False
            if not stack:
                return SearchResult(Outcome.VIOLATION, deepest, deepest_state, steps)
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
            # A read that was legal here could always go first (rule 5): no other
            # choice here can succeed, so backtrack again (through the tail).
            unknown_turn = unknown_last and (not known[i] or read_only[i])
            entry = tail if read_only[i] else nxt[call]
    return SearchResult(Outcome.LINEARIZABLE, tuple(j for j, _ in stack), state, steps)


def prepare(op: Operation, known: bool) -> Prepared:
    """``op`` ready for the search; ``known``: its outcome is known (``ok``).

    Raises:
        TypeError: its input or output cannot be frozen (naming the operation).
    """
    try:
        value = freeze(op.value)
        output = freeze(op.output) if known else UNKNOWN
    except TypeError as exc:
        raise TypeError(f"operation {op.id} ({op.describe()}): {exc}") from None
    complete = op.complete if known and op.complete is not None else math.inf
    return Prepared(op, value, output, known, op.invoke, complete)
