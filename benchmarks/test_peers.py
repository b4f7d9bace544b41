"""actorfw beside the peers installed here (Thespian, Ray, Pykka, PySyncObj), in the same run.

Run with ``pytest benchmarks/test_peers.py --benchmark-enable -s`` (the
figures print at the end), or ``actorfw bench peers``. With benchmarks
disabled (the normal test run) it runs at a tiny scale, only to check that
it runs; a peer that is not installed is skipped with the reason.
"""

from __future__ import annotations

from actorfw.bench.peers import PeerResult, installed, render, run_peers

TABLES: list[str] = []


def test_peers(benchmark) -> None:  # type: ignore[no-untyped-def]
    scale = "quick" if benchmark.disabled else "full"
    found: list[tuple[list[PeerResult], dict[str, str]]] = []

    def run() -> None:
        found.append(run_peers(scale))

    benchmark.group = "peers"
    benchmark.pedantic(run, rounds=1, iterations=1)
    results, skipped = found[0]
    benchmark.extra_info["results"] = [r.as_dict() for r in results]
    benchmark.extra_info["skipped"] = skipped
    assert {r.peer for r in results} | set(skipped) == {"thespian", "ray", "pykka", "pysyncobj"}
    assert all(installed(peer) is False for peer in skipped)
    TABLES.append(render(results, skipped))


def teardown_module() -> None:
    for table in TABLES:
        print("\n" + table)
