"""The wire kernel: compiled and pure twins encode, decode and refuse alike."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actorfw import ActorRef, MalformedMessage, MessageRefused
from actorfw.values import codec
from actorfw.values.codec import message
from tests.values.test_codec import Point, values


def outcome(function: Any, *args: Any) -> Any:
    try:
        return ("ok", function(*args))
    except (MessageRefused, MalformedMessage) as error:
        return (type(error).__name__, str(error))


def normalize(encoded: Any) -> Any:
    kind, value = encoded
    if kind != "ok":
        return encoded
    body, buffers, plain = value
    return (bytes(body), [memoryview(b).tobytes() for b in buffers], plain)


@given(values)
def test_both_encode_every_value_to_the_same_bytes(twins: Any, value: Any) -> None:
    compiled, pure = twins
    assert normalize(outcome(compiled.encode_value, value)) == normalize(
        outcome(pure.encode_value, value)
    )


@pytest.mark.parametrize("sizes", [[1024] * 70, [1000, 1025, 0, 1024] * 30, [1] * 70_000])
def test_both_inline_the_same_bytes_up_to_the_budget_and_frame_the_rest(
    twins: Any, sizes: list[int]
) -> None:
    compiled, pure = twins
    value = [bytes([n % 256]) * size for n, size in enumerate(sizes)]
    assert compiled.encode_value(value) == pure.encode_value(value)


@given(values)
def test_each_decodes_what_the_other_encoded(twins: Any, value: Any) -> None:
    compiled, pure = twins
    body, buffers, plain = pure.encode_value(value)
    raw = [memoryview(b).tobytes() for b in buffers]
    assert repr(compiled.decode_value(body, raw, plain)) == repr(value)
    body, buffers, plain = compiled.encode_value(value)
    raw = [memoryview(b).tobytes() for b in buffers]
    assert repr(pure.decode_value(body, raw, plain)) == repr(value)


REFUSED = [
    {1, 2},
    {"a": [1, {2}]},
    Point(1, object()),
    2**64,
    {1: "x"},
    np.int64(3),
    bytearray(b"x"),
    [[[[1, {3}]]]],
    (ActorRef("n", "a"), lambda: 1),
]


@pytest.mark.parametrize("value", REFUSED, ids=range(len(REFUSED)))
def test_both_refuse_with_the_same_words(twins: Any, value: Any) -> None:
    compiled, pure = twins
    assert outcome(compiled.check_value, value) == outcome(pure.check_value, value)
    assert outcome(compiled.encode_value, value)[0] == "MessageRefused"
    assert outcome(compiled.encode_value, value) == outcome(pure.encode_value, value)


def test_both_refuse_nesting_past_the_limit_and_accept_it_below(twins: Any) -> None:
    compiled, _ = twins
    for depth, accepted in ((compiled.MAX_DEPTH, True), (compiled.MAX_DEPTH + 1, False)):
        value: Any = 1
        for _ in range(depth):
            value = [value]
        for twin in twins:
            assert (outcome(twin.check_value, value)[0] == "ok") is accepted


@given(st.binary(max_size=80))
def test_both_agree_on_arbitrary_bodies(twins: Any, body: bytes) -> None:
    compiled, pure = twins
    assert repr(outcome(compiled.decode_value, body, [b"\x00" * 8], False)) == repr(
        outcome(pure.decode_value, body, [b"\x00" * 8], False)
    )


@given(
    values, st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=3)
)
def test_both_agree_on_mutated_bodies(twins: Any, value: Any, edits: list[tuple[int, int]]) -> None:
    compiled, pure = twins
    body, buffers, _ = pure.encode_value(value)
    data = bytearray(body)
    for at, byte in edits:
        data[at % len(data)] = byte
    raw = [memoryview(b).tobytes() for b in buffers]
    assert repr(outcome(compiled.decode_value, bytes(data), raw, False)) == repr(
        outcome(pure.decode_value, bytes(data), raw, False)
    )


def _show(envelopes: list[Any]) -> list[Any]:
    return [
        (e.kind, e.target, e.sender, e.corr, bytes(e.body), e.plain, len(e.buffers))
        for e in envelopes
    ]


def batch_outcome(twin: ModuleType, frames: list[bytes]) -> Any:
    try:
        good, big = twin.decode_batch("peer", frames, 64)
    except twin.MalformedBatch as error:
        return ("malformed", str(error))
    return (_show(good), _show(big))


envelopes = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.text(max_size=8),
        st.one_of(st.none(), st.text(min_size=1, max_size=8)),
        st.integers(0, 2**64 - 1),
        st.binary(max_size=100),
        st.lists(st.binary(max_size=20), max_size=2),
        st.booleans(),
    ),
    max_size=6,
)


@given(envelopes, st.lists(st.tuples(st.integers(0, 500), st.integers(0, 255)), max_size=3))
def test_both_encode_and_decode_batches_alike_even_mutated(
    twins: Any, items: list[Any], edits: list[Any]
) -> None:
    compiled, pure = twins
    made = [
        [twin.Envelope(k, "src", t, s, c, b, list(bufs), p) for k, t, s, c, b, bufs, p in items]
        for twin in twins
    ]
    frames_c = [bytes(f) for f in compiled.encode_batch(made[0])]
    frames_p = [bytes(f) for f in pure.encode_batch(made[1])]
    assert frames_c == frames_p
    data = bytearray(frames_c[0])
    for at, byte in edits:
        data[at % len(data)] = byte
    frames = [bytes(data), *frames_c[1:]]
    assert batch_outcome(compiled, frames) == batch_outcome(pure, frames)


@given(
    st.lists(st.tuples(st.integers(0, 3000), st.lists(st.integers(0, 5000), max_size=2))),
    st.integers(0, 40),
    st.integers(1, 70),
    st.integers(1, 20_000),
)
def test_both_end_a_batch_at_the_same_envelope(
    twins: Any, sizes: list[tuple[int, list[int]]], start: int, max_count: int, max_bytes: int
) -> None:
    compiled, pure = twins
    envelopes = [
        compiled.Envelope(
            0, "a", "t", None, 0, b"x" * body, [np.zeros(n, np.uint8) for n in bufs], 1
        )
        for body, bufs in sizes
    ]
    end = pure.batch_end(envelopes, start, max_count, max_bytes)
    assert compiled.batch_end(envelopes, start, max_count, max_bytes) == end
    assert compiled.batch_end(tuple(envelopes), start, max_count, max_bytes) == end
    if start < len(envelopes):  # at least one, at most max_count, and no more than the bytes
        assert start < end <= start + max_count
        held = sum(body + sum(bufs) for body, bufs in sizes[start : end - 1])
        assert held < max_bytes
        if end < len(envelopes) and end - start < max_count:
            assert held + sizes[end - 1][0] + sum(sizes[end - 1][1]) >= max_bytes
    else:
        assert end == start


def test_both_refuse_a_batch_that_begins_before_the_first_envelope(twins: Any) -> None:
    for kernel in twins:
        with pytest.raises(ValueError, match="cannot begin at -1"):
            kernel.batch_end([], -1, 64, 1 << 20)


@message(name="test.twins.Failing")
@dataclass(frozen=True)
class Failing(Exception):
    """A message class with a built-in base: ``object.__new__`` may not make it."""

    code: int


class Loose:
    """A base without slots: its subclasses' instances have a ``__dict__``."""


