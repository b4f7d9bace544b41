"""The wire kernel under hostile input: both twins refuse alike, with one error type only.

Whatever a peer sends, decoding a body raises nothing but
:class:`MalformedMessage`, decoding a batch nothing but ``MalformedBatch``,
and the compiled and pure decoders accept and refuse the same inputs and
return the same values: crossed on random and mutated batches and bodies,
on oversized varints and lengths, and on the cases the issue found.
"""

from __future__ import annotations

import json
import random
import tracemalloc
from types import ModuleType
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actorfw import MalformedMessage
from actorfw.values import codec
from tests.values.test_codec import Point, values

TWINS = ("compiled", "pure")


@pytest.fixture(params=TWINS)
def wire(request: pytest.FixtureRequest, twins: tuple[ModuleType, ModuleType]) -> ModuleType:
    """The wire kernel, compiled then pure."""
    return twins[TWINS.index(request.param)]


def decoded(twin: ModuleType, body: Any, buffers: Any = (), plain: bool = False) -> Any:
    """What decoding gives: ("ok", repr of the value) or ("refused", the message).

    Any error other than MalformedMessage escapes and fails the test.
    """
    try:
        return ("ok", repr(twin.decode_value(body, buffers, plain)))
    except MalformedMessage as error:
        return ("refused", str(error))


def _show(envelopes: list[Any]) -> list[Any]:
    return [
        (e.kind, e.target, e.sender, e.corr, bytes(e.body), e.plain, [bytes(b) for b in e.buffers])
        for e in envelopes
    ]


def split(twin: ModuleType, frames: list[bytes], limit: int = 1 << 20) -> Any:
    """What decoding a batch gives; any error but MalformedBatch escapes."""
    try:
        good, big = twin.decode_batch("peer", frames, limit)
    except twin.MalformedBatch as error:
        return ("malformed", str(error))
    return (_show(good), _show(big))


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def envelope(
    kind: int = 1,
    flags: int = 0,
    corr: int = 7,
    target: bytes = b"t",
    body: bytes = b"1",
    nbuf: int = 0,
    body_length: int | None = None,
) -> bytes:
    """One envelope of a batch frame, by hand (lengths can lie)."""
    size = len(body) if body_length is None else body_length
    return (
        bytes((kind, flags))
        + varint(corr)
        + varint(len(target))
        + target
        + varint(size)
        + body
        + varint(nbuf)
    )


def batch(*envelopes: bytes) -> bytes:
    return bytes((1,)) + varint(len(envelopes)) + b"".join(envelopes)


# -- bodies: one error type, the same verdicts ------------------------------------------------

HOSTILE_BODIES = [
    (b'{"$a":[0,"<U0",[5]]}', [b""]),  # zero-size items: numpy raised ValueError
    (b'{"$a":[0,"|V0",[3]]}', [b""]),
    (b'{"$a":[0,"<f8",' + orjson.dumps([1] * 70) + b"]}", [b"\0" * 8]),  # over 64 dimensions
    (b'{"$a":[0,"<f8",' + orjson.dumps([1] * 65) + b"]}", [b"\0" * 8]),
    (b'{"$a":[0,"(100000000000,100000000000)f8",[1]]}', [b"\0" * 8]),  # huge sub-array
    (b'{"$a":[0,"(2,)f8",[1]]}', [b"\0" * 16]),  # a sub-array dtype an encoder never writes
    (b'{"$a":[0,"float64",[1]]}', [b"\0" * 8]),  # not the dtype's canonical str
    (b'{"$a":[0,"O",[1]]}', [b"\0" * 8]),
    (b'{"$a":[0,"<M8[zz]",[1]]}', [b"\0" * 8]),
    (b'{"$a":[0,"' + b"x" * 5000 + b'",[1]]}', [b"\0" * 8]),
    (b'{"$a":[0,"<f8",[-1]]}', [b""]),
    (b'{"$a":[0,"<f8",[true]]}', [b"\0" * 8]),
    (b'{"$a":[5,"<f8",[1]]}', [b"\0" * 8]),
    (b'{"$a":[0,"<f8",[1]]}', [b"\0" * 7]),
    (b'{"$a":[0,"<f8",[4611686018427387904,4]]}', [b""]),
    (b'{"$p":["n",-1]}', []),
    (b'{"$r":["n",""]}', []),
    (b'{"$m":["no.such",{}]}', []),
    (b'{"$zz":1}', []),
    (b"[18446744073709551616]", []),  # past 2**64-1: orjson would read a float
    (b'{"a":-9223372036854775809}', []),
    (b'"18446744073709551616"', []),  # in a string: just text
    (b"[1.8446744073709551616e19]", []),  # a float, written as one
    (b"[18446744073709551615,-9223372036854775808]", []),
    (b"\xff", []),
    (b"", []),
]


