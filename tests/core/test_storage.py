"""The durable store's contract, on the in-memory backend the simulator uses."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from actorfw.core.storage import MemoryBackend


class FakeFuture:
    def __init__(self) -> None:
        self.result: object = "pending"

    def done(self) -> bool:
        return self.result != "pending"

    def set_result(self, value: object) -> None:
        self.result = value


class Clock:
    """Runs scheduled callbacks when told to, in order."""

    def __init__(self) -> None:
        self.queue: list[Callable[[], None]] = []

    def schedule(self, delay: float, callback: Callable[[], None]) -> None:
        self.queue.append(callback)

    def run(self) -> None:
        while self.queue:
            self.queue.pop(0)()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def backend(clock: Clock) -> MemoryBackend:
    return MemoryBackend(clock.schedule, lambda: 0.001, FakeFuture)


def test_writes_are_visible_at_once(backend: MemoryBackend) -> None:
    store = backend.namespace("a")
    store.put("k", b"v")
    assert store.get("k") == b"v"
    assert store.get(b"k") == b"v"
    store.delete("k")
    assert store.get("k") is None
    store.delete("never-there")


def test_namespaces_are_separate(backend: MemoryBackend) -> None:
    backend.namespace("a").put("k", b"1")
    assert backend.namespace("b").get("k") is None


def test_scan_returns_a_prefix_in_key_order(backend: MemoryBackend) -> None:
    store = backend.namespace("a")
    for key in ("p/2", "p/10", "q/1", "p/1", "o"):
        store.put(key, key.encode())
    assert [k for k, _ in store.scan("p/")] == [b"p/1", b"p/10", b"p/2"]
    assert len(store.scan()) == 5


def test_keys_and_values_are_checked(backend: MemoryBackend) -> None:
    store = backend.namespace("a")
    with pytest.raises(TypeError, match="storage key must be bytes or str"):
        store.put(3, b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="storage value must be bytes"):
        store.put("k", "text")  # type: ignore[arg-type]


def test_sync_completes_after_the_flush(backend: MemoryBackend, clock: Clock) -> None:
    store = backend.namespace("a")
    store.put("k", b"v")
    done: Any = store.sync()
    assert not done.done()
    clock.run()
    assert done.done()
    assert backend.durable_items("a") == {b"k": b"v"}


def test_pending_says_whether_a_namespace_has_writes_not_yet_durable(
    backend: MemoryBackend, clock: Clock
) -> None:
    a, b = backend.namespace("a"), backend.namespace("b")
    a.put("k", b"v")
    assert a.pending() and not b.pending()
    a.sync()
    assert a.pending()  # flushing is not durable yet
    clock.run()
    assert not a.pending()


def test_sync_with_nothing_written_completes_at_once(backend: MemoryBackend) -> None:
    assert backend.namespace("a").sync().done()  # type: ignore[attr-defined]


def test_many_syncs_share_flushes(backend: MemoryBackend, clock: Clock) -> None:
    store = backend.namespace("a")
    futures = []
    for i in range(10):
        store.put(f"k{i}", b"v")
        futures.append(store.sync())
    clock.run()
    assert all(f.done() for f in futures)
    assert backend.flushes == 2  # the first flush, then one for all that waited


def test_a_crash_keeps_synced_writes_and_loses_unsynced_ones(
    backend: MemoryBackend, clock: Clock
) -> None:
    store = backend.namespace("a")
    store.put("synced", b"1")
    store.sync()
    clock.run()
    store.put("unsynced", b"2")
    backend.crash()
    fresh = backend.namespace("a")
    assert fresh.get("synced") == b"1"
    assert fresh.get("unsynced") is None


def test_a_flush_in_progress_at_the_crash_is_lost(backend: MemoryBackend, clock: Clock) -> None:
    store = backend.namespace("a")
    store.put("k", b"v")
    done: Any = store.sync()
    backend.crash()
    clock.run()
    assert not done.done()
    assert backend.namespace("a").get("k") is None


@pytest.mark.parametrize("seed", range(20))
def test_adversarial_crashes_keep_a_prefix_of_unsynced_batches(
    backend: MemoryBackend, seed: int
) -> None:
    store = backend.namespace("a")
    for i in range(5):
        with store.batch() as batch:
            batch.put(f"x{i}", b"1")
            batch.put(f"y{i}", b"1")
    kept = backend.crash(random.Random(seed))
    fresh = backend.namespace("a")
    present = [fresh.get(f"x{i}") is not None for i in range(5)]
    assert present == [i < kept for i in range(5)]
    assert all((fresh.get(f"x{i}") is None) == (fresh.get(f"y{i}") is None) for i in range(5))


def test_a_batch_is_applied_only_when_its_block_succeeds(backend: MemoryBackend) -> None:
    store = backend.namespace("a")
    with pytest.raises(RuntimeError):
        with store.batch() as batch:
            batch.put("k", b"v")
            raise RuntimeError("abandon")
    assert store.get("k") is None
    with store.batch() as batch:
        batch.put("k", b"v")
        batch.delete("gone")
        assert store.get("k") is None  # not yet applied
    assert store.get("k") == b"v"


def test_views_from_before_a_crash_refuse_to_work(backend: MemoryBackend) -> None:
    store = backend.namespace("a")
    backend.crash()
    with pytest.raises(RuntimeError, match="crashed"):
        store.put("k", b"v")
