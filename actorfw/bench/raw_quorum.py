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
  follower the encoding of a ``QuorumAccept``, then writes and syncs its own
  record; it answers the client once a majority of the nodes (itself
  included) has synced;
- each follower (a ROUTER) writes and syncs the record, then answers.

Each write is the floor's: a 200-byte value stored under one key in an
SQLite database in WAL mode with ``synchronous=FULL`` (fsynced at every
commit, as the nodes' storage is), in a transaction of its own. With
``durable=False`` nothing is written, as the floor on in-memory storage
syncs at once. The bytes on the wire are what the codec writes for the same
messages.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import zmq

from actorfw.bench.raw import _client, _Endpoint, _server, _Sides

__all__ = ["raw_quorum_writes"]

_KEY = b"floor"
_VALUE = b"v" * 200  # what the floor's actors write (actorfw.bench.actors.FLOOR_VALUE)


def _open_store(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")  # fsync the WAL at every COMMIT
    conn.execute("CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL)")
    return conn


def _write(conn: sqlite3.Connection | None) -> None:
    """The floor's write: one record, committed and synced (nothing without a store)."""
    if conn is None:
        return
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (_KEY, _VALUE))
    conn.execute("COMMIT")


def _number(body: bytes) -> int:
    """The ``n`` of a message the codec encoded: ``{"$m": [name, {"n": n, ...}]}``."""
    n: int = orjson.loads(body)["$m"][1]["n"]
    return n


def _follower(endpoint: _Endpoint, store: str | None, pipe: Any) -> None:
    context, sock = _server(endpoint, zmq.ROUTER)
    conn = None if store is None else _open_store(store)
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
    conn = None if store is None else _open_store(store)
    pipe.send("ready")
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
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
            _write(conn)  # its own record, while the followers write theirs
            vote(n)
        for peer in peers:
            while peer.poll(0):
                vote(_number(peer.recv()))
    if conn is not None:
        conn.close()
    for peer in peers:
        peer.close(0)
    sock.close(0)
    context.term()


def _asker(front: _Endpoint, warmup: int, count: int, pipe: Any) -> None:
    context, sock = _client(front, zmq.DEALER)
    pipe.send("ready")
    pipe.recv()  # go
    times: list[float] = []
    clock = time.perf_counter
    for i in range(warmup + count):
        began = clock()
        sock.send(orjson.dumps({"$m": ["bench.QuorumWrite", {"n": i}]}))
        answered = orjson.loads(sock.recv())
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
            if not pipes[-1].poll(300):
                raise RuntimeError("the raw quorum writes did not finish")
            times: list[float] | str = pipes[-1].recv()
            if isinstance(times, str):
                raise RuntimeError(times)
            return times
