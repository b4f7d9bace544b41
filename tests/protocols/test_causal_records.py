"""A causal member's records survive storage: the codec's round trip, and bad bytes refused."""

from __future__ import annotations

import pytest

from actorfw.kernels import vclock
from actorfw.protocols.causal import CausalMember, Forgotten, Logged, LoggedRun
from actorfw.protocols.causal.records import CODEC
from actorfw.values.packed import pack_value
from tests.support.stored import stored as stored_by

_RUN = b"R\x00\x02n1" + (1).to_bytes(8, "big")


def stored(records: list) -> list[tuple[bytes, bytes]]:
    return sorted(stored_by(CODEC, records).items())


def test_records_come_back_floors_first_and_forgotten_ones_deleted() -> None:
    clock = vclock.VectorClock({"a/b": 1})
    records = [
        Logged("a/b", 1, clock, {"text": "hi"}),
        Logged("n2", 1, vclock.VectorClock({"n2": 1}), b"\x00"),
        Logged("n2", 2, vclock.VectorClock({"n2": 2}), None),
        Forgotten("n2", 1, (1,)),
    ]
    back = CODEC.load(stored(records))
    assert back[0] == Forgotten("n2", 1)
    assert sorted(back[1:], key=repr) == sorted([records[0], records[2]], key=repr)
    member = CausalMember.restore("n2", ["a/b", "n2"], back)
    assert member.delivered == vclock.VectorClock({"a/b": 1, "n2": 2})
    assert list(member.log["n2"]) == [2]


def test_a_run_is_stored_as_one_key_and_restored_as_the_messages_it_stands_for() -> None:
    member = CausalMember("n1", ["n1", "n2"])
    member.broadcast("solo")
    steps = [member.broadcast("first").persist, member.broadcast_all(["a", "b", "c"]).persist]
    records = [record for persist in steps for record in persist]
    assert [type(r) for r in records] == [Logged, LoggedRun]
    store = stored(records)
    assert len(store) == 2 and store[1][0].startswith(b"R")
    back = CODEC.load(store)
    assert sorted(back, key=lambda r: r.seq) == records
    restored = CausalMember.restore("n1", ["n1", "n2"], back)
    assert restored.delivered == vclock.VectorClock({"n1": 5})
    kept = restored.start(0.0).outputs
    assert [(d.seq, d.payload) for d in kept] == [(2, "first"), (3, "a"), (4, "b"), (5, "c")]
    assert [d.clock for d in kept] == [
        vclock.VectorClock({"n1": seq}) for seq in range(2, 6)
    ]  # each message's own stamp, as delivered


def test_a_forgotten_run_is_deleted_only_when_all_of_it_is_stable() -> None:
    run = LoggedRun("n2", 1, vclock.VectorClock({"n2": 1}), ("a", "b", "c"))
    partly = stored([run, Forgotten("n2", 2, ())])
    back = CODEC.load(partly)
    assert back == [Forgotten("n2", 2), run]
    member = CausalMember.restore("n2", ["n1", "n2"], back)
    assert list(member.log["n2"]) == [3] and member.delivered.get("n2") == 3
    assert stored([run, Forgotten("n2", 3, (1,))]) == [(b"F\x00\x02n2", pack_value(3))]


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        (b"X\x00\x02n1", pack_value(1), "not a key"),
        (b"F\x00\x09n1", pack_value(1), "not a key"),
        (b"F\x00\x02n1", pack_value("one"), "a stored floor is a number"),
        (b"L\x00\x02n1" + (1).to_bytes(8, "big"), pack_value(1), "is \\(clock, payload\\)"),
        (b"L\x00\x02n1" + (1).to_bytes(8, "big"), b"\x01", "stored value"),
        (b"L", b"", "not a key"),
        (_RUN, pack_value((vclock.VectorClock({"n1": 1}),)), "1 to 1024 payloads"),
        (_RUN, pack_value((vclock.VectorClock({"n1": 1}), *(0,) * 1025)), "1 to 1024"),
        (_RUN, pack_value(("clock", 1)), "a stored run is"),
        (_RUN, pack_value(5), "a stored run is"),
        (_RUN, pack_value((vclock.VectorClock({"n2": 1}), 1)), "is not message 1 of 'n1'"),
        (_RUN, pack_value((vclock.VectorClock({"n1": 2}), 1)), "is not message 1 of 'n1'"),
        (
            b"R\x00\x02n1" + (2**64 - 1).to_bytes(8, "big"),
            pack_value((vclock.VectorClock({"n1": 2**64 - 1}), 1, 2)),
            "passes the counters' bound",
        ),
        (
            b"L\x00\x02n1" + (3).to_bytes(8, "big"),
            pack_value((vclock.VectorClock({"n1": 2}), "x")),
            "is not message 3 of 'n1'",
        ),
        (
            b"L\x00\x02n1" + (1).to_bytes(8, "big"),
            pack_value(("not a clock", "x")),
            "is not message 1",
        ),
        (_RUN + b"\x00", pack_value((vclock.VectorClock({"n1": 1}), 1)), "not a key"),
    ],
)
def test_bytes_no_member_writes_are_refused(key: bytes, value: bytes, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        CODEC.load([(key, value)])


def test_a_record_of_another_kind_is_refused() -> None:
    with pytest.raises(TypeError, match="not a causal member's record"):
        CODEC.ops("a string")  # type: ignore[arg-type]


def test_an_empty_array_is_packed_and_read_back() -> None:
    import numpy as np

    from actorfw.values.packed import unpack_value

    empty = np.zeros((3, 0))  # a message value; its buffer has no bytes to cast
    back = unpack_value(pack_value(("x", empty)))
    assert back[0] == "x" and back[1].shape == (3, 0) and back[1].dtype == empty.dtype
