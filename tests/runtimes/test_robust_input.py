"""Bad input off the socket: counted, answered where an answer is due, and never fatal.

A raw ZeroMQ DEALER plays a peer that breaks the protocol in every way,
then a fuzzer throws 100,000 random and mutated frames; afterwards the node
must still answer asks correctly.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import zmq

from actorfw import ActorRef
from actorfw.core.engine import ASK, FAILURE, TELL, Envelope
from actorfw.node import ActorSystem
from actorfw.node.wire import decode_batch, encode_batch
from actorfw.values import codec
from tests.support.actors import Get, Put, Recorder

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def system() -> Iterator[ActorSystem]:
    with ActorSystem(nodes=1, apps=["tests.support.actors"], max_message_size=LIMIT) as s:
        s.spawn("n1", Recorder, "target", name="target")
        yield s


@pytest.fixture
def peer(system: ActorSystem) -> Iterator[zmq.Socket[Any]]:
    """A raw socket that pretends to be a node called 'intruder'."""
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, b"intruder")
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(system.endpoint("n1"))
    try:
        yield sock
    finally:
        sock.close()
        context.term()


def wait_until(condition: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def malformed(system: ActorSystem) -> int:
    count: int = system.status("n1")["stats"]["malformed"]
    return count


def ask_raw(
    sock: zmq.Socket[Any], target: str, body: bytes, buffers: list[bytes] | None = None
) -> list[str]:
    """Send one ask as the intruder; return the failure it gets back: [type, text, tb, actor]."""
    sock.send_multipart(
        encode_batch([Envelope(ASK, "intruder", target, None, 99, body, buffers or [], False)])
    )
    frames = sock.recv_multipart()
    envelopes, _ = decode_batch("n1", frames, 1 << 30)
    assert [(e.kind, e.corr) for e in envelopes] == [(FAILURE, 99)]
    reply: list[str] = codec.decode(envelopes[0].body, envelopes[0].buffers, envelopes[0].plain)
    return reply


def test_an_ask_with_a_body_that_is_not_json_is_answered_with_an_error(
    system: ActorSystem, peer: Any
) -> None:
    before = malformed(system)
    kind, text, _, _ = ask_raw(peer, "target", b"{not json")
    assert kind == "MalformedMessage" and "not valid JSON" in text
    assert malformed(system) == before + 1


def test_an_ask_of_an_unknown_message_type_is_answered_with_an_error(
    system: ActorSystem, peer: Any
) -> None:
    kind, text, _, _ = ask_raw(peer, "target", orjson.dumps({"$m": ["no.such.Type", {}]}))
    assert kind == "MalformedMessage" and "unknown message type 'no.such.Type'" in text


def test_an_ask_to_an_unknown_actor_is_answered_with_not_found(
    system: ActorSystem, peer: Any
) -> None:
    kind, text, _, _ = ask_raw(peer, "nobody", orjson.dumps(1))
    assert kind == "ActorNotFound" and "'nobody' is not on node n1" in text


def test_an_oversized_ask_is_refused_without_being_decoded(system: ActorSystem, peer: Any) -> None:
    before = malformed(system)
    kind, text, _, _ = ask_raw(peer, "target", orjson.dumps("x" * (LIMIT + 1)))
    assert kind == "MalformedMessage" and f"exceeds the {LIMIT}-byte limit" in text
    assert malformed(system) == before + 1


def test_broken_batches_are_counted_and_dropped(system: ActorSystem, peer: Any) -> None:
    before = malformed(system)
    for frames in (
        [b"\x07\x01"],
        [b"\x01\x05", b"x"],
        [b"\x01\x01\x00\x00\x00\x01a\x00", b"1", b"extra"],
    ):
        peer.send_multipart(frames)
    assert wait_until(lambda: malformed(system) >= before + 3)
    assert malformed(system) == before + 3


def test_a_peer_cannot_reply_to_asks_it_was_never_sent(system: ActorSystem, peer: Any) -> None:
    # A forged reply for a correlation id: dropped, counted as late, nothing breaks.
    body, _, _ = codec.encode("forged")
    peer.send_multipart(encode_batch([Envelope(2, "intruder", "", None, 12345, body, [], True)]))
    assert wait_until(lambda: system.status("n1")["stats"]["late_replies"] >= 1)


def _mutations(rng: random.Random, valid: list[list[bytes]]) -> list[bytes]:
    roll = rng.random()
    if roll < 0.3:  # random frames
        return [rng.randbytes(rng.randint(0, 40)) for _ in range(rng.randint(1, 4))]
    frames = [bytearray(f) for f in rng.choice(valid)]
    for _ in range(rng.randint(1, 3)):
        frame = rng.choice(frames)
        action = rng.random()
        if action < 0.5 and frame:
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        elif action < 0.75:
            frame.insert(rng.randrange(len(frame) + 1), rng.randrange(256))
        elif frame:
            del frame[rng.randrange(len(frame))]
    if rng.random() < 0.1:
        frames.append(bytearray(rng.randbytes(8)))
    elif rng.random() < 0.1 and len(frames) > 1:
        frames.pop()
    return [bytes(f) for f in frames]


def test_a_node_survives_a_hundred_thousand_random_and_mutated_frames(
    system: ActorSystem, peer: Any
) -> None:
    valid = [
        encode_batch(
            [Envelope(TELL, "intruder", "target", None, 0, *codec.encode(Put(i))[:2], False)]
        )
        for i in range(5)
    ] + [
        encode_batch(
            [
                Envelope(
                    ASK, "intruder", "target", "x", 7, *codec.encode({"$t": [1, b"z"]})[:2], False
                )
            ]
        ),
        encode_batch(
            [Envelope(TELL, "intruder", "$node", None, 0, *codec.encode([1, 2])[:2], True)]
        ),
    ]
    valid = [[bytes(memoryview(f).cast("B")) for f in frames] for frames in valid]
    rng = random.Random(2024)
    before = malformed(system)
    peer.setsockopt(zmq.SNDHWM, 0)
    for _ in range(100_000):
        peer.send_multipart(_mutations(rng, valid))
        while peer.poll(0):  # drain whatever the node answered, so nothing backs up
            peer.recv_multipart()
    # One last ask on the same connection: its answer comes after every frame
    # before it was handled (FIFO per connection).
    body, _, _ = codec.encode(Get())
    peer.send_multipart(
        encode_batch([Envelope(ASK, "intruder", "target", None, 424242, body, [], False)])
    )
    deadline = time.monotonic() + 120.0
    answered = False
    while not answered and time.monotonic() < deadline:
        frames = peer.recv_multipart()
        envelopes, _ = decode_batch("n1", frames, 1 << 30)
        answered = any(e.corr == 424242 for e in envelopes)
    assert answered, "the node never got through the frames"
    assert malformed(system) > before + 10_000
    ref = ActorRef("n1", "target")
    count = len(system.ask(ref, Get())["items"])
    assert system.ask(ref, Put("after the storm")) == count + 1
    assert system.ask(ref, Get())["items"][-1] == ["after the storm", None]


def test_small_bytes_inlined_past_the_limit_are_refused_alone_never_dropped_with_their_batch(
    system: ActorSystem,
) -> None:
    # 500 zero-filled KiB in 1 KiB values: inlined whole they would be a 3 MB body, past the
    # frame limit, and ZeroMQ would drop the batch; a message inlines 64 KiB at most.
    target = system.lookup("target", node="n1")
    assert target is not None
    before = len(system.ask(target, Get())["items"])
    for n in range(3):
        system.tell(target, Put(f"small {n}"))
    with pytest.raises(Exception, match=f"exceeds the {LIMIT}-byte limit"):
        system.ask(target, Put([bytes(1024)] * 500), timeout=5.0)
    items = system.ask(target, Get())["items"]
    assert [value for value, _ in items[before:]] == ["small 0", "small 1", "small 2"]
