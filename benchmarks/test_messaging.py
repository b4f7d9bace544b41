"""Messaging between node processes, beside raw pyzmq in the same run.

Run with ``pytest benchmarks/test_messaging.py --benchmark-enable -s``
(the figures print at the end), or ``actorfw bench messaging``. With
benchmarks disabled (the normal test run) each case runs at a tiny scale,
only to check that it runs.
"""

from __future__ import annotations

import pytest

from actorfw.bench import flow
from actorfw.bench.messaging import MessagingResult, render, run_messaging

RESULTS: list[MessagingResult] = []
FLOW: list[str] = []


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_messaging(benchmark, transport: str) -> None:  # type: ignore[no-untyped-def]
    scale = "quick" if benchmark.disabled else "full"
    results: list[MessagingResult] = []

    def run() -> None:
        results.extend(run_messaging(scale, (transport,)))

    benchmark.group = f"messaging ({transport})"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["results"] = [r.as_dict() for r in results]
    assert {r.case for r in results} >= {
        "tell",
        "fan-in 2:1",
        "ask p50",
        "numpy 1 KB",
        "tell 100 B",
    }
    RESULTS.extend(results)


def test_flow_control(benchmark) -> None:  # type: ignore[no-untyped-def]
    """A slow receiver flooded (memory, rate against capacity); credit on against off."""
    scale = "quick" if benchmark.disabled else "full"
    found: list[tuple[list[flow.SlowReceiverResult], list[flow.CreditResult]]] = []

    def run() -> None:
        found.append(flow.run_flow(scale))

    benchmark.group = "flow control"
    benchmark.pedantic(run, rounds=1, iterations=1)
    slow, credit = found[0]
    benchmark.extra_info["slow_receiver"] = [r.as_dict() for r in slow]
    benchmark.extra_info["credit"] = [r.as_dict() for r in credit]
    assert [r.credit for r in slow] == [True, False]
    assert all(r.handled > 0 and r.receiver_rss_mb > 0 for r in slow)
    assert [c.case for c in credit] == ["tell", "ask p50"]
    FLOW.append(flow.render(slow, credit))


def teardown_module() -> None:
    if RESULTS:
        print("\n" + render(RESULTS))
    for table in FLOW:
        print("\n" + table)
