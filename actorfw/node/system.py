"""``ActorSystem``: a local cluster of node processes, driven from the calling process.

Example::

    with ActorSystem(nodes=3, apps=["mypackage.actors"]) as system:
        ref = system.spawn("n1", Store, name="store")
        system.ask(ref, Put("k", b"v"))
        system.crash("n1")          # SIGKILL
        system.restart("n1")        # same data directory, its top-level actors respawned

Each node is an OS process (``multiprocessing`` with the *spawn* start
method) running :func:`actorfw.node.runtime.run_node`, reachable over
``ipc://`` endpoints in a private temporary directory. The calling process
talks to them through a client node on an event loop in a background
thread; the methods here (``spawn``, ``tell``, ``ask``, ``poll``, ``run``,
``lookup``) are the same as :class:`actorfw.Simulation`'s, so tests and
tools can drive either.

No orphans: :meth:`close` (also on leaving the ``with`` block, on Ctrl-C,
and at interpreter exit) stops every node, gracefully then by force; a node
whose parent dies stops by itself.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import itertools
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

from actorfw.core.actor import Actor, actor_path
from actorfw.core.arguments import check_actor_class, check_target, no_such_node
from actorfw.core.cluster import find_actor, poll_until
from actorfw.core.engine import NODE_TARGET, Engine, NodeConfig, start_engine
from actorfw.core.messages import StatusRequest
from actorfw.core.storage import MemoryBackend
from actorfw.node.config import NodeSettings, RootSpec, loop_factory
from actorfw.node.endpoints import check_endpoint
from actorfw.node.handoff import Handoff
from actorfw.node.runtime import run_node
from actorfw.node.transport import CurveSettings, ZmqTransport
from actorfw.values.refs import DEFAULT_ASK_TIMEOUT, ActorRef

__all__ = ["ActorSystem", "Connection", "SystemTimeout", "connect"]

log = logging.getLogger("actorfw")


CLOSE_LINGER = 1.0
"""Seconds a closing connection waits for what it sent to leave."""


class SystemTimeout(AssertionError):
    """A driver call did not finish in time."""


_LIVE: weakref.WeakSet[Connection] = weakref.WeakSet()
_CLIENTS = itertools.count(1)


@atexit.register
def _close_all() -> None:
    for system in list(_LIVE):
        system.close()


class _Member:
    """A node of an ActorSystem: its settings, its process, and its top-level actors."""

    def __init__(self, settings: NodeSettings) -> None:
        self.settings = settings
        self.process: multiprocessing.process.BaseProcess | None = None
        self.roots: dict[str, RootSpec] = {}


class Connection:
    """A connection to a cluster: a client node in a background thread, driving it from outside.

    It is a node of its own (``client-<pid>-...``) that sends to the
    cluster's nodes and is answered over the connections it opens; it hosts
    no actors and is not heartbeated. :func:`connect` makes one for a
    running cluster; :class:`ActorSystem` is one that also runs the cluster.

    Args:
        addresses: node id to endpoint.
        curve: CURVE settings (this client's key pair must be on the nodes'
            allow-lists) for TCP endpoints.
        name: the client's node id (default: generated).
        event_loop: the client's event loop, ``"asyncio"`` (the default) or
            ``"uvloop"`` (see :func:`~actorfw.node.config.loop_factory`).

    Raises:
        ValueError: an endpoint is malformed (the message names the node and
            the form expected), or a node is reached over ``tcp://`` and
            ``curve`` is None.
    """

    def __init__(
        self,
        addresses: dict[str, str],
        curve: CurveSettings | None = None,
        name: str | None = None,
        event_loop: str = "asyncio",
    ) -> None:
        new_loop = loop_factory(event_loop)
        for node, endpoint in addresses.items():
            try:
                check_endpoint(endpoint)
            except ValueError as error:
                raise ValueError(f"node {node}: {error}") from None
        tcp = [node for node, endpoint in addresses.items() if endpoint.startswith("tcp://")]
        if tcp and curve is None:
            raise ValueError(
                f"{', '.join(tcp)} {'is' if len(tcp) == 1 else 'are'} reached over tcp://, which "
                "needs CURVE keys: pass curve=load_curve(SECRET, PEER_KEYS) "
                "(actorfw.node.config.load_curve: this client's .key_secret and a directory of "
                "the nodes' .key files, from `actorfw keys generate`)"
            )
        self._addresses = dict(addresses)
        self._client_id = name or f"client-{os.getpid()}-{next(_CLIENTS)}"
        self._curve = curve
        self._closed = False
        self._loop = new_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="actorfw-client", daemon=True
        )
        self._thread.start()
        self._client: Engine = self._call_soon(self._make_client)
        self._handoff = Handoff(self._client)
        _LIVE.add(self)

    # -- plumbing ------------------------------------------------------------------------

    def _call_soon(self, function: Callable[..., Any], *args: Any) -> Any:
        future: Any = asyncio.run_coroutine_threadsafe(_as_coroutine(function, *args), self._loop)
        return future.result(30.0)

    def _make_client(self) -> Engine:
        loop = asyncio.get_running_loop()
        transport = ZmqTransport(
            self._client_id, loop, None, self._addresses, curve=self._curve, linger=1.0
        )
        storage = MemoryBackend(
            lambda d, cb: loop.call_later(d, cb), lambda: 0.0, loop.create_future
        )
        client = start_engine(
            self._client_id,
            loop,
            transport,
            storage,
            peers=[],
            config=NodeConfig(),
            reachable=list(self._addresses),
            probed=list(self._addresses),
            clock=time.monotonic,
        )
        transport.start()
        # Open a connection to every node now: a node answers a client only over a
        # connection the client opened, and a command passed on to another node's
        # replica is answered from there.
        transport.connect_all()
        self._transport = transport
        return client

    @property
    def nodes(self) -> list[str]:
        """The node ids this client knows."""
        return list(self._addresses)

    in_process = False
    """Actors run in node processes: what they are given must be importable there by path."""

    def close(self) -> None:
        """Stop the client's thread and close its sockets.

        Tells and asks queued before it are sent first, and get up to
        ``CLOSE_LINGER`` seconds to leave (none for a node the client
        believes down). Tells held back for want of credit (see
        :meth:`backlog`) are not sent.
        """
        if self._closed:
            return
        self._closed = True
        _LIVE.discard(self)
        self._close_client()

    def _close_client(self) -> None:
        if self._thread.is_alive():
            try:
                self._call_soon(self._shutdown_client)
            except Exception as error:  # the client's loop is ours; a failure here leaks nothing
                log.debug("client shutdown: %r", error)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10.0)
        if not self._loop.is_running():
            self._loop.close()

    def _shutdown_client(self) -> None:
        handoff = getattr(self, "_handoff", None)
        if handoff is not None:
            handoff.drain()  # what the callers queued before close() leaves with the rest
        client = getattr(self, "_client", None)
        down: tuple[str, ...] = ()
        if client is not None:
            down = tuple(node for node in self._addresses if client.liveness.is_down(node))
            client.crash()
        transport = getattr(self, "_transport", None)
        if transport is not None:
            # Sent messages get up to CLOSE_LINGER to leave; none wait for a node that is down.
            transport.close(linger=CLOSE_LINGER, unreachable=down)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- driving actors ------------------------------------------------------------------

    def run(
        self,
        main: Callable[[], Awaitable[Any]] | Coroutine[Any, Any, Any],
        on: str | None = None,
        timeout: float = 60.0,
    ) -> Any:
        """Run driver code to completion in the client and return its result.

        ``ref.tell`` and ``ref.ask`` inside it send from the client node
        (``on`` is accepted for compatibility with ``Simulation.run``; the
        client is its own node).

        Raises:
            SystemTimeout: it did not finish within ``timeout`` seconds.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                "a blocking client call was made from driver code running on the client's "
                "own loop (inside run/poll): it would wait for itself; await the ref's ask instead"
            )
        future = self.start(main)
        done, _ = concurrent.futures.wait([future], timeout)
        if not done:
            future.cancel()
            raise SystemTimeout(f"the driver did not finish within {timeout:g}s")
        return future.result()

    def start(
        self, main: Callable[[], Awaitable[Any]] | Coroutine[Any, Any, Any]
    ) -> concurrent.futures.Future[Any]:
        """Start driver code in the client without waiting for it; a future of its result.

        Like :meth:`run`, but the calling thread goes on (to watch progress, say).
        """
        client = self._client

        async def runner() -> Any:
            coroutine = main() if callable(main) else main
            task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(
                coroutine,  # type: ignore[arg-type]
                context=client.client.bind(),
            )
            return await task

        return asyncio.run_coroutine_threadsafe(runner(), self._loop)

    def spawn(
        self,
        node: str,
        actor_class: type[Actor],
        *args: Any,
        name: str | None = None,
        **kwargs: Any,
    ) -> ActorRef:
        """Start a top-level actor on ``node`` (its class must be imported there)."""
        check_actor_class(actor_class)
        if node not in self._addresses:
            raise ValueError(f"no node {node!r} (nodes: {self.nodes})")
        ref: ActorRef = self.run(
            lambda: self._client.node_protocol.spawn_remote(
                node, actor_class, args, kwargs, name, 10.0, None
            )
        )
        return ref

    def tell(self, target: ActorRef, message: Any, on: str | None = None) -> None:
        """Tell ``target`` from the client; returns once queued for the client's loop.

        The message is checked and encoded here, in the calling thread; the
        client's loop sends what was queued at its next turn, in order (see
        :mod:`actorfw.node.handoff`): a loop of tells does not wait for the
        loop once per tell. Driver code inside :meth:`run` sends at once.

        Raises:
            MessageRefused: ``message`` is not a message value.
            Overloaded: the client's backlog to the target's node is full (see
                :meth:`backlog`).
            SystemTimeout: the client's loop took nothing for 30 s while the
                queue was full.
            ActorNotFound: ``target`` is on a node that is not in the cluster
                (the same error as an ask's; an actor's tell there is a dead
                letter of its node instead).
        """
        check_target(target, "tell")
        if target.node not in self._addresses and target.node != self._client_id:
            raise no_such_node(target, self._addresses, "tell")
        if threading.current_thread() is self._thread:
            self._client.send(target, message, None)
        elif target.node == self._client_id:
            self._call_soon(self._client.send, target, message, None)
        else:
            self._live().tell(target, message)

    def backlog(self, node: str) -> int:
        """Tells from this client kept for ``node`` because it gives no credit for more now.

        A :meth:`tell` past ``max_backlog`` of them raises
        :class:`~actorfw.Overloaded` (see ``docs/actors.md``, "Flow control").
        """
        return self._client.flow.backlog(node)

    def ask(
        self,
        target: ActorRef,
        message: Any,
        timeout: float = DEFAULT_ASK_TIMEOUT,
        on: str | None = None,
    ) -> Any:
        """Ask ``target`` from the client and return the reply.

        Like :meth:`tell`, the message is encoded here and queued for the
        client's loop; this thread then waits for the reply alone.

        Raises:
            AskTimeout: no reply within ``timeout`` seconds (and the errors of
                ``ActorRef.ask``: ``NodeDown``, the actor's failure, ...).
            SystemTimeout: the client's loop did not settle the ask within
                ``timeout`` + 5 seconds.
            ActorNotFound: ``target`` is on a node that is not in the cluster.
        """
        check_target(target, "ask")
        if target.node not in self._addresses and target.node != self._client_id:
            raise no_such_node(target, self._addresses, "ask")  # as a tell's, at the call
        if threading.current_thread() is self._thread or target.node == self._client_id:

            async def main() -> Any:
                return await self._client.ask(target, message, timeout, None)

            return self.run(main, timeout=timeout + 5.0)
        answer = self._live().ask(target, message, timeout)
        settled, reply = answer.wait(min(timeout + 5.0, threading.TIMEOUT_MAX))
        if not settled:
            raise SystemTimeout(f"the client's loop did not settle the ask within {timeout + 5:g}s")
        return reply

    def _live(self) -> Handoff:
        if self._closed:
            raise RuntimeError(f"the connection {self._client_id} is closed")
        if not self._thread.is_alive():
            raise RuntimeError(
                f"the loop thread of the connection {self._client_id} has ended: nothing "
                "would send this"
            )
        return self._handoff

    def poll(
        self,
        target: ActorRef,
        message: Any,
        until: Callable[[Any], bool],
        timeout: float = 30.0,
        interval: float = 0.05,
        on: str | None = None,
    ) -> Any:
        """Ask ``target`` every ``interval`` seconds until ``until(reply)``; return that reply.

        Raises:
            SystemTimeout: ``timeout`` seconds passed first; says the last reply.
        """
        return self.run(
            lambda: poll_until(target, message, until, timeout, interval, SystemTimeout),
            timeout=timeout + 10.0,
        )

    def lookup(self, name: str, node: str | None = None, on: str | None = None) -> ActorRef | None:
        """Find a living actor by name, on ``node`` or on any node.

        Raises:
            NodeDown, AskTimeout: ``node`` is given and is down or does not answer.
        """
        candidates = [node] if node is not None else self.nodes
        found: ActorRef | None = self.run(
            lambda: find_actor(name, candidates, 5.0, only=node is not None),
            timeout=10.0 * len(candidates) + 5.0,
        )
        return found

    def status(self, node: str, timeout: float = 5.0) -> dict[str, Any]:
        """A node's status: its actors, what it believes of its peers, its counters."""
        if node not in self._addresses:
            raise ValueError(f"no node {node!r} (nodes: {self.nodes})")
        result: dict[str, Any] = self.ask(ActorRef(node, NODE_TARGET), StatusRequest(), timeout)
        return result


