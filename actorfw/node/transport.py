"""The ZeroMQ transport of a node process: one ROUTER in, one DEALER per peer out, batches.

Theory of operation
-------------------

1. A node binds one ROUTER socket at its address. For each peer it sends to,
   it connects one DEALER to the peer's ROUTER, on first use, with its own
   node id as the ZeroMQ identity; the peer's ROUTER sees that identity as
   the source of everything that arrives on the connection.
2. A node that has no address for a destination (a client process, say)
   answers it over the connection the destination opened to its ROUTER.
   Each direction of a pair of nodes always uses the same connection, so
   messages from one node to another stay in order (FIFO per pair).
3. The first envelope of a turn of the event loop leaves at once; those
   that follow are queued per destination and leave as one multipart
   message (:mod:`actorfw.node.wire`) when the queue holds 64 envelopes
   or at the end of the turn, whichever comes first; a message is closed
   past about 1 MiB of bodies and buffers. So a lone ask pays no wait, a
   burst costs few sends, and the receiver starts on the first part of a
   long burst while the sender makes the rest, instead of the two taking
   turns to idle. Buffers (bytes, numpy arrays) are sent zero-copy; they
   must not be changed after sending.
4. Reading drains every ready message of a socket at each wake-up, up to a
   budget, then yields to the loop. Whatever one batch or one envelope makes
   the decoder or the engine raise is that batch's or envelope's failure
   alone: it is reported as bad input and reading goes on (a reader that
   stopped early would not be woken again for the messages still waiting).
   Sockets refuse frames over :func:`~actorfw.node.wire.frame_limit` of the
   size limit before reading them.
5. On TCP with CURVE, the ROUTER only accepts peers whose public key is on
   the allow-list (a ZAP handler refuses and logs the others), and a
   message is accepted only if the identity it claims is the node the
   authenticated key belongs to. IPC endpoints live in private directories
   and need no CURVE.
6. A destination that cannot take more (its queue at the high-water mark)
   loses the batch: delivery is at-most-once, and it is counted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from typing import Any, cast

import zmq
from zmq.auth.thread import ThreadAuthenticator

from actorfw.core.envelopes import Envelope, Receiver
from actorfw.node.wire import batch_end, decode_batch, encode_batch, frame_limit
from actorfw.values.errors import MalformedMessage

__all__ = ["CurveSettings", "TransportStats", "ZmqTransport"]

log = logging.getLogger("actorfw.transport")

_READ_BUDGET = 8
_HWM = 100_000
_BATCH_ENVELOPES = 64  # a queue this long leaves at once, before the end of the turn (rule 3)
_ZERO_COPY = 1 << 16  # frames at least this big are sent without copying
_BATCH_BYTES = 1 << 20
# Plain ints: pyzmq's flag enums cost a microsecond or more per operation on them.
_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE = int(zmq.SNDMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)


@dataclasses.dataclass(frozen=True)
class CurveSettings:
    """CURVE keys of a node: its own pair and the public keys it accepts (z85, 40 bytes each).

    Attributes:
        public_key, secret_key: this node's key pair.
        peers: node id to public key: the allow-list, and the server keys
            this node expects when it connects to those nodes.
    """

    public_key: bytes
    secret_key: bytes
    peers: dict[str, bytes]


@dataclasses.dataclass
class TransportStats:
    """Counters of a transport."""

    batches_sent: int = 0
    batches_received: int = 0
    envelopes_sent: int = 0
    envelopes_received: int = 0
    dropped_unroutable: int = 0
    dropped_full: int = 0
    spoofed: int = 0


def _keep_alive(sock: zmq.Socket[Any]) -> None:
    """ZMTP heartbeats: a connection that went silent (a cut link) is dropped and
    redialled within seconds, instead of waiting out TCP's backed-off retransmissions."""
    sock.setsockopt(zmq.HEARTBEAT_IVL, 1000)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
    sock.setsockopt(zmq.HEARTBEAT_TTL, 6000)
    sock.setsockopt(zmq.CONNECT_TIMEOUT, 3000)


