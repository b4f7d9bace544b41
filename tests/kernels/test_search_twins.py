"""The linearizability search kernel: compiled and pure twins take the same steps and agree with
trying every order."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import load_kernels

STATES = 4  # state ids 0..3


@dataclass(frozen=True)
class Op:
    """One operation of a generated partition."""

    kind: int  # an opcode
    a: int
    b: int
    invoke: float
    complete: float
    known: bool


def stepped(op: int, state: int) -> int:
    """A model step for STEP operations: deterministic, sometimes illegal."""
    return -1 if (3 * op + state) % 4 == 0 else (op + 2 * state + 1) % STATES


def opcode_after(kind: int, a: int, b: int, state: int, op: int) -> int:
    """The simplest reference for an opcode: -1 when illegal, else the state after it."""
    if kind == 1:  # READ
        return state if state == a else -1
    if kind == 2:  # WRITE
        return a
    if kind == 3:  # CAS_OK
        return b if state == a else -1
    if kind == 4:  # CAS_FAIL
        return -1 if state == a else state
    if kind == 5:  # CAS_MAYBE
        return b if state == a else state
    if kind == 6:  # NOP
        return state
    return stepped(op, state)


@st.composite
def partitions(draw: st.DrawFn, max_ops: int = 7) -> list[Op]:
    n = draw(st.integers(0, max_ops))
    ops = []
    for _ in range(n):
        kind = draw(st.integers(0, 6))
        invoke = float(draw(st.integers(0, 8)))
        known = draw(st.booleans()) or draw(st.booleans())
        complete = invoke + draw(st.integers(0, 4)) if known else math.inf
        ops.append(
            Op(
                kind,
                draw(st.integers(0, STATES - 1)),
                draw(st.integers(0, STATES - 1)),
                invoke,
                complete,
                known,
            )
        )
    return ops


def build(kernel: ModuleType, ops: list[Op], limit: float = math.inf) -> Any:
    calls: list[tuple[int, int]] = []

    def step(op: int, state: int) -> int:
        calls.append((op, state))
        return stepped(op, state)

    table = kernel.Transitions(step, limit)
    ids = [table.add(op.kind, op.a, op.b) for op in ops]
    return table, ids, calls


def start(kernel: ModuleType, ops: list[Op], unknown_last: bool, max_memo: float) -> Any:
    table, ids, _ = build(kernel, ops)
    return kernel.Search(
        table,
        ids,
        [op.invoke for op in ops],
        [op.complete for op in ops],
        [op.known for op in ops],
        [op.kind == 1 for op in ops],  # only reads are read-only (rule 5 holds for them)
        0,
        unknown_last,
        max_memo,
    )


def run_to_end(search: Any, slice_steps: int) -> list[tuple[int, int, int]]:
    """Run in slices; the trace of (outcome, steps, memo size) after each."""
    trace = []
    while True:
        outcome = search.run(search.steps + slice_steps)
        trace.append((outcome, search.steps, search.memo_size))
        if outcome:
            return trace


def brute_force(ops: list[Op]) -> bool:
    """Some subset of the operations of unknown outcome plus all known ones, in some order,
    respects real time and is legal from state 0."""
    known = [i for i, op in enumerate(ops) if op.known]
    unknown = [i for i, op in enumerate(ops) if not op.known]
    for size in range(len(unknown) + 1):
        for chosen in itertools.combinations(unknown, size):
            for order in itertools.permutations([*known, *chosen]):
                if any(
                    ops[b].complete < ops[a].invoke
                    for k, a in enumerate(order)
                    for b in order[k + 1 :]
                ):
                    continue
                state = 0
                for i in order:
                    state = opcode_after(ops[i].kind, ops[i].a, ops[i].b, state, i)
                    if state < 0:
                        break
                else:
                    return True
    return False


def replay(ops: list[Op], order: tuple[int, ...]) -> int:
    state = 0
    for i in order:
        state = opcode_after(ops[i].kind, ops[i].a, ops[i].b, state, i)
        assert state >= 0, f"operation {i} is not legal in the order {order}"
    return state


@given(
    ops=partitions(),
    unknown_last=st.booleans(),
    max_memo=st.sampled_from([0, 1, 3, math.inf]),
    slice_steps=st.integers(1, 40),
)
def test_compiled_and_pure_searches_take_the_same_steps_to_the_same_result(
    ops: list[Op], unknown_last: bool, max_memo: float, slice_steps: int
) -> None:
    compiled = start(load_kernels("compiled")["search"], ops, unknown_last, max_memo)
    pure = start(load_kernels("pure")["search"], ops, unknown_last, max_memo)
    assert run_to_end(compiled, slice_steps) == run_to_end(pure, slice_steps)
    assert compiled.order() == pure.order()
    assert compiled.state == pure.state


@st.composite
def long_partitions(draw: st.DrawFn) -> list[Op]:
    """Long partitions (several words of bitset) of short, mostly overlapping operations."""
    n = draw(st.integers(60, 220))
    spread = draw(st.sampled_from([4, 20, 80]))
    ops = []
    for _ in range(n):
        kind = draw(st.sampled_from([1, 2, 2, 3, 4, 5, 6, 0]))
        invoke = float(draw(st.integers(0, n * spread // 10)))
        known = draw(st.integers(0, 9)) > 0
        complete = invoke + draw(st.integers(0, spread)) if known else math.inf
        ops.append(
            Op(kind, draw(st.integers(0, 1)), draw(st.integers(0, 1)), invoke, complete, known)
        )
    return ops


@given(
    ops=long_partitions(),
    unknown_last=st.booleans(),
    max_memo=st.sampled_from([50, math.inf]),
)
def test_the_twins_agree_on_long_partitions_whose_bitsets_span_many_words(
    ops: list[Op], unknown_last: bool, max_memo: float
) -> None:
    compiled = start(load_kernels("compiled")["search"], ops, unknown_last, max_memo)
    pure = start(load_kernels("pure")["search"], ops, unknown_last, max_memo)
    budget = 20_000  # a hard one stays undecided: the twins still take the same steps
    assert run_to_end_or(compiled, 1024, budget) == run_to_end_or(pure, 1024, budget)
    assert compiled.order() == pure.order()
    assert compiled.state == pure.state


def run_to_end_or(search: Any, slice_steps: int, budget: int) -> list[tuple[int, int, int]]:
    trace = []
    while search.steps < budget:
        outcome = search.run(search.steps + slice_steps)
        trace.append((outcome, search.steps, search.memo_size))
        if outcome:
            break
    return trace


@given(ops=partitions(), unknown_last=st.booleans(), max_memo=st.sampled_from([0, 2, math.inf]))
def test_the_search_agrees_with_trying_every_order(
    search_kernel: ModuleType, ops: list[Op], unknown_last: bool, max_memo: float
) -> None:
    search = start(search_kernel, ops, unknown_last, max_memo)
    outcome = search.run(10**7)
    assert outcome == (search_kernel.LINEARIZABLE if brute_force(ops) else search_kernel.VIOLATION)
    assert replay(ops, search.order()) == search.state  # a valid order, and its state


@given(
    ops=partitions(max_ops=10),
    states=st.lists(st.integers(0, STATES - 1), min_size=1, max_size=30),
)
def test_transitions_agree_with_the_reference_and_ask_the_model_once_per_pair(
    search_kernel: ModuleType, ops: list[Op], states: list[int]
) -> None:
    table, ids, calls = build(search_kernel, ops)
    for state in states:
        for op, i in zip(ops, ids, strict=True):
            assert table.lookup(i, state) == opcode_after(op.kind, op.a, op.b, state, i)
    assert len(calls) == len(set(calls))
    assert table.remembered == len(calls)


def test_transitions_past_their_limit_ask_the_model_again(search_kernel: ModuleType) -> None:
    table, ids, calls = build(search_kernel, [Op(0, 0, 0, 0.0, 1.0, True)] * 3, limit=2)
    for _ in range(2):
        for i in ids:
            table.lookup(i, 1)
    assert table.remembered == 2
    assert len(calls) == 4  # the third operation is asked each time


@pytest.mark.parametrize("answer", [7.0, True, -2, 2**31, "1"])
def test_a_step_that_answers_no_state_id_is_refused(search_kernel: ModuleType, answer: Any) -> None:
    table = search_kernel.Transitions(lambda op, state: answer)
    op = table.add(search_kernel.STEP)
    with pytest.raises(ValueError, match="must return a state id"):
        table.lookup(op, 0)


def test_an_error_in_the_model_step_reaches_the_caller(search_kernel: ModuleType) -> None:
    def broken(op: int, state: int) -> int:
        raise ZeroDivisionError("model bug")

    table = search_kernel.Transitions(broken)
    op = table.add(search_kernel.STEP)
    search = search_kernel.Search(table, [op], [0.0], [1.0], [True], [False], 0)
    with pytest.raises(ZeroDivisionError, match="model bug"):
        search.run(100)


@pytest.mark.parametrize(("kind", "a", "b"), [(7, 0, 0), (-1, 0, 0), (1, -1, 0), (2, 0, 2**31)])
def test_a_bad_opcode_or_state_id_is_refused(
    search_kernel: ModuleType, kind: int, a: int, b: int
) -> None:
    table = search_kernel.Transitions(lambda op, state: -1)
    with pytest.raises(ValueError):
        table.add(kind, a, b)


def test_a_search_of_sequences_of_different_lengths_is_refused(search_kernel: ModuleType) -> None:
    table = search_kernel.Transitions(lambda op, state: -1)
    op = table.add(search_kernel.WRITE, 1)
    with pytest.raises(ValueError, match="one entry per operation"):
        search_kernel.Search(table, [op], [0.0, 1.0], [1.0], [True], [False], 0)
    with pytest.raises(ValueError, match="not in the transitions table"):
        search_kernel.Search(table, [op + 1], [0.0], [1.0], [True], [False], 0)


def test_a_closed_search_releases_its_memo_and_cannot_go_on(search_kernel: ModuleType) -> None:
    ops = [Op(2, v, 0, 0.0, 10.0, True) for v in range(1, 4)] + [Op(1, 0, 0, 11.0, 12.0, True)]
    search = start(search_kernel, ops, False, math.inf)
    assert search.run(3) == search_kernel.RUNNING
    assert search.memo_size > 0
    search.close()
    assert search.memo_size == 0
    with pytest.raises(RuntimeError, match="closed"):
        search.run(100)


def test_an_empty_partition_is_linearizable_without_a_step(search_kernel: ModuleType) -> None:
    search = start(search_kernel, [Op(2, 1, 0, 0.0, math.inf, False)], False, math.inf)
    assert search.run(0) == search_kernel.LINEARIZABLE
    assert (search.steps, search.order(), search.state) == (0, (), 0)
