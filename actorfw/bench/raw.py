"""Raw pyzmq baselines for the messaging benchmarks: the same work with no framework at all.

Each baseline runs its sides in separate processes, as the actor benchmarks
do, over the same transport (IPC, or TCP on loopback with CURVE), and sends
the same bytes: the orjson encoding of the same message, one message per
``send`` (for throughput), a DEALER/ROUTER ping-pong (for round trips), and
zero-copy sends of the same numpy buffer (for payloads).

:func:`raw_bare_tell` is the floor under all of them: DEALER to ROUTER
sending one ready-made ``bytes`` of a given size per ``send``, received
and dropped, with nothing encoded or decoded on either side.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import orjson
import zmq

__all__ = ["raw_bare_tell", "raw_fan_in", "raw_payload", "raw_round_trips", "raw_tell"]

_SPAWN = multiprocessing.get_context("spawn")


class _Endpoint:
    """An endpoint for one baseline, with CURVE keys when it is TCP."""

    def __init__(self, transport: str, folder: str) -> None:
        self.transport = transport
        if transport == "ipc":
            self.address = f"ipc://{folder}/raw-{os.getpid()}-{time.monotonic_ns()}.sock"
            self.keys: tuple[bytes, bytes, bytes, bytes] | None = None
        else:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            self.address = f"tcp://127.0.0.1:{port}"
            server_public, server_secret = zmq.curve_keypair()
            client_public, client_secret = zmq.curve_keypair()
            self.keys = (server_public, server_secret, client_public, client_secret)


def _server(endpoint: _Endpoint, kind: int) -> tuple[zmq.Context[Any], zmq.Socket[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    sock = context.socket(kind)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    if endpoint.keys is not None:
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, endpoint.keys[0])
        sock.setsockopt(zmq.CURVE_SECRETKEY, endpoint.keys[1])
    sock.bind(endpoint.address)
    return context, sock


def _client(endpoint: _Endpoint, kind: int) -> tuple[zmq.Context[Any], zmq.Socket[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    sock = context.socket(kind)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    if endpoint.keys is not None:
        sock.setsockopt(zmq.CURVE_SERVERKEY, endpoint.keys[0])
        sock.setsockopt(zmq.CURVE_PUBLICKEY, endpoint.keys[2])
        sock.setsockopt(zmq.CURVE_SECRETKEY, endpoint.keys[3])
    sock.connect(endpoint.address)
    return context, sock


def _tick(n: int) -> dict[str, Any]:
    # The tree actorfw's codec builds for bench.Tick(n): the same bytes go out.
    return {"$m": ["bench.Tick", {"n": n}]}


def _receive_ticks(
    endpoint: _Endpoint, count: int, senders: int, pipe: Any, bare: bool = False
) -> None:
    context, sock = _server(endpoint, zmq.ROUTER)
    pipe.send("bound")
    for _ in range(senders):  # one warm-up message per sender: every connection is up
        sock.recv_multipart()
    pipe.send("ready")
    receive = sock.recv_multipart
    if bare:  # nothing decoded: the message is taken off the socket and dropped
        for _ in range(count):
            receive()
    else:
        loads = orjson.loads
        for _ in range(count):
            loads(receive()[1])
    pipe.send(time.perf_counter())
    sock.close(0)
    context.term()


def _send_ticks(endpoint: _Endpoint, first: int, count: int, pipe: Any) -> None:
    context, sock = _client(endpoint, zmq.DEALER)
    sock.send(b"warm-up")
    pipe.send("ready")
    pipe.recv()  # go
    dumps = orjson.dumps
    send = sock.send
    for i in range(first, first + count):
        send(dumps(_tick(i)))
    pipe.recv()  # keep the socket until the receiver is done
    sock.close(0)
    context.term()


def _send_bare(endpoint: _Endpoint, count: int, size: int, pipe: Any) -> None:
    context, sock = _client(endpoint, zmq.DEALER)
    sock.send(b"warm-up")
    pipe.send("ready")
    pipe.recv()  # go
    payload = b"x" * size
    send = sock.send
    for _ in range(count):
        send(payload)
    pipe.recv()  # keep the socket until the receiver is done
    sock.close(0)
    context.term()


class _Sides:
    """The processes of one baseline, each with a pipe to it; stopped on exit."""

    def __init__(self, sides: list[tuple[Callable[..., None], tuple[Any, ...]]]) -> None:
        self.pipes: list[Any] = []
        self.processes: list[Any] = []
        for target, args in sides:
            mine, theirs = _SPAWN.Pipe()
            process = _SPAWN.Process(target=target, args=(*args, theirs), daemon=True)
            process.start()
            theirs.close()
            self.pipes.append(mine)
            self.processes.append(process)

    def __enter__(self) -> list[Any]:
        try:
            for pipe in self.pipes:
                while True:
                    if not pipe.poll(60):
                        raise RuntimeError("a baseline process did not start")
                    if pipe.recv() == "ready":
                        break
        except BaseException:
            self.__exit__()
            raise
        return self.pipes

    def __exit__(self, *exc: object) -> None:
        for pipe in self.pipes:
            try:
                pipe.send("done")
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join(5)
        for pipe in self.pipes:
            pipe.close()


def raw_tell(transport: str, count: int) -> float:
    """Messages per second, DEALER to ROUTER, one orjson message per send, across processes."""
    return raw_fan_in(transport, count, senders=1)


def raw_fan_in(transport: str, count: int, senders: int = 2) -> float:
    """Messages per second from ``senders`` DEALER processes into one ROUTER process."""
    with tempfile.TemporaryDirectory(prefix="actorfw-raw-") as folder:
        endpoint = _Endpoint(transport, folder)
        share = count // senders
        sides: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
            (_receive_ticks, (endpoint, share * senders, senders))
        ]
        sides += [(_send_ticks, (endpoint, i * share, share)) for i in range(senders)]
        return _rate(sides, share * senders)


def raw_bare_tell(transport: str, count: int, size: int = 100) -> float:
    """Messages per second, DEALER to ROUTER, one ready-made ``size``-byte message per send.

    Nothing is encoded or decoded: the floor of one message per send.
    """
    with tempfile.TemporaryDirectory(prefix="actorfw-raw-") as folder:
        endpoint = _Endpoint(transport, folder)
        return _rate(
            [
                (partial(_receive_ticks, bare=True), (endpoint, count, 1)),
                (_send_bare, (endpoint, count, size)),
            ],
            count,
        )


def _rate(sides: list[tuple[Callable[..., None], tuple[Any, ...]]], count: int) -> float:
    """Run a receiver (the first side) and its senders; messages per second."""
    with _Sides(sides) as pipes:
        start = time.perf_counter()
        for pipe in pipes[1:]:
            pipe.send("go")
        if not pipes[0].poll(300):
            raise RuntimeError("the baseline receiver did not finish")
        end: float = pipes[0].recv()
        return count / (end - start)


def _pong(endpoint: _Endpoint, pipe: Any) -> None:
    context, sock = _server(endpoint, zmq.ROUTER)
    pipe.send("ready")
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while not pipe.poll(0):
        if poller.poll(100):
            frames = sock.recv_multipart()
            sock.send_multipart(frames)
    sock.close(0)
    context.term()


def _ping(endpoint: _Endpoint, count: int, pipe: Any) -> None:
    context, sock = _client(endpoint, zmq.DEALER)
    pipe.send("ready")
    pipe.recv()  # go
    dumps, loads = orjson.dumps, orjson.loads
    for i in range(20):  # warm the connection, as the actor benchmark does
        sock.send(dumps(_tick(i)))
        sock.recv()
    times = []
    for i in range(count):
        start = time.perf_counter()
        sock.send(dumps(_tick(i)))
        loads(sock.recv())
        times.append(time.perf_counter() - start)
    pipe.send(times)
    pipe.recv()
    sock.close(0)
    context.term()


def raw_round_trips(transport: str, count: int) -> list[float]:
    """Round-trip times (seconds) of sequential DEALER/ROUTER ping-pongs between two processes."""
    with tempfile.TemporaryDirectory(prefix="actorfw-raw-") as folder:
        endpoint = _Endpoint(transport, folder)
        with _Sides([(_pong, (endpoint,)), (_ping, (endpoint, count))]) as pipes:
            pipes[1].send("go")
            if not pipes[1].poll(300):
                raise RuntimeError("the baseline pinger did not finish")
            times: list[float] = pipes[1].recv()
            return times


def _receive_arrays(endpoint: _Endpoint, count: int, pipe: Any) -> None:
    context, sock = _server(endpoint, zmq.ROUTER)
    pipe.send("bound")
    sock.recv_multipart()  # warm-up
    pipe.send("ready")
    total = 0
    for _ in range(count):
        frames = sock.recv_multipart(copy=False)
        total += np.frombuffer(frames[1].buffer, dtype=np.uint8).nbytes
    pipe.send((time.perf_counter(), total))
    sock.close(0)
    context.term()


def _send_arrays(endpoint: _Endpoint, size: int, count: int, pipe: Any) -> None:
    context, sock = _client(endpoint, zmq.DEALER)
    sock.send(b"warm-up")
    pipe.send("ready")
    payload = np.zeros(size, dtype=np.uint8)
    pipe.recv()  # go
    for _ in range(count):
        sock.send(payload.data, 0, copy=False)
    pipe.recv()
    sock.close(0)
    context.term()


def raw_payload(transport: str, size: int, count: int) -> float:
    """Bytes per second of ``count`` zero-copy sends of a ``size``-byte numpy array."""
    with tempfile.TemporaryDirectory(prefix="actorfw-raw-") as folder:
        endpoint = _Endpoint(transport, folder)
        sides: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
            (_receive_arrays, (endpoint, count)),
            (_send_arrays, (endpoint, size, count)),
        ]
        with _Sides(sides) as pipes:
            start = time.perf_counter()
            pipes[1].send("go")
            if not pipes[0].poll(300):
                raise RuntimeError("the baseline receiver did not finish")
            end, total = pipes[0].recv()
            return float(total) / (float(end) - start)