def _send(sock: zmq.Socket[Any], frames: list[Any]) -> None:
    """Send a multipart message: small frames copied (cheaper), large ones zero-copy."""
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        flags = _NOBLOCK if i == last else _NOBLOCK | _SNDMORE
        sock.send(frame, flags, copy=memoryview(frame).nbytes < _ZERO_COPY)


def _ready(sock: zmq.Socket[Any]) -> bool:
    """Whether a message waits: asking is cheaper than a read that fails (it raises)."""
    return bool(cast(int, sock.get(_EVENTS)) & _POLLIN)


def _recv(sock: zmq.Socket[Any]) -> list[zmq.Frame]:
    """The waiting multipart message (ZeroMQ delivers all its parts or none)."""
    frame = sock.recv(_NOBLOCK, copy=False)
    frames = [frame]
    while frame.more:
        frame = sock.recv(_NOBLOCK, copy=False)
        frames.append(frame)
    return frames


class _Authenticator(ThreadAuthenticator):
    """ZAP handler: accepts allow-listed keys, names them by their node, logs refusals."""

    def __init__(self, context: zmq.Context[Any], node_id: str, keys: dict[bytes, str]) -> None:
        super().__init__(context, log=logging.getLogger("actorfw.auth"))
        self._node_id = node_id
        self._names = keys

    def curve_user_id(self, client_public_key: bytes) -> str:
        key = zmq.utils.z85.encode(client_public_key)
        return self._names.get(key, key.decode("ascii"))

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self._names:
            return True
        log.warning(
            "[%s] refused a connection: public key %s is not on the allow-list",
            self._node_id,
            key.decode("ascii", "replace"),
        )
        return False


class _Detached:
    """What a transport hands input to before it is attached: nothing keeps it."""

    def receive(self, envelope: Envelope) -> None:
        """Drop it."""

    def receive_batch(self, peer: str, envelopes: list[Envelope]) -> None:
        """Drop them."""

    def reject(self, envelope: Envelope, error: BaseException) -> None:
        """Drop it."""

    def bad_input(self, peer: str, error: BaseException) -> None:
        """Drop it."""

    def heard_from(self, peer: str) -> None:
        """Ignore it."""

    def after_input(self) -> None:
        """Nothing to do."""


