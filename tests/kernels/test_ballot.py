"""Unit tests of the ballot and pvalue kernel, run on the compiled and the pure implementation."""

from __future__ import annotations

import array
from types import ModuleType

import numpy as np
import pytest

B = ModuleType  # the kernel module under test (fixture ``ballot``)


def i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# -- packing ----------------------------------------------------------------------


def test_ballots_order_by_round_then_leader(ballot: B) -> None:
    pairs = [
        (0, 0),
        (0, 1),
        (0, 65535),
        (1, 0),
        (1, 7),
        (2, 0),
        (ballot.MAX_ROUND, ballot.MAX_LEADER),
    ]
    packed = [ballot.make_ballot(r, n) for r, n in pairs]
    assert packed == sorted(packed)
    assert len(set(packed)) == len(packed)
    assert all(b > ballot.NO_BALLOT for b in packed)
    assert packed[-1] == 2**63 - 1


def test_round_and_leader_unpack_what_make_ballot_packed(ballot: B) -> None:
    for r, n in [(0, 0), (5, 3), (123456789, 65535), (ballot.MAX_ROUND, 0)]:
        b = ballot.make_ballot(r, n)
        assert (ballot.ballot_round(b), ballot.ballot_leader(b)) == (r, n)


@pytest.mark.parametrize(
    ("round_", "leader", "error"),
    [
        (-1, 0, ValueError),
        (2**47, 0, ValueError),
        (0, -1, ValueError),
        (0, 65536, ValueError),
        (1.0, 0, TypeError),
        (0, "1", TypeError),
        (2**70, 0, ValueError),
    ],
)
def test_make_ballot_refuses_out_of_range_parts(
    ballot: B, round_: object, leader: object, error: type
) -> None:
    with pytest.raises(error):
        ballot.make_ballot(round_, leader)


@pytest.mark.parametrize("bad", [-1, -5, 2**63])
def test_unpacking_refuses_what_is_not_a_ballot(ballot: B, bad: int) -> None:
    with pytest.raises(ValueError):
        ballot.ballot_round(bad)
    with pytest.raises(ValueError):
        ballot.ballot_leader(bad)


# (above as (round, leader) or None for NO_BALLOT, leader, expected (round, leader))
NEXT_CASES = [
    (None, 0, (0, 0)),
    (None, 3, (0, 3)),
    ((0, 0), 0, (1, 0)),
    ((0, 0), 1, (0, 1)),
    ((4, 2), 1, (5, 1)),
    ((4, 2), 2, (5, 2)),
    ((4, 2), 3, (4, 3)),
]


@pytest.mark.parametrize(("above", "leader", "expected"), NEXT_CASES)
def test_next_ballot_is_the_lowest_ballot_of_the_leader_above(
    ballot: B, above: tuple | None, leader: int, expected: tuple
) -> None:
    b = ballot.NO_BALLOT if above is None else ballot.make_ballot(*above)
    nxt = ballot.next_ballot(b, leader)
    assert nxt == ballot.make_ballot(*expected)
    assert nxt > b
    assert ballot.ballot_leader(nxt) == leader


def test_next_ballot_past_the_last_round_overflows(ballot: B) -> None:
    last = ballot.make_ballot(ballot.MAX_ROUND, 5)
    assert ballot.next_ballot(last, 6) == ballot.make_ballot(ballot.MAX_ROUND, 6)
    with pytest.raises(OverflowError):
        ballot.next_ballot(last, 5)


# -- phase 1 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("promised", "incoming", "expected"),
    [
        (-1, 0, (0, True)),
        (5, 7, (7, True)),
        (7, 7, (7, True)),
        (7, 5, (7, False)),
    ],
)
def test_phase1_adopts_ballots_at_or_above_the_promise(
    ballot: B, promised: int, incoming: int, expected: tuple
) -> None:
    assert ballot.phase1(promised, incoming) == expected


def test_phase1_refuses_no_ballot_as_a_proposal(ballot: B) -> None:
    with pytest.raises(ValueError):
        ballot.phase1(3, ballot.NO_BALLOT)
    with pytest.raises(ValueError):
        ballot.phase1(-2, 3)


# -- phase 2 ----------------------------------------------------------------------


def test_phase2_accepts_at_or_above_the_promise_and_raises_it(ballot: B) -> None:
    promise, codes = ballot.phase2(5, i64(10, 11, 12, 13), i64(5, 4, 9, 6))
    assert list(codes) == [ballot.ACCEPTED, ballot.STALE, ballot.ACCEPTED, ballot.STALE]
    assert promise == 9
    assert codes.dtype == np.uint8


