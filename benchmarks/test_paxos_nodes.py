"""The replicated KV store on node processes, beside a raw pyzmq round trip in the same run.

Run with ``pytest benchmarks/test_paxos_nodes.py --benchmark-enable -s``
(the table prints at the end), or ``actorfw bench paxos``. With benchmarks
disabled (the normal test run) each configuration runs at a tiny scale, only
to check that it runs and that its figures are sane. The figures and ratios
are in each case's ``extra_info``; pytest-benchmark's own time is that of the
whole case (cluster start included), not a figure to read.
"""

from __future__ import annotations

import math

import pytest

from actorfw.bench.paxos import SCALES, PaxosResult, measure_configuration, render

RESULTS: list[PaxosResult] = []


@pytest.mark.parametrize("batch", [1, 64], ids=lambda b: f"batch-{b}")
@pytest.mark.parametrize("storage", ["sqlite", "memory"])
@pytest.mark.parametrize("nodes", [3, 5], ids=lambda n: f"{n}-nodes")
def test_replicated_kv(benchmark, nodes: int, storage: str, batch: int) -> None:  # type: ignore[no-untyped-def]
    scale = "quick" if benchmark.disabled else "full"
    results: list[PaxosResult] = []

    def run() -> None:
        results.append(measure_configuration(nodes, storage, batch, scale))

    benchmark.group = f"replicated KV ({nodes} nodes, {storage})"
    benchmark.pedantic(run, rounds=1, iterations=1)
    (result,) = results
    benchmark.extra_info.update(result.as_dict())
    assert (result.nodes, result.storage, result.batch) == (nodes, storage, batch)
    assert result.commands >= result.clients  # each client answered at least once
    assert result.latency_commands == SCALES[scale]["latency"]
    assert 0 < result.p50_us <= result.p99_us
    assert 0 < result.raw_p50_us <= result.raw_p99_us
    assert math.isfinite(result.p50_over_raw) and result.p50_over_raw > 0
    RESULTS.append(result)


def teardown_module() -> None:
    if RESULTS:
        print("\n" + render(RESULTS))
