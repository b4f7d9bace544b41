"""Causal tracing on versus off: the same messaging cases on two clusters, in the same run.

Two 2-node clusters run side by side, one with ``NodeConfig.trace_dir`` set
(every message between the nodes stamped with a clock, every send and
receive recorded) and one without; each round measures both, back to back,
alternating which goes first. Cases: one-way tells between actors (messages
per second, the median of the rounds) and sequential asks (round trip p50).
The ratio is traced over untraced: for tells, above 1 is faster; for asks,
how many times slower.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
from collections.abc import Callable
from typing import Any

from actorfw.bench.actors import Blast, Expect, Pinger, PingRun, Ponger, Sink, Source
from actorfw.bench.messaging import _interleaved, _percentile, _timed
from actorfw.core.engine import NodeConfig

__all__ = ["SCALES", "TracingResult", "ask_run", "render", "run_tracing", "tell_run"]

SCALES: dict[str, dict[str, Any]] = {
    "full": {"rounds": 3, "tells": 100_000, "asks": 1_000},
    "quick": {"rounds": 1, "tells": 1_000, "asks": 50},
}
"""``rounds`` of each case; per round, ``tells`` messages and ``asks`` round trips."""

APP = "actorfw.bench.actors"
"""The app module both clusters load (the benchmark's actors)."""


@dataclasses.dataclass(frozen=True)
class TracingResult:
    """One figure with tracing on, beside the same with tracing off in the same run."""

    case: str
    unit: str
    traced: float
    untraced: float

    @property
    def ratio(self) -> float:
        """traced / untraced."""
        return self.traced / self.untraced if self.untraced else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**dataclasses.asdict(self), "ratio": self.ratio}


def run_tracing(
    scale: str = "full", progress: Callable[[str], None] | None = None
) -> list[TracingResult]:
    """Measure tells and asks with tracing on and off; the figures."""
    from actorfw.node import ActorSystem

    settings = SCALES[scale]
    rounds, tells, asks = settings["rounds"], settings["tells"], settings["asks"]
    with tempfile.TemporaryDirectory(prefix="actorfw-trace-bench-") as directory:
        traced_config = NodeConfig(trace_dir=directory)
        with (
            ActorSystem(nodes=2, apps=[APP], node_config=traced_config) as traced,
            ActorSystem(nodes=2, apps=[APP]) as plain,
        ):
            tell_runs = [tell_run(system, tells) for system in (traced, plain)]
            ask_runs = [ask_run(system, asks) for system in (traced, plain)]
            if progress is not None:
                progress("tells, tracing on and off")
            on, off = _interleaved(rounds, *tell_runs)
            results = [
                TracingResult("tell", "msgs/s", statistics.median(on), statistics.median(off))
            ]
            if progress is not None:
                progress("asks, tracing on and off")
            on_times, off_times = _interleaved(rounds, *ask_runs)
            mine = [t for times in on_times for t in times]
            base = [t for times in off_times for t in times]
            results.append(
                TracingResult(
                    "ask p50", "µs", _percentile(mine, 0.5) * 1e6, _percentile(base, 0.5) * 1e6
                )
            )
    return results


def tell_run(system: Any, count: int) -> Callable[[], float]:
    """One round of ``count`` tells from n1 to n2 of ``system``, as a rate (for interleaving)."""
    sink = system.spawn("n2", Sink, name="sink")
    source = system.spawn("n1", Source, name="source")
    done = [0]

    def run() -> float:
        done[0] += count

        def blast() -> None:
            system.tell(source, Blast(sink, count))
            system.ask(sink, Expect(done[0]), timeout=600.0)

        return count / _timed(blast)

    return run


def ask_run(system: Any, count: int) -> Callable[[], list[float]]:
    """One round of ``count`` sequential asks from n1 to n2, as round trips in seconds."""
    ponger = system.spawn("n2", Ponger, name="ponger")
    pinger = system.spawn("n1", Pinger, name="pinger")
    system.ask(pinger, PingRun(ponger, 20), timeout=60.0)  # connections warm

    def run() -> list[float]:
        times: list[float] = system.ask(pinger, PingRun(ponger, count), timeout=600.0)
        return times

    return run


def render(results: list[TracingResult]) -> str:
    """A table of the figures."""
    lines = [f"{'case':<10} {'tracing on':>14} {'tracing off':>14} {'on/off':>8}"]
    for r in results:
        lines.append(
            f"{r.case:<10} {r.traced:>11,.0f} {r.unit:<2} {r.untraced:>11,.0f} {r.unit:<2}"
            f" {r.ratio:>8.2f}"
        )
    return "\n".join(lines)
