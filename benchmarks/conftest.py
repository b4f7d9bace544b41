"""Benchmark fixtures, and a summary of pure-over-compiled ratios after the run.

pytest-benchmark groups each case's compiled and pure measurements in one
table; the summary below adds the ratio of their medians, the figure the
project reports.
"""

from __future__ import annotations

from collections import defaultdict
from types import ModuleType

import pytest

from actorfw import kernels
from actorfw.bench import Case
from actorfw.bench.runner import format_seconds

# case name -> implementation -> median seconds per call
RESULTS: dict[str, dict[str, float]] = defaultdict(dict)


def kernel_modules(implementation: str) -> dict[str, ModuleType]:
    """The kernel modules, or a skip when the build is absent on purpose (ACTORFW_PURE=1)."""
    try:
        return kernels.load(implementation)
    except ImportError as exc:
        if implementation == "compiled" and kernels.info().implementation == "pure":
            pytest.skip(f"compiled kernels are not built: {exc}")
        raise


def record(case: Case, implementation: str, benchmark: object) -> None:
    """Keep a finished benchmark's median time per call for the summary."""
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        RESULTS[case.name][implementation] = stats.stats.median / case.inner


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = [(name, r) for name, r in RESULTS.items() if {"compiled", "pure"} <= r.keys()]
    if not rows:
        return
    terminalreporter.section("time per call (median) and pure / compiled")
    width = max(len(name) for name, _ in rows)
    for name, r in rows:
        compiled, pure = r["compiled"], r["pure"]
        terminalreporter.write_line(
            f"{name.ljust(width)}  compiled {format_seconds(compiled):>9}  "
            f"pure {format_seconds(pure):>9}  {pure / compiled:6.1f}x"
        )
