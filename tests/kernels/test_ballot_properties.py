"""Property tests of the ballot kernel: a naive reference, the Paxos rules, compiled vs pure."""

from __future__ import annotations

from types import ModuleType

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

ballots_st = st.one_of(st.integers(0, 40), st.integers(0, 2**63 - 1))
# Slots either clustered (the dense path of the compiled pmax) or spread out.
slots_st = st.one_of(st.integers(0, 60), st.integers(0, 2**63 - 1))
pvalues = st.lists(st.tuples(slots_st, ballots_st), max_size=200)


def arrays(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    slots = np.array([s for s, _ in pairs], dtype=np.int64)
    ballots = np.array([b for _, b in pairs], dtype=np.int64)
    return slots, ballots


def ref_phase2(promised: int, pairs: list[tuple[int, int]], floor: int) -> tuple[int, list[int]]:
    codes = []
    for slot, b in pairs:
        if slot < floor:
            codes.append(2)
        elif b >= promised:
            promised = b
            codes.append(1)
        else:
            codes.append(0)
    return promised, codes


@given(promised=st.integers(-1, 50), pairs=pvalues, floor=st.integers(0, 70))
def test_phase2_agrees_with_the_naive_reference(
    ballot: ModuleType, promised: int, pairs: list, floor: int
) -> None:
    slots, ballots = arrays(pairs)
    promise, codes = ballot.phase2(promised, slots, ballots, floor)
    assert (promise, codes.tolist()) == ref_phase2(promised, pairs, floor)


@given(promised=st.integers(-1, 50), pairs=pvalues, floor=st.integers(0, 70))
def test_phase2_never_lowers_the_promise_nor_accepts_below_it(
    ballot: ModuleType, promised: int, pairs: list, floor: int
) -> None:
    slots, ballots = arrays(pairs)
    promise, codes = ballot.phase2(promised, slots, ballots, floor)
    assert promise >= promised
    running = promised
    for (slot, b), code in zip(pairs, codes.tolist(), strict=True):
        if code == ballot.ACCEPTED:
            assert b >= running and slot >= floor
            running = b
    assert running == promise


@given(pairs=pvalues)
def test_pmax_picks_the_first_highest_ballot_of_every_slot(ballot: ModuleType, pairs: list) -> None:
    slots, ballots = arrays(pairs)
    out_slots, out_ballots, index = ballot.pmax(slots, ballots)
    expected: dict[int, int] = {}
    for i, (s, b) in enumerate(pairs):
        if s not in expected or b > pairs[expected[s]][1]:
            expected[s] = i
    assert out_slots.tolist() == sorted(expected)
    assert index.tolist() == [expected[s] for s in sorted(expected)]
    assert out_ballots.tolist() == [pairs[expected[s]][1] for s in sorted(expected)]


@given(promised=st.integers(-1, 2**63 - 1), incoming=st.integers(0, 2**63 - 1))
def test_phase1_never_lowers_the_promise(ballot: ModuleType, promised: int, incoming: int) -> None:
    promise, adopted = ballot.phase1(promised, incoming)
    assert promise == max(promised, incoming)
    assert adopted == (incoming >= promised)


@given(
    above=st.one_of(st.just(-1), st.integers(0, 2**63 - 1 - 2**16)),
    leader=st.integers(0, 2**16 - 1),
)
def test_next_ballot_is_minimal(ballot: ModuleType, above: int, leader: int) -> None:
    nxt = ballot.next_ballot(above, leader)
    assert nxt > above
    assert ballot.ballot_leader(nxt) == leader
    # No ballot of this leader lies strictly between.
    if ballot.ballot_round(nxt) > 0:
        below = ballot.make_ballot(ballot.ballot_round(nxt) - 1, leader)
        assert below <= above


@given(promised=st.integers(-1, 50), pairs=pvalues, floor=st.integers(0, 70))
def test_compiled_and_pure_agree(
    compiled: dict, pure: dict, promised: int, pairs: list, floor: int
) -> None:
    C, P = compiled["ballot"], pure["ballot"]
    slots, ballots = arrays(pairs)
    cp, cc = C.phase2(promised, slots, ballots, floor)
    pp, pc = P.phase2(promised, slots, ballots, floor)
    assert cp == pp and cc.tolist() == pc.tolist()
    for c_arr, p_arr in zip(C.pmax(slots, ballots), P.pmax(slots, ballots), strict=True):
        assert c_arr.tolist() == p_arr.tolist()
        assert c_arr.dtype == p_arr.dtype
