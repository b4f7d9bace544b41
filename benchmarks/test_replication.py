"""Primary-backup (sync and async) beside Multi-Paxos: the KV store on the same node processes.

Run with ``pytest benchmarks/test_replication.py --benchmark-enable -s``
(the table prints at the end), or ``actorfw bench replication``. With
benchmarks disabled (the normal test run) one round runs at a tiny scale,
only to check that it runs and that its figures are sane. The figures and
ratios are in the case's ``extra_info``; pytest-benchmark's own time is that
of the whole case (clusters started included), not a figure to read.
"""

from __future__ import annotations

import math

from actorfw.bench.replication import SCALES, SCHEMES, compare, render, run_replication


def test_primary_backup_beside_paxos(benchmark) -> None:  # type: ignore[no-untyped-def]
    scale = "quick" if benchmark.disabled else "full"
    results: list = []
    benchmark.group = "replication schemes, 3 nodes, sqlite"
    benchmark.pedantic(lambda: results.extend(run_replication(scale)), rounds=1)
    comparison = compare(results)
    benchmark.extra_info.update(
        {"results": [r.as_dict() for r in results], "comparison": comparison.as_dict()}
    )
    assert [r.scheme for r in results] == list(SCHEMES) * SCALES[scale]["rounds"]
    for r in results:
        assert r.commands >= r.clients and 0 < r.p50_us <= r.p99_us
        assert r.failover_s is not None and r.failover_s > 0
    assert math.isfinite(comparison.rate_ratio) and comparison.rate_ratio > 0
    assert math.isfinite(comparison.p50_ratio) and comparison.p50_ratio > 0
    print("\n" + render(results))