@pytest.mark.parametrize("plain", [False, True])
@pytest.mark.parametrize(("body", "buffers"), HOSTILE_BODIES, ids=range(len(HOSTILE_BODIES)))
def test_both_decoders_refuse_hostile_bodies_alike_and_only_as_malformed(
    twins: Any, body: bytes, buffers: list[bytes], plain: bool
) -> None:
    compiled, pure = twins
    assert decoded(compiled, body, buffers, plain) == decoded(pure, body, buffers, plain)


@pytest.mark.parametrize(
    "body",
    [b'{"$a":[0,"<U0",[5]]}', b'{"$a":[0,"<f8",' + orjson.dumps([1] * 70) + b"]}"],
    ids=["zero-size-items", "70-dimensions"],
)
def test_an_array_tag_numpy_cannot_build_is_malformed(wire: ModuleType, body: bytes) -> None:
    with pytest.raises(MalformedMessage, match="malformed message body"):
        wire.decode_value(body, [b""], False)


@pytest.mark.parametrize("plain", [False, True])
@pytest.mark.parametrize("number", [2**64, 2**70, -(2**63) - 1, -(10**30)])
def test_an_integer_outside_64_bits_is_malformed_not_a_float(
    wire: ModuleType, number: int, plain: bool
) -> None:
    body = b'{"x":[1,' + str(number).encode() + b"]}"
    with pytest.raises(MalformedMessage, match="outside the 64-bit range"):
        wire.decode_value(body, (), plain)


@pytest.mark.parametrize("number", [2**64 - 1, -(2**63), 10**18, -(10**18), 0])
def test_integers_at_the_ends_of_the_range_come_back_as_integers(
    wire: ModuleType, number: int
) -> None:
    body, buffers, plain = wire.encode_value({"x": [number, "123456789012345678901234"]})
    assert plain
    value = wire.decode_value(body, buffers, plain)
    assert value == {"x": [number, "123456789012345678901234"]}
    assert type(value["x"][0]) is int


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize("plain", [True, False])
def test_bodies_nested_past_the_limit_are_refused_plain_or_not(
    wire: ModuleType, plain: bool
) -> None:
    limit = wire.MAX_DEPTH
    body, _, flagged = wire.encode_value(nested(limit))
    assert flagged
    assert wire.decode_value(body, (), plain) == nested(limit)
    deeper = orjson.dumps(nested(limit + 1))
    with pytest.raises(MalformedMessage, match="nested too deeply"):
        wire.decode_value(deeper, (), plain)
    with pytest.raises(MalformedMessage, match=r"nested too deeply|depth limit"):
        wire.decode_value(b"[" * 5000 + b"]" * 5000, (), plain)  # orjson's own limit: 1024


def test_brackets_inside_strings_do_not_count_as_nesting(wire: ModuleType) -> None:
    value = {"text": "[" * 500 + '\\"{' * 200, "n": 12345678901234567890}
    body, buffers, plain = wire.encode_value(value)
    assert plain and wire.decode_value(body, buffers, plain) == value


@pytest.mark.parametrize(
    "make",
    [
        lambda d: nested(d),
        lambda d: nested(d - 1, (1,)),
        lambda d: nested(d - 1, Point(1, 2)),
        lambda d: nested(d - 1, {"$x": 1}),
    ],
    ids=["lists-and-dicts", "tuple", "message", "escaped-dict"],
)
def test_decoders_take_exactly_the_depth_the_encoder_takes(wire: ModuleType, make: Any) -> None:
    limit = wire.MAX_DEPTH
    body, buffers, plain = wire.encode_value(make(limit))
    assert wire.decode_value(body, buffers, plain) == make(limit)
    # One level more, encoded by hand: the encoder would refuse it.
    with pytest.raises(MalformedMessage, match="nested too deeply"):
        wire.decode_value(b'{"$t":[' + body + b"]}", buffers, False)


# -- bodies: fuzzed --------------------------------------------------------------------------

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)
json_trees = st.recursive(
    json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
    ),
    max_leaves=12,
)
tags = st.sampled_from(["$m", "$t", "$r", "$b", "$a", "$f", "$p", "$d", "$x"])
dtypes = st.one_of(
    st.sampled_from(["<f8", "<i4", "|u1", "<U0", "|S0", "|V0", "(2,)<f8", "O", "<c16", "|b1"]),
    st.text(max_size=12),
)
array_args = st.tuples(
    st.integers(-1, 2),
    dtypes,
    st.lists(st.one_of(st.integers(-2, 2**62), st.booleans()), max_size=70),
).map(list)
tagged_trees = st.recursive(
    st.one_of(json_leaves, array_args.map(lambda a: {"$a": a})),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(tags, inner).map(lambda t: {t[0]: t[1]}),
        st.tuples(tags, st.lists(inner, max_size=3)).map(lambda t: {t[0]: t[1]}),
    ),
    max_leaves=10,
)


