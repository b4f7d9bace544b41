"""A node process: the engine on a real event loop, ZeroMQ sockets, and storage on disk.

:class:`NodeRuntime` assembles a node from its :class:`~actorfw.node.config.NodeSettings`:
it imports the node's apps, opens its storage in the data directory (or, with
``storage = "memory"``, keeps it in memory, where nothing survives a restart), reads
and bumps its incarnation, binds its ROUTER, starts the engine and its
configured top-level actors. Once up, a node process freezes what it made
at start out of garbage collection and sets the collector's thresholds
(:func:`tune_gc`, ``NodeSettings.gc_threshold``). :func:`run_node` is the body of a node process
(``actorfw node`` and :class:`~actorfw.node.system.ActorSystem` both use it):
it runs until SIGTERM (or SIGINT when standalone, or the death of the parent
process that started it), then stops gracefully — actors stopped newest
first with their hooks, outgoing messages flushed, sockets closed, the IPC
file removed. SIGUSR1 stops it the same way but without waiting for
outgoing messages to leave: what a cluster-wide shutdown sends, since
nobody is left to receive them.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actorfw.core.engine import Engine, start_engine
from actorfw.core.storage import MemoryBackend, StorageBackend
from actorfw.node.config import NodeSettings, loop_factory
from actorfw.node.storage import SqliteBackend
from actorfw.node.transport import ZmqTransport

__all__ = ["NodeRuntime", "next_incarnation", "run_node", "tune_gc"]

log = logging.getLogger("actorfw")


def next_incarnation(data_dir: str | Path) -> int:
    """Read, bump and durably store the node's incarnation counter; returns the new value."""
    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "incarnation"
    try:
        current = int(path.read_text().strip() or "0")
    except FileNotFoundError:
        current = 0
    except ValueError:
        raise ValueError(f"{path} is corrupt: it should hold one integer") from None
    new = current + 1
    tmp = folder / "incarnation.tmp"
    with open(tmp, "w") as out:
        out.write(f"{new}\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return new


class NodeRuntime:
    """One node, running on the current event loop (see the module documentation)."""

    def __init__(self, settings: NodeSettings) -> None:
        self.settings = settings
        self.engine: Engine | None = None
        self.transport: ZmqTransport | None = None
        self.storage: StorageBackend | None = None

    async def start(self) -> None:
        """Bring the node up; raises if anything is wrong (bad app, endpoint taken, ...)."""
        settings = self.settings
        for module in settings.apps:
            importlib.import_module(module)
        loop = asyncio.get_running_loop()
        incarnation = next_incarnation(settings.data_dir)
        self.storage = _open_storage(settings, loop)
        transport = ZmqTransport(
            settings.name,
            loop,
            settings.listen,
            settings.peers,
            curve=settings.curve,
            max_message_size=settings.max_message_size,
            linger=settings.linger,
        )
        seed = int.from_bytes(os.urandom(8), "big")
        engine = start_engine(
            settings.name,
            loop,
            transport,
            self.storage,
            peers=list(settings.peers),
            seed=seed,
            incarnation=incarnation,
            config=settings.engine,
            clock=time.monotonic,
        )
        transport.start()
        transport.connect_all()
        self.transport = transport
        self.engine = engine
        for spec in settings.spawn:
            spec.start(engine)
        log.info(
            "[%s] node up at %s (incarnation %d, %s storage)",
            settings.name,
            transport.bound,
            incarnation,
            settings.storage,
        )

    async def stop(self, linger: float | None = None) -> None:
        """Stop gracefully: actors, then outgoing messages, then sockets and storage.

        Args:
            linger: seconds to wait for outgoing messages to leave (default:
                the settings'); 0 when the whole cluster is going down and
                nobody is left to receive them.
        """
        down: tuple[str, ...] = ()
        if self.engine is not None:
            liveness = self.engine.liveness
            down = tuple(p for p in liveness.peers if liveness.is_down(p))
            await self.engine.stop()
        if self.transport is not None:
            self.transport.close(linger, unreachable=down)
        if isinstance(self.storage, SqliteBackend):
            self.storage.close()


def _open_storage(settings: NodeSettings, loop: asyncio.AbstractEventLoop) -> StorageBackend:
    """The node's storage backend, as ``settings.storage`` chooses."""
    if settings.storage == "memory":
        # The simulator's backend, with flushes that take no time: a sync is
        # complete when it is returned. Its crash model goes unused: a
        # process that dies takes all of it along.
        return MemoryBackend(lambda _delay, flush: flush(), lambda: 0.0, loop.create_future)
    return SqliteBackend(Path(settings.data_dir) / "storage.sqlite3", loop)


def _watch_parent(loop: asyncio.AbstractEventLoop, on_death: Callable[[], None]) -> None:
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is not None:
        loop.add_reader(parent.sentinel, on_death)


async def _serve(settings: NodeSettings, ready: Any, standalone: bool) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    everyone = asyncio.Event()  # the whole cluster stops: no point waiting for peers
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def stop_everything() -> None:
        everyone.set()
        stop.set()

    loop.add_signal_handler(signal.SIGUSR1, stop_everything)
    if standalone:
        loop.add_signal_handler(signal.SIGINT, stop.set)
    else:
        # The parent's death takes the whole local cluster down: no lingering either.
        _watch_parent(loop, stop_everything)
    runtime = NodeRuntime(settings)
    try:
        await runtime.start()
    except BaseException as error:
        if ready is not None:
            ready.send(("error", f"{type(error).__name__}: {error}"))
            ready.close()
        await runtime.stop()
        raise
    tune_gc(settings.gc_threshold)
    if ready is not None:
        assert runtime.transport is not None
        ready.send(("ready", runtime.transport.bound))
        ready.close()
    await stop.wait()
    await runtime.stop(0.0 if everyone.is_set() else None)


def tune_gc(threshold: tuple[int, int, int] | None) -> None:
    """Set a node process's garbage collector up for message traffic (None: leave it).

    What the node made while starting (modules, classes, its actors) lives
    as long as the process: it is frozen out of every later collection
    (``gc.freeze``), and the thresholds become ``threshold``. Collections
    then run less often and each one looks at the objects messages made,
    not at the whole heap.
    """
    if threshold is None:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*threshold)


def run_node(
    settings: NodeSettings,
    ready: Any = None,
    standalone: bool = True,
    log_level: int = logging.WARNING,
) -> None:
    """The body of a node process: serve until told to stop, then stop gracefully.

    Args:
        settings: the node's configuration.
        ready: a pipe end to report ``("ready", endpoint)`` or ``("error", text)`` on.
        standalone: a node started by hand stops on SIGINT too; one started by
            an :class:`ActorSystem` ignores SIGINT (its parent stops it) and
            stops when its parent dies.
    """
    if not standalone:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
        runner.run(_serve(settings, ready, standalone))
