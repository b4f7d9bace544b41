"""The sharded service on the simulator: clients that route as the machine does, late groups,
and clients that wait rather than spin."""

from __future__ import annotations

from typing import Any

import pytest

from actorfw import ActorRef, Simulation
from actorfw.kv import KV
from actorfw.kv.sharded import ShardedKV
from actorfw.protocols.sharding import shard_of
from actorfw.services.replication import Unavailable
from actorfw.services.sharding import AsyncShardedClient, ShardedCluster, ShardingRefused


class TenantKV(ShardedKV):
    """Keys ``tenant/name``: every key of a tenant in the tenant's shard."""

    @staticmethod
    def key_of(operation: Any) -> str:
        return ShardedKV.key_of(operation).split("/")[0]


class InstanceKeyKV(ShardedKV):
    def key_of(self, operation: Any) -> str:  # type: ignore[override]
        return "x"


def test_a_machine_that_places_keys_its_own_way_gives_its_clients_its_key_of() -> None:
    with Simulation(nodes=3, seed=1) as sim:
        cluster = ShardedCluster.start(sim, TenantKV, shards=16, client_id="op")
        cluster.add_group("g1", ["n1", "n2", "n3"])
        kv = KV(cluster.client("c1"))
        kv.put("t1/a", 1)
        kv.put("t1/b", 2)
        assert (kv.get("t1/a"), kv.get("t1/b")) == (1, 2)
        # A client that routes by the whole key is refused, and nothing runs.
        stray = AsyncShardedClient("shards", cluster.manager.nodes, "c2")
        with pytest.raises(ShardingRefused, match="give the client the machine's key_of"):
            sim.run(stray.call(["put", "t1/a", 99]), on="n1")
        assert kv.get("t1/a") == 1


def test_a_key_of_that_is_not_a_static_method_is_refused_with_the_reason() -> None:
    with Simulation(nodes=1, seed=1) as sim:
        cluster = ShardedCluster.start(sim, InstanceKeyKV, shards=4, client_id="op")
        with pytest.raises(TypeError, match="must be a @staticmethod"):
            cluster.client()


def settle(sim: Simulation, cluster: ShardedCluster) -> None:
    deadline = sim.now + 30
    while not cluster.settled():
        assert sim.now < deadline, {g: cluster.status(g) for g in cluster.groups}
        sim.run_for(0.1)


def test_a_group_started_after_the_first_configurations_were_forgotten_still_serves() -> None:
    with Simulation(nodes=3, seed=2) as sim:
        nodes = ["n1", "n2", "n3"]
        cluster = ShardedCluster.start(sim, ShardedKV, shards=4, client_id="op", history=3)
        cluster.add_group("g1", nodes)
        kv = KV(cluster.client("c1"))
        kv.put("k", "v")
        for shard in range(4):  # configurations 2 .. 5; the manager keeps 3 of them
            cluster.move(shard, "g1")
            settle(sim, cluster)  # g1 keeps up: a group cannot skip what it missed
        cluster.add_group("g2", nodes)  # configuration 6: g2 never saw 1 .. 3
        settle(sim, cluster)
        assert cluster.status("g2")["num"] == 6 and cluster.status("g2")["held"]
        assert kv.get("k") == "v"
        for shard in cluster.configuration().shards_of("g2"):
            key = next(f"k{i}" for i in range(1000) if shard_of(f"k{i}", 4) == shard)
            kv.put(key, shard)
            assert kv.get(key) == shard


def test_a_client_waits_for_a_new_owner_that_is_behind_rather_than_spinning() -> None:
    with Simulation(nodes=3, seed=3) as sim:
        cluster = ShardedCluster.start(sim, ShardedKV, shards=4, manager_nodes=["n3"])
        cluster.start_group("g1", ["n1"])
        cluster.start_group("g2", ["n2"])
        cluster.join({"g1": ["n1"]})
        sim.run_for(1.0)
        sim.crash("n1")  # g1 is down: g2 cannot take the shards of configuration 2
        moved = cluster.join({"g2": ["n2"]})
        shard = moved.shards.index("g2")
        key = next(f"k{i}" for i in range(1000) if shard_of(f"k{i}", 4) == shard)
        client = cluster.async_client(client_id="c", deadline=2.0)
        with pytest.raises(Unavailable):
            sim.run(client.call(["get", key]), on="n3")
        # Backing off: a few dozen tries in 2 s, not hundreds of commands to the manager.
        assert 0 < client.redirects < 40


def test_a_group_whose_nodes_were_given_wrong_is_found_once_a_join_corrects_them() -> None:
    with Simulation(nodes=3, seed=4) as sim:
        cluster = ShardedCluster.start(sim, ShardedKV, shards=4, manager_nodes=["n3"])
        cluster.start_group("g1", ["n1"])
        cluster.start_group("g2", ["n2"])
        cluster.join({"g1": ["n3"]})  # a mistake: g1 runs on n1, not on n3
        cluster.join({"g2": ["n2"]})  # g2 is to pull from g1, recorded as on n3
        sim.run_for(1.0)
        assert cluster.status("g2")["pulling"]  # stuck: nothing of g1 answers on n3
        cluster.join({"g1": ["n1"]})  # corrected: the movers ask the nodes of the latest
        settle(sim, cluster)
        assert cluster.status("g2")["held"]
        kv = KV(cluster.client("c1"))
        for i in range(8):
            kv.put(f"k{i}", i)
            assert kv.get(f"k{i}") == i


def test_sharded_groups_run_on_primary_backup_through_moves_and_a_primary_kill() -> None:
    from actorfw.services.primary_backup import MemberStatus, member_name

    nodes = ["n1", "n2", "n3"]
    with Simulation(nodes=3, seed=3) as sim:
        cluster = ShardedCluster.start(
            sim, ShardedKV, shards=16, client_id="op", replication="primary-backup"
        )
        cluster.add_group("g1", nodes)
        kv = KV(cluster.client("c1"))
        for i in range(24):
            kv.put(f"k{i}", i)
        cluster.add_group("g2", nodes)  # half of the shards move to g2
        settle(sim, cluster)
        assert set(cluster.configuration().shards) == {"g1", "g2"}
        assert [kv.get(f"k{i}") for i in range(24)] == list(range(24))
        statuses = {n: sim.ask(ActorRef(n, member_name("g2")), MemberStatus()) for n in nodes}
        primary = next(n for n, s in statuses.items() if s["acting"])
        sim.crash(primary)  # g2's primary, and a member of every group
        for i in range(24):
            kv.put(f"k{i}", i + 100)
        sim.restart(primary)
        assert [kv.get(f"k{i}") for i in range(24)] == [i + 100 for i in range(24)]