@given(st.one_of(st.binary(max_size=40).map(lambda raw: raw.decode("latin-1")), st.text()))
def test_both_take_inline_bytes_alike_and_only_of_code_points_below_256(
    twins: Any, text: str
) -> None:
    compiled, pure = twins
    body = orjson.dumps({"$x": text})
    got = decoded(compiled, body)
    assert got == decoded(pure, body)
    assert (got[0] == "ok") == all(ord(c) < 256 for c in text)


@given(st.one_of(json_trees, tagged_trees), st.booleans())
def test_both_agree_on_random_tagged_trees(twins: Any, tree: Any, plain: bool) -> None:
    compiled, pure = twins
    body = json.dumps(tree).encode()  # the standard library writes integers of any size
    buffers = [b"\0" * 8, b"\0" * 16, b""]
    assert decoded(compiled, body, buffers, plain) == decoded(pure, body, buffers, plain)


@given(values, st.binary(min_size=1, max_size=3), st.integers(0, 400), st.booleans())
def test_both_agree_on_bodies_with_bytes_spliced_in(
    twins: Any, value: Any, splice: bytes, at: int, plain: bool
) -> None:
    compiled, pure = twins
    body, buffers, _ = pure.encode_value(value)
    at %= len(body) + 1
    data = body[:at] + splice + body[at:]
    raw = [memoryview(b).tobytes() for b in buffers]
    assert decoded(compiled, data, raw, plain) == decoded(pure, data, raw, plain)


# -- batches: the compiled decoder's unsigned lengths --------------------------------------


@pytest.mark.parametrize("length", [2**63, 2**64 - 1, 2**63 + 5, 2**62])
def test_a_huge_body_length_is_malformed_not_a_system_error(wire: ModuleType, length: int) -> None:
    frame = batch(envelope(body=b"x", body_length=length))
    with pytest.raises(wire.MalformedBatch, match="body of"):
        wire.decode_batch("peer", [frame], 1 << 20)


@pytest.mark.parametrize(
    ("count", "next_count", "extra_frames"),
    [(2**64 - 1, 1, 0), (2**64 - 1, 2, 1), (2**64 - 2, 2, 0), (2**63, 1, 0), (2**63 - 1, 0, 1)],
)
def test_a_huge_buffer_count_is_malformed_and_hands_out_no_frame(
    wire: ModuleType, count: int, next_count: int, extra_frames: int
) -> None:
    # A count that wrapped the frame index back would give the next envelope
    # the batch frame itself as a buffer, and the frame count would add up.
    frame = batch(envelope(nbuf=count), envelope(nbuf=next_count))
    with pytest.raises(wire.MalformedBatch, match="fewer frames"):
        wire.decode_batch("peer", [frame] + [b"buffer"] * extra_frames, 1 << 20)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff" * 9 + b"\x01",  # 2**64-1: the largest there is
        b"\x80" * 9 + b"\x02",  # 2**64: one past
        b"\xff" * 9 + b"\x7f",
        b"\x80" * 10 + b"\x00",  # eleven bytes
        b"\x80" * 9 + b"\x00",  # zero, in ten bytes (not the shortest form, but 64 bits)
    ],
    ids=["max", "max+1", "70-bits", "11-bytes", "long-zero"],
)
def test_both_read_or_refuse_oversized_varints_alike(twins: Any, raw: bytes) -> None:
    compiled, pure = twins
    for where in ("count", "corr", "nbuf"):
        if where == "count":
            frame = b"\x01" + raw
        elif where == "corr":
            frame = b"\x01\x01\x01\x00" + raw + b"\x01t\x011\x00"
        else:
            frame = b"\x01\x01\x01\x00\x07\x01t\x011" + raw
        assert split(compiled, [frame]) == split(pure, [frame]), where


def test_a_corr_of_2_to_the_64_is_malformed_in_both(wire: ModuleType) -> None:
    frame = b"\x01\x01\x01\x00" + b"\x80" * 9 + b"\x02" + b"\x01t\x011\x00"
    with pytest.raises(wire.MalformedBatch, match="longer than 64 bits"):
        wire.decode_batch("peer", [frame], 1 << 20)
    largest = b"\x01\x01\x01\x00" + b"\xff" * 9 + b"\x01" + b"\x01t\x011\x00"
    (env,), _ = wire.decode_batch("peer", [largest], 1 << 20)
    assert env.corr == 2**64 - 1


