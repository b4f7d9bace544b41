"""The linearizability checker on histories of a simulated linearizable store.

Run with ``pytest benchmarks/test_check.py --benchmark-enable``. Each case
builds its history once (not timed) and times whole ``check`` calls, a few
rounds of one call each, as a check of 10,000 operations takes from tens of
milliseconds to seconds. The normal test run (``--benchmark-disable``)
checks each case once and asserts only the verdict.

``test_check_kernel`` times the cases of ``actorfw bench check`` (its
quick ones; ``ACTORFW_CHECK_BENCH=full`` for the large ones) on the
compiled search kernel and on its pure twin, the time to the verdict and,
for a planted violation, to the minimized witness; the summary gives the
ratio.
"""

from __future__ import annotations

import functools
import os
import random

import pytest

from actorfw.bench.check import CheckCase, check_cases
from actorfw.check import History, KeyValue, Verdict, check
from tests.protocols.test_check_store import Workload, simulate_kv_store, with_stale_read

from .conftest import RESULTS, kernel_modules

ROUNDS = 5

CASES = {
    # The headline: 10,000 operations, 50 keys, 8 clients, 1% failed, 1% unknown.
    "10k-ops-50-keys-8-clients": Workload(
        operations=10_000, keys=50, clients=8, p_fail=0.01, p_info=0.01
    ),
    # More contention per key: 10 clients on 5 keys.
    "10k-ops-5-keys-10-clients": Workload(
        operations=10_000, keys=5, clients=10, p_fail=0.01, p_info=0.01
    ),
    # The worst of these for the search: every operation on one key, so one
    # partition of 10,000 and ~100 unknown outcomes in flight to its end.
    "10k-ops-1-key-10-clients": Workload(
        operations=10_000, keys=1, clients=10, p_fail=0.01, p_info=0.01
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_check_linearizable_history(benchmark, name: str) -> None:  # type: ignore[no-untyped-def]
    history = simulate_kv_store(1, CASES[name])
    benchmark.group = "check"
    benchmark.extra_info["operations"] = len(history)
    result = benchmark.pedantic(check, args=(history, KeyValue()), rounds=ROUNDS, iterations=1)
    assert result.verdict is Verdict.OK


def stale_history() -> History:
    found = with_stale_read(
        simulate_kv_store(1, CASES["10k-ops-50-keys-8-clients"]), random.Random(1)
    )
    assert found is not None
    return found[0]


def test_check_and_minimize_one_stale_read(benchmark) -> None:  # type: ignore[no-untyped-def]
    history = stale_history()
    benchmark.group = "check"
    benchmark.extra_info["operations"] = len(history)
    result = benchmark.pedantic(check, args=(history, KeyValue()), rounds=ROUNDS, iterations=1)
    assert result.verdict is Verdict.VIOLATION and result.minimized


KERNEL_CASES = check_cases(os.environ.get("ACTORFW_CHECK_BENCH", "quick"))
FIGURES = [
    (case, figure)
    for case in KERNEL_CASES
    for figure in (("verdict", "witness") if case.violation else ("verdict",))
]


@functools.cache
def kernel_history(case: CheckCase) -> History:
    return case.history()


@pytest.mark.parametrize("implementation", ["compiled", "pure"])
@pytest.mark.parametrize(
    ("case", "figure"), FIGURES, ids=[f"{case.name}-{figure}" for case, figure in FIGURES]
)
def test_check_kernel(benchmark, case: CheckCase, figure: str, implementation: str) -> None:  # type: ignore[no-untyped-def]
    kernel = kernel_modules(implementation)["search"]
    history = kernel_history(case)
    benchmark.group = f"check {case.name} to {figure}"
    benchmark.extra_info["operations"] = len(history)
    result = benchmark.pedantic(
        check,
        args=(history, KeyValue()),
        kwargs={"minimize": figure == "witness", "kernel": kernel},
        rounds=3,
        iterations=1,
    )
    assert result.verdict is (Verdict.VIOLATION if case.violation else Verdict.OK)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        RESULTS[f"check {case.name} to {figure}"][implementation] = stats.stats.median
