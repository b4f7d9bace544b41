"""Durable writes per second on the SQLite backend: group commit beside one commit per write.

Each case makes ``WRITES`` writes durable per round, split among concurrent
writers on one event loop; each writer repeats ``put`` then ``await
sync()``, the pattern of an actor that must not answer before its state is
durable. With many writers, syncs requested while a commit is in flight
share the next one (group commit).

The baseline, measured in the same run on the same disk, is the naive way:
plain :mod:`sqlite3` with the same durability settings (WAL,
``synchronous=FULL``) and the same table, one ``BEGIN ... COMMIT`` per
write. The ratio is what group commit buys (or, with one writer, what the
hand-over to the commit thread costs).

Run with ``pytest benchmarks/test_sqlite_storage.py --benchmark-enable -s``;
the ratios are printed at the end of the module.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from actorfw.node.storage import SqliteBackend

WRITES = 1024
"""Durable writes per round."""

VALUE = b"v" * 100
"""The value written (a small record)."""

WRITERS = (1, 16, 256)
"""Concurrent writers in the group-commit cases."""

RESULTS: dict[str, float] = {}  # case -> durable writes per second (median round)
COMMITS: dict[str, float] = {}  # case -> commits per round


def _group_commit(directory: Path, writers: int) -> Callable[[], None]:
    loop = asyncio.new_event_loop()
    backend = SqliteBackend(directory / f"group-{writers}.sqlite3", loop)
    rounds = 0

    def run() -> None:
        nonlocal rounds
        rounds += 1
        prefix = f"{rounds}/"

        async def writer(w: int) -> None:
            store = backend.namespace("bench")
            for i in range(WRITES // writers):
                store.put(f"{prefix}{w}/{i}", VALUE)
                await store.sync()

        async def main() -> None:
            await asyncio.gather(*(writer(w) for w in range(writers)))

        loop.run_until_complete(main())

    def close() -> None:
        try:
            backend.close()
        finally:
            loop.close()

    run.close = close  # type: ignore[attr-defined]
    run.commits = lambda: backend.flushes / max(rounds, 1)  # type: ignore[attr-defined]
    return run


def _naive(directory: Path) -> Callable[[], None]:
    conn = sqlite3.connect(directory / "naive.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE kv (namespace TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, "
        "PRIMARY KEY (namespace, key)) WITHOUT ROWID"
    )
    rounds = 0

    def run() -> None:
        nonlocal rounds
        rounds += 1
        for i in range(WRITES):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT OR REPLACE INTO kv VALUES (?, ?, ?)",
                ("bench", f"{rounds}/{i}".encode(), VALUE),
            )
            conn.execute("COMMIT")

    run.close = conn.close  # type: ignore[attr-defined]
    run.commits = lambda: float(WRITES)  # type: ignore[attr-defined]
    return run


CASES = {"naive": None, **{f"group-{n}": n for n in WRITERS}}


@pytest.mark.parametrize("case", list(CASES))
def test_durable_writes(benchmark, tmp_path: Path, case: str) -> None:  # type: ignore[no-untyped-def]
    writers = CASES[case]
    run = _naive(tmp_path) if writers is None else _group_commit(tmp_path, writers)
    try:
        benchmark.group = "sqlite storage: durable writes"
        benchmark.extra_info["writes"] = WRITES
        benchmark.extra_info["writers"] = writers or 1
        benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
        COMMITS[case] = run.commits()  # type: ignore[attr-defined]
        benchmark.extra_info["commits_per_round"] = COMMITS[case]
        if benchmark.stats is not None:
            RESULTS[case] = WRITES / benchmark.stats.stats.median
    finally:
        run.close()  # type: ignore[attr-defined]


def teardown_module() -> None:
    if "naive" not in RESULTS:
        return
    base = RESULTS["naive"]
    lines = [
        "",
        f"durable writes per second (median of 7 rounds of {WRITES} writes), "
        "and the ratio to one commit per write:",
        f"  {'naive (commit per write)':26} {base:>9,.0f}/s   commits/round {WRITES:>5}",
    ]
    for case, writers in CASES.items():
        if writers is not None and case in RESULTS:
            label = f"group commit, {writers} writer{'s' if writers > 1 else ''}"
            lines.append(
                f"  {label:26} {RESULTS[case]:>9,.0f}/s   "
                f"commits/round {COMMITS[case]:>5.0f}   ratio {RESULTS[case] / base:6.2f}"
            )
    print("\n".join(lines))
