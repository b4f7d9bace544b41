"""The durable store's contract, held on both backends, and the SQLite backend's own claims.

The contract tests (rules 1-4 of :mod:`actorfw.core.storage`) run over a
:class:`Harness` for each backend: the simulator's
:class:`~actorfw.core.storage.MemoryBackend` and the node runtime's
:class:`~actorfw.node.storage.SqliteBackend`, both on a real event loop the
test creates and closes. A harness can hold commits in flight (the memory
backend's flush callbacks are parked; the SQLite commit thread waits on a
``threading.Event``), so "not yet durable" is observed, never timed.

The SQLite tests after them cover opening, closing, errors, the settings
that make a commit durable, and a real crash: a child process SIGKILLed
while it writes.
"""

from __future__ import annotations

import asyncio
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

import pytest

from actorfw.core.storage import MemoryBackend, Storage, StorageBackend
from actorfw.node.storage import DEFAULT_FILENAME, SqliteBackend, StorageError

T = TypeVar("T")

DEADLINE = 10.0
"""Seconds any single wait in these tests may take before it counts as a hang."""


# -- harnesses ----------------------------------------------------------------------------------


class Harness:
    """A backend on a real event loop, with commits a test can hold in flight."""

    name = ""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    @property
    def backend(self) -> StorageBackend:
        raise NotImplementedError

    def store(self, namespace: str = "a") -> Storage:
        """The view of ``namespace`` on the current backend."""
        return self.backend.namespace(namespace)

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Await ``make()`` on the loop, failing after DEADLINE seconds."""

        async def main() -> T:
            return await make()

        return self.loop.run_until_complete(asyncio.wait_for(main(), DEADLINE))

    def hold_commits(self) -> None:
        """Commits started from now on stay in flight until :meth:`release_commits`."""
        raise NotImplementedError

    def wait_commit_started(self) -> None:
        """Return once a held commit has started."""
        raise NotImplementedError

    def release_commits(self) -> None:
        """Let held commits finish (and later ones run freely)."""
        raise NotImplementedError

    def restart(self) -> None:
        """Restart the node's storage; synced writes must survive."""
        raise NotImplementedError

    def flushes(self) -> int:
        """Commits completed so far (by the current backend)."""
        raise NotImplementedError

    def durable_items(self, namespace: str) -> dict[bytes, bytes]:
        """What is on stable storage in ``namespace``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release everything the harness holds."""


class MemoryHarness(Harness):
    name = "memory"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._held = False
        self._parked: list[Callable[[], None]] = []
        self.memory = MemoryBackend(self._schedule, lambda: 0.0, loop.create_future)

    @property
    def backend(self) -> StorageBackend:
        return self.memory

    def _schedule(self, delay: float, callback: Callable[[], None]) -> None:
        if self._held:
            self._parked.append(callback)
        else:
            self.loop.call_later(delay, callback)

    def hold_commits(self) -> None:
        self._held = True

    def wait_commit_started(self) -> None:
        assert self._parked, "no flush was started"

    def release_commits(self) -> None:
        self._held = False
        parked, self._parked = self._parked, []
        for callback in parked:
            self.loop.call_soon(callback)

    def restart(self) -> None:
        self.memory.crash()  # loses unsynced writes only

    def flushes(self) -> int:
        return self.memory.flushes

    def durable_items(self, namespace: str) -> dict[bytes, bytes]:
        return self.memory.durable_items(namespace)


