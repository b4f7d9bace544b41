"""The compiled codec's direct writer and reader: the general path's bytes and values, or nothing.

The compiled ``encode_value`` first writes a registered message or a
tuple (of strings, integers, booleans, None, refs, small bytes, lists and
tuples, and the values kept in buffers: larger bytes, numpy arrays, vector
clocks) straight into its bytes, and ``decode_value`` first reads such a body
straight from its bytes; each gives up at the first thing it does not take,
and the general path (the walk and orjson) does the whole work. These tests
hold both to the pure twin: on the values they are meant for, on values
just outside, on the same bodies edited, and on valid bodies written
otherwise than the encoder writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actorfw import ActorRef, MalformedMessage, MessageRefused, ReplyTo
from actorfw.kernels import vclock
from actorfw.values.codec import message
from tests.kernels.test_wire_twins import WithNew
from tests.values.test_codec import Point, Shape, values


@message(name="test.direct.Flat")
class Flat:  # @message alone: a slotted frozen dataclass
    text: str
    number: int
    rest: Any


def outcome(function: Any, *args: Any) -> Any:
    try:
        return ("ok", repr(function(*args)))
    except (MessageRefused, MalformedMessage) as error:
        return (type(error).__name__, str(error))


ints = st.integers(-(2**63), 2**64 - 1)  # what the codec takes
EDGES = [0, -1, 10**17, 10**18 - 1, -(10**18 - 1), 10**18, -(10**18), 2**63 - 1, 2**64 - 1]
leaves = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    st.sampled_from(EDGES),
    st.text(max_size=6),
    st.text(alphabet='a"\\\n\x00\x7fé€😀', max_size=4),  # escapes, control, wide
    st.binary(max_size=6),
    st.builds(ActorRef, st.sampled_from(["n1", "nœud"]), st.sampled_from(["a", 'q"uote'])),
    st.builds(ReplyTo, st.sampled_from(["n1", "n2"]), st.integers(0, 2**64 - 1)),
    st.binary(min_size=1020, max_size=1030),  # about the inline bound: inline or a buffer
    st.builds(
        vclock.VectorClock,
        st.dictionaries(st.sampled_from(["n1", "n2"]), ints.filter(lambda n: n >= 0)),
    ),
    st.sampled_from(
        [  # arrays, kept in buffers; a strided one copied; one of objects refused
            np.arange(3, dtype=np.int64),
            np.zeros((2, 3), dtype=np.float32),
            np.arange(10, dtype=">i2")[::3],
            np.array([], dtype=np.uint8),
            np.array([True, False]),
            np.array(["ab", "c"]),
            np.zeros((1, 0, 2)),
        ]
    ),
)
direct_values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.builds(Point, ints, st.integers(-5, 5)),
        st.builds(Flat, st.text(max_size=4), ints, inner),
        st.builds(WithNew, ints),
        st.builds(
            Shape,
            st.text(max_size=3),
            st.lists(st.builds(Point, ints, ints), max_size=2).map(tuple),
            st.none() | st.builds(ActorRef, st.just("n1"), st.just("o")),
        ),
    ),
    max_leaves=12,
)


@given(direct_values | st.builds(Flat, st.text(max_size=2), ints, values))
def test_the_writer_writes_the_twins_bytes(twins: Any, value: Any) -> None:
    compiled, pure = twins
    ours, theirs = outcome(compiled.encode_value, value), outcome(pure.encode_value, value)
    assert ours == theirs


@pytest.mark.parametrize(
    "value",
    [
        Flat("", 2**63, None),  # past 64 signed bits, within the unsigned ones
        Flat("", 2**64, None),  # past both: refused
        Flat("", -(2**63), None),
        Flat("\ud800", 1, None),  # a lone surrogate: refused
        Flat("tab\t", 1, 1.5),
        Flat("", 1, b"x" * 2000),  # past the inline bound: a buffer
        Flat("", 1, [b"\x00\xff", b'"', bytes(range(256))]),
        Flat("", 1, {"$k": 1}),
        Flat("", 1, Flat("", 1, Flat("", 1, object()))),  # refused, deep inside
        Flat("", 1, ReplyTo("n1", 2**64 - 1)),
        Flat("", 1, np.array([object()], dtype=object)),  # refused
        (1, np.array([1.5]), Flat("", 1, b"z" * 5000)),
    ],
)
def test_the_writer_leaves_every_other_value_to_the_general_path(twins: Any, value: Any) -> None:
    compiled, pure = twins
    assert outcome(compiled.encode_value, value) == outcome(pure.encode_value, value)


def test_the_writer_goes_past_its_first_buffer_and_respects_the_inline_budget(
    twins: Any,
) -> None:
    compiled, pure = twins
    value = Flat("a" * 3000, 1, [b"y" * 1000] * 70)  # 70,000 bytes: the last ones framed
    assert outcome(compiled.encode_value, value) == outcome(pure.encode_value, value)
    deep: Any = 1
    for _ in range(40):  # past the writer's depth, within the codec's
        deep = Flat("", 1, deep)
    assert outcome(compiled.encode_value, deep) == outcome(pure.encode_value, deep)


@given(direct_values)
def test_it_builds_what_the_twin_builds(twins: Any, value: Any) -> None:
    compiled, pure = twins
    body, buffers, plain = pure.encode_value(value)
    raw = [memoryview(b).tobytes() for b in buffers]
    assert outcome(compiled.decode_value, body, raw, plain) == ("ok", repr(value))
    assert outcome(pure.decode_value, body, raw, plain) == ("ok", repr(value))


edits = st.lists(
    st.tuples(
        st.sampled_from(["set", "insert", "delete", "cut"]),
        st.integers(0, 300),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=3,
)


@given(direct_values, edits)
def test_it_agrees_with_the_twin_on_edited_bodies(twins: Any, value: Any, changes: Any) -> None:
    compiled, pure = twins
    body, buffers, _ = pure.encode_value(value)
    data = bytearray(body)
    for kind, at, byte in changes:
        where = at % (len(data) + 1)
        if kind == "set" and data:
            data[where % len(data)] = byte
        elif kind == "insert":
            data[where:where] = bytes([byte])
        elif kind == "delete" and data:
            del data[where % len(data)]
        elif kind == "cut":
            del data[where:]
    raw = [memoryview(b).tobytes() for b in buffers]
    assert outcome(compiled.decode_value, bytes(data), raw, False) == outcome(
        pure.decode_value, bytes(data), raw, False
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"$m":["test.codec.Point",{"y":2,"x":1}]}',  # fields in another order
        b'{"$m": ["test.codec.Point", {"x": 1, "y": 2}]}',  # whitespace
        b'{"$m":["test.codec.Point",{"x":1,"y":2}]} ',  # trailing whitespace
        b'{"$m":["test.codec.Point",{"x":1.5,"y":2}]}',  # a float
        b'{"$m":["test.codec.Point",{"x":1e3,"y":2}]}',
        b'{"$m":["test.codec.Point",{"x":1234567890123456789,"y":2}]}',  # 19 digits
        b'{"$m":["test.codec.Point",{"x":-0,"y":2}]}',
        b'{"$m":["test.codec.Point",{"x":01,"y":2}]}',  # not JSON
        b'{"$m":["test.codec.Point",{"x":-,"y":2}]}',
        b'{"$m":["test.codec.Point",{"x":1,"y":2,"x":3}]}',  # a key twice
        b'{"$m":["test.codec.Point",{"x":1}]}',
        b'{"$m":["test.codec.Point",{"x":1,"y":2,"z":3}]}',
        b'{"$m":["test.codec.Poin\\u0074",{"x":1,"y":2}]}',  # an escaped name
        b'{"$m":["test.codec.Nothing",{"x":1,"y":2}]}',
        b'{"$m":["test.direct.Flat",{"text":"a\\"b","number":1,"rest":null}]}',
        b'{"$m":["test.direct.Flat",{"text":"\x01","number":1,"rest":null}]}',
        b'{"$m":["test.direct.Flat",{"text":"\xff","number":1,"rest":null}]}',  # not UTF-8
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":{"$x":"\xc3\xbf"}}]}',
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":{"$x":"\xc4\x80"}}]}',
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":{"$r":["n1",""]}}]}',
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":{"$r":["n1",7]}}]}',
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":{"$p":["n1","7"]}}]}',
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":{"$t":[]}}]}',
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":{"$t":[],"$u":1}}]}',
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":{"a":1}}]}',
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":[1,]}]}',
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":tru}]}',
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":' + b"[" * 40 + b"]" * 40 + b"}]}",
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":null}]}{}',
    ],
)
def test_it_leaves_every_other_writing_to_the_general_path(twins: Any, body: bytes) -> None:
    compiled, pure = twins
    assert outcome(compiled.decode_value, body, [], False) == outcome(
        pure.decode_value, body, [], False
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":{"$b":0}}]}',
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":{"$b":2}}]}',  # no such buffer
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":{"$b":-1}}]}',
        b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":{"$b":"0"}}]}',
        b'{"$t":[{"$a":[0,"<i8",[1]]},{"$a":[1,"|u1",[2,2]]}]}',
        b'{"$t":[{"$b":1},{"$b":0},{"$a":[1,"<u2",[2]]}]}',
        b'{"$t":[{"$a":[0,"<i8",[2]]}]}',  # the shape does not match the buffer
        b'{"$t":[{"$a":[0,"<i9",[1]]}]}',  # no such dtype
        b'{"$t":[{"$a":[0,"int64",[1]]}]}',  # not as an encoder writes it
        b'{"$t":[{"$a":[0,"|O",[1]]}]}',
        b'{"$t":[{"$a":[0,"<i8",[1],3]}]}',
        b'{"$t":[{"$a":[0,"<i8",[-1]]}]}',
        b'{"$t":[{"$a":[0,"<i8",1]}]}',
        b'{"$t":[{"$v":0}]}',  # the buffer is no clock
        b'{"$t":[{"$v":2}]}',
    ],
)
def test_it_reads_buffers_as_the_general_path_does(twins: Any, body: bytes) -> None:
    compiled, pure = twins
    raw = [b"\x01" * 8, b"\x02" * 4]
    assert outcome(compiled.decode_value, body, raw, False) == outcome(
        pure.decode_value, body, raw, False
    )


def test_a_name_registered_again_builds_the_new_class(twins: Any) -> None:
    def define() -> type:
        @message(name="test.direct.Again")
        class Again:
            x: int

        return Again

    first = define()
    body = b'{"$m":["test.direct.Again",{"x":1}]}'
    for kernel in twins:
        assert type(kernel.decode_value(body, [], False)) is first
    second = define()  # the same module and name: the registry now holds this one
    assert second is not first
    for kernel in twins:
        assert type(kernel.decode_value(body, [], False)) is second


class _Dropping:
    """A field kept behind a descriptor whose read empties a shared list."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = "_" + name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return 0
        SHARED.clear()  # the last reference to ``instance``, if it was in the list
        return getattr(instance, self.name)

    def __set__(self, instance: Any, value: Any) -> None:
        object.__setattr__(instance, self.name, value)


