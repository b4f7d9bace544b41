"""The sharded KV store: the KV machine, one instance per shard, on sharded replica groups.

Each replica group of a sharded cluster
(:class:`~actorfw.services.sharding.ShardedCluster`) applies a
:class:`ShardedKV`: the shards it owns are each a
:class:`~actorfw.kv.KVStateMachine`, and operations are the KV store's
(``[f, key, value]``), routed by their key. A
:class:`~actorfw.services.sharding.ShardedClient` wrapped in
:class:`~actorfw.kv.KV` is used exactly like the unsharded store's client::

    from actorfw import Simulation
    from actorfw.kv import KV
    from actorfw.kv.sharded import ShardedKV
    from actorfw.services.sharding import ShardedCluster

    with Simulation(nodes=3) as sim:
        cluster = ShardedCluster.start(sim, ShardedKV, shards=16)
        cluster.add_group("g1", ["n1", "n2", "n3"])
        kv = KV(cluster.client())
        kv.put("x", 1)
        assert kv.get("x") == 1
"""

from __future__ import annotations

from typing import Any

from actorfw.kv.machine import KVStateMachine
from actorfw.protocols.sharding.group import ShardedMachine

__all__ = ["ShardedKV"]


class ShardedKV(ShardedMachine):
    """One group's shards of the KV store: a :class:`~actorfw.kv.KVStateMachine` per shard."""

    def new_shard(self) -> KVStateMachine:
        """An empty KV map."""
        return KVStateMachine()

    @staticmethod
    def key_of(operation: Any) -> str:
        """A KV operation's key (its second item, a ``str``)."""
        if not isinstance(operation, list | tuple) or len(operation) not in (2, 3):
            raise ValueError(f"a KV operation is [f, key, value], not {operation!r}")
        key = operation[1]
        if not isinstance(key, str):
            raise TypeError(f"keys are strings, not {type(key).__name__}")
        return key
