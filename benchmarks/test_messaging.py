"""Messaging between node processes, beside raw pyzmq in the same run.

Run with ``pytest benchmarks/test_messaging.py --benchmark-enable -s``
(the figures print at the end), or ``actorfw bench messaging``. With
benchmarks disabled (the normal test run) each case runs at a tiny scale,
only to check that it runs.
"""

from __future__ import annotations

import pytest

from actorfw.bench.messaging import MessagingResult, render, run_messaging

RESULTS: list[MessagingResult] = []


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_messaging(benchmark, transport: str) -> None:  # type: ignore[no-untyped-def]
    scale = "quick" if benchmark.disabled else "full"
    results: list[MessagingResult] = []

    def run() -> None:
        results.extend(run_messaging(scale, (transport,)))

    benchmark.group = f"messaging ({transport})"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["results"] = [r.as_dict() for r in results]
    assert {r.case for r in results} >= {"tell", "fan-in 2:1", "ask p50", "numpy 1 KB"}
    RESULTS.extend(results)


def teardown_module() -> None:
    if RESULTS:
        print("\n" + render(RESULTS))