SHARED: list[Any] = []


@message(name="test.direct.Dropping")
@dataclass(frozen=True)
class Dropping:
    x: Any = _Dropping()
    y: Any = 0


def test_a_field_read_that_edits_the_list_being_written_is_safe(twins: Any) -> None:
    for kernel in twins:
        SHARED[:] = [Dropping(1, "two"), Dropping(3, "four")]
        body, _, _ = kernel.encode_value(Flat("", 1, SHARED))
        # No class whose fields run code is read by the direct writer: the walk
        # reads the list as Python's iterator does, and the same bytes result.
        assert body == (
            b'{"$m":["test.direct.Flat",{"text":"","number":1,"rest":'
            b'[{"$m":["test.direct.Dropping",{"x":1,"y":"two"}]}]}]}'
        )


CALLS: list[int] = []


@message(name="test.direct.Counted")
@dataclass(frozen=True)
class Counted:
    x: int

    def __post_init__(self) -> None:
        CALLS.append(self.x)
        if self.x < 0:
            raise ValueError("no negative counts")


@pytest.mark.parametrize(
    "body",
    [
        b'{"$m":["test.direct.Counted",{"x":1}]}x',  # not JSON: no class is built
        b'[{"$m":["test.direct.Counted",{"x":1}]},{"$m":["test.direct.Counted",{"x":2}]},1.5]',
        b'{"$m":["test.direct.Counted",{"x":5}]}',
    ],
)  # (a body the class refuses is built again by the twin, to word the error: not here)
def test_a_class_built_by_calling_it_is_built_as_often_as_by_the_twin(
    twins: Any, body: bytes
) -> None:
    compiled, pure = twins
    calls = []
    for kernel in (compiled, pure):
        CALLS.clear()
        result = outcome(kernel.decode_value, body, [], False)
        calls.append((result, list(CALLS)))
    assert calls[0] == calls[1]


def test_a_plain_flag_that_is_not_a_bool_is_judged_as_the_twin_judges_it(twins: Any) -> None:
    class Strange:
        def __bool__(self) -> bool:
            raise RuntimeError("no truth")

    compiled, pure = twins
    for body in (b'{"$m":[', b'{"$m":["test.codec.Point",{"x":1,"y":2}]}'):
        ours = outcome_or_error(compiled.decode_value, body, [], Strange())
        theirs = outcome_or_error(pure.decode_value, body, [], Strange())
        assert ours == theirs


def outcome_or_error(function: Any, *args: Any) -> Any:
    try:
        return outcome(function, *args)
    except Exception as error:  # compared, not hidden: both twins must raise alike
        return ("raised", type(error).__name__, str(error))
