"""Checking a recorded history for linearizability, and shrinking a violation to a witness.

A history is *linearizable* against a sequential model when every operation
can be given a single instant, between its invocation and its completion, so
that the operations taken one at a time in the order of those instants are a
legal run of the model with the outputs the clients saw (Herlihy and Wing,
1990). :func:`check` decides it with the search of Wing and Gong (1993) as
improved by Lowe (2017), the algorithm of Knossos and Porcupine.

Theory of operation
-------------------

1. **Preparation.** ``fail`` operations never took effect and are dropped.
   ``info`` operations (outcome unknown) complete at +infinity; those the
   model calls read-only are dropped too, as they can neither constrain nor
   change anything. Values are frozen (:func:`actorfw.check.models.freeze`).
2. **Partitions.** When the model is P-compositional (its
   :meth:`~actorfw.check.models.Model.partition_key` says so, as for
   :class:`~actorfw.check.models.KeyValue`), each key's operations are
   checked alone: the history is linearizable iff every partition is.
3. **Events.** Each operation gives a *call* event at its invocation and,
   if ``ok``, a *return* event at its completion; ``info`` operations have no
   return. Events are sorted by time, calls before returns at equal times
   (so touching operations count as concurrent: never a false alarm), into a
   doubly linked list.
4. **Search.** Depth-first, from the head of the list: at a call, try to
   *linearize* that operation now: if the model accepts it in the current
   state, push (operation, old state), remove its call and return from the
   list ("lift") and start again from the head; if not, move to the next
   entry. Reaching a return means the operation it ends was not
   linearized while it could be: backtrack by popping the last operation,
   restoring its state and its entries, and trying the entry after its
   call. That is the *time order*. In the *unknown-last order* each point
   is scanned twice, for ``ok`` operations first and then, from the head
   again, for ``info`` ones; a return backtracks only in the second scan,
   and a popped operation's next entry is tried in the scan that chose it.
   The first order suits a history whose ``info`` operations mostly took
   effect (tried where they were invoked, they are found at once), the
   second one whose ``info`` operations mostly did not (a client cut off
   from the cluster gives up on commands that never reached it); with many
   of them in flight, the wrong order explores every subset. Both are
   complete. A partition with ``info`` operations is searched in both
   orders side by side, 1,024 steps of one then of the other, until one
   decides: at most twice the steps of the order that suits it. The history
   is linearizable as soon as every ``ok`` operation is linearized (the
   ``info`` ones left over are those that never took effect); it is not if
   the stack is empty when backtracking is needed.
5. **Pruning.** A configuration is the set of linearized operations (a
   bitset in a Python ``int``) and the model state. The search enters each
   configuration at most once (Lowe's memoization), as one that was entered
   before either led to success (the search would have stopped) or cannot.
   And a completed read (:meth:`~actorfw.check.models.Model.is_read_only`)
   that is legal where it is tried might as well be linearized there: any
   valid order that places it later stays valid with it moved here (it
   changes no state, and everything that completed before it was invoked is
   already placed). So when backtracking undoes such a read, no other choice
   at that point is tried either; the search backtracks once more.
6. **Budget.** The only clock read is :func:`time.monotonic`, every 1024
   search steps (including before the first), against ``timeout``. When it
   runs out the verdict is ``unknown``: no answer rather than a wrong one.
7. **Minimization.** For a violation, the failing partition is shrunk to a
   small witness. Removing an operation is not always a weakening (drop the
   write a read returned and the read becomes "a value nobody wrote", true
   but not the bug), so a candidate must keep, for each operation it keeps,
   the write that operation read from. That comes from a *reference order*:
   set aside the first operation the longest valid order could not place
   (a *culprit*) and search again, until the rest is linearizable; in its
   linearization an operation read from the last operation before it that
   changed the state, unless it ignores the state (a put). Any subset of a
   valid order closed that way is itself linearizable, so the witness holds
   a real conflict, not a hole made by the shrinking. A culprit needs one of
   the operations that wrote a value it observed
   (:meth:`~actorfw.check.models.Model.observes`). Then: cut to a window
   around the first culprit (drop what was invoked after it completed, and
   as much as still fails of what completed before it), and run delta
   debugging (Zeller's ddmin), removing chunks and then single operations
   while the rest still fails. A candidate that needs many more search
   steps than refuting the whole partition did is left undecided and counts
   as not failing (dropping reads can free the order of many writes). When
   ddmin finishes with every single removal decided, the witness is
   1-minimal: removing any one operation makes it linearizable or drops a
   write that a kept operation read.

Complexity: linearizability checking is NP-complete (Gibbons and Korach,
1997). The configurations are at most ``2**n`` sets times the reachable
states, but the search visits only those reachable in real-time order: for
``c`` operations in flight at any time, at most about ``n * 2**c`` sets, and
a linearizable history is usually found on the first descent, in ``O(n * c)``
steps. ``info`` operations stay in flight to the end, so each one on a key
can double that key's search in the order that does not suit the history
(rule 4); refuting pays for every subset either way. A violation must rule
out every reachable configuration, and each ddmin round repeats the search
on a smaller history.
"""

