"""A raw pyzmq twin of the replicated store's floor: the same hops and synced writes, no framework.

The floor of ``actorfw bench paxos`` (:class:`~actorfw.bench.actors.QuorumLeader`
and :class:`~actorfw.bench.actors.QuorumFollower` on node processes) is the
message pattern of a replicated command with no protocol in it. This is the
same pattern written directly on pyzmq and ``sqlite3``, one process per node
plus the client's, so that the runtime's own cost can be read off as the
ratio of the two:

- the client (a DEALER) sends the leader process the encoding of a
  ``QuorumWrite`` and waits for the answer, sequentially;
- the leader (a ROUTER for the client, a DEALER to each follower) sends every
  follower the encoding of a ``QuorumAccept`` and writes and syncs its own
  record on a thread of its own meanwhile, as a node's commit thread does;
  it answers the client once a majority of the nodes has synced, its own
  write counting as one vote like any follower's;
- each follower (a ROUTER) writes and syncs the record, then answers.

Each write is the floor's, made by the functions a node's SQLite storage
commits with (:mod:`actorfw.node.sqlite_file`: the same file layout, WAL,
``synchronous=FULL``): the 200-byte value under the floor's key, in a
transaction of its own. With ``durable=False`` nothing is written, as the
floor on in-memory storage syncs at once. The bytes on the wire are what
the codec writes for the same messages. The client waits at most
:data:`ANSWER_TIMEOUT` for an answer, as the floor's asks do.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import zmq

from actorfw.bench.actors import FLOOR_KEY, FLOOR_VALUE
from actorfw.bench.raw import _client, _Endpoint, _server, _Sides
from actorfw.node.sqlite_file import commit_layer, open_store

__all__ = ["ANSWER_TIMEOUT", "raw_quorum_writes"]

ANSWER_TIMEOUT = 10.0
"""Seconds the client waits for one answer before the measurement fails."""

_NAMESPACE = "floor"


def _open_store(path: str | None) -> sqlite3.Connection | None:
    return None if path is None else open_store(Path(path), [])


def _write(conn: sqlite3.Connection | None) -> None:
    """The floor's write: one record, committed and synced (nothing without a store)."""
    if conn is not None:
        commit_layer(conn, {_NAMESPACE: {FLOOR_KEY: FLOOR_VALUE}}, None)


def _number(body: bytes) -> int:
    """The ``n`` of a message the codec encoded: ``{"$m": [name, {"n": n, ...}]}``."""
    n: int = orjson.loads(body)["$m"][1]["n"]
    return n


def _follower(endpoint: _Endpoint, store: str | None, pipe: Any) -> None:
    context, sock = _server(endpoint, zmq.ROUTER)
    conn = _open_store(store)
    pipe.send("ready")
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while not pipe.poll(0):
        if poller.poll(100):
            identity, body = sock.recv_multipart()
            n = _number(body)
            _write(conn)
            sock.send_multipart(
                [identity, orjson.dumps({"$m": ["bench.QuorumAccepted", {"n": n}]})]
            )
    if conn is not None:
        conn.close()
    sock.close(0)
    context.term()


def _writer(context: zmq.Context[Any], address: str, store: str | None) -> None:
    """The leader's own writes, on a thread: each ``n`` asked for is written, synced, sent back."""
    conn = _open_store(store)
    sock = context.socket(zmq.PAIR)
    sock.connect(address)
    while True:
        n = orjson.loads(sock.recv())
        if n is None:
            break
        _write(conn)
        sock.send(orjson.dumps(n))
    if conn is not None:
        conn.close()
    sock.close(0)


