"""The simulator's in-process speed: tells per second and ask round trips per second.

Each figure stands beside a baseline measured in the same run on the same
virtual-time loop: the bare asyncio machinery the same work needs without
the framework (a queue drained by a task for tells; a future answered by a
task for asks). The ratio is what the actor layer costs.

Run with ``pytest benchmarks/test_simulation.py --benchmark-enable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from actorfw import Actor, Simulation, handler, message

TELLS = 10_000
ASKS = 2_000


@message(name="bench.sim.Bump")
@dataclass(frozen=True)
class Bump:
    n: int


class Count(Actor):
    def on_start(self) -> None:
        self.total = 0

    @handler
    def bump(self, msg: Bump) -> int:
        self.total += msg.n
        return self.total


def _sim_tells(remote: bool) -> Callable[[], None]:
    sim = Simulation(nodes=2, seed=0, trace=False)
    ref = sim.spawn("n1", Count, name="c")
    cell = sim.node("n1").cells["c"]
    on = "n2" if remote else "n1"

    def run() -> None:
        start = cell.instance.total  # type: ignore[union-attr]

        async def main() -> None:
            for _ in range(TELLS):
                ref.tell(Bump(1))

        sim.run(main, on=on)
        sim.run_until(lambda: cell.instance.total == start + TELLS)  # type: ignore[union-attr]

    run.close = sim.close  # type: ignore[attr-defined]
    return run


def _sim_asks(remote: bool) -> Callable[[], None]:
    sim = Simulation(nodes=2, seed=0, trace=False)
    ref = sim.spawn("n1", Count, name="c")
    on = "n2" if remote else "n1"

    def run() -> None:
        async def main() -> None:
            for _ in range(ASKS):
                await ref.ask(Bump(1))

        sim.run(main, on=on)

    run.close = sim.close  # type: ignore[attr-defined]
    return run


def _baseline_tells() -> Callable[[], None]:
    sim = Simulation(nodes=1, seed=0, trace=False)
    loop = sim.loop

    def run() -> None:
        async def main() -> None:
            queue: asyncio.Queue[Any] = asyncio.Queue()
            total = 0

            async def consume() -> None:
                nonlocal total
                while True:
                    item = await queue.get()
                    if item is None:
                        return
                    total += item.n

            task = loop.create_task(consume())
            for _ in range(TELLS):
                queue.put_nowait(Bump(1))
            queue.put_nowait(None)
            await task

        sim.run(main)

    run.close = sim.close  # type: ignore[attr-defined]
    return run


def _baseline_asks() -> Callable[[], None]:
    sim = Simulation(nodes=1, seed=0, trace=False)
    loop = sim.loop

    def run() -> None:
        async def main() -> None:
            queue: asyncio.Queue[Any] = asyncio.Queue()
            total = 0

            async def serve() -> None:
                nonlocal total
                while True:
                    item = await queue.get()
                    if item is None:
                        return
                    msg, future = item
                    total += msg.n
                    future.set_result(total)

            task = loop.create_task(serve())
            for _ in range(ASKS):
                future = loop.create_future()
                queue.put_nowait((Bump(1), future))
                await future
            queue.put_nowait(None)
            await task

        sim.run(main)

    run.close = sim.close  # type: ignore[attr-defined]
    return run


CASES = {
    "tell-local": (_sim_tells, (False,), TELLS, "bare-queue"),
    "tell-remote": (_sim_tells, (True,), TELLS, "bare-queue"),
    "ask-local": (_sim_asks, (False,), ASKS, "bare-future"),
    "ask-remote": (_sim_asks, (True,), ASKS, "bare-future"),
    "bare-queue": (_baseline_tells, (), TELLS, None),
    "bare-future": (_baseline_asks, (), ASKS, None),
}
RESULTS: dict[str, float] = {}


@pytest.mark.parametrize("case", list(CASES))
def test_simulator_throughput(benchmark, case: str) -> None:  # type: ignore[no-untyped-def]
    make, args, count, baseline = CASES[case]
    run = make(*args)
    try:
        benchmark.group = "simulator: tells" if count == TELLS else "simulator: asks"
        benchmark.extra_info["operations"] = count
        benchmark.extra_info["baseline"] = baseline
        benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
        if benchmark.stats is not None:
            RESULTS[case] = count / benchmark.stats.stats.median
    finally:
        run.close()  # type: ignore[attr-defined]


def teardown_module() -> None:
    if not RESULTS:
        return
    lines = ["", "simulator throughput (operations per second, median of 5 rounds):"]
    for case, (_, _, _, baseline) in CASES.items():
        if case in RESULTS and baseline in RESULTS:
            ratio = RESULTS[case] / RESULTS[baseline]
            lines.append(
                f"  {case:12} {RESULTS[case]:>10,.0f}/s   "
                f"{baseline} {RESULTS[baseline]:>10,.0f}/s   ratio {ratio:.2f}"
            )
    print("\n".join(lines))
