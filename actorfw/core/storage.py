"""Durable storage in the context: a small key-value store per actor.

An actor reaches its store as ``self.context.storage``: ``get``, ``put``,
``delete``, ``scan`` by key prefix, an atomic ``batch``, and ``await
sync()``. Keys are ``bytes`` (a ``str`` is taken as its UTF-8), values
``bytes``, and keys scan in byte order. Each actor has its own namespace,
kept under its name on its node, so it outlives restarts of the actor and
of the node.

Durability contract:

1. A write is visible to reads at once, but durable only once a ``sync()``
   begun after it has completed. ``await storage.sync()`` returns when
   every write made before the call is on stable storage.
2. A crash keeps every synced write and may lose any unsynced one. Writes
   are lost in order: if an unsynced write survives, so do the writes made
   before it.
3. A :meth:`Storage.batch` is atomic: after a crash, all of it or none.
4. Syncs are group-committed: many writers, one flush.

Runtimes provide a :class:`StorageBackend` for the whole node; the
simulator's keeps everything in memory and models crashes by these rules
(:class:`MemoryBackend`), the node runtime's is an embedded database.
"""

from __future__ import annotations

import abc
import bisect
import random
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Key", "MemoryBackend", "Storage", "StorageBackend", "WriteBatch"]

Key = bytes | str
Op = tuple[str, bytes, bytes | None]  # (namespace, key, value or None to delete)


def _key(key: Key) -> bytes:
    if type(key) is bytes:
        return key
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, (bytearray, memoryview)):
        return bytes(key)
    raise TypeError(f"a storage key must be bytes or str, not {type(key).__name__}")


def _value(value: Any) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(
        f"a storage value must be bytes, not {type(value).__name__}; encode it first "
        "(e.g. with orjson.dumps or actorfw.values.codec.encode)"
    )