class ActorSystem(Connection):
    """A local cluster of node processes (see the module documentation).

    Args:
        nodes: how many nodes (``n1``, ``n2``, ...) or their names.
        apps: modules every node imports at start (where the actor classes live).
        node_config: engine tunables for every node.
        base_dir: where to put endpoints and data (default: a private temporary
            directory, removed at close).
        start_timeout: seconds a node may take to come up.
        log_level: the nodes' logging level.
        max_message_size: bytes a message may carry; larger ones are refused.
        transport: ``"ipc"`` (default) or ``"tcp"`` on 127.0.0.1, with CURVE
            keys made for the occasion (in the base directory).
        storage: every node's storage: ``"sqlite"`` (default; durable, on
            disk) or ``"memory"`` (syncs complete at once and a restarted node
            comes back with empty storage; see
            :class:`~actorfw.node.config.NodeSettings`).
        event_loop: the event loop of every node and of the client:
            ``"asyncio"`` (default) or ``"uvloop"`` (see
            :func:`~actorfw.node.config.loop_factory`).

    Scripts that create one must guard their entry point with
    ``if __name__ == "__main__":``: node processes are started with the
    *spawn* method, which imports the main module again.
    """

    def __init__(
        self,
        nodes: int | Iterable[str] = 3,
        apps: Iterable[str] = (),
        node_config: NodeConfig | None = None,
        base_dir: str | Path | None = None,
        start_timeout: float = 60.0,
        log_level: int = logging.WARNING,
        max_message_size: int = 64 << 20,
        transport: str = "ipc",
        storage: str = "sqlite",
        event_loop: str = "asyncio",
    ) -> None:
        loop_factory(event_loop)  # an unknown name or a missing package fails here, at once
        if transport not in ("ipc", "tcp"):
            raise ValueError(f"transport is 'ipc' or 'tcp', not {transport!r}")
        if storage not in ("sqlite", "memory"):
            raise ValueError(f"storage is 'sqlite' or 'memory', not {storage!r}")
        names = [f"n{i + 1}" for i in range(nodes)] if isinstance(nodes, int) else list(nodes)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"an actor system needs distinct node names, not {names!r}")
        self._owns_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="actorfw-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base_dir, 0o700)
        self.apps = list(apps)
        self.node_config = node_config or NodeConfig()
        self.start_timeout = start_timeout
        self.log_level = log_level
        self._mp = multiprocessing.get_context("spawn")
        curves: dict[str, CurveSettings] = {}
        if transport == "ipc":
            endpoints = {name: f"ipc://{self.base_dir / (name + '.sock')}" for name in names}
        else:
            endpoints = {name: f"tcp://127.0.0.1:{_free_port()}" for name in names}
            client_name = f"client-{os.getpid()}-{next(_CLIENTS)}"
            curves = _ephemeral_keys([*names, client_name], self.base_dir / "keys")
        self._members: dict[str, _Member] = {}
        for name in names:
            settings = NodeSettings(
                name=name,
                listen=endpoints[name],
                peers={n: e for n, e in endpoints.items() if n != name},
                data_dir=str(self.base_dir / f"data-{name}"),
                apps=self.apps,
                engine=self.node_config,
                max_message_size=max_message_size,
                curve=curves.get(name),
                storage=storage,
                event_loop=event_loop,
            )
            self._members[name] = _Member(settings)
        if transport == "ipc":
            super().__init__(endpoints, event_loop=event_loop)
        else:
            super().__init__(
                endpoints, curve=curves[client_name], name=client_name, event_loop=event_loop
            )
        try:
            pipes = {name: self._launch(name) for name in names}
            for name, reader in pipes.items():
                self._await_ready(name, reader)
        except BaseException:
            self.close()
            raise

    def _launch(self, name: str) -> Any:
        member = self._members[name]
        settings = member.settings
        settings.spawn = list(member.roots.values())
        reader, writer = self._mp.Pipe(duplex=False)
        process = self._mp.Process(
            target=run_node,
            args=(settings, writer, False, self.log_level),
            name=f"actorfw-{name}",
            daemon=True,
        )
        process.start()
        writer.close()
        member.process = process
        return reader

    def _await_ready(self, name: str, reader: Any) -> None:
        member = self._members[name]
        try:
            if not reader.poll(self.start_timeout):
                self._kill(name)
                raise RuntimeError(f"node {name} did not come up within {self.start_timeout:g}s")
            try:
                status, detail = reader.recv()
            except EOFError:
                code = member.process.exitcode if member.process else None
                raise RuntimeError(f"node {name} died while starting (exit code {code})") from None
        finally:
            reader.close()
        if status != "ready":
            self._kill(name)
            raise RuntimeError(f"node {name} failed to start: {detail}")

    def _kill(self, name: str) -> None:
        process = self._members[name].process
        if process is not None and process.is_alive():
            process.kill()
            process.join(10.0)

    def _member(self, node: str) -> _Member:
        member = self._members.get(node)
        if member is None:
            raise ValueError(f"no node {node!r} in this system (nodes: {self.nodes})")
        return member

    # -- nodes ---------------------------------------------------------------------------

    def spawn(
        self,
        node: str,
        actor_class: type[Actor],
        *args: Any,
        name: str | None = None,
        **kwargs: Any,
    ) -> ActorRef:
        """Start a top-level actor on ``node``; it is started again whenever the node restarts."""
        member = self._member(node)
        ref = super().spawn(node, actor_class, *args, name=name, **kwargs)
        member.roots[ref.name] = RootSpec(
            actor_path(actor_class), ref.name, tuple(args), dict(kwargs)
        )
        return ref

    def pid(self, node: str) -> int | None:
        """The process id of a running node."""
        process = self._member(node).process
        return process.pid if process is not None and process.is_alive() else None

    def endpoint(self, node: str) -> str:
        """The endpoint a node listens at."""
        return self._member(node).settings.listen

    def crash(self, node: str) -> None:
        """Kill a node's process with SIGKILL: no hook runs, nothing is flushed."""
        member = self._member(node)
        if member.process is None or not member.process.is_alive():
            raise RuntimeError(f"node {node} is not running")
        member.process.kill()
        member.process.join(10.0)

    def restart(self, node: str) -> None:
        """Start a stopped or crashed node again on its data directory; its actors respawn."""
        member = self._member(node)
        if member.process is not None and member.process.is_alive():
            raise RuntimeError(f"node {node} is running; crash or stop it first")
        self._await_ready(node, self._launch(node))

    def stop_node(self, node: str, timeout: float = 30.0) -> int | None:
        """Stop a node gracefully (SIGTERM); returns its exit code."""
        process = self._member(node).process
        if process is None or not process.is_alive():
            return process.exitcode if process is not None else None
        process.terminate()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(10.0)
        return process.exitcode

    def close(self) -> None:
        """Stop every node (gracefully, then by force), the client, and the temporary files."""
        if self._closed:
            return
        self._closed = True
        _LIVE.discard(self)
        processes = [m.process for m in self._members.values() if m.process is not None]
        for process in processes:
            if process.is_alive() and process.pid is not None:
                try:
                    os.kill(process.pid, signal.SIGUSR1)  # every node stops: no lingering
                except ProcessLookupError:
                    pass
        for process in processes:
            process.join(20.0)
            if process.is_alive():
                process.kill()
                process.join(10.0)
        self._close_client()
        if self._owns_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> ActorSystem:
        return self


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ephemeral_keys(names: list[str], folder: Path) -> dict[str, CurveSettings]:
    from actorfw.node.config import load_curve
    from actorfw.node.keys import generate_keys

    public = folder / "public"
    public.mkdir(parents=True, exist_ok=True)
    for name in names:
        pub, _ = generate_keys(name, folder / name)
        shutil.copy(pub, public / pub.name)
    return {name: load_curve(folder / name / f"{name}.key_secret", public) for name in names}


def connect(
    addresses: dict[str, str],
    curve: CurveSettings | None = None,
    name: str | None = None,
    event_loop: str = "asyncio",
) -> Connection:
    """A :class:`Connection` of a running cluster (close it when done, or use ``with``).

    Args:
        addresses: node id to endpoint (``tcp://HOST:PORT`` or ``ipc://PATH``).
        curve: this client's key pair and the nodes' public keys
            (:func:`actorfw.node.config.load_curve`); required for ``tcp://``.
        name: the client's node id; over ``tcp://``, the stem of its key file.
        event_loop: the client's event loop (``"asyncio"`` or ``"uvloop"``).

    Raises:
        ValueError: as :class:`Connection` does.
    """
    return Connection(addresses, curve=curve, name=name, event_loop=event_loop)


async def _as_coroutine(function: Callable[..., Any], *args: Any) -> Any:
    return function(*args)


def __getattr__(name: str) -> Any:
    if name == "Client":
        warnings.warn(
            "actorfw.node.Client was renamed Connection (what connect() returns)",
            DeprecationWarning,
            stacklevel=2,
        )
        return Connection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