class SqliteHarness(Harness):
    name = "sqlite"

    def __init__(self, loop: asyncio.AbstractEventLoop, directory: Path) -> None:
        super().__init__(loop)
        self.path = directory / "node" / DEFAULT_FILENAME
        self._go = threading.Event()
        self._go.set()
        self._started = threading.Event()
        self.sqlite = self._open()

    def _open(self) -> SqliteBackend:
        return SqliteBackend(self.path, self.loop, before_commit=self._before_commit)

    def _before_commit(self, keys: int) -> None:
        self._started.set()
        if not self._go.wait(DEADLINE):
            raise TimeoutError("the test held this commit for too long")

    @property
    def backend(self) -> StorageBackend:
        return self.sqlite

    def hold_commits(self) -> None:
        self._started.clear()
        self._go.clear()

    def wait_commit_started(self) -> None:
        self.run(turns)  # a commit starts at the end of the loop's turn
        assert self._started.wait(DEADLINE), "no commit started"

    def release_commits(self) -> None:
        self._go.set()

    def restart(self) -> None:
        self.sqlite.close()
        self.sqlite = self._open()

    def flushes(self) -> int:
        return self.sqlite.flushes

    def durable_items(self, namespace: str) -> dict[bytes, bytes]:
        return committed_items(self.path, namespace)

    def close(self) -> None:
        self._go.set()
        self.sqlite.close()


