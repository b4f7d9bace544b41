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
from types import ModuleType
from typing import Any

from actorfw import kernels
from actorfw.check.history import Operation
from actorfw.check.models import UNKNOWN, Model, freeze

__all__ = [
    "CLOCK_EVERY",
    "FREE_COST",
    "Outcome",
    "Prepared",
    "SearchResult",
    "Steps",
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

FREE_COST: float = kernels.search.FREE_COST
"""Seconds reserved per memo entry for freeing the table before the deadline.

The active kernel's figure (:mod:`actorfw.kernels`): the pure twin keeps a
``set`` of tuples, about 0.2 us an entry to free (the reserve is half again
as much); the compiled kernel an arena of words, about 6 ns an entry (the
reserve: 10 ns).
So a search that times out has released its memory by the deadline."""


class Steps:
    """A partition's model transitions as the search kernel sees them.

    Model states are interned as small integer ids (equal states, one id)
    and each operation is registered once with the kernel's
    ``Transitions`` table: as a register opcode when the model describes
    it as one (:meth:`~actorfw.check.models.Model.as_register`), so the
    kernel decides it by comparing ids, else as a call of
    :meth:`~actorfw.check.models.Model.step` whose answers the table
    remembers. One ``Steps`` serves every search of the same partition (the
    verdict and the re-searches of minimization), so each (operation,
    state) pair costs one model step in all.

    Args:
        model: the sequential specification.
        kernel: the search kernel module (``None``: the one
            :mod:`actorfw.kernels` selected).
        limit: transitions the table remembers at most (memory stays
            bounded; past it the model is asked again).
    """

    def __init__(
        self, model: Model, kernel: ModuleType | None = None, limit: float = math.inf
    ) -> None:
        self.model = model
        self.kernel: ModuleType = kernels.search if kernel is None else kernel
        self.states: list[Hashable] = []
        self._ids: dict[Hashable, int] = {}
        self._ops: list[Prepared] = []
        self._registered: dict[int, int] = {}  # id() of a Prepared (kept in _ops) to its op id
        self._opcodes = _describes_registers(model)
        self._codes = {name: getattr(self.kernel, code) for name, code in _OPCODES.items()}
        self.table: Any = self.kernel.Transitions(self._step, limit)
        self.initial = self.intern(model.init())

    def intern(self, state: Hashable) -> int:
        """The id of ``state`` (a new one for a state not seen before).

        Raises:
            TypeError: ``state`` is not hashable (naming the model).
        """
        try:
            found = self._ids.get(state)
        except TypeError as exc:
            try:
                hash(state)
            except TypeError:
                raise TypeError(
                    f"the {self.model.name} model made a state that is not hashable, "
                    f"{state!r} ({exc}): states must be immutable and hashable, such as "
                    "tuples, frozensets, numbers or strings, not lists or dicts"
                ) from None
            raise  # hashable: the state's own comparison raised
        if found is None:
            found = len(self.states)
            self._ids[state] = found
            self.states.append(state)
        return found

    def op(self, p: Prepared) -> int:
        """The id of operation ``p`` in the kernel's table (registered on first use)."""
        found = self._registered.get(id(p))
        if found is not None:
            return found
        described = self.model.as_register(p.op.f, p.value, p.output) if self._opcodes else None
        # A value unequal to itself (NaN) would break "equal states, one id": the model decides.
        if described is not None and described[1] == described[1] and described[2] == described[2]:
            kind, a, b = described
            found = int(self.table.add(self._codes[kind], self.intern(a), self.intern(b)))
        else:
            found = int(self.table.add(self.kernel.STEP, 0, 0))
        self._ops.append(p)
        self._registered[id(p)] = found
        return found

    def _step(self, op: int, state: int) -> int:
        p = self._ops[op]
        legal, after = self.model.step(self.states[state], p.op.f, p.value, p.output)
        return self.intern(after) if legal else -1

    def start(self, ops: Sequence[Prepared], unknown_last: bool, max_memo: float) -> Any:
        """A kernel ``Search`` of ``ops`` in the given order of rule 4."""
        model = self.model
        return self.kernel.Search(
            self.table,
            [self.op(p) for p in ops],
            [p.invoke for p in ops],
            [p.complete for p in ops],
            [p.known for p in ops],
            [p.known and model.is_read_only(p.op.f) for p in ops],
            self.initial,
            unknown_last,
            max_memo,
        )


_OPCODES = {
    "read": "READ",
    "write": "WRITE",
    "cas": "CAS_OK",
    "cas-failed": "CAS_FAIL",
    "cas-maybe": "CAS_MAYBE",
    "nop": "NOP",
}


def _describes_registers(model: Model) -> bool:
    """Whether ``model``'s :meth:`~Model.as_register` describes its own ``step``: both are
    defined by the same class (a subclass that changes ``step`` alone is asked each step)."""
    mro = type(model).__mro__
    stepper = next(c for c in mro if "step" in vars(c))
    describer = next(c for c in mro if "as_register" in vars(c))
    return stepper is describer


def search(
    ops: Sequence[Prepared],
    model: Model,
    deadline: float,
    *,
    max_steps: float = math.inf,
    unknown_last: bool = False,
    max_memo: float = math.inf,
    steps: Steps | None = None,
) -> SearchResult:
    """Run :func:`_searching` to its end (``steps``: the partition's transitions, shared)."""
    return _to_end(_searching(ops, model, deadline, max_steps, unknown_last, max_memo, steps))


def deciding(
    ops: Sequence[Prepared],
    model: Model,
    deadline: float,
    *,
    max_memo: float = math.inf,
    max_steps: float = math.inf,
    steps: Steps | None = None,
) -> Generator[None, None, SearchResult]:
    """Search ``ops`` in both orders of rule 4 side by side, a slice of steps each,
    until one decides: at most twice the steps of the order that suits them.

    A generator that pauses after each slice (so that several partitions can
    share the time, see :func:`~actorfw.check.linearizability.check`) and
    returns the outcome. ``max_memo`` bounds each order's memo table, and
    ``max_steps`` each order's steps (past them: ``GAVE_UP``). ``steps``:
    the partition's transitions, shared by both orders (``None``: new ones).
    """
    if steps is None:
        steps = Steps(model)
    runs = [_searching(ops, model, deadline, max_steps, False, max_memo, steps)]
    if not all(p.known for p in ops):  # otherwise the two orders are the same
        runs.append(_searching(ops, model, deadline, max_steps, True, max_memo, steps))
    try:
        while True:
            for run in runs:
                try:
                    next(run)
                except StopIteration as done:
                    result: SearchResult = done.value
                    return result
            yield
    finally:
        for other in runs:
            other.close()  # its memo table goes now, not when collected


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
    steps: Steps | None = None,
) -> Generator[None, None, SearchResult]:
    """Wing–Gong–Lowe search over one partition (rules 3 to 6 of the module docstring).

    A generator that runs the search kernel (:mod:`actorfw.kernels`) 1,024
    steps at a time, reads the clock between slices, pauses, and returns the
    outcome. ``unknown_last``: scan each point for ``ok`` operations first,
    then for ``info`` ones (rule 4); otherwise every call in time order. The
    memo table holds at most ``max_memo`` configurations: past that the
    search goes on without remembering more (still sound and complete, it
    may only visit a configuration again).

    A violation comes with the longest valid order found (the deepest stack,
    copied when the search first backtracks from a new depth record).
    """
    if steps is None:
        steps = Steps(model)
    kernel = steps.kernel
    run = steps.start(ops, unknown_last, max_memo)
    free_cost: float = kernel.FREE_COST
    monotonic = time.monotonic
    try:
        outcome = run.run(0)
        while outcome == kernel.RUNNING:
            done = run.steps
            # Stop early enough to free the memo table by the deadline too.
            if monotonic() + run.memo_size * free_cost >= deadline:
                return SearchResult(Outcome.TIMEOUT, steps=done)
            if done > max_steps:
                return SearchResult(Outcome.GAVE_UP, steps=done)
            if done:
                yield  # a slice done (see deciding)
            outcome = run.run(done + CLOCK_EVERY + 1)
        found = Outcome.LINEARIZABLE if outcome == kernel.LINEARIZABLE else Outcome.VIOLATION
        return SearchResult(found, run.order(), steps.states[run.state], run.steps)
    finally:
        run.close()


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
