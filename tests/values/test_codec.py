"""Message values: registration, validation, and the body encoding."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actorfw import ActorRef, MalformedMessage, MessageRefused, Order, ReplyTo, message
from actorfw.values import codec


@message(name="test.codec.Point")
@dataclass(frozen=True)
class Point:
    x: int
    y: int


@message(name="test.codec.Shape")
@dataclass(frozen=True)
class Shape:
    name: str
    points: tuple[Point, ...]
    owner: ActorRef | None = None


def round_trip(value: object) -> object:
    body, buffers, plain = codec.encode(value)
    return codec.decode(body, [bytes(memoryview(b).cast("B")) for b in buffers], plain)


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
)
values = st.recursive(
    json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
        st.builds(Point, st.integers(-5, 5), st.integers(-5, 5)),
    ),
    max_leaves=20,
)


@given(values)
def test_every_message_value_round_trips_with_its_types(value: object) -> None:
    back = round_trip(value)
    assert back == value
    assert repr(back) == repr(value)  # same types all the way down (tuple vs list, bytes)


def test_registered_messages_refs_and_arrays_round_trip() -> None:
    shape = Shape("tri", (Point(0, 0), Point(1, 0)), ActorRef("n1", "owner"))
    assert round_trip(shape) == shape
    assert round_trip(ReplyTo("n2", 17)) == ReplyTo("n2", 17)
    grid = np.arange(12, dtype=np.float32).reshape(3, 4)
    back = round_trip({"grid": grid})["grid"]
    assert back.dtype == grid.dtype and back.shape == grid.shape and np.array_equal(back, grid)
    strided = np.arange(10, dtype=np.int16)[::2]
    assert np.array_equal(round_trip(strided), strided)


def test_non_finite_floats_round_trip() -> None:
    back = round_trip([math.inf, -math.inf, math.nan])
    assert back[0] == math.inf and back[1] == -math.inf and math.isnan(back[2])


def test_arrays_and_large_bytes_travel_beside_the_body_not_in_it() -> None:
    big = np.zeros(1 << 16, dtype=np.uint8)
    body, buffers, plain = codec.encode({"blob": b"x" * 2000, "big": big})
    assert len(body) < 100
    assert buffers[1] is big  # contiguous arrays are sent as they are, not copied
    assert not plain


def test_small_bytes_travel_inside_the_body_up_to_the_inline_bound() -> None:
    from actorfw._pure.wire import INLINE_BYTES

    for size in (0, 1, 100, INLINE_BYTES):
        raw = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
        body, buffers, plain = codec.encode({"blob": raw})
        assert buffers == [] and not plain and b'"$x"' in body
        assert codec.decode(body, buffers) == {"blob": raw}
    body, buffers, _ = codec.encode(b"y" * (INLINE_BYTES + 1))
    assert body == b'{"$b":0}' and buffers == [b"y" * (INLINE_BYTES + 1)]


def test_one_message_inlines_at_most_its_budget_so_its_body_stays_near_its_size() -> None:
    from actorfw._pure.wire import INLINE_BUDGET, INLINE_BYTES

    chunks = [bytes(INLINE_BYTES)] * (2 * INLINE_BUDGET // INLINE_BYTES)  # zeros: 6 body bytes each
    body, buffers, _ = codec.encode(chunks)
    assert len(buffers) == len(chunks) // 2  # the second half goes as frames
    assert len(body) <= 6 * INLINE_BUDGET + 16 * len(chunks)
    assert codec.decode(body, buffers) == chunks


@pytest.mark.parametrize(
    "body", [b'{"$x":"\\u0100"}', '{"$x":"caf\u00e9\u20ac"}'.encode(), b'{"$x":3}', b'{"$x":["a"]}']
)
def test_inline_bytes_past_a_byte_or_not_a_string_are_malformed(body: bytes) -> None:
    with pytest.raises(MalformedMessage, match=r"\$x tag"):
        codec.decode(body, [])


def test_plain_json_is_flagged_so_the_decoder_can_skip_its_walk() -> None:
    body, buffers, plain = codec.encode({"a": [1, 2.5, "x", None, True]})
    assert plain and buffers == []
    assert codec.decode(body, plain=True) == {"a": [1, 2.5, "x", None, True]}


def test_a_dict_that_looks_like_a_tag_is_escaped() -> None:
    for value in ({"$t": [1]}, {"$m": ["x", {}]}, {"$": 1}, {"$d": {"$d": 2}}):
        assert round_trip(value) == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({1, 2}, "message is a set"),
        ({"a": [1, {2}]}, "message['a'][1] is a set"),
        (Point(1, object()), "message.y is an object,"),
        (2**64, "outside the 64-bit range"),
        (-(2**63) - 1, "outside the 64-bit range"),
        ({1: "x"}, "dict keys must be str"),
        (Order.BEFORE, "send the plain value"),
        (np.int64(3), "numpy scalar"),
        (np.array([object()]), "array of Python objects"),
        (bytearray(b"x"), "send bytes(...) instead"),
        (lambda: 1, "not a message value"),
    ],
    ids=[
        "set",
        "nested-set",
        "field",
        "too-big",
        "too-small",
        "int-key",
        "enum",
        "np-scalar",
        "object-array",
        "bytearray",
        "function",
    ],
)
def test_what_is_not_a_message_value_is_refused_with_its_path(value: object, fragment: str) -> None:
    with pytest.raises(MessageRefused) as caught:
        codec.check(value)
    assert fragment in str(caught.value)
    with pytest.raises(MessageRefused):
        codec.encode(value)


def test_an_unregistered_dataclass_is_refused_with_the_fix() -> None:
    @dataclass(frozen=True)
    class Loose:
        a: int

    with pytest.raises(MessageRefused, match=r"not registered: decorate it with @actorfw\.message"):
        codec.check(Loose(1))


def test_too_deep_nesting_is_refused() -> None:
    value: object = []
    for _ in range(5000):
        value = [value]
    with pytest.raises(MessageRefused, match="nested too deeply"):
        codec.encode(value)


MALFORMED = {
    "not-json": (b"{", []),
    "unknown-tag": (b'{"$zz": 1}', []),
    "unknown-message": (b'{"$m": ["no.such.Message", {}]}', []),
    "missing-field": (b'{"$m": ["test.codec.Point", {"x": 1}]}', []),
    "extra-field": (b'{"$m": ["test.codec.Point", {"x": 1, "y": 2, "z": 3}]}', []),
    "bad-m-shape": (b'{"$m": "test.codec.Point"}', []),
    "buffer-index": (b'{"$b": 3}', [b"x"]),
    "negative-index": (b'{"$b": -1}', [b"x"]),
    "array-size": (b'{"$a": [0, "<f8", [3]]}', [b"\x00" * 16]),
    "array-dtype": (b'{"$a": [0, "not-a-dtype", [1]]}', [b"\x00" * 8]),
    "array-object": (b'{"$a": [0, "O", [1]]}', [b"\x00" * 8]),
    "array-shape": (b'{"$a": [0, "<f8", [-1]]}', [b"\x00" * 8]),
    "bad-float": (b'{"$f": "1e999"}', []),
    "bad-ref": (b'{"$r": ["n1"]}', []),
    "empty-ref": (b'{"$r": ["", "x"]}', []),
    "bad-reply": (b'{"$p": ["n1", "7"]}', []),
    "bad-tuple": (b'{"$t": {"a": 1}}', []),
    "bad-dict": (b'{"$d": [1]}', []),
}


@pytest.mark.parametrize(("body", "buffers"), list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_bodies_are_rejected_with_a_clear_error(
    body: bytes, buffers: list[bytes]
) -> None:
    with pytest.raises(MalformedMessage, match="malformed message body"):
        codec.decode(body, buffers)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_malformed_message(data: bytes) -> None:
    try:
        codec.decode(data, [b"\x00" * 8])
    except MalformedMessage:
        pass


@given(values)
def test_mutated_bodies_decode_or_raise_malformed_message(value: object) -> None:
    body, buffers, _ = codec.encode(value)
    for cut in range(0, len(body), max(1, len(body) // 7)):
        try:
            codec.decode(body[:cut] + body[cut + 1 :], buffers)
        except MalformedMessage:
            pass


def test_registration_refuses_a_dataclass_that_is_not_frozen() -> None:
    # (A plain class is made a frozen dataclass: tests/test_message_decorator.py.)
    with pytest.raises(TypeError, match="must be a frozen dataclass"):

        @message
        @dataclass
        class Mutable:
            x: int


def test_a_name_cannot_be_registered_twice_by_different_classes() -> None:
    with pytest.raises(ValueError, match="is taken by"):

        @message(name="test.codec.Point")
        @dataclass(frozen=True)
        class Impostor:
            x: int
            y: int


def test_registry_lookups() -> None:
    assert codec.message_name(Point) == "test.codec.Point"
    assert codec.message_type("test.codec.Point") is Point
    assert codec.message_type("nope") is None
    assert "actorfw.Terminated" in codec.registered_messages()


def test_the_body_is_plain_json_other_tools_can_read() -> None:
    body, _, _ = codec.encode(Point(1, 2))
    assert orjson.loads(body) == {"$m": ["test.codec.Point", {"x": 1, "y": 2}]}


@message(name="test.codec.Checked")
@dataclass(frozen=True)
class Checked:
    """Validates in ``__post_init__``: a decoder must call it."""

    n: int

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError("n must not be negative")


@message(name="test.codec.Own")
@dataclass(frozen=True, init=False)
class Own:
    """Its own ``__init__`` derives a field: a decoder must call it."""

    n: int

    def __init__(self, n: int) -> None:
        object.__setattr__(self, "n", n * 2)


def test_plain_message_classes_are_built_without_calling_init() -> None:
    assert Point in codec._DIRECT and Shape in codec._DIRECT
    assert Checked not in codec._DIRECT and Own not in codec._DIRECT
    shape = Shape("s", (Point(1, 2),), ActorRef("n1", "a"))
    back = round_trip(shape)
    assert back == shape and hash(back) == hash(shape)
    assert type(back) is Shape and vars(back) == vars(shape)
    with pytest.raises(AttributeError):
        back.name = "t"  # type: ignore[misc]  # still frozen


def test_classes_with_their_own_init_logic_are_built_by_calling_it() -> None:
    assert round_trip(Checked(3)) == Checked(3)
    with pytest.raises(MalformedMessage, match="refused its fields: n must not be negative"):
        codec.decode(b'{"$m":["test.codec.Checked",{"n":-1}]}')
    assert round_trip(Own(2)).n == 8  # encoded as n=4, then built by __init__ again
