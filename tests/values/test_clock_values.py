"""Vector clocks travel in messages: their canonical encoding as a buffer, decoded by the kernel."""

from __future__ import annotations

from types import ModuleType

import pytest

from actorfw import MalformedMessage, VectorClock, message
from actorfw.values import codec
from tests.conftest import load_kernels


@message(name="test.clocks.Stamped")
class Stamped:
    payload: str
    clock: VectorClock


@pytest.fixture(params=["compiled", "pure"])
def wire(request: pytest.FixtureRequest) -> ModuleType:
    module = load_kernels(request.param)["wire"]
    codec.bind_kernel(module)
    return module


@pytest.mark.parametrize(
    "value",
    [
        VectorClock(),
        VectorClock({"n1": 1, "n2": 2**64 - 1}),
        Stamped("hi", VectorClock({"a": 3})),
        [VectorClock({"x": 1}), (VectorClock({"y": 2}),), {"c": VectorClock({"z": 3})}],
    ],
)
def test_a_clock_round_trips_in_both_twins(wire: ModuleType, value: object) -> None:
    body, buffers, plain = wire.encode_value(value)
    assert not plain
    back = wire.decode_value(body, buffers, plain)
    assert back == value and type(back) is type(value)


def test_a_clock_travels_as_its_canonical_encoding(wire: ModuleType) -> None:
    clock = VectorClock({"n2": 5, "n1": 1})
    body, buffers, _ = wire.encode_value(clock)
    assert body == b'{"$v":0}' and buffers == [clock.encode()]


def test_a_clock_is_a_message_value_for_local_sends(wire: ModuleType) -> None:
    wire.check_value({"stamp": VectorClock({"n1": 1})})


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # truncated: no version
        b"\x02\x00",  # an unknown version
        VectorClock({"n1": 7}).encode()[:-1],  # truncated counter
        VectorClock({"n1": 7}).encode() + b"\x00",  # trailing bytes
        b"\x01\x01\x02n1\x00",  # a zero counter
        b"\x01\x01\x02n1" + b"\xff" * 11,  # a varint past 64 bits
    ],
)
def test_bad_clock_bytes_are_malformed(wire: ModuleType, raw: bytes) -> None:
    with pytest.raises(MalformedMessage):
        wire.decode_value(b'{"$v":0}', [raw], False)


@pytest.mark.parametrize("body", [b'{"$v":1}', b'{"$v":-1}', b'{"$v":"0"}', b'{"$v":[0]}'])
def test_a_clock_tag_with_a_bad_index_is_malformed(wire: ModuleType, body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        wire.decode_value(body, [VectorClock({"a": 1}).encode()], False)
