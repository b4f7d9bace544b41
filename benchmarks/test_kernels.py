"""Kernels, compiled beside their pure-Python twins, in the same run.

Run with ``pytest benchmarks/test_kernels.py --benchmark-enable``; each group
holds one case on both implementations, timed as runs of ``inner`` calls
(the ``xN`` in the group name), and the summary gives the time per call and
the ratio. The same cases back ``actorfw bench kernels``.
"""

from __future__ import annotations

import pytest

from actorfw.bench import kernel_cases

from .conftest import kernel_modules, record

CASES = kernel_cases()


@pytest.mark.parametrize("implementation", ["compiled", "pure"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_kernel(benchmark, case, implementation: str) -> None:  # type: ignore[no-untyped-def]
    run = case.timed(kernel_modules(implementation)[case.kernel])
    benchmark.group = f"{case.name} x{case.inner}"
    benchmark.extra_info["calls_per_run"] = case.inner
    benchmark.extra_info["items_per_call"] = case.items
    benchmark(run)
    record(case, implementation, benchmark)