from __future__ import annotations

import enum
import math
import textwrap
import time
from collections.abc import Callable, Generator, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from actorfw.check.history import History, Operation, Status
from actorfw.check.models import UNKNOWN, Model, freeze

__all__ = ["CheckResult", "Verdict", "check"]


class Verdict(enum.StrEnum):
    """The answer of :func:`check`."""

    OK = "ok"
    """Linearizable: every partition has a valid order."""
    VIOLATION = "violation"
    """Not linearizable: some partition has no valid order (a proof, not a guess)."""
    UNKNOWN = "unknown"
    """The time budget ran out before every partition was decided, and none violated."""


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check` found. ``str(result)`` explains it in a few lines.

    Attributes:
        verdict: ok, violation or unknown.
        model: the model's name.
        partitions: how many partitions (keys) the history has.
        operations_checked: operations searched (without ``fail`` ones and
            reads of unknown outcome).
        elapsed: seconds the check took (monotonic clock).
        key: the partition of the violation (the first, in history order),
            or for ``unknown`` the first one left undecided; else ``None``.
        violating_keys: every partition found not linearizable.
        unknown_keys: partitions left undecided when the budget ran out.
        operations: the operations of partition ``key`` as checked.
        minimal: for a violation, the smallest non-linearizable sub-history of
            ``operations`` found (all of them if minimization was off).
        minimized: whether minimization ran to the end (``minimal`` is 1-minimal).
        longest_order: the longest valid order of ``minimal`` the search found.
        state_after: the model state after ``longest_order``, described.
        stuck: why each other operation of ``minimal`` cannot come next, one
            line each.
    """

    verdict: Verdict
    model: str
    partitions: int
    operations_checked: int
    elapsed: float
    key: Hashable = None
    violating_keys: tuple[Hashable, ...] = ()
    unknown_keys: tuple[Hashable, ...] = ()
    operations: tuple[Operation, ...] = ()
    minimal: tuple[Operation, ...] = ()
    minimized: bool = False
    longest_order: tuple[Operation, ...] = ()
    state_after: str | None = None
    stuck: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the verdict is :attr:`Verdict.OK`."""
        return self.verdict is Verdict.OK

    def __str__(self) -> str:
        if self.verdict is Verdict.OK:
            return (
                f"linearizable ({self.model} model): a valid order exists for "
                f"{_plural(self.operations_checked, 'operation')} in "
                f"{_plural(self.partitions, 'partition')} (checked in {self.elapsed:.3g} s)"
            )
        undecided = (
            f"{_plural(len(self.unknown_keys), 'partition')} of {self.partitions} left undecided "
            f"when the time budget ran out ({_keys(self.unknown_keys)})"
        )
        if self.verdict is Verdict.UNKNOWN:
            return (
                f"unknown ({self.model} model): no violation found, but {undecided}; "
                "give check() a larger timeout, or record fewer concurrent or info operations"
            )
        lines = textwrap.wrap(
            f"not linearizable ({self.model} model): the {len(self.operations)} operations on "
            f"key {self.key!r} have no order that is consistent with both their real-time "
            f"order and the model"
            + (
                f" ({len(self.violating_keys)} of {self.partitions} keys violate: "
                f"{_keys(self.violating_keys)})"
                if len(self.violating_keys) > 1
                else ""
            )
            + ".",
            _WIDTH,
        )
        if self.unknown_keys:
            lines += textwrap.wrap(f"Also {undecided}.", _WIDTH)
        if self.minimized:
            how = (
                "removing any one of them makes it linearizable or leaves a read "
                "without the write it read"
            )
        else:
            how = (
                "not minimized to the end: minimization was off or the time budget ran "
                "out, so it may shrink further"
            )
        lines += [
            "",
            *textwrap.wrap(
                f"Smallest non-linearizable sub-history found: {len(self.minimal)} of "
                f"{len(self.operations)} operations ({how}):",
                _WIDTH,
            ),
            "",
            *_table(self.minimal),
        ]
        if self.state_after is not None:
            shown = self.longest_order[-_SHOWN:]
            order = ", ".join(op.describe() for op in shown) or "nothing"
            if len(self.longest_order) > len(shown):
                order = f"{len(self.longest_order) - len(shown)} operations, then {order}"
            lines += [
                "",
                *textwrap.wrap(
                    f"The longest valid order of these that the search found: {order}; "
                    f"the state is then {self.state_after}, and no other operation can "
                    "come next:",
                    _WIDTH,
                ),
                *(f"  - {why}" for why in self.stuck),
            ]
        return "\n".join(lines)


_WIDTH = 88
_SHOWN = 40  # operations listed in a report, at most
_STUCK_SHOWN = 12  # operations whose reasons are listed, at most


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _keys(keys: Sequence[Hashable], limit: int = 5) -> str:
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _table(ops: Iterable[Operation]) -> list[str]:
    ordered = sorted(ops, key=lambda o: (o.invoke, o.id))
    rows = [("id", "client", "invoke", "complete", "operation")]
    for op in ordered[:_SHOWN]:
        end = "inf" if op.complete is None or op.status is Status.INFO else f"{op.complete:g}"
        rows.append((str(op.id), str(op.client), f"{op.invoke:g}", end, op.describe()))
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    return [
        "  "
        + "  ".join(
            cell.rjust(w) if k != 1 else cell.ljust(w)
            for k, (cell, w) in enumerate(zip(row, widths, strict=False))
        )
        + "  "
        + row[4]
        for row in rows
    ] + ([f"  ... and {len(ordered) - _SHOWN} more"] if len(ordered) > _SHOWN else [])


# -- the search ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Prepared:
    """An operation ready for the search: frozen input and output, return time or +inf."""

    op: Operation
    value: Hashable
    output: Hashable  # UNKNOWN for info
    known: bool  # status ok: must be linearized
    invoke: float
    complete: float  # +inf for info


class _Outcome(enum.Enum):
    LINEARIZABLE = "linearizable"
    VIOLATION = "violation"
    TIMEOUT = "timeout"
    GAVE_UP = "gave up"  # more steps than allowed: undecided, the clock aside


@dataclass(frozen=True, slots=True)
class _Search:
    outcome: _Outcome
    order: tuple[int, ...] = ()  # linearizable: a linearization; violation: a longest valid order
    state: Hashable = None  # the model state after ``order``
    steps: int = 0


_CLOCK_EVERY = 1023  # read the clock when steps & _CLOCK_EVERY == 0


def _search(
    ops: Sequence[_Prepared],
    model: Model,
    deadline: float,
    *,
    max_steps: float = math.inf,
    unknown_last: bool = False,
) -> _Search:
    """Run :func:`_searching` to its end."""
    return _first_to_end([_searching(ops, model, deadline, max_steps, unknown_last)])


def _decide(ops: Sequence[_Prepared], model: Model, deadline: float) -> _Search:
    """Search ``ops`` in both orders of rule 4 side by side, a slice of steps each,
    until one decides: at most twice the steps of the order that suits them."""
    if all(p.known for p in ops):
        return _search(ops, model, deadline)  # the two orders are the same
    return _first_to_end(
        [
            _searching(ops, model, deadline, math.inf, unknown_last=False),
            _searching(ops, model, deadline, math.inf, unknown_last=True),
        ]
    )


def _first_to_end(runs: list[Generator[None, None, _Search]]) -> _Search:
    """Advance ``runs`` a slice each in turn; the outcome of the first to end."""
    while True:
        for run in runs:
            try:
                next(run)
            except StopIteration as done:
                result: _Search = done.value
                return result


def _searching(
    ops: Sequence[_Prepared],
    model: Model,
    deadline: float,
    max_steps: float,
    unknown_last: bool,
) -> Generator[None, None, _Search]:
    """Wing–Gong–Lowe search over one partition (rules 3 to 6 of the module docstring).

    A generator that pauses every 1,024 steps and returns the outcome.
    ``unknown_last``: scan each point for ``ok`` operations first, then for
    ``info`` ones (rule 4); otherwise every call in time order.

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
        if not steps & _CLOCK_EVERY:
            if monotonic() >= deadline:
                return _Search(_Outcome.TIMEOUT, steps=steps)
            if steps > max_steps:
                return _Search(_Outcome.GAVE_UP, steps=steps)
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
                return _Search(_Outcome.VIOLATION, deepest, deepest_state, steps)
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
    return _Search(_Outcome.LINEARIZABLE, tuple(j for j, _ in stack), state, steps)


# -- minimization --------------------------------------------------------------------


class _OutOfTime(Exception):
    """The budget ran out during minimization."""


_MAX_CULPRITS = 8  # operations set aside, one search each, to find a reference order


def _minimize(
    ops: Sequence[_Prepared], model: Model, deadline: float, refuted: _Search
) -> tuple[list[_Prepared], bool]:
    """Shrink a non-linearizable partition (rule 7). Returns (witness, 1-minimal?).

    ``refuted`` is the search that found ``ops`` not linearizable. First cut
    the partition to a window around the first operation no valid order
    explains (the *culprit*): drop what was invoked after it completed, then
    as much as possible of what completed before it; then run ddmin. A
    candidate whose search needs many more steps than refuting all of
    ``ops`` took is left undecided (dropping reads can free the order of many
    writes and blow the search up) and counts as not failing.
    """
    reference = _reference_order(ops, model, deadline, refuted)
    if reference is None:
        return list(ops), False
    order, culprits = reference
    needs = _dependencies(ops, model, order, culprits)
    max_steps = _GIVE_UP_FACTOR * refuted.steps + _GIVE_UP_SLACK

    def admissible(subset: Iterable[int], kept: set[int]) -> bool:
        return all(not sources.isdisjoint(kept) for i in subset for sources in needs.get(i, ()))

    def fails(subset: Sequence[int]) -> bool | None:
        if not admissible(subset, set(subset)):
            return False  # it would lose the write that a kept operation read
        outcome = _search([ops[i] for i in subset], model, deadline, max_steps=max_steps).outcome
        if outcome is _Outcome.TIMEOUT:
            raise _OutOfTime
        return None if outcome is _Outcome.GAVE_UP else outcome is _Outcome.VIOLATION

    def closure(subset: Iterable[int]) -> list[int]:
        kept = set(subset)
        todo = list(kept)
        while todo:
            for sources in needs.get(todo.pop(), ()):
                if sources.isdisjoint(kept):
                    latest = max(sources, key=lambda j: (ops[j].invoke, j))
                    kept.add(latest)
                    todo.append(latest)
        return sorted(kept)

    items = list(range(len(ops)))
    try:
        if culprits:
            culprit = min(culprits, key=lambda i: (ops[i].complete, i))
            cut = closure(i for i in items if ops[i].invoke <= ops[culprit].complete)
            if len(cut) < len(items) and fails(cut):
                items = cut
            starts = sorted(
                {ops[i].complete for i in items if ops[i].complete < ops[culprit].invoke}
            )
            low, high = 0, len(starts) - 1
            while low <= high:  # the latest start whose window still fails
                middle = (low + high) // 2
                cut = closure([culprit, *(i for i in items if ops[i].complete >= starts[middle])])
                if fails(cut):
                    items, low = cut, middle + 1
                else:
                    high = middle - 1
        items, decided = _ddmin(items, fails)
    except _OutOfTime as stop:
        return [ops[i] for i in (stop.args[0] if stop.args else items)], False
    return [ops[i] for i in items], decided


def _reference_order(
    ops: Sequence[_Prepared], model: Model, deadline: float, refuted: _Search
) -> tuple[list[int], list[int]] | None:
    """A model-legal order of most operations, and the ``ok`` ones it leaves out (culprits).

    Set aside the unplaced ``ok`` operation that completes first after the
    longest valid order found, search again, and repeat until what remains
    is linearizable: its linearization is the reference. After
    ``_MAX_CULPRITS`` tries, extend the longest valid order instead with the
    other ``ok`` operations in invocation order where the model allows
    (legal, though maybe not in real-time order). ``None`` if out of time.
    """
    remaining = list(range(len(ops)))
    culprits: list[int] = []
    searched = refuted
    for _ in range(_MAX_CULPRITS):
        if searched.outcome is _Outcome.LINEARIZABLE:
            return [remaining[j] for j in searched.order], culprits
        placed = set(searched.order)
        first = min(
            (j for j, i in enumerate(remaining) if ops[i].known and j not in placed),
            key=lambda j: (ops[remaining[j]].complete, j),
        )
        culprits.append(remaining.pop(first))
        searched = _search([ops[i] for i in remaining], model, deadline)
        if searched.outcome is _Outcome.TIMEOUT:
            return None
    if searched.outcome is _Outcome.LINEARIZABLE:
        return [remaining[j] for j in searched.order], culprits
    order = [remaining[j] for j in searched.order]
    placed = set(order)
    state = searched.state
    rest = [i for i in remaining if ops[i].known and i not in placed]
    for i in sorted(rest, key=lambda i: (ops[i].invoke, i)):
        legal, after = model.step(state, ops[i].op.f, ops[i].value, ops[i].output)
        if legal:
            order.append(i)
            state = after
        else:
            culprits.append(i)
    return order, culprits


def _dependencies(
    ops: Sequence[_Prepared], model: Model, order: Sequence[int], culprits: Sequence[int]
) -> dict[int, list[frozenset[int]]]:
    """For each operation, sets of operations of which a witness keeping it must keep one.

    In the reference ``order``, an operation read from the last operation
    before it that changed the state (none when it read the initial state,
    or when it ignores the state as a put does). A culprit falls back on the
    model's :meth:`~Model.observes` and :meth:`~Model.installs`: it needs one
    of the operations that wrote a value it observed.
    """
    needs: dict[int, list[frozenset[int]]] = {}
    state = model.init()
    last_change: int | None = None
    for i in order:
        p = ops[i]
        legal, after = model.step(state, p.op.f, p.value, p.output)
        if not legal:  # a broken invariant: the order was checked step by step
            raise AssertionError(f"reference order: {p.op} is not legal in {state!r}")
        if last_change is not None and not _blind(model, p, after):
            needs[i] = [frozenset((last_change,))]
        if after != state:
            last_change = i
        state = after
    writers: dict[Hashable, set[int]] = {}
    for i, p in enumerate(ops):
        for value in model.installs(p.op.f, p.value, p.output):
            writers.setdefault(value, set()).add(i)
    for i in culprits:
        p = ops[i]
        for value in model.observes(p.op.f, p.value, p.output):
            sources = frozenset(writers.get(value, ())) - {i}
            if sources:
                needs.setdefault(i, []).append(sources)
    return needs


_PROBE = object()  # a state no model knows: an operation that ignores the state is blind to it


def _blind(model: Model, p: _Prepared, after: Hashable) -> bool:
    """Whether ``p`` ignores the state: legal from a state no model knows, to the same end."""
    try:
        legal, probed = model.step(_PROBE, p.op.f, p.value, p.output)
    except Exception:  # a model may reject a state it does not know: not blind
        return False
    return legal and probed == after


_GIVE_UP_FACTOR = 4
_GIVE_UP_SLACK = 50_000


def _ddmin(
    items: list[int], fails: Callable[[Sequence[int]], bool | None]
) -> tuple[list[int], bool]:
    """Zeller's ddmin: a sublist of ``items`` (which fails) that still fails.

    ``fails`` may answer ``None`` (undecided), taken as "does not fail".
    Returns the sublist and whether it is 1-minimal: every single removal
    was decided and does not fail.

    Raises:
        _OutOfTime: with the smallest failing list found so far as its argument.
    """
    granularity = 2
    decided = True
    try:
        while len(items) >= 2:
            size = len(items)
            bounds = [size * k // granularity for k in range(granularity + 1)]
            decided = True
            smaller = None
            for k in range(granularity):
                answer = fails(items[bounds[k] : bounds[k + 1]])
                decided = decided and answer is not None
                if answer:
                    smaller = items[bounds[k] : bounds[k + 1]]
                    break
            if smaller is not None:
                items, granularity = smaller, 2
                continue
            if granularity > 2:  # with two chunks, the complements are the chunks
                for k in range(granularity):
                    complement = items[: bounds[k]] + items[bounds[k + 1] :]
                    answer = fails(complement)
                    decided = decided and answer is not None
                    if answer:
                        smaller = complement
                        break
                if smaller is not None:
                    items, granularity = smaller, max(granularity - 1, 2)
                    continue
            if granularity >= size:
                break
            granularity = min(size, 2 * granularity)
    except _OutOfTime:
        raise _OutOfTime(items) from None
    return items, decided or len(items) == 1


# -- the entry point -----------------------------------------------------------------


def check(
    history: History | Iterable[Operation],
    model: Model,
    timeout: float | None = None,
    *,
    minimize: bool = True,
) -> CheckResult:
    """Check whether ``history`` is linearizable against ``model``.

    Args:
        history: a :class:`~actorfw.check.history.History`, or its operations.
        model: the sequential specification, such as
            :class:`~actorfw.check.models.KeyValue` or
            :class:`~actorfw.check.models.Register`.
        timeout: wall-clock seconds for the whole check, minimization
            included (``None``: no limit). When it runs out before every
            partition is decided the verdict is ``unknown``; a violation
            already found stays a violation, with the witness found so far.
        minimize: shrink a violation to a small witness (rule 7).

    Returns:
        A :class:`CheckResult`; ``str()`` of it explains the verdict.

    Raises:
        TypeError: ``model`` is not a Model, or an operation is not an Operation.
        ValueError: ``timeout`` is negative, or the model cannot interpret an
            operation (an unknown operation name, a malformed value); the
            message names the operation.

    Example::

        history = History()
        a = history.invoke("c1", "put", "x", 1, time=0.0)
        history.ok(a, None, time=1.0)
        b = history.invoke("c2", "get", "x", time=2.0)
        history.ok(b, None, time=3.0)  # reads "absent" after the put completed
        result = check(history, KeyValue())
        assert result.verdict is Verdict.VIOLATION and result.key == "x"
    """
    if not isinstance(model, Model):
        raise TypeError(
            f"model must be an actorfw.check Model such as KeyValue() or Register(), "
            f"not {type(model).__name__}"
            + (" (did you pass the class? call it)" if isinstance(model, type) else "")
        )
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0
    ):
        raise ValueError(f"timeout must be None or a number of seconds >= 0, not {timeout!r}")
    start = time.monotonic()
    deadline = math.inf if timeout is None else start + timeout

    partitions: dict[Hashable, list[_Prepared]] = {}
    for op in history.operations if isinstance(history, History) else history:
        if not isinstance(op, Operation):
            raise TypeError(
                f"a history holds Operation records, not {type(op).__name__}; pass a History"
            )
        model.validate(op)
        key = model.partition_key(op)
        part = partitions.setdefault(key, [])
        if op.status is Status.FAIL:
            continue
        known = op.status is Status.OK
        if not known and model.is_read_only(op.f):
            continue
        part.append(_prepare(op, known))

    violating: dict[Hashable, _Search] = {}  # key -> the search that refuted it
    undecided: list[Hashable] = []
    for key, ops in partitions.items():
        searched = _decide(ops, model, deadline)
        if searched.outcome is _Outcome.VIOLATION:
            violating[key] = searched
        elif searched.outcome is _Outcome.TIMEOUT:
            undecided.append(key)

    checked = sum(len(ops) for ops in partitions.values())
    common: dict[str, Any] = {
        "model": model.name,
        "partitions": len(partitions),
        "operations_checked": checked,
        "violating_keys": tuple(violating),
        "unknown_keys": tuple(undecided),
    }
    if not violating:
        verdict = Verdict.UNKNOWN if undecided else Verdict.OK
        return CheckResult(
            verdict,
            elapsed=time.monotonic() - start,
            key=undecided[0] if undecided else None,
            **common,
        )

    key = next(iter(violating))
    ops = partitions[key]
    if minimize:
        witness, minimized = _minimize(ops, model, deadline, violating[key])
    else:
        witness, minimized = list(ops), False
    # The refuting search already explains the whole partition; a witness needs its own.
    explained = violating[key] if len(witness) == len(ops) else _search(witness, model, deadline)
    order: tuple[Operation, ...] = ()
    state_after = None
    stuck: tuple[str, ...] = ()
    if explained.outcome is _Outcome.VIOLATION:
        order = tuple(witness[i].op for i in explained.order)
        state_after = model.describe_state(explained.state)
        stuck = _stuck(witness, explained, model)
    return CheckResult(
        Verdict.VIOLATION,
        elapsed=time.monotonic() - start,
        key=key,
        operations=tuple(p.op for p in ops),
        minimal=tuple(p.op for p in witness),
        minimized=minimized,
        longest_order=order,
        state_after=state_after,
        stuck=stuck,
        **common,
    )


def _stuck(witness: Sequence[_Prepared], explained: _Search, model: Model) -> tuple[str, ...]:
    """Why each operation left out of the longest order cannot be linearized next."""
    done = set(explained.order)
    left = sorted((p for i, p in enumerate(witness) if i not in done), key=lambda p: p.invoke)
    state = model.describe_state(explained.state)
    first = min((q for q in left if q.known), key=lambda q: q.complete, default=None)
    reasons = []
    for p in left[:_STUCK_SHOWN]:
        if first is not None and first.complete < p.invoke:
            why = f"must come after #{first.op.id} {first.op.describe()}, which completed first"
        elif not model.step(explained.state, p.op.f, p.value, p.output)[0]:
            why = f"not legal when the state is {state}"
        else:
            why = "legal there, but every order that goes on from it fails later"
        if not p.known:
            why += " (its outcome is unknown, so leaving it out was tried too)"
        reasons.append(f"#{p.op.id} {p.op.describe()}: {why}")
    if len(left) > _STUCK_SHOWN:
        reasons.append(f"... and {len(left) - _STUCK_SHOWN} more")
    return tuple(reasons)


def _prepare(op: Operation, known: bool) -> _Prepared:
    try:
        value = freeze(op.value)
        output = freeze(op.output) if known else UNKNOWN
    except TypeError as exc:
        raise TypeError(f"operation {op.id} ({op.describe()}): {exc}") from None
    complete = op.complete if known and op.complete is not None else math.inf
    return _Prepared(op, value, output, known, op.invoke, complete)
