"""Flow control on node processes: a slow receiver, and what credit costs when nothing is slow.

Two measurements (see :mod:`actorfw.core.flow`):

- **Slow receiver.** On a 2-node cluster, an actor on n1 floods an actor on
  n2 whose handler takes 1 ms (it blocks its node, as a slow handler does)
  for ``seconds``. Reported: both nodes' peak RSS (the kernel's high-water
  mark), the rate the receiver achieved, and that rate over the handler's
  capacity (1 / its measured time per message): credit should keep the
  receiver's memory flat while it works all the time. The same with credit
  off (``flow_window=None``) for a shorter time shows what it prevents.
- **Credit on against off**, nothing slow: two 2-node clusters side by side,
  one with credit (the default) and one without; each round measures both,
  back to back, alternating which goes first: tell rate (median of the
  rounds) and ask round trip p50. Ratio: on over off.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

from actorfw.bench.actors import Flood, Monitor, Progress, Report, Sleeper, Source
from actorfw.bench.messaging import _interleaved, _percentile
from actorfw.bench.tracing import ask_run, tell_run
from actorfw.core.engine import NodeConfig

__all__ = ["SCALES", "CreditResult", "SlowReceiverResult", "render", "run_flow"]

SCALES: dict[str, dict[str, Any]] = {
    "full": {"seconds": 60.0, "seconds_off": 10.0, "rounds": 3, "tells": 100_000, "asks": 1_000},
    "quick": {"seconds": 1.5, "seconds_off": 1.0, "rounds": 1, "tells": 1_000, "asks": 50},
}
"""``seconds`` of the slow-receiver flood with credit (``seconds_off`` without);
``rounds``, ``tells`` and ``asks`` of the on-against-off comparison."""

APP = "actorfw.bench.actors"

HANDLER_SECONDS = 0.001
"""What the slow receiver's handler takes per message."""


@dataclasses.dataclass(frozen=True)
class SlowReceiverResult:
    """A flood into a 1 ms handler: memory of both nodes, and the rate against capacity."""

    credit: bool
    seconds: float
    handled: int
    busy: float
    sender_rss_mb: float
    receiver_rss_mb: float

    @property
    def rate(self) -> float:
        """Messages the receiver handled per second of the flood."""
        return self.handled / self.seconds if self.seconds else 0.0

    @property
    def capacity(self) -> float:
        """Messages per second the handler can take (1 / its measured time per message)."""
        return self.handled / self.busy if self.busy else 0.0

    @property
    def ratio(self) -> float:
        """rate / capacity: the share of the time the receiver was working."""
        return self.rate / self.capacity if self.capacity else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            **dataclasses.asdict(self),
            "rate": self.rate,
            "capacity": self.capacity,
            "ratio": self.ratio,
        }


@dataclasses.dataclass(frozen=True)
class CreditResult:
    """One figure with credit on, beside the same with credit off in the same run."""

    case: str
    unit: str
    on: float
    off: float

    @property
    def ratio(self) -> float:
        """on / off."""
        return self.on / self.off if self.off else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**dataclasses.asdict(self), "ratio": self.ratio}


