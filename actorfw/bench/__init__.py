"""Benchmark workloads shared by ``benchmarks/`` (pytest-benchmark) and ``actorfw bench``.

Each workload is defined once here, as a :class:`Case` that builds the
callable to time for a given implementation, so the pytest-benchmark suite
and the command line measure exactly the same thing.
"""

from actorfw.bench.cases import Case, kernel_cases
from actorfw.bench.runner import Measurement, measure, render_table

__all__ = ["Case", "Measurement", "kernel_cases", "measure", "render_table"]
