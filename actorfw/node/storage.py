"""The node runtime's durable store: a :class:`StorageBackend` on SQLite.

Theory of operation
-------------------

:class:`SqliteBackend` keeps the contract of :mod:`actorfw.core.storage`
(rules 1-4) with the same semantics as its in-memory reference,
:class:`~actorfw.core.storage.MemoryBackend`, on one SQLite database file
from the standard library's :mod:`sqlite3`:

* **Schema.** One table, ``kv(namespace TEXT, key BLOB, value BLOB,
  PRIMARY KEY (namespace, key)) WITHOUT ROWID``: the rows are stored in
  primary-key order, so a prefix scan is one range read, and SQLite compares
  BLOBs with ``memcmp`` then length, which is Python's byte order. The file
  is marked with ``PRAGMA application_id`` and ``user_version`` so that a
  foreign database is refused instead of written into.
* **Two layers in memory over the database.** :meth:`~SqliteBackend.apply`
  never touches the disk: it records each key's newest value (or a
  tombstone for a delete) in the *unsynced* layer, so a write is visible at
  once (rule 1) and costs a dict update. :meth:`~SqliteBackend.sync` hands
  that layer over, whole, to the commit thread (it becomes the *flushing*
  layer, and a fresh unsynced layer starts) and returns an asyncio future.
  Reads look in the unsynced layer, then the flushing layer, then the
  database, so they always see the newest write.
* **One commit thread, one transaction per commit.** The commit thread (a
  dedicated single-thread executor owning the writing connection) writes
  the flushing layer in one ``BEGIN IMMEDIATE ... COMMIT`` transaction and
  tells the event loop (``loop.call_soon_threadsafe``) when ``COMMIT`` has
  returned; only then, on the loop thread, is the flushing layer dropped
  (the database now holds it) and are the futures of the syncs it covers
  resolved. Commits never block the event loop: ``sync()`` only swaps two
  dicts and queues the work.
* **Group commit (rule 4).** At most one commit is in flight, and a
  commit takes every write made up to its start. A sync with writes to
  commit and no commit in flight starts one at the end of the current turn
  of the event loop (``loop.call_soon``), so every writer that runs in that
  turn shares it; a sync requested while a commit is in flight, after
  writes that commit does not hold, waits for the next commit, which starts
  in the turn after the current one ends. A thousand writers doing ``put``
  then ``await sync()`` cost one or two commits, not a thousand. A sync
  with nothing unsynced completes at once (or with the commit in flight,
  if that commit holds every write made so far).
* **Durability (rules 1-3).** The database runs in WAL mode with
  ``PRAGMA synchronous=FULL``: in WAL mode a transaction is committed by
  appending its pages and a commit frame to the ``-wal`` file, and with
  ``FULL`` SQLite fsyncs that file before ``COMMIT`` returns (with
  ``NORMAL`` it would not: a commit would survive a killed process but not
  a power loss). A sync's future is resolved only after that ``COMMIT``
  returned, so a completed sync is on stable storage. Commits run one at a
  time and in write order, each one atomic, and a batch is always wholly
  inside one commit, so a crash (SIGKILL or power loss) keeps every
  completed commit, may keep the one in flight or lose it as a whole, and
  loses the unsynced layer: what survives of the unsynced writes is a
  prefix in write order (rule 2), and never part of a batch (rule 3). The
  directory holding the file is fsynced after the file is created, so its
  name survives a power loss too. SQLite fsyncs the directory itself when
  it creates the ``-wal`` file.
* **Bounded memory.** Once ``max_unsynced`` writes wait in memory and no
  commit is in flight, a commit starts without anyone asking for a sync
  (the contract lets any unsynced write become durable early). It never
  splits a batch.

Reads run on the event loop's thread through a second, read-only
connection (a read of a key not in memory reads the file, usually from the
page cache): SQLite's WAL lets them proceed while the commit thread writes,
and each read sees the last committed state; a transaction the commit
thread has just committed is still in the flushing layer until the loop
hears of it, so reads stay consistent across that moment.

Threading: ``get``, ``scan``, ``apply``, ``sync`` and ``close`` are called
from the event loop's thread (``close`` may also be called once the loop has
stopped). The commit thread reads the flushing layer, which the loop thread
no longer changes, and touches nothing else of the backend's state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from actorfw.core.storage import StorageBackend
from actorfw.node.sqlite_file import (
    DEFAULT_FILENAME,
    SCHEMA_VERSION,
    Layer,
    StorageError,
    check_item,
    check_namespace,
    commit_layer,
    connect,
    open_store,
)

__all__ = ["DEFAULT_FILENAME", "SCHEMA_VERSION", "SqliteBackend", "StorageError"]


_GET = "SELECT value FROM kv WHERE namespace = ? AND key = ?"
_SCAN_ALL = "SELECT key, value FROM kv WHERE namespace = ? AND key >= ? ORDER BY key"
_SCAN_RANGE = "SELECT key, value FROM kv WHERE namespace = ? AND key >= ? AND key < ? ORDER BY key"


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key above every key starting with ``prefix`` (None: no such key)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _merge(older: Layer, newer: Layer) -> Layer:
    """``older`` updated with ``newer`` (changes ``older`` in place and returns it)."""
    for namespace, space in newer.items():
        older.setdefault(namespace, {}).update(space)
    return older


class SqliteBackend(StorageBackend):
    """A node's durable key-value store in one SQLite file, with group commit.

    See the module documentation for how it keeps the contract of
    :mod:`actorfw.core.storage`. Actors reach it through
    :meth:`namespace`, the generic :class:`~actorfw.core.storage.Storage`
    view.

    Args:
        path: the database file, e.g. ``<data_dir>/storage.sqlite3`` (see
            :data:`DEFAULT_FILENAME`). Missing parent directories are
            created; a missing file is created empty. The ``-wal`` and
            ``-shm`` files SQLite keeps beside it belong to it.
        loop: the event loop of the node; futures returned by :meth:`sync`
            belong to it and are resolved on its thread.
        max_unsynced: once this many writes wait in memory and no commit is
            in flight, a commit starts without waiting for a ``sync()``,
            bounding the memory they hold; None commits only on ``sync()``
            and :meth:`close`.
        before_commit: a hook for tests and instrumentation, called on the
            commit thread at the start of each commit with the number of
            keys it writes. It may block (holding the commit in flight); if
            it raises, the commit fails as an I/O error would.

    Raises:
        StorageError: ``path`` is a directory, not a SQLite database, or a
            SQLite database that is not an actorfw store (or is one of a
            newer layout), or the file system does not support WAL mode.
        OSError: a missing parent directory could not be created.

    Example::

        backend = SqliteBackend(data_dir / DEFAULT_FILENAME, loop)
        store = backend.namespace("kv-1")
        store.put("ballot", b"3.n1")
        await store.sync()  # durable from here on
        backend.close()
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        loop: asyncio.AbstractEventLoop,
        *,
        max_unsynced: int | None = 10_000,
        before_commit: Callable[[int], None] | None = None,
    ) -> None:
        if not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(
                f"SqliteBackend needs the node's asyncio event loop as its second argument, "
                f"not {type(loop).__name__}"
            )
        if max_unsynced is not None and (type(max_unsynced) is not int or max_unsynced < 1):
            raise ValueError(f"max_unsynced must be a positive int or None, not {max_unsynced!r}")
        self._path = Path(os.fspath(path)).absolute()
        self._loop = loop
        self._max_unsynced = max_unsynced
        self._before_commit = before_commit
        self._unsynced: Layer = {}
        self._unsynced_writes = 0
        self._flushing: Layer = {}
        self._inflight: concurrent.futures.Future[None] | None = None
        self._waiting_flush: list[asyncio.Future[None]] = []  # resolved by the commit in flight
        self._waiting_next: list[asyncio.Future[None]] = []  # need a commit not yet started
        self._start_handle: asyncio.Handle | None = None  # a commit start, due this loop turn
        self._autocommit = True  # suspended after a failed commit until one succeeds
        self._namespaces: set[str] = set()  # namespaces already checked
        self._closed = False
        self.flushes = 0
        """How many commits completed (group commit: fewer than syncs)."""

        if self._path.is_dir():
            raise StorageError(
                f"the storage path {str(self._path)!r} is a directory; pass the database file, "
                f"e.g. {str(self._path / DEFAULT_FILENAME)!r}"
            )
        self._created_dirs: list[Path] = []  # made here for the file, outermost last
        directory = self._path.parent
        while not directory.exists():
            self._created_dirs.append(directory)
            directory = directory.parent
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="actorfw-storage-commit"
        )
        self._writer: sqlite3.Connection | None = None  # used on the commit thread only
        self._reader: sqlite3.Connection | None = None  # used on the loop thread only
        try:
            self._writer = self._executor.submit(
                open_store, self._path, self._created_dirs
            ).result()
            self._reader = connect(self._path, check_same_thread=False)
            self._reader.execute("PRAGMA synchronous = FULL")
            self._reader.execute("PRAGMA query_only = ON")
        except BaseException:
            self._shutdown()
            raise

    # -- the contract -------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The database file (absolute)."""
        return self._path

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def unsynced_writes(self) -> int:
        """Writes not yet handed to a commit (a key written twice counts twice)."""
        return self._unsynced_writes

    def _check_open(self, doing: str) -> sqlite3.Connection:
        if self._closed or self._reader is None:
            raise RuntimeError(
                f"cannot {doing}: the storage at {str(self._path)!r} is closed; open a new "
                "SqliteBackend on it"
            )
        return self._reader

    def get(self, namespace: str, key: bytes) -> bytes | None:
        """The value of ``key`` in ``namespace`` (newest write, synced or not), or None."""
        reader = self._check_open("read")
        space = self._unsynced.get(namespace)
        if space is not None and key in space:
            return space[key]
        space = self._flushing.get(namespace)
        if space is not None and key in space:
            return space[key]
        # fetchall, never fetchone: a statement left unfinished would hold its
        # read snapshot open, and later reads would not see newer commits.
        rows = reader.execute(_GET, (namespace, key)).fetchall()
        return rows[0][0] if rows else None

    def pending(self, namespace: str) -> bool:
        """Is a write to ``namespace`` applied but not yet committed and fsynced?"""
        return bool(self._unsynced.get(namespace) or self._flushing.get(namespace))

    def scan(self, namespace: str, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """The pairs of ``namespace`` whose key starts with ``prefix``, in key (byte) order."""
        reader = self._check_open("scan")
        end = _prefix_end(prefix)
        if end is None:
            cursor = reader.execute(_SCAN_ALL, (namespace, prefix))
        else:
            cursor = reader.execute(_SCAN_RANGE, (namespace, prefix, end))
        items: dict[bytes, bytes] = dict(cursor.fetchall())
        changed = False
        for layer in (self._flushing, self._unsynced):  # older first
            space = layer.get(namespace)
            if not space:
                continue
            for key, value in space.items():
                if key.startswith(prefix):
                    changed = True
                    if value is None:
                        items.pop(key, None)
                    else:
                        items[key] = value
        if changed:
            return sorted(items.items())
        return list(items.items())  # already in key order from the database

    def apply(self, ops: list[tuple[str, bytes, bytes | None]]) -> None:
        """Apply writes atomically (visible at once; durable after the next ``sync``).

        Each op is ``(namespace, key, value)``; a None value deletes. Nothing
        is applied if any op is malformed.

        Raises:
            TypeError: a namespace that is not a str, a key that is not
                bytes, a value that is neither bytes nor None.
            RuntimeError: the backend is closed.
        """
        self._check_open("write")
        if not isinstance(ops, list):
            ops = list(ops)
        for op in ops:
            self._check_op(op)
        layer = self._unsynced
        for namespace, key, value in ops:
            space = layer.get(namespace)
            if space is None:
                space = layer[namespace] = {}
            space[key] = value
        self._unsynced_writes += len(ops)
        if (
            self._max_unsynced is not None
            and self._unsynced_writes >= self._max_unsynced
            and self._inflight is None
            and self._autocommit
        ):
            self._start_commit()

    def _check_op(self, op: tuple[str, bytes, bytes | None]) -> None:
        namespace, key, value = op
        if namespace not in self._namespaces:
            check_namespace(namespace)
            self._namespaces.add(namespace)
        check_item(key, value)

    def sync(self) -> asyncio.Future[None]:
        """A future that completes once every write applied so far is committed and fsynced.

        It is resolved on the loop's thread; if the commit fails it raises
        :class:`StorageError` (the writes stay pending; a later sync retries
        them).

        Raises:
            RuntimeError: the backend is closed.
        """
        self._check_open("sync")
        future: asyncio.Future[None] = self._loop.create_future()
        if self._unsynced:
            self._waiting_next.append(future)
            if self._inflight is None:
                self._request_commit()
        elif self._inflight is not None:
            self._waiting_flush.append(future)  # the commit in flight holds every write
        else:
            future.set_result(None)  # nothing written since the last commit
        return future

    # -- commits ------------------------------------------------------------------------------

    def _request_commit(self) -> None:
        """Start a commit at the end of this turn of the loop (group commit).

        Not at once: writers the loop runs in this turn (say, every task the
        last commit woke up) then share the commit instead of waiting for
        the one after.
        """
        if self._start_handle is None:
            self._start_handle = self._loop.call_soon(self._start_requested)

    def _start_requested(self) -> None:
        self._start_handle = None
        if not self._closed and self._inflight is None and self._unsynced:
            self._start_commit()

    def _start_commit(self) -> None:
        """Hand the unsynced layer to the commit thread (loop thread; none in flight).

        The commit holds every write made so far, so it settles every sync
        waiting for a commit.
        """
        self._waiting_flush += self._waiting_next
        self._waiting_next = []
        layer, self._unsynced = self._unsynced, {}
        self._unsynced_writes = 0
        self._flushing = layer
        inflight = self._executor.submit(self._commit, layer)
        self._inflight = inflight
        inflight.add_done_callback(self._commit_ended)

    def _commit(self, layer: Layer) -> None:
        """Write ``layer`` in one transaction and return once it is durable (commit thread)."""
        conn = self._writer
        assert conn is not None, "the commit thread runs only while the writer is open"
        commit_layer(conn, layer, self._before_commit)

    def _commit_ended(self, inflight: concurrent.futures.Future[None]) -> None:
        """Tell the loop a commit ended (on the commit thread, or at once if already done)."""
        try:
            self._loop.call_soon_threadsafe(self._commit_done, inflight)
        except RuntimeError:
            pass  # the loop is closed: nobody is left to wake; close() settles the rest

    def _commit_done(self, inflight: concurrent.futures.Future[None]) -> None:
        """Settle a finished commit on the loop thread, and start the next one if wanted."""
        if inflight is not self._inflight:
            return  # close() settled it already
        self._settle(inflight)
        # A sync waits for the next commit only after writes the last one did
        # not hold, so there is something to commit whenever one waits.
        assert self._unsynced or not self._waiting_next, "a sync waits on an empty commit"
        autocommit = (
            self._max_unsynced is not None
            and self._unsynced_writes >= self._max_unsynced
            and self._autocommit
        )
        if self._unsynced and (self._waiting_next or autocommit):
            self._request_commit()

    def _settle(self, inflight: concurrent.futures.Future[None]) -> BaseException | None:
        """Account for a finished commit and resolve its syncs; returns its error, if any."""
        self._inflight = None
        layer, self._flushing = self._flushing, {}
        waiters, self._waiting_flush = self._waiting_flush, []
        error = inflight.exception()
        if error is None:
            self.flushes += 1
            self._autocommit = True
            for future in waiters:
                self._resolve(future, None)
            return None
        # Nothing of the transaction reached the database: the writes become
        # pending again, under the newer ones, for the next commit to retry.
        self._unsynced = _merge(layer, self._unsynced)
        self._unsynced_writes = sum(len(space) for space in self._unsynced.values())
        self._autocommit = False
        for future in waiters:
            self._resolve(future, self._commit_error(error))
        return error

    def _resolve(self, future: asyncio.Future[None], error: BaseException | None) -> None:
        """Complete a sync's future, unless cancelled or its loop is closed (close())."""
        if future.done() or self._loop.is_closed():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    def _commit_error(self, error: BaseException) -> StorageError:
        failure = StorageError(
            f"committing to the storage file {str(self._path)!r} failed: {error}; the writes "
            "are not durable (they stay pending, and the next sync() retries them)"
        )
        failure.__cause__ = error
        return failure

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Commit every pending write, wait for it to be durable, and release the file.

        Blocks the calling thread for at most two commits (the one in flight,
        then one for the rest); ``await sync()`` first to do that wait on the
        event loop. Pending syncs complete. Safe to call twice; afterwards
        every other method raises RuntimeError. Call it on the loop's thread,
        or once the loop has stopped.

        Raises:
            StorageError: the last commit failed; the writes it held are lost.
        """
        if self._closed:
            return
        self._closed = True
        if self._start_handle is not None:
            self._start_handle.cancel()
            self._start_handle = None
        error: BaseException | None = None
        try:
            if self._inflight is not None:
                concurrent.futures.wait([self._inflight])
                self._settle(self._inflight)
            if self._unsynced:
                self._start_commit()
                assert self._inflight is not None
                concurrent.futures.wait([self._inflight])
                error = self._settle(self._inflight)
            for future in self._waiting_flush + self._waiting_next:
                self._resolve(future, None)  # nothing was left unsynced
            self._waiting_flush, self._waiting_next = [], []
            self._unsynced = {}
        finally:
            self._shutdown()
        if error is not None:
            raise self._commit_error(error)

    def _shutdown(self) -> None:
        """Close both connections and stop the commit thread."""
        self._closed = True
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        try:
            self._executor.submit(self._close_writer).result()
        finally:
            self._executor.shutdown(wait=True)

    def _close_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()  # the last connection: checkpoints the WAL into the file

    def __enter__(self) -> SqliteBackend:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self._unsynced_writes} unsynced writes"
        return f"<SqliteBackend {str(self._path)!r}: {state}, {self.flushes} commits>"