def _leader(
    front: _Endpoint, backs: list[_Endpoint], quorum: int, store: str | None, pipe: Any
) -> None:
    context, sock = _server(front, zmq.ROUTER)
    peers = []
    for back in backs:
        peer = context.socket(zmq.DEALER)
        peer.setsockopt(zmq.RCVHWM, 0)
        peer.setsockopt(zmq.SNDHWM, 0)
        peer.connect(back.address)
        peers.append(peer)
    own = context.socket(zmq.PAIR)  # to and from the thread that writes the leader's record
    own.bind("inproc://own-writes")
    writer = threading.Thread(target=_writer, args=(context, "inproc://own-writes", store))
    writer.start()
    pipe.send("ready")
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(own, zmq.POLLIN)
    for peer in peers:
        poller.register(peer, zmq.POLLIN)
    nodes = len(peers) + 1
    votes: dict[int, int] = {}  # write -> nodes synced so far (dropped once all have)
    asker: dict[int, bytes] = {}  # write -> the client's identity, until it is answered

    def vote(n: int) -> None:
        count = votes.get(n, 0) + 1
        if count == quorum:
            identity = asker.pop(n)
            sock.send_multipart([identity, orjson.dumps(n)])
        if count >= nodes:
            votes.pop(n, None)
        else:
            votes[n] = count

    while not pipe.poll(0):
        ready = dict(poller.poll(100))
        if sock in ready:
            identity, body = sock.recv_multipart()
            n = _number(body)
            asker[n] = identity
            accept = orjson.dumps(
                {"$m": ["bench.QuorumAccept", {"n": n, "leader": {"$r": ["n1", "floor-leader"]}}]}
            )
            for peer in peers:
                peer.send(accept)
            own.send(orjson.dumps(n))  # its own record, while the followers write theirs
        if own in ready:
            vote(orjson.loads(own.recv()))
        for peer in peers:
            while peer.poll(0):
                vote(_number(peer.recv()))
    own.send(orjson.dumps(None))
    writer.join()
    own.close(0)
    for peer in peers:
        peer.close(0)
    sock.close(0)
    context.term()


def _asker(front: _Endpoint, warmup: int, count: int, pipe: Any) -> None:
    context, sock = _client(front, zmq.DEALER)
    sock.setsockopt(zmq.RCVTIMEO, int(ANSWER_TIMEOUT * 1000))
    pipe.send("ready")
    pipe.recv()  # go
    times: list[float] = []
    clock = time.perf_counter
    for i in range(warmup + count):
        began = clock()
        sock.send(orjson.dumps({"$m": ["bench.QuorumWrite", {"n": i}]}))
        try:
            answered = orjson.loads(sock.recv())
        except zmq.Again:  # the parent raises it
            pipe.send(f"raw quorum write {i} was not answered within {ANSWER_TIMEOUT} s")
            break
        if answered != i:  # the parent raises it
            pipe.send(f"raw quorum write {i} was answered with {answered!r}")
            break
        if i >= warmup:
            times.append(clock() - began)
    else:
        pipe.send(times)
    pipe.recv()
    sock.close(0)
    context.term()


def raw_quorum_writes(nodes: int, durable: bool, warmup: int, count: int) -> list[float]:
    """Seconds from ask to answer of ``count`` sequential quorum writes, raw pyzmq and SQLite.

    Args:
        nodes: processes that write, the leader included (a majority answers).
        durable: each write is committed and synced to SQLite (else nothing is written).
        warmup: writes first, not timed.
        count: writes timed.
    """
    if nodes < 1:
        raise ValueError(f"a quorum needs at least one node, not {nodes}")
    quorum = nodes // 2 + 1
    with tempfile.TemporaryDirectory(prefix="actorfw-raw-") as folder:
        front = _Endpoint("ipc", folder)
        backs = [_Endpoint("ipc", folder) for _ in range(nodes - 1)]

        def store(i: int) -> str | None:
            return str(Path(folder) / f"node-{i}.db") if durable else None

        sides: list[tuple[Any, tuple[Any, ...]]] = [
            (_follower, (back, store(i + 1))) for i, back in enumerate(backs)
        ]
        sides.append((_leader, (front, backs, quorum, store(0))))
        sides.append((_asker, (front, warmup, count)))
        with _Sides(sides) as pipes:
            pipes[-1].send("go")
            # Each answer comes within ANSWER_TIMEOUT or the client says so; this
            # bounds the wait if a process of the measurement dies outright.
            if not pipes[-1].poll(ANSWER_TIMEOUT + 0.05 * (warmup + count) + 60):
                raise RuntimeError("the raw quorum writes did not finish")
            times: list[float] | str = pipes[-1].recv()
            if isinstance(times, str):
                raise RuntimeError(times)
            return times
