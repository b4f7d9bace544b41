"""The shard manager replicated by Multi-Paxos through replicate(), on both runtimes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from actorfw import Simulation, replicate
from actorfw.node import ActorSystem
from actorfw.protocols.sharding import Configuration, ShardManagerMachine

MACHINE = "actorfw.protocols.sharding.manager:ShardManagerMachine"


@pytest.fixture(params=["simulation", "nodes"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "simulation":
        with Simulation(nodes=3, seed=7) as sim:
            yield sim
    else:
        apps = ["actorfw.protocols.sharding.manager", "actorfw.services.paxos"]
        with ActorSystem(3, apps=apps) as system:
            yield system


def test_the_replicated_shard_manager_keeps_one_sequence_of_configurations(runtime: Any) -> None:
    machine = ShardManagerMachine if isinstance(runtime, Simulation) else MACHINE
    group = replicate(runtime, machine, name="shards")
    admin = group.client(client_id="admin")
    first = Configuration.from_value(admin.call(["join", {"g1": ["n1", "n2", "n3"]}]))
    assert first.num == 1 and set(first.shards) == {"g1"}
    second = Configuration.from_value(admin.call(["join", {"g2": ["n1"], "g3": ["n2"]}]))
    assert sorted(Counter(second.shards).values()) == [21, 21, 22]
    assert admin.call(["leave", ["g9"]])[0] == "error"  # refused, nothing changed
    reader = group.client(client_id="reader")  # another client sees the same sequence
    assert Configuration.from_value(reader.call(["query", 1])) == first
    assert Configuration.from_value(reader.call(["query"])) == second