def committed_items(path: Path, namespace: str) -> dict[bytes, bytes]:
    """What another connection reads from the file: the committed state."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT key, value FROM kv WHERE namespace = ?", (namespace,))
        return dict(rows.fetchall())
    finally:
        conn.close()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop, closed after the test."""
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture(params=["memory", "sqlite"])
def h(
    request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> Iterator[Harness]:
    """Each backend, in a harness."""
    harness: Harness
    if request.param == "memory":
        harness = MemoryHarness(loop)
    else:
        harness = SqliteHarness(loop, tmp_path)
    try:
        yield harness
    finally:
        harness.close()


async def turns(n: int = 10) -> None:
    """Let the event loop run ``n`` rounds of ready callbacks."""
    for _ in range(n):
        await asyncio.sleep(0)


# -- the contract, on both backends ---------------------------------------------------------------


def test_writes_are_visible_at_once(h: Harness) -> None:
    store = h.store()
    store.put("k", b"v")
    assert store.get("k") == b"v"
    assert store.get(b"k") == b"v"
    store.put("k", b"w")
    assert store.get("k") == b"w"
    store.delete("k")
    assert store.get("k") is None
    store.delete("never-there")


def test_synced_writes_read_back_the_same(h: Harness) -> None:
    store = h.store()
    store.put("k", b"v")
    store.put("empty", b"")
    h.run(store.sync)
    assert store.get("k") == b"v"
    assert store.get("empty") == b""
    store.delete("k")
    assert store.get("k") is None  # a pending delete hides the committed value
    h.run(store.sync)
    assert store.get("k") is None


def test_namespaces_are_separate(h: Harness) -> None:
    h.store("a").put("k", b"1")
    h.store("b").put("k", b"2")
    h.run(h.store("a").sync)
    h.store("c").put("k", b"3")
    assert h.store("a").get("k") == b"1"
    assert h.store("b").get("k") == b"2"
    assert h.store("c").scan() == [(b"k", b"3")]
    assert h.store("d").get("k") is None
    assert h.store("d").scan() == []


def test_scan_returns_a_prefix_in_key_order(h: Harness) -> None:
    store = h.store()
    for key in ("p/2", "p/10", "o"):
        store.put(key, key.encode())
    h.run(store.sync)
    for key in ("q/1", "p/1", "p/3"):
        store.put(key, key.encode())
    store.delete("p/2")
    assert [k for k, _ in store.scan("p/")] == [b"p/1", b"p/10", b"p/3"]
    assert store.scan("p/1") == [(b"p/1", b"p/1"), (b"p/10", b"p/10")]
    assert [k for k, _ in store.scan()] == [b"o", b"p/1", b"p/10", b"p/3", b"q/1"]
    assert store.scan("z") == []


def test_scan_orders_binary_keys_bytewise(h: Harness) -> None:
    store = h.store()
    keys = [b"", b"\x00", b"\x00\x00", b"a", b"a\x00", b"a\xff", b"b", b"\xfe\xff", b"\xff"]
    keys += [b"\xff\x00", b"\xff\xff", b"\xff\xff\x01"]
    for i, key in enumerate(reversed(keys)):
        store.put(key, bytes([i]))
        if i % 2:
            h.run(store.sync)  # half committed, half pending
    assert [k for k, _ in store.scan()] == keys
    assert [k for k, _ in store.scan(b"\xff")] == [
        b"\xff",
        b"\xff\x00",
        b"\xff\xff",
        b"\xff\xff\x01",
    ]
    assert [k for k, _ in store.scan(b"\xff\xff")] == [b"\xff\xff", b"\xff\xff\x01"]
    assert [k for k, _ in store.scan(b"a")] == [b"a", b"a\x00", b"a\xff"]
    assert [k for k, _ in store.scan(b"\x00")] == [b"\x00", b"\x00\x00"]


def test_keys_and_values_are_checked(h: Harness) -> None:
    store = h.store()
    with pytest.raises(TypeError, match="storage key must be bytes or str"):
        store.put(3, b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="storage value must be bytes"):
        store.put("k", "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="storage key must be bytes or str"):
        store.get(3.0)  # type: ignore[arg-type]
    assert store.scan() == []


def test_a_batch_is_applied_only_when_its_block_succeeds(h: Harness) -> None:
    store = h.store()
    with pytest.raises(RuntimeError):
        with store.batch() as batch:
            batch.put("k", b"v")
            raise RuntimeError("abandon")
    assert store.get("k") is None
    store.put("gone", b"1")
    with store.batch() as batch:
        batch.put("k", b"v")
        batch.put("k2", b"v2")
        batch.delete("gone")
        assert store.get("k") is None  # not yet applied
        assert store.get("gone") == b"1"
    assert (store.get("k"), store.get("k2"), store.get("gone")) == (b"v", b"v2", None)


def test_a_synced_batch_is_durable_as_a_whole(h: Harness) -> None:
    store = h.store()
    store.put("old", b"1")
    with store.batch() as batch:
        batch.put("x", b"1")
        batch.put("y", b"2")
        batch.delete("old")
    h.run(store.sync)
    assert h.durable_items("a") == {b"x": b"1", b"y": b"2"}


def test_sync_completes_only_after_the_commit(h: Harness) -> None:
    store = h.store()
    h.hold_commits()
    store.put("k", b"v")
    done = asyncio.ensure_future(store.sync(), loop=h.loop)
    h.wait_commit_started()
    h.run(turns)
    assert not done.done()
    assert h.durable_items("a") == {}
    h.release_commits()
    h.run(lambda: done)
    assert h.durable_items("a") == {b"k": b"v"}


def test_reads_see_writes_while_their_commit_is_in_flight(h: Harness) -> None:
    store = h.store()
    store.put("gone", b"0")
    h.run(store.sync)
    h.hold_commits()
    store.put("a", b"1")
    store.delete("gone")
    done = asyncio.ensure_future(store.sync(), loop=h.loop)
    h.wait_commit_started()
    store.put("a", b"2")  # unsynced, over the commit in flight
    store.put("b", b"3")
    expected = [(b"a", b"2"), (b"b", b"3")]
    assert store.scan() == expected
    assert (store.get("a"), store.get("gone")) == (b"2", None)
    h.release_commits()
    h.run(lambda: done)
    assert store.scan() == expected
    h.run(store.sync)
    assert store.scan() == expected
    assert h.durable_items("a") == dict(expected)


def test_sync_with_nothing_written_completes_at_once(h: Harness) -> None:
    store = h.store()
    assert asyncio.ensure_future(store.sync(), loop=h.loop).done()
    store.put("k", b"v")
    h.run(store.sync)
    assert asyncio.ensure_future(store.sync(), loop=h.loop).done()


def test_syncs_during_a_commit_share_the_next_one(h: Harness) -> None:
    store = h.store()
    h.hold_commits()
    store.put("k0", b"v")
    futures = [asyncio.ensure_future(store.sync(), loop=h.loop)]
    h.wait_commit_started()
    for i in range(1, 10):
        store.put(f"k{i}", b"v")
        futures.append(asyncio.ensure_future(store.sync(), loop=h.loop))
    h.release_commits()
    h.run(lambda: asyncio.gather(*futures))
    assert h.flushes() == 2  # the first commit, then one for all that waited
    assert len(h.durable_items("a")) == 10


def test_a_thousand_concurrent_writers_share_a_few_commits(h: Harness) -> None:
    async def writer(i: int) -> None:
        store = h.store(f"w{i % 7}")
        store.put(f"k{i}", str(i).encode())
        await store.sync()

    async def main() -> None:
        await asyncio.gather(*(writer(i) for i in range(1000)))

    h.run(main)
    assert h.flushes() <= 3  # two in practice: the first writer's, then everyone else's
    durable = sum(len(h.durable_items(f"w{n}")) for n in range(7))
    assert durable == 1000


def test_the_event_loop_runs_while_a_commit_is_in_flight(h: Harness) -> None:
    store = h.store()
    h.hold_commits()
    with store.batch() as batch:
        for i in range(5000):
            batch.put(f"k{i:05d}", b"x" * 100)
    done = asyncio.ensure_future(store.sync(), loop=h.loop)  # returns without waiting
    h.wait_commit_started()
    ran: list[bool] = []
    h.loop.call_soon(ran.append, True)
    h.run(turns)
    assert ran == [True]
    assert not done.done()
    h.release_commits()
    h.run(lambda: done)
    assert len(h.durable_items("a")) == 5000


def test_a_restart_keeps_every_synced_write(h: Harness) -> None:
    store = h.store()
    store.put("a", b"1")
    store.put("b", b"2")
    store.put("c", b"3")
    h.run(store.sync)
    store.delete("b")
    store.put("c", b"4")
    h.run(store.sync)
    h.restart()
    assert h.store().scan() == [(b"a", b"1"), (b"c", b"4")]


@pytest.mark.parametrize("seed", range(4))
def test_random_operations_agree_with_a_dict(h: Harness, seed: int) -> None:
    rng = random.Random(seed)
    keys = [b"", b"\x00", b"a", b"a\x00", b"a\xff", b"ab", b"b", b"\xff", b"\xff\xff", b"\xff\x01"]
    prefixes = [b"", b"a", b"\xff", b"a\xff", b"c"]
    namespaces = ["x", "y"]
    model: dict[str, dict[bytes, bytes]] = {ns: {} for ns in namespaces}

    def check() -> None:
        for ns in namespaces:
            store = h.store(ns)
            for prefix in prefixes:
                expected = sorted((k, v) for k, v in model[ns].items() if k.startswith(prefix))
                assert store.scan(prefix) == expected
            for key in keys:
                assert store.get(key) == model[ns].get(key)

    async def main() -> None:
        pending: list[asyncio.Future[None]] = []
        for step in range(300):
            ns = rng.choice(namespaces)
            store = h.store(ns)
            roll = rng.random()
            if roll < 0.4:
                key, value = rng.choice(keys), rng.randbytes(rng.randint(0, 4))
                store.put(key, value)
                model[ns][key] = value
            elif roll < 0.55:
                key = rng.choice(keys)
                store.delete(key)
                model[ns].pop(key, None)
            elif roll < 0.7:
                with store.batch() as batch:
                    for _ in range(rng.randint(1, 4)):
                        key = rng.choice(keys)
                        if rng.random() < 0.7:
                            value = rng.randbytes(rng.randint(0, 4))
                            batch.put(key, value)
                            model[ns][key] = value
                        else:
                            batch.delete(key)
                            model[ns].pop(key, None)
            elif roll < 0.8:
                await store.sync()
            elif roll < 0.9:
                pending.append(asyncio.ensure_future(store.sync()))
            elif roll < 0.95:
                await turns(rng.randint(1, 3))
            else:
                await asyncio.gather(*pending)
                pending.clear()
                await store.sync()
                h.restart()
            if step % 10 == 0:
                check()
        await asyncio.gather(*pending)

    h.run(main)
    check()
    h.run(h.store().sync)
    for ns in namespaces:
        assert h.durable_items(ns) == model[ns]


# -- the SQLite backend ---------------------------------------------------------------------------


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where a test's database goes."""
    return tmp_path / "data" / DEFAULT_FILENAME


def test_pending_says_whether_a_namespace_has_writes_not_yet_durable(
    loop: asyncio.AbstractEventLoop, path: Path
) -> None:
    with SqliteBackend(path, loop) as backend:
        a, b = backend.namespace("a"), backend.namespace("b")
        a.put("k", b"v")
        assert a.pending() and not b.pending()
        loop.run_until_complete(asyncio.wait_for(a.sync(), DEADLINE))
        assert not a.pending()


def test_close_commits_pending_writes(loop: asyncio.AbstractEventLoop, path: Path) -> None:
    backend = SqliteBackend(path, loop)
    backend.namespace("a").put("k", b"v")
    backend.close()
    assert committed_items(path, "a") == {b"k": b"v"}


def test_close_waits_for_the_commit_in_flight_and_completes_every_sync(
    loop: asyncio.AbstractEventLoop, path: Path
) -> None:
    go, started = threading.Event(), threading.Event()

    def hold(keys: int) -> None:
        started.set()
        go.wait(DEADLINE)

    backend = SqliteBackend(path, loop, before_commit=hold)
    try:
        store = backend.namespace("a")
        store.put("first", b"1")
        first = asyncio.ensure_future(store.sync(), loop=loop)
        loop.run_until_complete(turns())  # the commit starts at the end of the turn
        assert started.wait(DEADLINE)
        store.put("second", b"2")
        second = asyncio.ensure_future(store.sync(), loop=loop)
    finally:
        go.set()
        backend.close()
    assert first.done() and first.result() is None
    assert second.done() and second.result() is None
    assert backend.flushes == 2
    assert committed_items(path, "a") == {b"first": b"1", b"second": b"2"}


def test_close_is_safe_to_call_twice(loop: asyncio.AbstractEventLoop, path: Path) -> None:
    backend = SqliteBackend(path, loop)
    backend.close()
    backend.close()
    assert backend.closed


def test_a_closed_backend_refuses_to_work(loop: asyncio.AbstractEventLoop, path: Path) -> None:
    with SqliteBackend(path, loop) as backend:
        store = backend.namespace("a")
    for call in (lambda: store.put("k", b"v"), lambda: store.get("k"), store.scan, store.sync):
        with pytest.raises(RuntimeError, match="is closed; open a new SqliteBackend"):
            call()


def test_missing_directories_are_created(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / DEFAULT_FILENAME
    with SqliteBackend(path, loop) as backend:
        assert backend.path == path
    assert path.is_file()


def test_a_directory_is_refused_with_the_file_to_use(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    with pytest.raises(
        StorageError, match=f"is a directory; pass the database file.*{DEFAULT_FILENAME}"
    ):
        SqliteBackend(tmp_path, loop)


def test_a_file_that_is_not_sqlite_is_refused_by_name(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    path = tmp_path / "garbage.sqlite3"
    content = b"this is not a database, just some bytes\n" * 100
    path.write_bytes(content)
    with pytest.raises(StorageError, match=f"{path}.* is corrupted or not a SQLite database"):
        SqliteBackend(path, loop)
    assert path.read_bytes() == content


def test_another_programs_database_is_refused_untouched(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match=f"{path}.* is a SQLite database but not an actorfw"):
        SqliteBackend(path, loop)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()


def test_commits_use_wal_and_synchronous_full(loop: asyncio.AbstractEventLoop, path: Path) -> None:
    with SqliteBackend(path, loop) as backend:
        # White-box: the writing connection lives on the commit thread.
        def settings() -> tuple[str, int]:
            writer = backend._writer
            assert writer is not None
            mode = writer.execute("PRAGMA journal_mode").fetchone()[0]
            return mode, writer.execute("PRAGMA synchronous").fetchone()[0]

        assert backend._executor.submit(settings).result(DEADLINE) == ("wal", 2)  # 2: FULL


def test_a_failed_commit_fails_its_syncs_and_keeps_the_writes(
    loop: asyncio.AbstractEventLoop, path: Path
) -> None:
    failures = [sqlite3.OperationalError("disk I/O error")]

    def fail_once(keys: int) -> None:
        if failures:
            raise failures.pop()

    with SqliteBackend(path, loop, before_commit=fail_once) as backend:
        store = backend.namespace("a")
        store.put("k", b"v")
        with pytest.raises(StorageError, match=f"{path}.* failed: disk I/O error"):
            loop.run_until_complete(asyncio.wait_for(store.sync(), DEADLINE))
        assert store.get("k") == b"v"
        assert committed_items(path, "a") == {}
        loop.run_until_complete(asyncio.wait_for(store.sync(), DEADLINE))
        assert committed_items(path, "a") == {b"k": b"v"}
        assert backend.flushes == 1


def test_many_unsynced_writes_start_a_commit_by_themselves(
    loop: asyncio.AbstractEventLoop, path: Path
) -> None:
    with SqliteBackend(path, loop, max_unsynced=100) as backend:
        store = backend.namespace("a")
        for i in range(100):
            store.put(f"k{i}", b"v")
        assert backend.unsynced_writes == 0  # handed to a commit already
        # Nothing was written since that commit started: this sync joins it.
        loop.run_until_complete(asyncio.wait_for(store.sync(), DEADLINE))
        assert backend.flushes == 1
        assert len(committed_items(path, "a")) == 100


def test_the_backend_rejects_malformed_ops_before_applying_any(
    loop: asyncio.AbstractEventLoop, path: Path
) -> None:
    with SqliteBackend(path, loop) as backend:
        with pytest.raises(TypeError, match="backend key must be bytes, not str"):
            backend.apply([("a", b"ok", b"1"), ("a", "k", b"v")])  # type: ignore[list-item]
        with pytest.raises(TypeError, match="backend value must be bytes or None"):
            backend.apply([("a", b"k", bytearray(b"v"))])  # type: ignore[list-item]
        with pytest.raises(TypeError, match="namespace must be a str"):
            backend.apply([(b"a", b"k", b"v")])  # type: ignore[list-item]
        assert backend.get("a", b"ok") is None


# -- a real crash ---------------------------------------------------------------------------------

CHILD = Path(__file__).parent.parent / "support" / "sqlite_crash_child.py"
REPORTS = 5  # SYNCED lines to read before the kill


def _pump(stream: IO[bytes], lines: queue.Queue[bytes]) -> None:
    for line in iter(stream.readline, b""):
        lines.put(line)
    lines.put(b"")  # end of output


@pytest.mark.parametrize("attempt", range(3))
def test_a_killed_process_keeps_synced_writes_and_a_prefix_of_the_rest(
    tmp_path: Path, attempt: int
) -> None:
    path = tmp_path / "crash" / DEFAULT_FILENAME
    errors = tmp_path / "child-stderr.txt"
    with open(errors, "wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(path)], stdout=subprocess.PIPE, stderr=stderr
        )
    assert child.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()
    pump = threading.Thread(target=_pump, args=(child.stdout, lines), daemon=True)
    pump.start()
    synced = reports = 0
    try:
        deadline = time.monotonic() + 30.0
        while reports < REPORTS:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"the child reported {reports} syncs in 30 s: {errors.read_text()}")
            if not line:
                child.wait(DEADLINE)
                pytest.fail(f"the child exited ({child.returncode}): {errors.read_text()}")
            word, number = line.split()
            assert word == b"SYNCED"
            synced = max(synced, int(number))
            reports += 1
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(DEADLINE)
        pump.join(DEADLINE)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    loop = asyncio.new_event_loop()
    try:
        with SqliteBackend(path, loop) as backend:
            items = dict(backend.namespace("crash").scan())
    finally:
        loop.close()
    survived = {int(key[1:]) for key in items}
    for i in survived:
        value = str(i).encode()
        assert items.get(b"a%09d" % i) == value and items.get(b"b%09d" % i) == value, (
            f"batch {i} survived only in part"
        )
    assert survived == set(range(len(survived))), "the surviving batches are not a prefix"
    assert len(survived) >= synced, f"batches {len(survived)}..{synced - 1} were synced, then lost"
