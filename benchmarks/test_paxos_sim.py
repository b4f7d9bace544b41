"""Multi-Paxos in the simulator: decided commands per second of protocol work.

Three nodes run the replicated KV store on a calm simulated network; 64
clients each submit commands one after another. The figure is commands
decided and answered per second of wall-clock time (virtual time is free),
so it measures the actors, the cores and the runtime, not a network or a
disk. Baseline in the same run: the same workload with one command per slot
(``max_batch=1``) beside up to 64 per slot.

Run with ``pytest benchmarks/test_paxos_sim.py --benchmark-enable -s``.
"""

from __future__ import annotations

import asyncio

import pytest

from actorfw import ActorRef, Simulation
from actorfw.protocols.paxos import Command, Request, Role
from actorfw.services.paxos import role_name
from tests.support.paxos_sim import CALM, GROUP, start_group

CLIENTS = 64
RESULTS: dict[int, float] = {}


def _workload(max_batch: int, per_client: int) -> tuple[Simulation, object]:
    nodes = ["n1", "n2", "n3"]
    sim = Simulation(nodes, seed=1, network=CALM, trace=False)
    start_group(sim, nodes, None, max_batch=max_batch)
    counter = {"round": 0}

    async def main() -> None:
        counter["round"] += 1
        base = counter["round"] * per_client

        async def client(i: int) -> None:
            replica = ActorRef(nodes[i % 3], role_name(GROUP, Role.REPLICA))
            for n in range(per_client):
                await replica.ask(Request(Command(f"c{i}", base + n, ["put", f"k{i}", n])), 30.0)

        await asyncio.gather(*(client(i) for i in range(CLIENTS)))

    return sim, main


@pytest.mark.parametrize("max_batch", [1, 64])
def test_decided_commands_per_second(benchmark, max_batch: int) -> None:  # type: ignore[no-untyped-def]
    per_client = 2 if benchmark.disabled else 30
    sim, main = _workload(max_batch, per_client)
    try:
        sim.run(main, timeout=600.0)  # warm: leader elected, connections made
        benchmark.group = "paxos in the simulator"
        benchmark.extra_info["commands_per_round"] = CLIENTS * per_client
        benchmark.pedantic(lambda: sim.run(main, timeout=600.0), rounds=3, iterations=1)
        if benchmark.stats is not None:
            RESULTS[max_batch] = CLIENTS * per_client / benchmark.stats.stats.median
    finally:
        sim.close()


def teardown_module() -> None:
    if RESULTS:
        print("\ndecided commands per second of protocol work (simulator, 3 nodes, 64 clients):")
        for batch, rate in sorted(RESULTS.items()):
            print(f"  up to {batch:>2} commands per slot: {rate:>10,.0f}/s")
