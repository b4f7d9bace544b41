"""The sharded KV store on node processes: shards move under load, through SIGKILLs.

Four node processes; group ``g1`` on the first three, ``g2`` on the last
three, the shard manager on the first three. Clients append unique tokens
to keys of every shard while ``g2`` joins (half the shards move from
``g1`` to ``g2``) with a node of the source group SIGKILLed during the
move, and then while ``g1`` leaves (every shard moves to ``g2``) with a
node of the destination group SIGKILLed. Every acknowledged append must be
in the final values, once; the history must be linearizable.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from actorfw.check import History, KeyValue, check
from actorfw.kv.sharded import ShardedKV
from actorfw.node import ActorSystem
from actorfw.services.replication import SessionExpiredError, Unavailable
from actorfw.services.sharding import AsyncShardedClient, ShardedCluster
from tests.services.test_replication_processes import wait_for

KEYS = [f"k{i}" for i in range(12)]
CLIENTS = 4
APPS = ["actorfw.kv.sharded", "actorfw.services.sharding", "actorfw.services.paxos"]


class Load:
    """Sharded clients appending unique tokens (and reading) until told to stop."""

    def __init__(self, manager_nodes: list[str]) -> None:
        self.manager_nodes = manager_nodes
        self.history = History()
        self.acknowledged: dict[str, list[str]] = {key: [] for key in KEYS}
        self.completed = 0
        self.stopping = False
        self.t0 = time.monotonic()

    async def run(self) -> None:
        await asyncio.gather(*(self.client(index) for index in range(CLIENTS)))

    async def client(self, index: int) -> None:
        client = AsyncShardedClient("shards", self.manager_nodes, f"load-{index}", 0.5, 10.0)
        step = 0
        while not self.stopping:
            step += 1
            key = KEYS[(index + step) % len(KEYS)]
            if step % 4 == 0:
                f, value, op = "get", None, ["get", key]
            else:
                token = f"{index}.{step};"
                f, value, op = "append", token, ["append", key, token]
            record = self.history.invoke(index, f, key, value, time=time.monotonic() - self.t0)
            try:
                result = await client.call(op)
            except (Unavailable, SessionExpiredError):
                self.history.info(record)
                continue
            self.history.ok(record, result, time=time.monotonic() - self.t0)
            if f == "append":
                self.acknowledged[key].append(value)
            self.completed += 1


def progress(load: Load, more: int) -> Any:
    target = load.completed + more
    return lambda: load.completed >= target


@pytest.mark.timeout(240)
def test_no_acknowledged_write_is_lost_when_nodes_die_while_shards_move() -> None:
    with ActorSystem(4, apps=APPS) as system:
        nodes = list(system.nodes)
        g1, g2, managers = nodes[0:3], nodes[1:4], nodes[0:3]
        cluster = ShardedCluster.start(system, ShardedKV, shards=16, manager_nodes=managers)
        cluster.add_group("g1", g1)
        cluster.start_group("g2", g2)
        load = Load(managers)
        running = system.start(load.run())
        try:
            wait_for(progress(load, 200), "the load to get going")
            moved = cluster.join({"g2": g2})
            assert moved.shards.count("g2") == 8
            system.crash(g1[0])  # SIGKILL a node only of the source group, mid-move
            wait_for(progress(load, 100), "commands while g2 takes its shards", timeout=60)
            system.restart(g1[0])
            wait_for(cluster.settled, "g2 to hold its shards", timeout=60)
            wait_for(progress(load, 100), "commands after the first move")
            cluster.leave(["g1"])
            system.crash(g2[-1])  # SIGKILL a node only of the destination group, mid-move
            wait_for(progress(load, 100), "commands while g1 hands over", timeout=60)
            system.restart(g2[-1])
            wait_for(cluster.settled, "g2 to hold every shard", timeout=60)
            wait_for(progress(load, 100), "commands after the second move")
        finally:
            load.stopping = True
            running.result(timeout=60)
        assert cluster.status("g2")["held"] == list(range(16))
        assert cluster.status("g1")["held"] == [] and cluster.status("g1")["outgoing"] == []
        for op in load.history.pending:
            load.history.info(op)

        reader = AsyncShardedClient("shards", managers, "final-reader", 0.5, 20.0)

        async def final() -> dict[str, Any]:
            return {key: await reader.call(["get", key]) for key in KEYS}

        values = system.run(final())
    for key in KEYS:
        tokens = (values[key] or "").split(";")[:-1]
        assert len(tokens) == len(set(tokens)), f"{key}: a token appears twice"
        missing = {t.rstrip(";") for t in load.acknowledged[key]} - set(tokens)
        assert not missing, f"{key}: acknowledged appends lost: {sorted(missing)[:5]}"
    result = check(load.history, KeyValue(), timeout=60.0)
    assert result.ok, str(result)