class ZmqTransport:
    """Carries envelopes between node processes (see the module rules).

    Args:
        node_id: this node's id (its ZeroMQ identity).
        loop: the node's event loop.
        listen: the endpoint to bind the ROUTER at (``ipc://...`` or
            ``tcp://host:port``), or None for a client that only connects.
        addresses: node id to endpoint, for the nodes this one sends to.
        curve: CURVE settings, required for TCP endpoints; None for IPC.
        max_message_size: bytes an envelope may carry; larger ones are refused.
        linger: seconds a graceful close waits for queued messages to leave.
    """

    def __init__(
        self,
        node_id: str,
        loop: asyncio.AbstractEventLoop,
        listen: str | None,
        addresses: dict[str, str],
        curve: CurveSettings | None = None,
        max_message_size: int = 64 << 20,
        linger: float = 5.0,
    ) -> None:
        self.node_id = node_id
        self.loop = loop
        self.listen = listen
        self.addresses = dict(addresses)
        self.curve = curve
        self.max_message_size = max_message_size
        self.linger = linger
        self.stats = TransportStats()
        self.context: zmq.Context[Any] = zmq.Context()
        self._identity = node_id.encode("utf-8")
        self._router: zmq.Socket[Any] | None = None
        self._dealers: dict[str, zmq.Socket[Any]] = {}
        self._queues: dict[str, list[Envelope]] = {}
        self._flush_scheduled = False
        # Sockets sent on since the loop last looked at them for input (see _send_batch).
        self._look: dict[zmq.Socket[Any], str | None] = {}
        self._auth: _Authenticator | None = None
        self._names_by_key: dict[bytes, str] = {}
        self._closed = False
        self.bound: str | None = None
        self.inbound: Receiver = _Detached()
        """Where decoded envelopes and bad input go (:meth:`attach`)."""

    def attach(self, inbound: Receiver) -> None:
        """Hand everything that comes in to ``inbound`` (an engine's ``inbound``)."""
        self.inbound = inbound

    # -- sockets -------------------------------------------------------------------------

    def _secure(self, endpoint: str) -> bool:
        return endpoint.startswith("tcp://")

    def start(self) -> None:
        """Bind the ROUTER (if listening) and start reading."""
        if self.curve is not None:
            self._names_by_key = {key: name for name, key in self.curve.peers.items()}
            self._auth = _Authenticator(self.context, self.node_id, self._names_by_key)
            self._auth.start()
            self._auth.configure_curve_callback(domain="*", credentials_provider=self._auth)
        if self.listen is None:
            return
        router = self.context.socket(zmq.ROUTER)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # Over IPC (private directories, no keys) a peer that reconnects under
        # the same identity takes its connection over, rather than waiting
        # while the old one lingers. Over CURVE it does not: another
        # allow-listed key claiming a connected peer's identity would take
        # that peer's replies. A second connection under a connected identity
        # is held unrouted until the first is gone (a peer's exit closes it at
        # once; a cut link is dropped by the ZMTP heartbeats within seconds).
        router.setsockopt(zmq.ROUTER_HANDOVER, 0 if self.curve is not None else 1)
        router.setsockopt(zmq.LINGER, int(self.linger * 1000))
        router.setsockopt(zmq.SNDHWM, _HWM)
        router.setsockopt(zmq.RCVHWM, _HWM)
        router.setsockopt(zmq.MAXMSGSIZE, frame_limit(self.max_message_size))
        _keep_alive(router)
        if self._secure(self.listen):
            if self.curve is None:
                raise ValueError(
                    f"node {self.node_id} listens on TCP ({self.listen}) without CURVE keys; "
                    "generate them with `actorfw keys generate` and pass them"
                )
            router.setsockopt(zmq.CURVE_SERVER, 1)
            router.setsockopt(zmq.CURVE_PUBLICKEY, self.curve.public_key)
            router.setsockopt(zmq.CURVE_SECRETKEY, self.curve.secret_key)
        router.bind(self.listen)
        self.bound = router.getsockopt(zmq.LAST_ENDPOINT).decode()
        self._router = router
        self.loop.add_reader(router.getsockopt(zmq.FD), self._readable, router, None)

    def _dealer(self, node: str) -> zmq.Socket[Any] | None:
        existing: zmq.Socket[Any] | None = self._dealers.get(node)
        if existing is not None:
            return existing
        endpoint = self.addresses.get(node)
        if endpoint is None:
            return None
        sock: zmq.Socket[Any] = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, self._identity)
        sock.setsockopt(zmq.LINGER, int(self.linger * 1000))
        sock.setsockopt(zmq.SNDHWM, _HWM)
        sock.setsockopt(zmq.RCVHWM, _HWM)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        sock.setsockopt(zmq.MAXMSGSIZE, frame_limit(self.max_message_size))
        _keep_alive(sock)
        if self._secure(endpoint):
            server_key = self.curve.peers.get(node) if self.curve is not None else None
            if self.curve is None or server_key is None:
                raise ValueError(
                    f"node {self.node_id} has no CURVE public key for {node} ({endpoint}); "
                    "add it to the peer keys"
                )
            sock.setsockopt(zmq.CURVE_SERVERKEY, server_key)
            sock.setsockopt(zmq.CURVE_PUBLICKEY, self.curve.public_key)
            sock.setsockopt(zmq.CURVE_SECRETKEY, self.curve.secret_key)
        sock.connect(endpoint)
        self._dealers[node] = sock
        self.loop.add_reader(sock.getsockopt(zmq.FD), self._readable, sock, node)  # type: ignore[arg-type]
        return sock

    def connect_all(self) -> None:
        """Open the connections to every known peer now, rather than on first use."""
        for node in self.addresses:
            if node != self.node_id:
                self._dealer(node)

    # -- sending -------------------------------------------------------------------------

    def send(self, destination: str, envelope: Envelope) -> None:
        """Send ``envelope`` to ``destination``: at once if the transport is idle, else batched.

        The first message of a loop turn leaves at once (latency); those that
        follow in the same turn wait for the flush at its end (throughput).
        """
        if self._closed:
            return
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)
            self._send_batch(destination, [envelope])
            return
        queue = self._queues.get(destination)
        if queue is None:
            self._queues[destination] = [envelope]
        else:
            queue.append(envelope)
            if len(queue) >= _BATCH_ENVELOPES:
                del self._queues[destination]
                self._send_queue(destination, queue)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send every queued envelope now, in batches of bounded size (rule 3)."""
        self._flush_scheduled = False
        if not self._queues:
            return
        queues, self._queues = self._queues, {}
        for destination, envelopes in queues.items():
            self._send_queue(destination, envelopes)

    def _send_queue(self, destination: str, envelopes: list[Envelope]) -> None:
        """Send ``envelopes`` to ``destination`` in order, as batches of bounded size."""
        start = 0
        while start < len(envelopes):
            # Buffers count toward the bytes too: a burst of large arrays goes out
            # as messages of about 1 MiB that the receiver takes as they come, not
            # as one huge multipart message it gets at the end.
            end = batch_end(envelopes, start, _BATCH_ENVELOPES, _BATCH_BYTES)
            if not self._send_batch(destination, envelopes[start:end]):
                break
            start = end

    def _send_batch(self, destination: str, envelopes: list[Envelope]) -> bool:
        frames = encode_batch(envelopes)
        try:
            sock = self._dealer(destination)
            if sock is not None:
                _send(sock, frames)
                self._look_soon(sock, destination)
            elif self._router is not None:
                _send(self._router, [destination.encode("utf-8"), *frames])
                self._look_soon(self._router, None)
            else:
                self.stats.dropped_unroutable += len(envelopes)
                return False
        except zmq.Again:
            self.stats.dropped_full += len(envelopes)
            log.warning(
                "[%s] the queue to %s is full; %d messages dropped",
                self.node_id,
                destination,
                len(envelopes),
            )
            return True
        except zmq.ZMQError as error:
            # ROUTER_MANDATORY: no connection from that node (yet, or any more).
            self.stats.dropped_unroutable += len(envelopes)
            log.debug("[%s] cannot route to %s: %s", self.node_id, destination, error)
            return False
        self.stats.batches_sent += 1
        self.stats.envelopes_sent += len(envelopes)
        return True

    def _look_soon(self, sock: zmq.Socket[Any], peer: str | None) -> None:
        """Sending can consume the socket's wake-up edge: look for input at the next turn.

        Once per socket and turn, however many batches left through it.
        """
        if sock not in self._look:
            if not self._look:
                self.loop.call_soon(self._look_again)
            self._look[sock] = peer

    def _look_again(self) -> None:
        sockets, self._look = self._look, {}
        for sock, peer in sockets.items():
            try:
                self._readable(sock, peer)
            except Exception:  # a bug: logged, and the other sockets are still looked at
                log.exception("[%s] reading from %s failed", self.node_id, peer or "the router")

    # -- receiving -----------------------------------------------------------------------

    def _readable(self, sock: zmq.Socket[Any], peer: str | None) -> None:
        if self._closed or sock.closed:
            return
        got = 0
        drained = False
        try:
            for _ in range(_READ_BUDGET):
                try:
                    if not _ready(sock):
                        drained = True
                        return
                    frames = _recv(sock)
                except zmq.ZMQError:
                    drained = True
                    return
                got += 1
                try:
                    if peer is None:
                        self._from_router(frames)
                    else:
                        self._deliver(peer, frames)
                except Exception as error:  # one bad batch spoils only itself
                    self._refuse(peer or "(unknown)", error)
        finally:
            # Budget spent, or something raised: read on after other work. The
            # socket's descriptor only signals new input, so a reader that
            # stopped with messages waiting would never be woken for them.
            if not drained:
                self.loop.call_soon(self._readable, sock, peer)
            if got:
                self.inbound.after_input()  # handle what came in now, not a loop turn later

    def _refuse(self, peer: str, error: BaseException) -> None:
        """Report input that could not be handled; a failing report is logged, never raised."""
        try:
            self.inbound.bad_input(peer, error)
        except Exception:
            log.exception("[%s] reporting bad input from %s failed", self.node_id, peer)

    def _from_router(self, frames: list[zmq.Frame]) -> None:
        if len(frames) < 2:
            self.inbound.bad_input(
                "(unknown)", MalformedMessage("a message without routing identity")
            )
            return
        try:
            source = frames[0].bytes.decode("utf-8")
        except UnicodeDecodeError:
            self.inbound.bad_input(
                "(unknown)", MalformedMessage("a routing identity that is not UTF-8")
            )
            return
        if self.curve is not None and self._router is not None and self._secure(self.bound or ""):
            user = frames[1].get("User-Id")
            if user != source:
                self.stats.spoofed += 1
                self.inbound.bad_input(
                    source,
                    MalformedMessage(
                        f"the connection authenticated as {user!r} claims to be node {source!r}"
                    ),
                )
                return
        self._deliver(source, frames[1:])

    def _deliver(self, source: str, frames: list[zmq.Frame]) -> None:
        self.stats.batches_received += 1
        # Large frames are read in place (zero-copy): the batch frame too, so
        # that an oversized body in it is never copied (decode_batch checks
        # sizes before it copies a body out).
        parts: list[Any] = [
            frame.bytes if len(frame) < _ZERO_COPY else frame.buffer for frame in frames
        ]
        try:
            envelopes, oversized = decode_batch(source, parts, self.max_message_size)
        except Exception as error:  # MalformedBatch, or anything else: the batch is refused
            self._refuse(source, error)
            return
        self.stats.envelopes_received += len(envelopes) + len(oversized)
        self.inbound.heard_from(source)
        for env in oversized:
            try:
                self.inbound.reject(
                    env,
                    MalformedMessage(
                        f"a message from {source} to {env.target or '(reply)'} exceeds the "
                        f"{self.max_message_size}-byte limit"
                    ),
                )
            except Exception as error:
                self._refuse(source, error)
        try:
            self.inbound.receive_batch(source, envelopes)  # one bad envelope spoils only itself
        except Exception as error:  # a bug: what followed in the batch is lost, and logged
            log.exception("[%s] delivering a batch from %s failed", self.node_id, source)
            self._refuse(source, error)

    # -- closing -------------------------------------------------------------------------

    def close(self, linger: float | None = None, unreachable: tuple[str, ...] = ()) -> None:
        """Flush, close every socket and remove the IPC file.

        Args:
            linger: seconds to wait for queued messages to leave (default:
                the transport's).
            unreachable: peers known to be down: nothing queued for them can
                leave, so their connections close without waiting.
        """
        if self._closed:
            return
        self.flush()
        self._closed = True
        wait = self.linger if linger is None else linger
        sockets = [
            (sock, 0.0 if node in unreachable else wait) for node, sock in self._dealers.items()
        ]
        if self._router is not None:
            sockets.append((self._router, wait))
        for sock, patience in sockets:
            try:
                self.loop.remove_reader(sock.getsockopt(zmq.FD))  # type: ignore[arg-type]
            except (zmq.ZMQError, ValueError, OSError):
                pass
            sock.close(linger=int(patience * 1000))
        if self._auth is not None:
            self._auth.stop()
        self.context.term()
        if self.bound and self.bound.startswith("ipc://"):
            path = self.bound[len("ipc://") :]
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
