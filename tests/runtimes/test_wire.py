"""The wire format between node processes: batches of envelopes (rules of actorfw.node.wire)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actorfw.core.engine import ASK, FAILURE, REPLY, TELL, Envelope
from actorfw.node.wire import WIRE_VERSION, MalformedBatch, decode_batch, encode_batch
from actorfw.values import codec

LIMIT = 1 << 20


def envelope(
    kind: int = TELL, target: str = "a", sender: str | None = "s", corr: int = 0, value: object = 1
) -> Envelope:
    body, buffers, plain = codec.encode(value)
    return Envelope(kind, "n1", target, sender, corr, body, buffers, plain)


def as_received(frames: list[object]) -> list[object]:
    return [bytes(memoryview(f).cast("B")) if not isinstance(f, bytes) else f for f in frames]


def same(a: Envelope, b: Envelope) -> bool:
    return (a.kind, a.target, a.sender, a.corr, a.plain, bytes(a.body)) == (
        b.kind,
        b.target,
        b.sender,
        b.corr,
        b.plain,
        bytes(b.body),
    ) and [bytes(memoryview(x).cast("B")) for x in a.buffers] == [
        bytes(memoryview(x).cast("B")) for x in b.buffers
    ]


def test_a_batch_round_trips_every_kind_of_envelope() -> None:
    batch = [
        envelope(TELL, "store", "client", 0, {"k": "v"}),
        envelope(ASK, "store", None, 17, (1, 2)),
        envelope(REPLY, "", None, 17, "ok"),
        envelope(FAILURE, "", None, 2**40, ["KeyError", "x", "", "n1/a"]),
        envelope(
            TELL,
            "é/child",
            "p/q",
            0,
            {"blob": b"\x00" * 2000, "small": b"\x01" * 10, "arr": np.arange(5, dtype=np.float64)},
        ),
    ]
    frames = encode_batch(batch)
    # The batch frame with every body inline (small bytes too), and two buffers.
    assert len(frames) == 1 + 2
    got, oversized = decode_batch("n1", as_received(frames), LIMIT)
    assert oversized == []
    assert all(same(a, b) for a, b in zip(batch, got, strict=True))
    assert all(e.source == "n1" for e in got)
    value = codec.decode(got[4].body, got[4].buffers, got[4].plain)
    assert value["blob"] == b"\x00" * 2000 and value["small"] == b"\x01" * 10
    assert value["arr"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


@given(
    st.lists(
        st.tuples(
            st.sampled_from([TELL, ASK, REPLY, FAILURE]),
            st.text(min_size=0, max_size=20),
            st.one_of(st.none(), st.text(min_size=1, max_size=20)),
            st.integers(0, 2**63),
            st.binary(max_size=30),
        ),
        max_size=10,
    )
)
def test_any_batch_round_trips(items: list[tuple[int, str, str | None, int, bytes]]) -> None:
    batch = [Envelope(k, "src", t, s, c, b, [], True) for k, t, s, c, b in items]
    got, _ = decode_batch("src", as_received(encode_batch(batch)), LIMIT)
    assert all(same(a, b) for a, b in zip(batch, got, strict=True)) and len(got) == len(batch)


def test_an_envelope_over_the_size_limit_is_set_aside_without_its_body() -> None:
    batch = [envelope(ASK, "a", None, 5, "x" * 5000), envelope(TELL, "b", None, 0, "small")]
    got, oversized = decode_batch("n1", as_received(encode_batch(batch)), 1000)
    assert [e.target for e in got] == ["b"]
    assert [(e.target, e.corr, e.body) for e in oversized] == [("a", 5, b"")]


def header(*parts: int | bytes) -> bytes:
    out = bytearray()
    for part in parts:
        out += bytes([part]) if isinstance(part, int) else part
    return bytes(out)


# A well-formed one-envelope tell to "a" with body "1" is:
#   version, count, kind, flags, corr, len("a"), "a", len(body), body, buffers
GOOD = header(WIRE_VERSION, 1, TELL, 0, 0, 1, b"a", 1, b"1", 0)

MALFORMED = {
    "empty": [],
    "empty-frame": [b""],
    "version": [header(WIRE_VERSION + 1, 0)],
    "count-beyond-frame": [header(WIRE_VERSION, 100)],
    "truncated": [header(WIRE_VERSION, 1, TELL)],
    "unknown-kind": [header(WIRE_VERSION, 1, 9, 0, 0, 1, b"a", 1, b"1", 0)],
    "unknown-flag": [header(WIRE_VERSION, 1, TELL, 0x80, 0, 1, b"a", 1, b"1", 0)],
    "name-beyond-frame": [header(WIRE_VERSION, 1, TELL, 0, 0, 0x7F, b"a", 1, b"1", 0)],
    "body-beyond-frame": [header(WIRE_VERSION, 1, TELL, 0, 0, 1, b"a", 0x70, b"1", 0)],
    "not-utf8": [header(WIRE_VERSION, 1, TELL, 0, 0, 1, b"\xff", 1, b"1", 0)],
    "missing-buffers": [header(WIRE_VERSION, 1, TELL, 0, 0, 1, b"a", 1, b"1", 2), b"x"],
    "stray-bytes": [GOOD + b"zz"],
    "extra-frames": [GOOD, b"extra"],
    "varint-overflow": [header(WIRE_VERSION, 1, TELL, 0, b"\xff" * 10, 1, 1, b"a", 1, b"1", 0)],
}


def test_the_good_example_is_good() -> None:
    got, _ = decode_batch("peer", [GOOD], LIMIT)
    assert [(e.kind, e.target, bytes(e.body)) for e in got] == [(TELL, "a", b"1")]


@pytest.mark.parametrize("frames", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_batch_that_breaks_the_format_is_rejected_whole(frames: list[bytes]) -> None:
    with pytest.raises(MalformedBatch):
        decode_batch("peer", frames, LIMIT)


@given(st.lists(st.binary(max_size=40), max_size=6))
def test_arbitrary_frames_decode_or_raise_malformed_batch(frames: list[bytes]) -> None:
    try:
        decode_batch("peer", frames, LIMIT)
    except MalformedBatch:
        pass
