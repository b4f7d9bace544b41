"""Causal broadcast groups on node processes, beside the same traffic as plain tells.

And causal tracing on against off (tell rate, ask p50). Run with
``pytest benchmarks/test_causal.py --benchmark-enable -s`` (the
figures print at the end), or ``actorfw bench causal``. With benchmarks
disabled (the normal test run) it runs at a tiny scale, only to check that
it runs.
"""

from __future__ import annotations

from actorfw.bench import tracing
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


TRACING: list[tracing.TracingResult] = []


def test_tracing_on_against_off(benchmark) -> None:  # type: ignore[no-untyped-def]
    scale = "quick" if benchmark.disabled else "full"
    results: list[tracing.TracingResult] = []

    def run() -> None:
        results.extend(tracing.run_tracing(scale))

    benchmark.group = "causal tracing"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["results"] = [r.as_dict() for r in results]
    assert [r.case for r in results] == ["tell", "ask p50"]
    assert all(r.traced > 0 and r.untraced > 0 for r in results)
    TRACING.extend(results)


def teardown_module() -> None:
    if RESULTS:
        print("\n" + render(RESULTS))
    if TRACING:
        print("\n" + tracing.render(TRACING))