class StorageBackend(abc.ABC):
    """A node's durable key-value store, shared by its actors' namespaces."""

    epoch: int = 0
    """Bumped by a crash: views made before it refuse to work."""

    @abc.abstractmethod
    def get(self, namespace: str, key: bytes) -> bytes | None:
        """The value of ``key`` in ``namespace``, or None."""

    @abc.abstractmethod
    def scan(self, namespace: str, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """The pairs of ``namespace`` whose key starts with ``prefix``, in key order."""

    @abc.abstractmethod
    def apply(self, ops: list[Op]) -> None:
        """Apply writes atomically (rule 3): each ``(namespace, key, value)``, None deletes."""

    @abc.abstractmethod
    def sync(self) -> Awaitable[None]:
        """An awaitable that completes once every write applied so far is durable."""

    @abc.abstractmethod
    def pending(self, namespace: str) -> bool:
        """Is a write to ``namespace`` applied but not yet durable?"""

    def namespace(self, name: str) -> Storage:
        """The view of one actor's namespace."""
        return Storage(self, name)


class Storage:
    """One actor's durable key-value store (see the module contract)."""

    __slots__ = ("_backend", "_epoch", "_ns")

    def __init__(self, backend: StorageBackend, namespace: str) -> None:
        self._backend = backend
        self._ns = namespace
        self._epoch = backend.epoch

    def _live(self) -> StorageBackend:
        if self._backend.epoch != self._epoch:
            raise RuntimeError(
                f"storage of {self._ns!r} belongs to a node incarnation that crashed"
            )
        return self._backend

    def get(self, key: Key) -> bytes | None:
        """The value stored under ``key``, or None."""
        return self._live().get(self._ns, _key(key))

    def put(self, key: Key, value: bytes) -> None:
        """Store ``value`` under ``key`` (durable after the next ``sync``)."""
        self._live().apply([(self._ns, _key(key), _value(value))])

    def delete(self, key: Key) -> None:
        """Remove ``key`` (a no-op if absent)."""
        self._live().apply([(self._ns, _key(key), None)])

    def scan(self, prefix: Key = b"") -> list[tuple[bytes, bytes]]:
        """The ``(key, value)`` pairs whose key starts with ``prefix``, in key order."""
        return self._live().scan(self._ns, _key(prefix))

    def batch(self) -> WriteBatch:
        """An atomic batch of writes, applied when its ``with`` block exits cleanly."""
        return WriteBatch(self)

    def sync(self) -> Awaitable[None]:
        """Await to make every write so far durable."""
        return self._live().sync()

    def pending(self) -> bool:
        """Is a write of this namespace not yet durable (an earlier instance's, say)?"""
        return self._live().pending(self._ns)


class WriteBatch:
    """Writes applied together, atomically, when the ``with`` block ends without error.

    Reads inside the block do not see the batch's own writes.
    """

    __slots__ = ("_ops", "_storage")

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._ops: list[Op] = []

    def put(self, key: Key, value: bytes) -> None:
        """Add a put to the batch."""
        self._ops.append((self._storage._ns, _key(key), _value(value)))

    def delete(self, key: Key) -> None:
        """Add a delete to the batch."""
        self._ops.append((self._storage._ns, _key(key), None))

    def __enter__(self) -> WriteBatch:
        return self

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        if kind is None and self._ops:
            self._storage._live().apply(self._ops)
        self._ops = []


class MemoryBackend(StorageBackend):
    """An in-memory backend that models crashes honestly (the simulator's).

    Args:
        schedule: ``schedule(delay, callback)`` runs ``callback`` after
            ``delay`` seconds of the runtime's time.
        latency: returns the duration of one flush to stable storage.
        make_future: creates the future a ``sync()`` returns.
    """

    def __init__(
        self,
        schedule: Callable[[float, Callable[[], None]], object],
        latency: Callable[[], float],
        make_future: Callable[[], Any],
    ) -> None:
        self._schedule = schedule
        self._latency = latency
        self._make_future = make_future
        self._durable: dict[str, dict[bytes, bytes]] = {}
        self._current: dict[str, dict[bytes, bytes]] = {}
        self._unsynced: list[list[Op]] = []
        self._flushing: list[list[Op]] | None = None
        self._waiting_flush: list[Any] = []  # futures resolved by the flush in progress
        self._waiting_next: list[Any] = []  # futures that need the next flush
        self.flushes = 0
        """How many flushes completed (group commit: fewer than syncs)."""

    def get(self, namespace: str, key: bytes) -> bytes | None:
        return self._current.get(namespace, {}).get(key)

    def scan(self, namespace: str, prefix: bytes) -> list[tuple[bytes, bytes]]:
        items = self._current.get(namespace, {})
        keys = sorted(items)
        start = bisect.bisect_left(keys, prefix)
        out = []
        for k in keys[start:]:
            if not k.startswith(prefix):
                break
            out.append((k, items[k]))
        return out

    @staticmethod
    def _apply_to(store: dict[str, dict[bytes, bytes]], ops: list[Op]) -> None:
        for ns, key, value in ops:
            if value is None:
                space = store.get(ns)
                if space is not None:
                    space.pop(key, None)
            else:
                store.setdefault(ns, {})[key] = value

    def apply(self, ops: list[Op]) -> None:
        ops = list(ops)
        self._apply_to(self._current, ops)
        self._unsynced.append(ops)

    def sync(self) -> Awaitable[None]:
        future = self._make_future()
        if self._flushing is None and not self._unsynced:
            future.set_result(None)  # nothing written since the last flush
        elif self._flushing is None:
            self._waiting_flush.append(future)
            self._start_flush()
        else:
            self._waiting_next.append(future)
        return future  # type: ignore[no-any-return]

    def _start_flush(self) -> None:
        self._flushing = self._unsynced
        self._unsynced = []
        epoch = self.epoch
        self._schedule(self._latency(), lambda: self._finish_flush(epoch))

    def _finish_flush(self, epoch: int) -> None:
        if epoch != self.epoch or self._flushing is None:
            return  # the node crashed meanwhile; this flush never completed
        for ops in self._flushing:
            self._apply_to(self._durable, ops)
        self._flushing = None
        self.flushes += 1
        done, self._waiting_flush = self._waiting_flush, []
        for future in done:
            if not future.done():
                future.set_result(None)
        if self._waiting_next:
            self._waiting_flush, self._waiting_next = self._waiting_next, []
            self._start_flush()

    def pending(self, namespace: str) -> bool:
        """Is a write to ``namespace`` applied but not yet durable?"""
        batches = (self._flushing or []) + self._unsynced
        return any(ns == namespace for ops in batches for ns, _, _ in ops)

    @property
    def unsynced_batches(self) -> int:
        """Batches written but not yet durable (including a flush in progress)."""
        return len(self._unsynced) + len(self._flushing or [])

    def crash(self, rng: random.Random | None = None) -> int:
        """Lose what a crash may lose; returns how many unsynced batches survived.

        With ``rng`` None every unsynced write is lost. With an ``rng``, a
        random prefix of them survives (rule 2): the adversarial model, for
        protocols that must not rely on unsynced writes either way.
        """
        pending = (self._flushing or []) + self._unsynced
        survivors = rng.randint(0, len(pending)) if rng is not None and pending else 0
        for ops in pending[:survivors]:
            self._apply_to(self._durable, ops)
        self._current = {ns: dict(space) for ns, space in self._durable.items()}
        self._unsynced = []
        self._flushing = None
        self._waiting_flush = []
        self._waiting_next = []
        self.epoch += 1
        return survivors

    def durable_items(self, namespace: str) -> dict[bytes, bytes]:
        """A copy of what is durable in ``namespace`` (for tests and inspection)."""
        return dict(self._durable.get(namespace, {}))