@message(name="test.twins.SlottedOverLoose")
class SlottedOverLoose(Loose):
    """Fields in slots, with a ``__dict__`` beside them from the base."""

    x: int


@dataclass(frozen=True)
class Private:
    """A base whose field is a private slot: its slot's name is mangled."""

    __slots__ = ("__secret",)
    __secret: int


@message(name="test.twins.OverPrivate")
@dataclass(frozen=True)
class OverPrivate(Private):
    y: int


class Kept:
    """A descriptor that keeps its field under another name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = "_" + name

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        return 0 if instance is None else getattr(instance, self.name)

    def __set__(self, instance: Any, value: int) -> None:
        object.__setattr__(instance, self.name, value)


@message(name="test.twins.Described")
@dataclass(frozen=True)
class Described:
    x: Kept = Kept()


class Made:
    """A base whose ``__new__`` marks what it made."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        made = super().__new__(cls)
        object.__setattr__(made, "made_by_new", True)
        return made


@message(name="test.twins.WithNew")
@dataclass(frozen=True)
class WithNew(Made):
    x: int


@pytest.mark.parametrize(
    "value",
    [Failing(3), SlottedOverLoose(4), OverPrivate(1, 2), Described(3), WithNew(5)],
)
def test_both_build_every_shape_of_message_class_whole(twins: Any, value: Any) -> None:
    body, buffers, plain = codec.encode(value)
    for kernel in twins:
        built = kernel.decode_value(body, buffers, plain)
        assert type(built) is type(value) and built == value
        assert repr(built) == repr(value)  # every part of it made: using it is safe
        assert getattr(built, "made_by_new", None) == getattr(value, "made_by_new", None)


def test_both_refuse_a_batch_that_holds_nothing(twins: Any) -> None:
    for kernel in twins:
        for count, size in ((0, 1 << 20), (64, 0)):
            with pytest.raises(ValueError, match="at least one envelope"):
                kernel.batch_end([], 0, count, size)
