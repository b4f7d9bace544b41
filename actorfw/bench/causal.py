"""Causal broadcast on node processes beside the same traffic as plain tells, in the same run.

For each group size (3, 5 and 8 members), every member broadcasts
``messages`` small messages through its node's causal group member
(:mod:`actorfw.services.causal`, durable on SQLite), and every member's
subscriber counts its deliveries: a round ends when every subscriber has
all ``members * messages``. The baseline is the same traffic as plain
tells: every node sends the same ticks to every node's counter (itself
included), ``tell_all`` to all of them at once. Deliveries per second of
both, and their ratio, are reported; rounds alternate which goes first.

With ``kernels=("compiled", "pure")`` the causal case also runs with the
nodes on the pure-Python twins (``ACTORFW_PURE=1``), beside the compiled
kernels in the same run: the ratio shows what the vector-clock kernel buys.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from actorfw.bench.actors import Expect, FanOut, Post, Sink, Source
from actorfw.protocols.causal import CausalOptions
from actorfw.values.errors import Overloaded

__all__ = ["SCALES", "CausalResult", "render", "run_causal"]

SCALES: dict[str, dict[str, Any]] = {
    "full": {"rounds": 3, "messages": 2_000, "sizes": (3, 5, 8)},
    "quick": {"rounds": 1, "messages": 100, "sizes": (3,)},
}
"""``rounds`` per size, ``messages`` broadcast by each member per round, group ``sizes``."""

APPS = ["actorfw.bench.actors", "actorfw.services.causal"]


@dataclasses.dataclass(frozen=True)
class CausalResult:
    """Deliveries per second of a causal group, beside its baseline in the same run."""

    members: int
    kernels: str
    causal: float
    tells: float

    @property
    def ratio(self) -> float:
        """causal / tells."""
        return self.causal / self.tells if self.tells else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**dataclasses.asdict(self), "ratio": self.ratio}


@contextmanager
def _kernels(which: str) -> Iterator[None]:
    """Node processes started inside use ``which`` kernels (they read ACTORFW_PURE)."""
    before = os.environ.get("ACTORFW_PURE")
    os.environ["ACTORFW_PURE"] = "1" if which == "pure" else "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ["ACTORFW_PURE"]
        else:
            os.environ["ACTORFW_PURE"] = before


def _timed(function: Callable[[], None]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _expect(system: Any, sink: Any, count: int, timeout: float = 600.0) -> None:
    """Wait until ``sink`` has ``count`` messages; the ask is made again while it is refused.

    A member tells its subscriber a step's deliveries at once, so the
    subscriber's mailbox can pass its bound (the member is then held until
    it drains, rule 1 of :mod:`actorfw.core.flow`), and an ask finding it so
    full is refused with :class:`Overloaded`, to be made again later.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            system.ask(sink, Expect(count), timeout=max(deadline - time.monotonic(), 0.001))
            return
        except Overloaded:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.001)  # the mailbox drains meanwhile


def _measure(members: int, messages: int, rounds: int, which: str) -> tuple[float, float]:
    from actorfw.node import ActorSystem
    from actorfw.services.causal import causal_group

    with _kernels(which), ActorSystem(nodes=members, apps=APPS) as system:
        nodes = list(system.nodes)
        sources = {node: system.spawn(node, Source, name="source") for node in nodes}
        counters = {node: system.spawn(node, Sink, name="counter") for node in nodes}
        targets = tuple(counters.values())
        per_round = members * messages  # what each counter gets per round, either way
        received = [0]

        def tells() -> None:
            received[0] += per_round
            for source in sources.values():
                system.tell(source, FanOut(targets, messages))
            for counter in targets:
                _expect(system, counter, received[0])

        def causal(index: int) -> None:
            inboxes = {n: system.spawn(n, Sink, name=f"inbox-{index}") for n in nodes}
            group = causal_group(
                system, f"bench-{index}", options=CausalOptions(), subscribers=inboxes
            )
            start = time.perf_counter()
            for node in nodes:
                system.tell(sources[node], Post(group.member(node), messages))
            for inbox in inboxes.values():
                _expect(system, inbox, per_round)
            durations.append(time.perf_counter() - start)

        durations: list[float] = []
        rates_tells: list[float] = []
        for index in range(rounds):
            if index % 2:
                rates_tells.append(members * per_round / _timed(tells))
                causal(index)
            else:
                causal(index)
                rates_tells.append(members * per_round / _timed(tells))
        rates_causal = [members * per_round / d for d in durations]
        return statistics.median(rates_causal), statistics.median(rates_tells)


def run_causal(
    scale: str = "full",
    kernels: tuple[str, ...] = ("compiled", "pure"),
    progress: Callable[[str], None] | None = None,
) -> list[CausalResult]:
    """Run every group size on each of ``kernels``; the figures, each beside its baseline."""
    settings = SCALES[scale]
    results = []
    for members in settings["sizes"]:
        for which in kernels:
            if progress is not None:
                progress(f"{members} members, {which} kernels")
            causal, tells = _measure(members, settings["messages"], settings["rounds"], which)
            results.append(CausalResult(members, which, causal, tells))
    return results


def render(results: list[CausalResult]) -> str:
    """The figures as a table."""
    lines = [
        f"{'members':>7}  {'kernels':<8}  {'causal deliveries/s':>19}  "
        f"{'plain tells/s':>13}  {'ratio':>5}"
    ]
    for r in results:
        lines.append(
            f"{r.members:>7}  {r.kernels:<8}  {r.causal:>19,.0f}  {r.tells:>13,.0f}  "
            f"{r.ratio:>5.2f}"
        )
    by_key = {(r.members, r.kernels): r for r in results}
    for members in sorted({r.members for r in results}):
        compiled, pure = by_key.get((members, "compiled")), by_key.get((members, "pure"))
        if compiled is not None and pure is not None and pure.causal:
            lines.append(
                f"{members} members: compiled kernels deliver {compiled.causal / pure.causal:.2f}x "
                "the pure twins' rate"
            )
    return "\n".join(lines)