def _valid_batches(twin: ModuleType, rng: random.Random) -> list[list[bytes]]:
    out = []
    for n in range(12):
        envs = []
        for i in range(rng.randint(1, 5)):
            body, buffers, plain = codec.encode(
                rng.choice([[i, "x" * n], {"k": (i, b"zz")}, np.arange(n, dtype="<i4"), None])
            )
            envs.append(
                twin.Envelope(
                    rng.randint(0, 3),
                    "src",
                    rng.choice(["t", "target", "", "é"]),
                    rng.choice([None, "s", "sender"]),
                    rng.choice([0, 1, 300, 2**63, 2**64 - 1]),
                    body,
                    [memoryview(b).tobytes() for b in buffers],
                    plain,
                )
            )
        out.append([bytes(memoryview(f).cast("B")) for f in twin.encode_batch(envs)])
    return out


def _mutate(rng: random.Random, frames: list[bytes]) -> list[bytes]:
    out = [bytearray(f) for f in frames]
    for _ in range(rng.randint(1, 4)):
        frame = out[0] if rng.random() < 0.8 else rng.choice(out)
        roll = rng.random()
        at = rng.randrange(len(frame) + 1)
        if roll < 0.35 and frame:
            frame[min(at, len(frame) - 1)] = rng.randrange(256)
        elif roll < 0.55:  # a varint of 9 to 11 bytes, often past 64 bits
            head = [0x80 | rng.randrange(128) for _ in range(rng.randint(8, 10))]
            frame[at:at] = bytes([*head, rng.randrange(128)])
        elif roll < 0.7:
            frame.insert(at, rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF]))
        elif roll < 0.85 and frame:
            del frame[min(at, len(frame) - 1) :][: rng.randint(1, 4)]
        else:
            frame[at:at] = rng.randbytes(rng.randint(1, 6))
    if rng.random() < 0.1:
        out.append(bytearray(rng.randbytes(4)))
    elif rng.random() < 0.1 and len(out) > 1:
        out.pop()
    return [bytes(f) for f in out]


def test_both_agree_on_thousands_of_mutated_batches(twins: Any) -> None:
    compiled, pure = twins
    rng = random.Random(1313)
    valid = _valid_batches(pure, rng)
    verdicts = {"accepted": 0, "refused": 0}
    for _ in range(6000):
        frames = (
            _mutate(rng, rng.choice(valid))
            if rng.random() < 0.9
            else [rng.randbytes(rng.randint(0, 30)) for _ in range(rng.randint(1, 3))]
        )
        limit = rng.choice([0, 8, 64, 1 << 20])
        got = split(compiled, frames, limit)
        assert got == split(pure, frames, limit), frames
        verdicts["refused" if got[0] == "malformed" else "accepted"] += 1
    # The mutator reaches both sides of the decision.
    assert min(verdicts.values()) > 500, verdicts


@given(
    st.lists(
        st.tuples(
            st.integers(0, 255),
            st.integers(0, 255),
            st.integers(0, 2**70),
            st.binary(max_size=6),
            st.integers(0, 2**70),
            st.binary(max_size=6),
            st.integers(0, 2**70),
        ),
        max_size=3,
    ),
    st.integers(0, 2**70),
    st.lists(st.binary(max_size=4), max_size=3),
)
def test_both_agree_on_batches_with_any_varint_values(
    twins: Any, items: list[Any], count: int, extra: list[bytes]
) -> None:
    compiled, pure = twins
    frame = b"\x01" + varint(count)
    for kind, flags, corr, target, length, body, nbuf in items:
        frame += bytes((kind % 5, flags % 4)) + varint(corr) + varint(len(target)) + target
        if flags & 2:
            frame += varint(len(target)) + target
        frame += varint(length % (2**65)) + body + varint(nbuf)
    frames = [frame, *extra]
    assert split(compiled, frames) == split(pure, frames)


# -- batches: an oversized body is never copied ---------------------------------------------


@pytest.mark.parametrize("as_view", [False, True], ids=["bytes", "memoryview"])
def test_an_oversized_body_is_refused_before_it_is_copied(wire: ModuleType, as_view: bool) -> None:
    big = 16 << 20
    body = orjson.dumps("x" * (big - 2))
    frame = batch(envelope(body=b"1"), envelope(body=body), envelope(body=b"2"))
    given_frame: Any = memoryview(frame) if as_view else frame
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        good, oversized = wire.decode_batch("peer", [given_frame], 1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [bytes(e.body) for e in good] == [b"1", b"2"]
    assert [(e.corr, bytes(e.body), e.buffers) for e in oversized] == [(7, b"", [])]
    # A copy of the body would cost 16 MiB; the decoder allocates a few envelopes.
    assert peak < big // 16, f"decoding allocated {peak} bytes for a {big}-byte body"


def test_bodies_within_the_limit_are_copies_that_outlive_the_frame(wire: ModuleType) -> None:
    frame = bytearray(batch(envelope(body=b'"abc"')))
    (env,), _ = wire.decode_batch("peer", [memoryview(frame)], 1 << 20)
    frame[:] = b"\0" * len(frame)
    assert bytes(env.body) == b'"abc"' and type(env.body) is bytes
