"""A real node process under hostile peers: it keeps answering, and its memory stays bounded.

Raw ZeroMQ sockets play peers that send batches the decoder must refuse
(array tags numpy cannot build, integers past 64 bits, nesting past the
limit, oversized bodies and frames), over IPC and over TCP with CURVE keys.
Meanwhile legitimate asks must be answered within a deadline, a good ask in
the same batch as a bad one must be answered, and the node's resident
memory must not grow by a multiple of what it was sent.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from actorfw import ActorRef, Overloaded
from actorfw.bench.actors import Flood, Monitor, Report, Sleeper, Source
from actorfw.core.engine import ASK, FAILURE, REPLY, TELL, Envelope
from actorfw.node import ActorSystem
from actorfw.node.config import load_curve
from actorfw.node.transport import ZmqTransport
from actorfw.node.wire import decode_batch, encode_batch, frame_limit
from actorfw.values import codec
from tests.support.actors import Put, Recorder, SlowSink, Work
from tests.support.inbound import Sink

pytestmark = pytest.mark.hostile

LIMIT = 1 << 20
"""The nodes' size limit: 1 MiB, so that the old socket limit (4x) and the new one differ."""

BAD_ARRAY = b'{"$a":[0,"<U0",[5]]}'  # numpy raised ValueError building it
POISONS = [
    (BAD_ARRAY, [b""]),
    (b'{"$a":[0,"<f8",' + orjson.dumps([1] * 70) + b"]}", [b"\0" * 8]),
    (b'{"$a":[0,"(100000000000,100000000000)f8",[1]]}', [b"\0" * 8]),
    (b"[18446744073709551616]", []),
    (b"[" * 200 + b"]" * 200, []),
]


