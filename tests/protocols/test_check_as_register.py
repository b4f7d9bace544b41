"""Model.as_register describes step exactly, and the checker trusts it only from the class
that defines step."""

from __future__ import annotations

from collections.abc import Hashable

from hypothesis import given
from hypothesis import strategies as st

from actorfw.check import UNKNOWN, History, KeyValue, Model, Register, Verdict, check
from actorfw.check.search import Steps, prepare

values = st.sampled_from([None, 0, 1, 1.0, True, "a", "b", (1, 2)])
outputs = st.one_of(values, st.just(UNKNOWN))


def described(kind: str, a: Hashable, b: Hashable, state: Hashable) -> tuple[bool, Hashable]:
    """What a register operation does, from its description alone."""
    if kind == "read":
        return state == a, state
    if kind == "write":
        return True, a
    if kind == "cas":
        return state == a, b
    if kind == "cas-failed":
        return state != a, state
    if kind == "cas-maybe":
        return True, (b if state == a else state)
    assert kind == "nop"
    return True, state


def agree(model: Model, state: Hashable, f: str, value: Hashable, output: Hashable) -> None:
    description = model.as_register(f, value, output)
    if description is None:
        return
    legal, after = model.step(state, f, value, output)
    want_legal, want_after = described(*description, state)
    assert legal == want_legal
    if legal:
        assert after == want_after


@given(
    state=values,
    f=st.sampled_from(["get", "put", "delete", "cas"]),
    value=values,
    pair=st.tuples(values, values),
    output=outputs,
    swapped=st.sampled_from([True, False, UNKNOWN]),
)
def test_key_value_describes_its_register_operations_as_its_step_does(
    state: Hashable, f: str, value: Hashable, pair: Hashable, output: Hashable, swapped: Hashable
) -> None:
    model = KeyValue()
    if f == "get":
        agree(model, state, f, None, output)
    elif f == "cas":
        agree(model, state, f, pair, swapped)
    else:
        agree(model, state, f, value if f == "put" else None, None)


@given(
    state=values,
    f=st.sampled_from(["read", "write", "cas"]),
    value=values,
    pair=st.tuples(values, values),
    output=outputs,
    swapped=st.sampled_from([True, False, UNKNOWN]),
)
def test_register_describes_every_operation_as_its_step_does(
    state: Hashable, f: str, value: Hashable, pair: Hashable, output: Hashable, swapped: Hashable
) -> None:
    model = Register(initial=0)
    if f == "read":
        agree(model, state, f, None, output)
    elif f == "cas":
        agree(model, state, f, pair, swapped)
    else:
        agree(model, state, f, value, None)


class Sticky(KeyValue):
    """A store whose first put sticks for good: its own step, the parent's description."""

    def step(
        self, state: Hashable, f: str, value: Hashable, output: Hashable
    ) -> tuple[bool, Hashable]:
        if f == "put" and state is not None:
            return True, state
        return super().step(state, f, value, output)


def test_a_subclass_that_changes_step_alone_is_checked_by_its_step() -> None:
    history = History()
    for n, (f, value, output) in enumerate([("put", 1, None), ("put", 2, None), ("get", None, 1)]):
        op = history.invoke(f"c{n}", f, "x", value, time=2.0 * n)
        history.ok(op, output, time=2.0 * n + 1)
    assert check(history, KeyValue()).verdict is Verdict.VIOLATION
    assert check(history, Sticky()).verdict is Verdict.OK
    steps = Steps(Sticky())
    steps.op(prepare(history[0], True))
    assert steps.table.lookup(0, steps.intern(5)) == steps.intern(5)  # asked Sticky.step