def test_phase2_with_one_ballot_for_the_whole_batch(ballot: B) -> None:
    promise, codes = ballot.phase2(5, i64(1, 2, 3), 7)
    assert promise == 7
    assert list(codes) == [ballot.ACCEPTED] * 3
    promise, codes = ballot.phase2(8, i64(1, 2, 3), 7)
    assert promise == 8
    assert list(codes) == [ballot.STALE] * 3


def test_phase2_refuses_collected_slots_whatever_their_ballot(ballot: B) -> None:
    promise, codes = ballot.phase2(-1, i64(3, 4, 5, 6), i64(9, 9, 9, 9), 5)
    assert list(codes) == [ballot.COLLECTED, ballot.COLLECTED, ballot.ACCEPTED, ballot.ACCEPTED]
    assert promise == 9


def test_phase2_of_an_empty_batch_changes_nothing(ballot: B) -> None:
    promise, codes = ballot.phase2(4, i64(), i64())
    assert promise == 4
    assert codes.shape == (0,)


def test_phase2_takes_any_int64_buffer_including_read_only_ones(ballot: B) -> None:
    slots = np.frombuffer(i64(1, 2).tobytes(), dtype=np.int64)  # read-only, as off the wire
    assert not slots.flags.writeable
    promise, codes = ballot.phase2(0, slots, array.array("q", [3, 1]))
    assert (promise, list(codes)) == (3, [ballot.ACCEPTED, ballot.STALE])


@pytest.mark.parametrize(
    ("slots", "ballots", "error"),
    [
        ([1, 2], [1, 2], TypeError),  # lists are not buffers
        (np.array([1, 2], dtype=np.int32), i64(1, 2), ValueError),
        (np.array([1.0, 2.0]), i64(1, 2), ValueError),
        (np.zeros((2, 2), dtype=np.int64), i64(1, 2), ValueError),
        (np.arange(4, dtype=np.int64)[::2], i64(1, 2), ValueError),
        (i64(1, 2), i64(1), ValueError),
        (i64(1, -2), i64(1, 1), ValueError),
        (i64(1, 2), i64(1, -1), ValueError),
        (i64(1, 2), -1, ValueError),
    ],
    ids=[
        "list",
        "int32",
        "float",
        "2-d",
        "strided",
        "lengths",
        "neg-slot",
        "neg-ballot",
        "no-ballot",
    ],
)
def test_phase2_refuses_bad_arrays(ballot: B, slots: object, ballots: object, error: type) -> None:
    with pytest.raises(error):
        ballot.phase2(0, slots, ballots)


def test_phase2_refuses_a_negative_floor(ballot: B) -> None:
    with pytest.raises(ValueError):
        ballot.phase2(0, i64(1), i64(1), -1)


# -- pmax -------------------------------------------------------------------------


def test_pmax_keeps_the_highest_ballot_per_slot_sorted_by_slot(ballot: B) -> None:
    # Three acceptors' reports, concatenated.
    slots = i64(7, 3, 5, 3, 7, 9, 5)
    ballots = i64(2, 1, 4, 6, 2, 1, 3)
    out_slots, out_ballots, index = ballot.pmax(slots, ballots)
    assert out_slots.tolist() == [3, 5, 7, 9]
    assert out_ballots.tolist() == [6, 4, 2, 1]
    # Slot 7 was reported twice under ballot 2: the first report is kept.
    assert index.tolist() == [3, 2, 0, 5]
    assert all(a.dtype == np.int64 for a in (out_slots, out_ballots, index))


def test_pmax_handles_slots_too_far_apart_for_a_window(ballot: B) -> None:
    slots = i64(2**62, 0, 2**62, 10**12, 0)
    ballots = i64(1, 5, 3, 2, 5)
    out_slots, out_ballots, index = ballot.pmax(slots, ballots)
    assert out_slots.tolist() == [0, 10**12, 2**62]
    assert out_ballots.tolist() == [5, 2, 3]
    assert index.tolist() == [1, 3, 2]


def test_pmax_of_nothing_is_empty(ballot: B) -> None:
    assert [a.tolist() for a in ballot.pmax(i64(), i64())] == [[], [], []]


@pytest.mark.parametrize(
    ("slots", "ballots"),
    [(i64(1, 2), i64(1)), (i64(-1), i64(1)), (i64(1), i64(-1))],
    ids=["lengths", "neg-slot", "neg-ballot"],
)
def test_pmax_refuses_bad_input(ballot: B, slots: np.ndarray, ballots: np.ndarray) -> None:
    with pytest.raises(ValueError):
        ballot.pmax(slots, ballots)


def test_codes_and_limits_are_the_documented_values(ballot: B) -> None:
    assert (ballot.STALE, ballot.ACCEPTED, ballot.COLLECTED) == (0, 1, 2)
    assert ballot.NO_BALLOT == -1
    assert ballot.LEADER_BITS == 16
    assert ballot.MAX_LEADER == 2**16 - 1
    assert ballot.MAX_ROUND == 2**47 - 1
