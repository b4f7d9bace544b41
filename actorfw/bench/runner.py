"""A small timer for ``actorfw bench``: each case on every implementation, interleaved.

Implementations are timed in alternation, repeat after repeat, so that a
burst of load on a shared machine hits them alike; the figure kept for each
is the best repeat (as ``timeit`` advises: slower repeats measure the
machine, not the code). The ratio is the pure twin's time over the compiled
one's, so 20.0 means the compiled kernel is twenty times faster.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from types import ModuleType
from typing import Any

from actorfw.bench.cases import Case

__all__ = ["Measurement", "format_seconds", "measure", "render_table"]


@dataclasses.dataclass(frozen=True)
class Measurement:
    """The best time per call of one case, for each implementation measured."""

    case: Case
    seconds: dict[str, float]
    """Implementation name to seconds per call."""

    @property
    def ratio(self) -> float | None:
        """Pure time over compiled time, or None unless both were measured."""
        if "pure" in self.seconds and "compiled" in self.seconds:
            return self.seconds["pure"] / self.seconds["compiled"]
        return None

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data (times in nanoseconds)."""
        out: dict[str, Any] = {
            "operation": self.case.operation,
            "size": self.case.size,
            "items_per_call": self.case.items,
            "item": self.case.item,
        }
        for impl, seconds in self.seconds.items():
            out[f"{impl}_ns_per_call"] = seconds * 1e9
            out[f"{impl}_ns_per_{self.case.item}"] = seconds * 1e9 / self.case.items
        out["ratio_pure_over_compiled"] = self.ratio
        return out


def _run(run: Callable[[], None], number: int) -> float:
    start = time.perf_counter()
    for _ in repeat(None, number):
        run()
    return time.perf_counter() - start


def _calibrate(run: Callable[[], None], target: float) -> int:
    number = 1
    while True:
        if _run(run, number) >= target or number >= 1 << 30:
            return number
        number *= 2


def measure(
    cases: Iterable[Case],
    modules: dict[str, dict[str, ModuleType]],
    repeats: int = 5,
    seconds_per_repeat: float = 0.05,
    progress: Callable[[Case], None] | None = None,
) -> list[Measurement]:
    """Time every case on every implementation in ``modules``.

    Args:
        cases: the workloads.
        modules: implementation name to its kernel modules by kernel name,
            as :func:`actorfw.kernels.load` returns them.
        repeats: timed repeats per implementation; the best is kept.
        seconds_per_repeat: how long one repeat should run.
        progress: called with each case before it is measured.
    """
    results = []
    gc_was_enabled = gc.isenabled()
    for case in cases:
        if progress is not None:
            progress(case)
        runs = {impl: case.timed(mods[case.kernel]) for impl, mods in modules.items()}
        gc.collect()
        gc.disable()
        try:
            numbers = {impl: _calibrate(run, seconds_per_repeat) for impl, run in runs.items()}
            best = {impl: float("inf") for impl in runs}
            for _ in range(repeats):
                for impl, run in runs.items():
                    calls = numbers[impl] * case.inner
                    best[impl] = min(best[impl], _run(run, numbers[impl]) / calls)
        finally:
            if gc_was_enabled:
                gc.enable()
        results.append(Measurement(case, best))
    return results


def format_seconds(seconds: float) -> str:
    """A time with a unit that keeps three significant digits readable."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def render_table(measurements: Sequence[Measurement]) -> str:
    """A plain-text table: per call on each implementation, per item, and the ratio."""
    impls: list[str] = []
    for m in measurements:
        impls.extend(i for i in m.seconds if i not in impls)
    header = ["operation", "size"] + [f"{i} / call" for i in impls]
    header += ["compiled / item", "pure / compiled"]
    rows = [header]
    for m in measurements:
        row = [m.case.operation, m.case.size]
        row += [format_seconds(m.seconds[i]) if i in m.seconds else "-" for i in impls]
        if m.case.items > 1 and "compiled" in m.seconds:
            row.append(f"{format_seconds(m.seconds['compiled'] / m.case.items)} / {m.case.item}")
        else:
            row.append("")
        row.append(f"{m.ratio:.1f}x" if m.ratio is not None else "-")
        rows.append(row)
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(widths[c]) if c < 2 else cell.rjust(widths[c]) for c, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
