"""Pure protocol throughput of the Multi-Paxos cores: decided commands per second.

Three nodes, each running an acceptor, a leader and a replica, on the
in-memory harness of the tests (``tests/support/paxos_harness.py``): no network, no
storage, no invariant checker. Clients send all their commands to the
replica at ``n1`` at once (6,400 commands from 64 clients, each client's
commands in sequence order; with one entry replica and no faults they are
decided in that order); the harness then delivers in rounds, each core
taking everything queued for it in one ``handle_all`` (as an actor draining
its mailbox would), until every replica has applied every command and
every client has its answer. Default options, except the batch size: the
replica window (256 slots) and the p2a size (512 slots) shape the pipeline.

The figures (in ``extra_info``): decided commands per second (commands /
median time of one run), slots per second, and how many protocol messages
(client requests and responses not counted) one run took. Run with::

    pytest benchmarks/test_paxos_core.py --benchmark-enable

Under the normal test run (``--benchmark-disable``) each case runs once, as
a smoke test that the work completes.
"""

from __future__ import annotations

from typing import Any

import pytest

from actorfw.protocols.paxos import LeaderOptions, ReplicaOptions
from tests.support.paxos_harness import Cluster

CASES = [(1, 6_400), (64, 6_400)]
"""(commands per slot, commands per run)."""
CLIENTS = 64


def _cluster(batch: int) -> Cluster:
    cluster = Cluster(
        3,
        check=False,
        store=False,
        replica_options=ReplicaOptions(max_batch=batch),
        leader_options=LeaderOptions(),
    )
    cluster.start()
    cluster.deliver_rounds()  # n1 is the active leader
    return cluster


def _run(cluster: Cluster, commands: int) -> None:
    for i in range(commands):
        cluster.submit(f"c{i % CLIENTS}", ("incr", "k"), via="n1")
    cluster.deliver_rounds()


@pytest.mark.parametrize(("batch", "commands"), CASES, ids=[f"batch{b}" for b, _ in CASES])
def test_paxos_decided_commands_per_second(benchmark: Any, batch: int, commands: int) -> None:
    clusters: list[Cluster] = []

    def setup() -> tuple[tuple[Cluster, int], dict[str, Any]]:
        cluster = _cluster(batch)
        clusters.append(cluster)
        return (cluster, commands), {}

    benchmark.pedantic(_run, setup=setup, rounds=7, iterations=1)
    protocol_messages = clusters[-1].stats["delivered"] - commands  # minus the requests
    for cluster in clusters:
        assert cluster.unanswered() == 0
        assert all(m.data == {"k": commands} for m in cluster.machines.values())
        assert all(
            r is not None and r.slot_out == 2 + (commands - 1) // batch
            for r in cluster.replicas.values()
        )
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        median = stats.stats.median
        benchmark.extra_info["commands_per_second"] = round(commands / median)
        benchmark.extra_info["slots_per_second"] = round(commands / batch / median)
        benchmark.extra_info["protocol_messages"] = protocol_messages
