"""The causal-order checker (actorfw.check.causal) against hand-made and generated runs."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actorfw import VectorClock
from actorfw.check.causal import CausalMessage, CausalViolation, check_causal


def _broadcast_run(
    seed: int, members: int, steps: int
) -> tuple[dict[str, CausalMessage], dict[str, list[str]]]:
    """A correct causal broadcast, run step by step: members broadcast, and deliver
    whatever is deliverable in a random order (so concurrent messages interleave)."""
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(1, members + 1)]
    clocks = {name: VectorClock() for name in names}
    pending: dict[str, list[str]] = {name: [] for name in names}
    messages: dict[str, CausalMessage] = {}
    order: dict[str, list[str]] = {name: [] for name in names}

    def deliver(member: str, mid: str) -> None:
        order[member].append(mid)
        clocks[member].increment(messages[mid].sender)
        pending[member].remove(mid)

    for step in range(steps):
        member = rng.choice(names)
        if rng.random() < 0.4:
            stamp = clocks[member].copy()
            stamp.increment(member)
            mid = f"m{step}"
            messages[mid] = CausalMessage(member, stamp)
            clocks[member].increment(member)  # the sender delivers its own at once
            order[member].append(mid)
            for other in names:
                if other != member:
                    pending[other].append(mid)
        else:
            ready = [
                mid
                for mid in pending[member]
                if clocks[member].deliverable(messages[mid].clock, messages[mid].sender)
            ]
            if ready:
                deliver(member, rng.choice(ready))
    for member in names:  # let it settle
        while pending[member]:
            ready = [
                mid
                for mid in pending[member]
                if clocks[member].deliverable(messages[mid].clock, messages[mid].sender)
            ]
            deliver(member, ready[0])
    return messages, order


def _clock(**entries: int) -> Any:
    return VectorClock(entries)


# a: n1's first; b: n2's first, sent after delivering a (a -> b); c: n3's first, concurrent
MESSAGES = {
    "a": CausalMessage("n1", _clock(n1=1)),
    "b": CausalMessage("n2", _clock(n1=1, n2=1)),
    "c": CausalMessage("n3", _clock(n3=1)),
}


def test_a_run_that_respects_causality_passes() -> None:
    result = check_causal(
        MESSAGES,
        {"n1": ["a", "c", "b"], "n2": ["a", "b", "c"], "n3": ["c", "a", "b"]},
        complete=True,
    )
    assert result.ok, str(result)
    assert result.deliveries == 9


def test_delivering_an_effect_before_its_cause_is_a_violation_naming_both() -> None:
    result = check_causal(MESSAGES, {"n1": ["a"], "n3": ["c", "b", "a"]})
    assert not result.ok
    assert result.violation is CausalViolation.OUT_OF_ORDER
    assert (result.member, result.message, result.needed, result.position) == ("n3", "b", "a", 1)
    assert "'a'" in str(result) and "happened before" in str(result)


def test_a_senders_messages_out_of_their_order_is_a_violation() -> None:
    messages = {
        "a1": CausalMessage("n1", _clock(n1=1)),
        "a2": CausalMessage("n1", _clock(n1=2)),
    }
    result = check_causal(messages, {"n2": ["a2", "a1"]})
    assert (result.violation, result.message, result.needed) == (
        CausalViolation.OUT_OF_ORDER,
        "a2",
        "a1",
    )


def test_a_message_delivered_twice_is_a_violation() -> None:
    result = check_causal(MESSAGES, {"n2": ["a", "a"]})
    assert (result.violation, result.member, result.position) == (
        CausalViolation.DUPLICATE,
        "n2",
        1,
    )


def test_a_message_never_delivered_is_a_violation_only_when_complete_is_asked() -> None:
    deliveries = {"n1": ["a", "b", "c"], "n2": ["a", "b"]}
    assert check_causal(MESSAGES, deliveries).ok
    result = check_causal(MESSAGES, deliveries, complete=True)
    assert (result.violation, result.member, result.message) == (
        CausalViolation.MISSING,
        "n2",
        "c",
    )


def test_a_member_without_deliveries_delivered_nothing() -> None:
    result = check_causal(MESSAGES, {"n1": ["a"]}, members=["n1", "n2"], complete=True)
    assert result.violation is CausalViolation.MISSING


@pytest.mark.parametrize(
    ("messages", "deliveries", "says"),
    [
        ({"x": CausalMessage("n1", _clock(n2=1))}, {}, "no entry for its sender"),
        (
            {"x": CausalMessage("n1", _clock(n1=1)), "y": CausalMessage("n1", _clock(n1=1))},
            {},
            "both broadcast number 1 of 'n1'",
        ),
        (MESSAGES, {"n1": ["zzz"]}, "which nobody broadcast"),
        (MESSAGES, {"n9": ["a"]}, "is not a member"),
        ({"x": CausalMessage("n1", {"n1": 1})}, {}, "not a VectorClock"),
    ],
)
def test_malformed_input_is_named(messages: Any, deliveries: Any, says: str) -> None:
    members = ["n1", "n2"] if "n9" in deliveries else None
    result = check_causal(messages, deliveries, members=members)
    assert result.violation is CausalViolation.MALFORMED
    assert says in result.explanation


@given(seed=st.integers(0, 2**32), members=st.integers(1, 5), steps=st.integers(0, 80))
def test_every_correct_run_passes(seed: int, members: int, steps: int) -> None:
    messages, order = _broadcast_run(seed, members, steps)
    result = check_causal(messages, order, complete=True)
    assert result.ok, str(result)


@given(seed=st.integers(0, 2**32), steps=st.integers(10, 80), data=st.data())
def test_swapping_two_causally_ordered_deliveries_is_caught(
    seed: int, steps: int, data: st.DataObject
) -> None:
    messages, order = _broadcast_run(seed, 4, steps)
    pairs = [
        (member, i, j)
        for member, seq in order.items()
        for i in range(len(seq))
        for j in range(i + 1, len(seq))
        if messages[seq[i]].clock < messages[seq[j]].clock
    ]
    if not pairs:
        return
    member, i, j = data.draw(st.sampled_from(pairs))
    broken = dict(order)
    seq = list(order[member])
    seq[i], seq[j] = seq[j], seq[i]
    broken[member] = seq
    result = check_causal(messages, broken)
    assert result.violation is CausalViolation.OUT_OF_ORDER
    assert result.member == member


def test_swapping_two_concurrent_deliveries_is_fine() -> None:
    result = check_causal(MESSAGES, {"n2": ["c", "a", "b"], "n1": ["a", "c", "b"]})
    assert result.ok
