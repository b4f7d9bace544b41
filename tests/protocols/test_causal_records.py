"""A causal member's records survive storage: the codec's round trip, and bad bytes refused."""

from __future__ import annotations

import pytest

from actorfw.kernels import vclock
from actorfw.protocols.causal import CausalMember, Forgotten, Logged
from actorfw.protocols.causal.records import CODEC
from actorfw.values.packed import pack_value
from tests.support.stored import stored as stored_by


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


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        (b"X\x00\x02n1", pack_value(1), "not a key"),
        (b"F\x00\x09n1", pack_value(1), "not a key"),
        (b"F\x00\x02n1", pack_value("one"), "a stored floor is a number"),
        (b"L\x00\x02n1" + (1).to_bytes(8, "big"), pack_value(1), "is \\(clock, payload\\)"),
        (b"L\x00\x02n1" + (1).to_bytes(8, "big"), b"\x01", "stored value"),
        (b"L", b"", "not a key"),
    ],
)
def test_bytes_no_member_writes_are_refused(key: bytes, value: bytes, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        CODEC.load([(key, value)])


def test_a_record_of_another_kind_is_refused() -> None:
    with pytest.raises(TypeError, match="not a causal member's record"):
        CODEC.ops("a string")  # type: ignore[arg-type]
