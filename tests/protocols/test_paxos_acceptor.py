"""The Paxos acceptor core: promises, batched accepts, collection, restart from records."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from actorfw.kernels import ballot as kb
from actorfw.protocols.paxos import (
    Accepted,
    Acceptor,
    Collect,
    Collected,
    Command,
    Config,
    Decided,
    Decision,
    LeaderBallot,
    P1a,
    P1b,
    P2a,
    P2b,
    Promised,
    pack_value,
    records_from_storage,
    storage_ops,
    unpack_value,
)
from tests.support.paxos_harness import apply_to

CONFIG = Config.colocated(["n1", "n2", "n3"])


def B(round: int, leader: int) -> int:
    return int(kb.make_ballot(round, leader))


def slots(*numbers: int) -> np.ndarray:
    return np.array(numbers, dtype=np.int64)


def batch(name: str) -> tuple[Command, ...]:
    return (Command(name, 1, ("put", name, 1)),)


def p2a(ballot: int, *numbers: int) -> P2a:
    return P2a(ballot, slots(*numbers), tuple(batch(f"c{n}") for n in numbers))


def only(effects: Any) -> tuple[str, Any]:
    assert len(effects.send) == 1, effects.send
    return effects.send[0]  # type: ignore[no-any-return]


def acceptor_with(promised: int) -> Acceptor:
    acceptor = Acceptor(CONFIG, "n1")
    if promised != kb.NO_BALLOT:
        acceptor.handle(P1a(promised, 1))
    return acceptor


def store_of(effects_list: list[Any]) -> dict[bytes, bytes]:
    store: dict[bytes, bytes] = {}
    for effects in effects_list:
        apply_to(store, effects)
    return store


# -- phase 1 -------------------------------------------------------------------------------


def test_a_new_acceptor_has_promised_nothing_and_accepted_nothing() -> None:
    acceptor = Acceptor(CONFIG, "n1")
    assert acceptor.promised == kb.NO_BALLOT
    assert acceptor.floor == 0
    assert acceptor.accepted()[0].tolist() == []


P1A_CASES = [
    # (promised before, p1a ballot, promise after, adopted)
    (kb.NO_BALLOT, B(0, 0), B(0, 0), True),
    (B(1, 0), B(1, 0), B(1, 0), True),
    (B(1, 0), B(1, 2), B(1, 2), True),
    (B(1, 0), B(2, 0), B(2, 0), True),
    (B(2, 0), B(1, 2), B(2, 0), False),
    (B(1, 2), B(1, 1), B(1, 2), False),
]


@pytest.mark.parametrize(("before", "ballot", "after", "adopted"), P1A_CASES)
def test_p1a_is_adopted_iff_its_ballot_is_at_or_above_the_promise(
    before: int, ballot: int, after: int, adopted: bool
) -> None:
    acceptor = acceptor_with(before)
    _, reply = only(acceptor.handle(P1a(ballot, 1)))
    assert acceptor.promised == after
    assert reply.ballot == after
    assert (reply.ballot == ballot) is adopted


def test_p1b_goes_to_the_leader_the_ballot_names() -> None:
    to, reply = only(Acceptor(CONFIG, "n2").handle(P1a(B(3, 2), 1)))
    assert to == "n3"
    assert isinstance(reply, P1b) and reply.acceptor == "n2"


def test_a_raised_promise_is_persisted_in_the_same_step() -> None:
    effects = Acceptor(CONFIG, "n1").handle(P1a(B(1, 1), 1))
    (record,) = effects.persist
    assert isinstance(record, Promised)
    assert record.ballot == B(1, 1)


def test_an_unchanged_promise_is_not_persisted_again() -> None:
    acceptor = acceptor_with(B(1, 1))
    assert acceptor.handle(P1a(B(1, 1), 1)).persist == []


def test_a_refused_p1a_reports_the_promise_and_no_pvalues() -> None:
    acceptor = acceptor_with(B(0, 0))
    acceptor.handle(p2a(B(0, 0), 1, 2))
    acceptor.handle(P1a(B(5, 2), 1))
    _, reply = only(acceptor.handle(P1a(B(1, 1), 1)))
    assert reply.ballot == B(5, 2)
    assert reply.slots.tolist() == []
    assert acceptor.stats["stale_p1a"] == 1


def test_p1b_reports_the_highest_ballot_pvalue_of_each_slot() -> None:
    acceptor = acceptor_with(B(0, 0))
    acceptor.handle(P2a(B(0, 0), slots(1, 2), (batch("a"), batch("b"))))
    acceptor.handle(P2a(B(1, 1), slots(2, 3), (batch("b2"), batch("c"))))
    _, reply = only(acceptor.handle(P1a(B(2, 2), 1)))
    assert reply.slots.tolist() == [1, 2, 3]
    assert reply.ballots.tolist() == [B(0, 0), B(1, 1), B(1, 1)]
    assert reply.batches == (batch("a"), batch("b2"), batch("c"))


def test_p1b_reports_only_slots_at_or_above_from_slot() -> None:
    acceptor = acceptor_with(B(0, 0))
    acceptor.handle(p2a(B(0, 0), 1, 2, 3, 4))
    _, reply = only(acceptor.handle(P1a(B(1, 1), 3)))
    assert reply.slots.tolist() == [3, 4]
    assert reply.batches == (batch("c3"), batch("c4"))


# -- phase 2 -------------------------------------------------------------------------------


def test_one_p2a_accepts_many_slots_and_one_p2b_lists_them() -> None:
    acceptor = acceptor_with(B(0, 0))
    to, reply = only(acceptor.handle(p2a(B(0, 0), *range(1, 201))))
    assert to == "n1"
    assert isinstance(reply, P2b)
    assert reply.slots.tolist() == list(range(1, 201))
    assert reply.ballot == B(0, 0)
    assert reply.collected.tolist() == []


def test_accepted_pvalues_are_persisted_before_the_p2b_leaves() -> None:
    acceptor = acceptor_with(B(0, 0))
    effects = acceptor.handle(p2a(B(0, 0), 7, 8))
    (record,) = effects.persist
    assert isinstance(record, Accepted)
    assert (record.ballot, record.slots.tolist()) == (B(0, 0), [7, 8])
    assert record.batches == (batch("c7"), batch("c8"))


P2A_CASES = [
    # (promised, p2a ballot, accepted)
    (B(1, 1), B(1, 1), True),
    (B(1, 1), B(2, 0), True),
    (B(1, 1), B(1, 0), False),
    (B(1, 1), B(0, 2), False),
    (kb.NO_BALLOT, B(0, 0), True),
]


@pytest.mark.parametrize(("promised", "ballot", "accepted"), P2A_CASES)
def test_acceptor_accepts_p2a_iff_at_or_above_its_promise(
    promised: int, ballot: int, accepted: bool
) -> None:
    acceptor = acceptor_with(promised)
    effects = acceptor.handle(p2a(ballot, 1, 2))
    _, reply = only(effects)
    assert (reply.slots.tolist() == [1, 2]) is accepted
    assert bool(effects.persist) is accepted


def test_acceptor_rejects_p2a_below_promised_ballot_with_its_promise() -> None:
    acceptor = acceptor_with(B(3, 2))
    _, reply = only(acceptor.handle(p2a(B(2, 0), 1)))
    assert reply.ballot == B(3, 2)
    assert reply.slots.tolist() == []
    assert acceptor.accepted()[0].tolist() == []
    assert acceptor.stats["stale_p2a"] == 1


def test_accepting_a_higher_ballot_raises_the_promise() -> None:
    acceptor = acceptor_with(B(1, 0))
    acceptor.handle(p2a(B(4, 1), 1))
    assert acceptor.promised == B(4, 1)


def test_a_slot_keeps_only_its_highest_ballot_pvalue() -> None:
    acceptor = acceptor_with(B(0, 0))
    acceptor.handle(P2a(B(0, 0), slots(1), (batch("old"),)))
    acceptor.handle(P2a(B(1, 2), slots(1), (batch("new"),)))
    acceptor.handle(P2a(B(1, 2), slots(1), (batch("new"),)))  # a re-sent p2a
    got_slots, got_ballots, got_batches = acceptor.accepted()
    assert got_slots.tolist() == [1]
    assert got_ballots.tolist() == [B(1, 2)]
    assert got_batches == (batch("new"),)


def test_many_resent_p2a_are_compacted_to_one_pvalue_per_slot() -> None:
    acceptor = acceptor_with(B(0, 0))
    for _ in range(30):
        acceptor.handle(p2a(B(0, 0), *range(1, 501)))
    assert len(acceptor.accepted()[0]) == 500
    assert repr(acceptor).endswith("entries=500>")


def test_handle_all_answers_each_p2a_in_order() -> None:
    acceptor = acceptor_with(B(0, 0))
    effects = acceptor.handle_all([p2a(B(0, 0), 1), p2a(B(0, 0), 2, 3)])
    assert [m.slots.tolist() for _, m in effects.send] == [[1], [2, 3]]
    assert len(effects.persist) == 2


# -- garbage collection ------------------------------------------------------------------


def test_collect_drops_pvalues_below_the_floor_and_persists_the_floor() -> None:
    acceptor = acceptor_with(B(0, 0))
    acceptor.handle(p2a(B(0, 0), 1, 2, 3, 4))
    effects = acceptor.collect(3)
    (record,) = effects.persist
    assert isinstance(record, Collected)
    assert (record.floor, record.slots.tolist()) == (3, [1, 2])
    assert acceptor.floor == 3
    assert acceptor.accepted()[0].tolist() == [3, 4]


def test_collect_never_lowers_the_floor() -> None:
    acceptor = Acceptor(CONFIG, "n1")
    acceptor.collect(10)
    assert acceptor.collect(5).persist == []
    assert acceptor.floor == 10


def test_a_collect_message_collects() -> None:
    acceptor = Acceptor(CONFIG, "n1")
    acceptor.handle(Collect(4))
    assert acceptor.floor == 4


def test_p2a_for_collected_slots_is_answered_as_collected() -> None:
    acceptor = acceptor_with(B(0, 0))
    acceptor.collect(3)
    effects = acceptor.handle(p2a(B(0, 0), 1, 2, 3))
    _, reply = only(effects)
    assert reply.collected.tolist() == [1, 2]
    assert reply.slots.tolist() == [3]
    (record,) = effects.persist
    assert isinstance(record, Accepted)
    assert record.slots.tolist() == [3]


def test_p1b_carries_the_floor_and_no_pvalue_below_it() -> None:
    acceptor = acceptor_with(B(0, 0))
    acceptor.handle(p2a(B(0, 0), 1, 2, 3))
    acceptor.collect(2)
    _, reply = only(acceptor.handle(P1a(B(1, 1), 1)))
    assert reply.floor == 2
    assert reply.slots.tolist() == [2, 3]


# -- restart -------------------------------------------------------------------------------


def test_acceptor_restarted_from_records_never_accepts_below_a_ballot_promised_before_crash() -> (
    None
):
    acceptor = Acceptor(CONFIG, "n2")
    log = [
        acceptor.handle(P1a(B(1, 0), 1)),
        acceptor.handle(p2a(B(1, 0), 1, 2)),
        acceptor.handle(P1a(B(3, 2), 1)),  # promised 3.2, accepted nothing under it
    ]
    records = records_from_storage(sorted(store_of(log).items()))
    restarted = Acceptor.restore(CONFIG, "n2", records)
    assert restarted.promised == B(3, 2)
    effects = restarted.handle(p2a(B(2, 0), 3))
    _, reply = only(effects)
    assert reply.slots.tolist() == []
    assert reply.ballot == B(3, 2)
    assert effects.persist == []
    _, p1b = only(restarted.handle(P1a(B(3, 1), 1)))
    assert p1b.ballot == B(3, 2)


def test_restore_rebuilds_the_accepted_pvalues_and_the_floor() -> None:
    acceptor = Acceptor(CONFIG, "n1")
    log = [
        acceptor.handle(P1a(B(0, 0), 1)),
        acceptor.handle(p2a(B(0, 0), 1, 2, 3)),
        acceptor.handle(P2a(B(2, 1), slots(3), (batch("z"),))),
        acceptor.collect(2),
    ]
    restarted = Acceptor.restore(CONFIG, "n1", records_from_storage(store_of(log).items()))
    assert restarted.floor == 2
    assert restarted.promised == B(2, 1)
    got_slots, got_ballots, got_batches = restarted.accepted()
    assert got_slots.tolist() == [2, 3]
    assert got_ballots.tolist() == [B(0, 0), B(2, 1)]
    assert got_batches == (batch("c2"), batch("z"))


def test_restore_refuses_another_roles_records() -> None:
    with pytest.raises(TypeError, match="not an acceptor record"):
        Acceptor.restore(CONFIG, "n1", [LeaderBallot(3)])


# -- storage encoding ----------------------------------------------------------------------

RECORDS = [
    Promised(B(2, 1)),
    Accepted(B(1, 0), slots(4, 5), (batch("a"), ())),
    Collected(3, slots(1, 2)),
    LeaderBallot(B(7, 2)),
    Decided(1, (batch("a"), (), batch("b"))),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_every_record_comes_back_from_storage(record: Any) -> None:
    store: dict[bytes, bytes] = {}
    if isinstance(record, Collected):
        store[b"acc/" + (1).to_bytes(8, "big")] = pack_value((0, ()))
    for key, value in storage_ops(record):
        if value is None:
            store.pop(key, None)
        else:
            store[key] = value
    (back,) = records_from_storage(store.items())
    assert type(back) is type(record)
    for name in vars(record):
        want, got = getattr(record, name), getattr(back, name)
        if isinstance(want, np.ndarray):
            # Collected comes back as its floor only: the deleted slots are gone.
            assert got.tolist() == ([] if isinstance(record, Collected) else want.tolist())
        else:
            assert got == want


def test_accepted_slots_are_stored_under_keys_that_scan_in_slot_order() -> None:
    keys = [k for k, _ in storage_ops(Accepted(0, slots(256, 2, 1), ((), (), ())))]
    assert sorted(keys) == [keys[2], keys[1], keys[0]]


def test_packed_values_keep_bytes_and_arrays() -> None:
    value = (1, b"raw", np.arange(3, dtype=np.int64))
    back = unpack_value(pack_value(value))
    assert back[:2] == (1, b"raw")
    assert back[2].tolist() == [0, 1, 2]


def test_a_truncated_stored_value_is_refused() -> None:
    with pytest.raises(ValueError, match="stored value is"):
        unpack_value(pack_value((1, 2))[:-3])


def test_a_foreign_key_is_refused() -> None:
    with pytest.raises(ValueError, match="not a key a Paxos role writes"):
        records_from_storage([(b"other", b"")])


# -- misuse and malformed input ----------------------------------------------------------


def test_a_message_for_another_role_is_a_type_error_naming_that_role() -> None:
    with pytest.raises(TypeError, match="which the replica handles"):
        Acceptor(CONFIG, "n1").handle(Decision(slots(1), ((),)))


def test_an_address_outside_the_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="not an acceptor"):
        Acceptor(CONFIG, "n9")


MALFORMED = [
    P1a(-5, 1),
    P1a(B(1, 7), 1),  # no leader 7
    P1a(B(1, 0), -1),
    P2a(B(1, 0), slots(1, 2), (batch("a"),)),
    P2a(B(1, 0), np.array([1.0]), (batch("a"),)),
    P2a(B(1, 0), slots(-3), (batch("a"),)),
    P2a(B(1, 0), slots(1), [batch("a")]),  # type: ignore[arg-type]
    Collect(-1),
]


@pytest.mark.parametrize("message", MALFORMED, ids=repr)
def test_a_malformed_message_is_counted_and_dropped(message: Any) -> None:
    acceptor = Acceptor(CONFIG, "n1")
    effects = acceptor.handle(message)
    assert not effects
    assert acceptor.stats["malformed"] == 1
    assert acceptor.promised == kb.NO_BALLOT
