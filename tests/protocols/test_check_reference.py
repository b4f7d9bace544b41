"""The checker agrees with the simplest reference: trying every order of a small history."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import pytest

from actorfw.check import (
    UNKNOWN,
    History,
    KeyValue,
    Model,
    Operation,
    Register,
    Status,
    Verdict,
    check,
    freeze,
)


def brute_force_linearizable(ops: list[Operation], model: Model) -> bool:
    """Some subset of the info operations plus all ok ones, in some order, respects real
    time (if ``b`` completed before ``a`` was invoked, ``b`` comes first) and the model."""
    ok = [op for op in ops if op.status is Status.OK]
    info = [op for op in ops if op.status is Status.INFO]
    for size in range(len(info) + 1):
        for chosen in itertools.combinations(info, size):
            for order in itertools.permutations([*ok, *chosen]):
                if respects_real_time(order) and legal(order, model):
                    return True
    return False


def end(op: Operation) -> float:
    return math.inf if op.status is Status.INFO or op.complete is None else op.complete


def respects_real_time(order: tuple[Operation, ...]) -> bool:
    return not any(end(b) < a.invoke for k, a in enumerate(order) for b in order[k + 1 :])


def legal(order: tuple[Operation, ...], model: Model) -> bool:
    state = model.init()
    for op in order:
        output = freeze(op.output) if op.status is Status.OK else UNKNOWN
        allowed, state = model.step(state, op.f, freeze(op.value), output)
        if not allowed:
            return False
    return True


def random_history(rng: random.Random, model: Model, unknown: float = 0.15) -> History:
    """A few operations on one key, small value domains and coarse times, so that
    collisions, touching intervals and both verdicts are all common; a share
    ``unknown`` of them end with an unknown outcome."""
    history = History()
    values = [1, 2, 3] if isinstance(model, Register) else ["a", "b", "c"]
    reads: list[Any] = [None, *values]
    kv_ops = ["get", "get", "put", "put", "cas", "append", "delete"]
    names = ["read", "read", "write", "write", "cas"] if isinstance(model, Register) else kv_ops
    for _ in range(rng.randint(2, 6)):
        f = rng.choice(names)
        value: Any = None
        output: Any = None
        if f in ("put", "write", "append"):
            value = rng.choice(values)
        elif f == "cas":
            value = [rng.choice(reads), rng.choice(values)]
            output = rng.random() < 0.5
        elif f in ("get", "read"):
            output = rng.choice(reads)
        if f == "append" and rng.random() < 0.5:
            output = rng.choice(["", *values]) + value
        start = float(rng.randint(0, 6))
        op = history.invoke(f"c{rng.randint(0, 3)}", f, "k", value, start)
        roll = rng.random()
        if roll < unknown:
            history.info(op)
        elif roll < unknown + 0.1:
            history.fail(op, start + rng.randint(0, 3))
        else:
            history.ok(op, output, start + rng.randint(0, 3))
    return history


@pytest.mark.parametrize("model", [KeyValue(), Register(initial=1)], ids=["kv", "register"])
def test_checker_agrees_with_trying_every_order(model: Model) -> None:
    rng = random.Random(2024)
    verdicts = set()
    for _ in range(600):
        history = random_history(rng, model)
        expected = brute_force_linearizable(list(history), model)
        result = check(history, model)
        verdicts.add(result.verdict)
        assert result.verdict is (Verdict.OK if expected else Verdict.VIOLATION), history.operations
    assert verdicts == {Verdict.OK, Verdict.VIOLATION}


@pytest.mark.parametrize("model", [KeyValue(), Register(initial=1)], ids=["kv", "register"])
def test_checker_agrees_with_trying_every_order_when_many_outcomes_are_unknown(
    model: Model,
) -> None:
    rng = random.Random(99)
    verdicts = set()
    for _ in range(600):
        history = random_history(rng, model, unknown=0.4)
        expected = brute_force_linearizable(list(history), model)
        result = check(history, model)
        verdicts.add(result.verdict)
        assert result.verdict is (Verdict.OK if expected else Verdict.VIOLATION), history.operations
    assert verdicts == {Verdict.OK, Verdict.VIOLATION}


@pytest.mark.parametrize("model", [KeyValue(), Register(initial=1)], ids=["kv", "register"])
def test_every_witness_is_not_linearizable_by_trying_every_order(model: Model) -> None:
    rng = random.Random(7)
    for _ in range(300):
        result = check(random_history(rng, model), model)
        if result.verdict is Verdict.VIOLATION:
            assert result.minimized
            assert not brute_force_linearizable(list(result.minimal), model)