def wait_until(condition: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def rss(pid: int) -> int:
    """A process's resident memory, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@pytest.fixture(scope="module")
def system() -> Iterator[ActorSystem]:
    with ActorSystem(nodes=1, apps=["tests.support.actors"], max_message_size=LIMIT) as s:
        s.spawn("n1", Recorder, "target", name="target")
        yield s


def raw_peer(context: zmq.Context[Any], endpoint: str | None, identity: bytes) -> zmq.Socket[Any]:
    """A DEALER with ``identity``, connected to ``endpoint`` (if given)."""
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, identity)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 10_000)
    sock.setsockopt(zmq.SNDHWM, 0)
    if endpoint is not None:
        sock.connect(endpoint)
    return sock


@pytest.fixture
def peer(system: ActorSystem) -> Iterator[zmq.Socket[Any]]:
    """A raw socket that pretends to be a node called 'intruder'."""
    context = zmq.Context()
    sock = raw_peer(context, system.endpoint("n1"), b"intruder")
    try:
        yield sock
    finally:
        sock.close()
        context.term()


def stat(system: ActorSystem, name: str) -> int:
    value: int = system.status("n1")["stats"][name]
    return value


def poisoned(kind: int, corr: int, n: int) -> Envelope:
    body, buffers = POISONS[n % len(POISONS)]
    return Envelope(kind, "intruder", "target", None, corr, body, buffers, False)


def good_ask(corr: int, value: Any) -> Envelope:
    body, buffers, plain = codec.encode(Put(value))
    return Envelope(ASK, "intruder", "target", None, corr, body, buffers, plain)


def answers(sock: zmq.Socket[Any], count: int) -> dict[int, tuple[int, Any]]:
    """The next ``count`` replies the peer gets: corr -> (kind, decoded body)."""
    got: dict[int, tuple[int, Any]] = {}
    deadline = time.monotonic() + 20.0
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)} of {count} answers: {got}"
        envelopes, _ = decode_batch("n1", sock.recv_multipart(), 1 << 30)
        for env in envelopes:
            got[env.corr] = (env.kind, codec.decode(env.body, env.buffers, env.plain))
    return got


def test_poisoned_batches_do_not_stall_the_node(system: ActorSystem, peer: Any) -> None:
    """50 poisoned tells, each its own batch, among 20 legitimate asks: every ask is answered."""
    target = ActorRef("n1", "target")
    before = stat(system, "malformed")
    for i in range(20):
        for n in range(i * 5 // 2, (i + 1) * 5 // 2):  # 50 in all, between the asks
            peer.send_multipart(encode_batch([poisoned(TELL, 0, n)]))
        started = time.monotonic()
        assert isinstance(system.ask(target, Put(f"ask {i}"), timeout=10.0), int)
        assert time.monotonic() - started < 10.0
    assert wait_until(lambda: stat(system, "malformed") >= before + 50)


def test_a_good_ask_beside_bad_ones_in_one_batch_is_answered(
    system: ActorSystem, peer: Any
) -> None:
    peer.send_multipart(
        encode_batch(
            [
                good_ask(1, "first"),
                poisoned(ASK, 2, 0),
                poisoned(TELL, 0, 3),
                good_ask(3, "third"),
                poisoned(ASK, 4, 4),
                good_ask(5, "fifth"),
            ]
        )
    )
    got = answers(peer, 5)
    assert {corr: kind for corr, (kind, _) in got.items()} == {
        1: REPLY,
        2: FAILURE,
        3: REPLY,
        4: FAILURE,
        5: REPLY,
    }
    assert got[3][1] == got[1][1] + 1 and got[5][1] == got[3][1] + 1
    for corr in (2, 4):
        kind, text, _, _ = got[corr][1]
        assert kind == "MalformedMessage" and "malformed message body" in text


def test_envelopes_that_name_no_sender_are_refused_alone(system: ActorSystem, peer: Any) -> None:
    """An empty sender name (the wire allows it; no actor has it) spoils only its envelope."""
    body, buffers, plain = codec.encode(Put("nameless"))
    peer.send_multipart(
        encode_batch(
            [
                Envelope(TELL, "intruder", "target", "", 0, body, buffers, plain),
                good_ask(1, "after a nameless tell"),
                Envelope(ASK, "intruder", "target", "", 2, body, buffers, plain),
                good_ask(3, "after a nameless ask"),
            ]
        )
    )
    got = answers(peer, 3)
    assert {corr: kind for corr, (kind, _) in got.items()} == {1: REPLY, 2: FAILURE, 3: REPLY}
    kind, text, _, _ = got[2][1]
    assert kind == "MalformedMessage" and "names no sender" in text


def test_an_envelope_over_the_limit_but_within_the_frame_limit_is_answered_with_an_error(
    system: ActorSystem, peer: Any
) -> None:
    body = orjson.dumps("x" * (LIMIT + 10))
    peer.send_multipart(
        encode_batch(
            [
                Envelope(ASK, "intruder", "target", None, 11, body, [], True),
                good_ask(12, "beside a big one"),
            ]
        )
    )
    got = answers(peer, 2)
    assert got[11][0] == FAILURE and f"exceeds the {LIMIT}-byte limit" in got[11][1][1]
    assert got[12][0] == REPLY


def test_the_largest_legitimate_batch_passes_the_socket(system: ActorSystem, peer: Any) -> None:
    """64 envelopes with the longest names, 1 MiB of bodies, and one body at the size limit."""
    name = "z" * 4096
    filler = orjson.dumps("f" * ((1 << 20) // 63 - 200))
    envelopes = [
        Envelope(TELL, "intruder", name, name, 2**64 - 1, filler, [], True) for _ in range(63)
    ]
    value = ""
    body, _, plain = codec.encode(Put(value))
    value = "y" * (LIMIT - len(body))
    body, _, plain = codec.encode(Put(value))
    assert len(body) == LIMIT
    envelopes.append(Envelope(ASK, "intruder", "target", name, 21, body, [], plain))
    frames = encode_batch(envelopes)
    assert len(frames[0]) > LIMIT + (5 << 18)  # 1.25 MiB of framing beside the largest body
    assert len(frames[0]) <= frame_limit(LIMIT)
    peer.send_multipart(frames)
    got = answers(peer, 1)
    assert got[21][0] == REPLY and isinstance(got[21][1], int)


def test_a_frame_over_the_frame_limit_is_dropped_unread_and_memory_stays_bounded(
    system: ActorSystem,
) -> None:
    pid = system.pid("n1")
    assert pid is not None
    target = ActorRef("n1", "target")
    system.ask(target, Put("warm up"))
    baseline = rss(pid)
    malformed = stat(system, "malformed")
    size = frame_limit(LIMIT) + (1 << 19)  # within the old limit (4x), over the new one
    assert size < 4 * LIMIT
    frame = encode_batch(
        [Envelope(ASK, "intruder", "target", None, 31, orjson.dumps("b" * size), [], True)]
    )
    context = zmq.Context()
    try:
        for round_ in range(12):
            sock = raw_peer(context, None, b"intruder")
            monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
            monitor.setsockopt(zmq.RCVTIMEO, 10_000)
            try:
                sock.connect(system.endpoint("n1"))
                assert recv_monitor_message(monitor)["event"] == zmq.EVENT_CONNECTED
                sock.send_multipart(frame, copy=False)
                # The node's socket refuses the frame from its size prefix and drops
                # the connection: nothing of it is read, nothing is answered.
                assert monitor.poll(10_000), f"round {round_}: the connection was not dropped"
                assert recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED
                assert not sock.poll(0)
            finally:
                sock.disable_monitor()
                monitor.close()
                sock.close()
    finally:
        context.term()
    assert system.ask(target, Put("after the big frames"), timeout=10.0) >= 2
    assert stat(system, "malformed") == malformed
    grown = rss(pid) - baseline
    assert grown < 2 * size, f"the node grew by {grown} bytes after 12 frames of {size}"


# -- over TCP, with CURVE keys ----------------------------------------------------------------


def test_a_peer_with_a_valid_curve_key_cannot_stall_the_node(tmp_path: Path) -> None:
    """A compromised node's key: n2's identity and CURVE keys, used by a raw socket."""
    with ActorSystem(
        nodes=["n1", "n2"],
        apps=["tests.support.actors"],
        transport="tcp",
        base_dir=tmp_path,
        max_message_size=LIMIT,
    ) as system:
        target = system.spawn("n1", Recorder, "target", name="target")
        system.stop_node("n2")
        keys = tmp_path / "keys"
        n2 = load_curve(keys / "n2" / "n2.key_secret", keys / "public")
        context = zmq.Context()
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, b"n2")
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.CURVE_SERVERKEY, n2.peers["n1"])
        sock.setsockopt(zmq.CURVE_PUBLICKEY, n2.public_key)
        sock.setsockopt(zmq.CURVE_SECRETKEY, n2.secret_key)
        sock.connect(system.endpoint("n1"))
        try:
            before = system.status("n1")["stats"]["malformed"]
            for i in range(10):
                for n in range(5):
                    env = poisoned(TELL, 0, n)
                    env.source = "n2"
                    sock.send_multipart(encode_batch([env]))
                assert isinstance(system.ask(target, Put(i), timeout=10.0), int)
            assert wait_until(lambda: system.status("n1")["stats"]["malformed"] >= before + 50)
        finally:
            sock.close()
            context.term()


# -- the transport on its own, in this process ------------------------------------------------


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def _listening(folder: Path, limit: int = LIMIT) -> tuple[ZmqTransport, str]:
    endpoint = f"ipc://{folder}/b.sock"
    transport = ZmqTransport("b", asyncio.get_running_loop(), endpoint, {}, max_message_size=limit)
    transport.start()
    return transport, endpoint


def test_the_transport_reads_on_when_a_callback_raises(tmp_path: Path) -> None:
    async def main() -> None:
        transport, endpoint = _listening(tmp_path)
        delivered: list[Envelope] = []
        refused: list[tuple[str, BaseException]] = []

        def explode(env: Envelope) -> None:
            delivered.append(env)
            raise RuntimeError("a handler that raises")

        transport.attach(
            Sink(receive=explode, bad_input=lambda peer, error: refused.append((peer, error)))
        )
        context = zmq.Context()
        sock = raw_peer(context, endpoint, b"a")
        try:
            for n in range(30):  # all sent before the transport reads any
                body, buffers, plain = codec.encode(n)
                sock.send_multipart(
                    encode_batch([Envelope(TELL, "a", "sink", None, 0, body, buffers, plain)])
                )
            await _until(lambda: len(delivered) == 30)
            assert [codec.decode(e.body) for e in delivered] == list(range(30))
            await _until(lambda: len(refused) == 30)
            assert {peer for peer, _ in refused} == {"a"}
            assert all(isinstance(error, RuntimeError) for _, error in refused)
        finally:
            sock.close()
            context.term()
            transport.close(linger=0.0)

    asyncio.run(main())


def test_the_transport_never_copies_an_oversized_body(tmp_path: Path) -> None:
    async def main() -> None:
        transport, endpoint = _listening(tmp_path, limit=64 << 10)
        oversized: list[Envelope] = []
        transport.attach(Sink(reject=lambda env, error: oversized.append(env)))
        context = zmq.Context()
        sock = raw_peer(context, endpoint, b"a")
        size = 3 << 19  # 1.5 MiB: over the limit, within the frame limit
        assert size < frame_limit(64 << 10)
        frames = encode_batch(
            [Envelope(ASK, "a", "sink", None, 5, orjson.dumps("x" * size), [], True)]
        )
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            sock.send_multipart(frames, copy=False)
            await _until(lambda: len(oversized) == 1)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            sock.close()
            context.term()
            transport.close(linger=0.0)
        assert oversized[0].corr == 5 and oversized[0].body == b""
        assert peak < size // 4, f"receiving allocated {peak} bytes for a {size}-byte body"

    asyncio.run(main())


def test_an_allow_listed_key_cannot_take_over_another_peers_identity(tmp_path: Path) -> None:
    """A key that is on the allow-list (n2's) connects to n1 claiming the driver's identity.

    The ROUTER must keep the driver's own connection: its asks are all answered.
    """
    with ActorSystem(
        nodes=["n1", "n2"], apps=["tests.support.actors"], transport="tcp", base_dir=tmp_path
    ) as system:
        target = system.spawn("n1", Recorder, "target", name="target")
        assert isinstance(system.ask(target, Put(0), timeout=10.0), int)  # connected
        keys = tmp_path / "keys"
        n2 = load_curve(keys / "n2" / "n2.key_secret", keys / "public")
        context = zmq.Context()
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, system._client_id.encode())  # the driver's name, n2's key
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.CURVE_SERVERKEY, n2.peers["n1"])
        sock.setsockopt(zmq.CURVE_PUBLICKEY, n2.public_key)
        sock.setsockopt(zmq.CURVE_SECRETKEY, n2.secret_key)
        sock.connect(system.endpoint("n1"))
        try:
            sock.send_multipart(encode_batch([good_ask(1, 1)]))  # completes its handshake
            answered = sum(
                isinstance(system.ask(target, Put(i), timeout=5.0), int) for i in range(2, 12)
            )
            assert answered == 10
            assert not sock.poll(200), "the impostor was sent what the driver was owed"
        finally:
            sock.close()
            context.term()


# -- floods: flow control ----------------------------------------------------------------------


def test_a_peer_flooding_a_slow_actor_past_its_credit_cannot_fill_the_nodes_memory(
    system: ActorSystem, peer: Any
) -> None:
    """300,000 tells at an actor that takes none: all but about twice the window are dropped."""
    slow = system.spawn("n1", SlowSink, 3600.0, name="stuck")
    target = ActorRef("n1", "target")
    pid = system.pid("n1")
    assert pid is not None
    before_rss = rss(pid)
    before = stat(system, "overloaded")
    batches = []
    for b in range(100):
        tells = []
        for n in range(b * 100, (b + 1) * 100):
            body, buffers, plain = codec.encode(Work(n))
            tells.append(Envelope(TELL, "intruder", slow.name, None, 0, body, buffers, plain))
        batches.append(encode_batch(tells))
    for i in range(3000):
        peer.send_multipart(batches[i % 100])
        if i % 500 == 0:  # legitimate asks to another actor are answered meanwhile
            started = time.monotonic()
            assert isinstance(system.ask(target, Put(f"during {i}"), timeout=10.0), int)
            assert time.monotonic() - started < 10.0
    # What the node keeps is bounded by twice its credit window (8192), not by what was sent.
    kept = 2 * 8192 + SlowSink.mailbox_limit + 1
    assert wait_until(lambda: stat(system, "overloaded") >= before + 300_000 - kept, timeout=60.0)
    assert rss(pid) - before_rss < 50 << 20
    with pytest.raises(Overloaded):
        system.ask(slow, Work(0), timeout=10.0)


def test_a_flooded_slow_receiver_keeps_its_memory_and_its_peers_trust() -> None:
    """A sender at full speed into a 1 ms handler that blocks its node, for 4 seconds."""
    with ActorSystem(nodes=2, apps=["actorfw.bench.actors"]) as cluster:
        monitor = cluster.spawn("n2", Monitor, name="monitor")
        sleeper = cluster.spawn("n2", Sleeper, monitor, 0.001, name="sleeper")
        source = cluster.spawn("n1", Source, name="source")
        assert wait_until(lambda: cluster.status("n1")["peers"]["n2"]["state"] == "up")
        cluster.tell(source, Flood(sleeper, 4.0))
        deadline = time.monotonic() + 4.0
        backlog_seen = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            cluster.ask(monitor, Report(), timeout=10.0)  # the busy node still answers
            assert time.monotonic() - started < 2.0
            status = cluster.status("n1")
            assert status["peers"]["n2"]["state"] == "up"  # busy is not dead
            backlog_seen = max(backlog_seen, status["backlog"].get("n2", 0))
        assert backlog_seen > 0  # the sender was held back, and its backlog showed
        assert cluster.status("n2")["peers"]["n1"]["state"] == "up"
        pid = cluster.pid("n2")
        assert pid is not None
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        peak = next(int(line.split()[1]) for line in lines if line.startswith("VmHWM:")) * 1024
        assert peak < 300 << 20


def test_a_replicated_store_keeps_serving_under_poisoned_batches_and_floods() -> None:
    """Every node of a 3-node store gets 300 poisoned batches and 24,000 junk tells at its roles."""
    from actorfw.kv import KVStateMachine
    from actorfw.services.replication import replicate
    from actorfw.services.replication.group import group_roles

    with ActorSystem(3, apps=["actorfw.kv.machine", "actorfw.services.paxos"]) as store:
        nodes = list(store.nodes)
        client = replicate(store, KVStateMachine, name="kv").client(client_id="under-attack")
        assert client.call(("put", "x", 0)) is None
        roles = [actor for _, _, actor in group_roles("kv", nodes, "m")]
        junk_body, junk_buffers, junk_plain = codec.encode(12345)  # a tell no role handles
        junk = [
            encode_batch(
                [Envelope(TELL, "intruder", role, None, 0, junk_body, junk_buffers, junk_plain)]
                * 100
            )
            for role in roles
        ]
        poison = [
            encode_batch([Envelope(TELL, "intruder", role, None, 0, body, buffers, False)])
            for role in roles
            for body, buffers in POISONS
        ]
        context = zmq.Context()
        peers = [raw_peer(context, store.endpoint(node), b"intruder") for node in nodes]
        try:
            for round_ in range(1, 21):
                for sock in peers:
                    for n in range(15):
                        sock.send_multipart(poison[(round_ * 15 + n) % len(poison)])
                    for _ in range(80 // len(roles)):
                        for batch in junk:
                            sock.send_multipart(batch)
                started = time.monotonic()
                assert client.call(("put", "x", round_)) is None
                assert time.monotonic() - started < 10.0
            assert client.call(("get", "x")) == 20
            for node in nodes:
                # The raw peers' batches and the status ask travel on different
                # connections: wait until the node has read the last of them.
                assert wait_until(lambda n=node: store.status(n)["stats"]["malformed"] >= 300)
                status = store.status(node)
                assert all(peer["state"] == "up" for peer in status["peers"].values())
        finally:
            for sock in peers:
                sock.close()
            context.term()