def peak_rss_mb(pid: int | None) -> float:
    """The peak resident memory of process ``pid`` in MB (its ``VmHWM``), 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def slow_receiver(seconds: float, credit: bool) -> SlowReceiverResult:
    """Flood a 1 ms handler on n2 from n1 for ``seconds``; what it did and what it took."""
    from actorfw.node import ActorSystem

    config = NodeConfig() if credit else NodeConfig(flow_window=None)
    with ActorSystem(nodes=2, apps=[APP], node_config=config) as system:
        monitor = system.spawn("n2", Monitor, name="monitor")
        sleeper = system.spawn("n2", Sleeper, monitor, HANDLER_SECONDS, name="sleeper")
        source = system.spawn("n1", Source, name="source")
        start: Progress = system.ask(monitor, Report())
        began = time.monotonic()
        system.tell(source, Flood(sleeper, seconds))
        deadline = began + seconds
        # The flood lasts ``seconds`` on the driver's clock; meanwhile, an ask a
        # second to n2 (not to the busy actor) shows the node still answers.
        while time.monotonic() < deadline:
            system.ask(monitor, Report(), timeout=30.0)
            remaining = deadline - time.monotonic()
            if remaining > 0:
                time.sleep(min(1.0, remaining))
        end: Progress = system.ask(monitor, Report(), timeout=30.0)
        elapsed = time.monotonic() - began
        return SlowReceiverResult(
            credit=credit,
            seconds=elapsed,
            handled=end.count - start.count,
            busy=end.busy - start.busy,
            sender_rss_mb=peak_rss_mb(system.pid("n1")),
            receiver_rss_mb=peak_rss_mb(system.pid("n2")),
        )


def credit_on_against_off(
    rounds: int, tells: int, asks: int, progress: Callable[[str], None] | None = None
) -> list[CreditResult]:
    """Tell rate and ask p50 with credit on and off, two clusters side by side."""
    from actorfw.node import ActorSystem

    with (
        ActorSystem(nodes=2, apps=[APP]) as on,
        ActorSystem(nodes=2, apps=[APP], node_config=NodeConfig(flow_window=None)) as off,
    ):
        tell_runs = [tell_run(system, tells) for system in (on, off)]
        ask_runs = [ask_run(system, asks) for system in (on, off)]
        if progress is not None:
            progress("tells, credit on and off")
        rate_on, rate_off = _interleaved(rounds, *tell_runs)
        if progress is not None:
            progress("asks, credit on and off")
        times_on, times_off = _interleaved(rounds, *ask_runs)
    mine = [t for times in times_on for t in times]
    base = [t for times in times_off for t in times]
    return [
        CreditResult("tell", "msgs/s", statistics.median(rate_on), statistics.median(rate_off)),
        CreditResult("ask p50", "µs", _percentile(mine, 0.5) * 1e6, _percentile(base, 0.5) * 1e6),
    ]


def run_flow(
    scale: str = "full", progress: Callable[[str], None] | None = None
) -> tuple[list[SlowReceiverResult], list[CreditResult]]:
    """Both measurements at ``scale``; the figures."""
    settings = SCALES[scale]
    if progress is not None:
        progress(f"slow receiver with credit, {settings['seconds']:g} s")
    slow = [slow_receiver(settings["seconds"], True)]
    if progress is not None:
        progress(f"slow receiver without credit, {settings['seconds_off']:g} s")
    slow.append(slow_receiver(settings["seconds_off"], False))
    credit = credit_on_against_off(
        settings["rounds"], settings["tells"], settings["asks"], progress
    )
    return slow, credit


def render(slow: list[SlowReceiverResult], credit: list[CreditResult]) -> str:
    """The figures as two small tables."""
    lines = [
        f"{'slow receiver':<16} {'seconds':>8} {'handled/s':>10} {'capacity/s':>11} "
        f"{'rate/cap':>9} {'sender RSS':>11} {'receiver RSS':>13}"
    ]
    for r in slow:
        label = "credit on" if r.credit else "credit off"
        lines.append(
            f"{label:<16} {r.seconds:>8.1f} {r.rate:>10,.0f} {r.capacity:>11,.0f} "
            f"{r.ratio:>9.2f} {r.sender_rss_mb:>8,.0f} MB {r.receiver_rss_mb:>10,.0f} MB"
        )
    lines.append("")
    lines.append(f"{'case':<10} {'credit on':>14} {'credit off':>14} {'on/off':>8}")
    for c in credit:
        lines.append(
            f"{c.case:<10} {c.on:>11,.0f} {c.unit:<2} {c.off:>11,.0f} {c.unit:<2} {c.ratio:>8.2f}"
        )
    return "\n".join(lines)
