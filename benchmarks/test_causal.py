"""Causal broadcast groups on node processes, beside the same traffic as plain tells.

Run with ``pytest benchmarks/test_causal.py --benchmark-enable -s`` (the
figures print at the end), or ``actorfw bench causal``. With benchmarks
disabled (the normal test run) it runs at a tiny scale, only to check that
it runs.
"""

from __future__ import annotations

from actorfw.bench.causal import CausalResult, render, run_causal

RESULTS: list[CausalResult] = []


def test_causal_broadcast(benchmark) -> None:  # type: ignore[no-untyped-def]
    scale = "quick" if benchmark.disabled else "full"
    results: list[CausalResult] = []

    def run() -> None:
        results.extend(run_causal(scale))

    benchmark.group = "causal broadcast"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["results"] = [r.as_dict() for r in results]
    assert {r.kernels for r in results} == {"compiled", "pure"}
    assert all(r.causal > 0 and r.tells > 0 for r in results)
    RESULTS.extend(results)


def teardown_module() -> None:
    if RESULTS:
        print("\n" + render(RESULTS))
