"""Sharding's sans-IO pieces: keys to shards, placing shards on groups, the shard manager.

- :func:`shard_of` — a key's shard, stable everywhere (BLAKE2b, not ``hash()``).
- :func:`rebalance` — shards placed on groups: balanced, fewest moves, deterministic.
- :class:`ShardManagerMachine` — the numbered sequence of configurations, as a
  deterministic state machine to replicate with :func:`~actorfw.replicate`.
- :class:`ShardedMachine` — a replica group's shards: serving, fencing, handing
  over; :func:`next_actions` — what moves a group's shards on.
"""

from actorfw.protocols.sharding.group import ShardedMachine, next_actions
from actorfw.protocols.sharding.keys import MAX_SHARDS, shard_of
from actorfw.protocols.sharding.manager import Configuration, ShardingError, ShardManagerMachine
from actorfw.protocols.sharding.rebalance import rebalance, targets

__all__ = [
    "MAX_SHARDS",
    "Configuration",
    "ShardManagerMachine",
    "ShardedMachine",
    "ShardingError",
    "next_actions",
    "rebalance",
    "shard_of",
    "targets",
]
