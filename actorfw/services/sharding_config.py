"""The ``[[sharded]]`` section of a node's TOML file: a sharded cluster's roles on this node.

::

    [[sharded]]                          # one per sharded cluster this node takes part in
    name = "shards"                      # the shard manager's group name (default "shards")
    shards = 64                          # the number of shards, fixed when the cluster is made
    machine = "actorfw.kv.sharded:ShardedKV"   # the groups' ShardedMachine (default: the KV store)
    manager = ["n1", "n2", "n3"]         # the shard manager's nodes (default: this node and its
                                         # peers, sorted)
    mover_interval = 0.1                 # seconds between a group's mover passes
    [sharded.groups]                     # every replica group and its nodes
    g1 = ["n1", "n2", "n3"]
    g2 = ["n2", "n3", "n4"]

On this node the section starts the shard manager's three Multi-Paxos roles
if the node is one of ``manager``, and, for every group the node is a
member of, the group's roles and its :class:`~actorfw.services.sharding.ShardMover`;
it adds the modules they need to ``apps``. Every node of the cluster must
have the same section. The groups are started, not joined: an operator
joins them (``actorfw shards join``, or
:meth:`~actorfw.services.sharding.ShardedCluster.join`), so that adding a
group to the file and restarting its nodes never moves a shard by itself.

The section is registered with the node runtime when this module is
imported, which ``import actorfw`` does.
"""

from __future__ import annotations

from typing import Any

from actorfw.core.actor import actor_path
from actorfw.node.config import RootSpec, SectionContext, register_section
from actorfw.protocols.sharding.keys import MAX_SHARDS
from actorfw.services.replication.config import PAXOS_APP, _machine, _members
from actorfw.services.replication.group import group_roles
from actorfw.services.sharding import MANAGER_MACHINE, ShardMover, mover_name

__all__ = ["DEFAULT_MANAGER", "DEFAULT_SHARDED_MACHINE", "SECTION"]

SECTION = "sharded"
"""The section's key in a node's TOML file."""

DEFAULT_MANAGER = "shards"
"""The shard manager's group name of a ``[[sharded]]`` section that gives none."""

DEFAULT_SHARDED_MACHINE = "actorfw.kv.sharded:ShardedKV"
"""The groups' machine of a ``[[sharded]]`` section that gives none: the sharded KV store."""

SHARDING_APP = "actorfw.services.sharding"
"""The module of the mover actors, added to ``apps``."""

_KEYS = ("name", "shards", "machine", "manager", "mover_interval", "groups")


def _name(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value or "/" in value or value.startswith("$"):
        raise ValueError(
            f"{where}: {key} must be a non-empty string without '/', not starting with '$' "
            f"(it prefixes actor names), not {value!r}"
        )
    return value


def _sharded_roots(context: SectionContext, sections: Any) -> list[RootSpec]:
    """The top-level actors of every ``[[sharded]]`` section; adds their modules to ``apps``."""
    path, node, peers, apps = context.path, context.node, context.peers, context.apps
    if not isinstance(sections, list) or not all(isinstance(s, dict) for s in sections):
        raise ValueError(
            f"{path}: 'sharded' must be an array of tables: write each cluster as [[sharded]]"
        )
    roots: list[RootSpec] = []
    taken: dict[str, str] = {}
    for number, section in enumerate(sections, start=1):
        where = f"{path}: [[sharded]] #{number}"
        unknown = sorted(set(section) - set(_KEYS))
        if unknown:
            raise ValueError(
                f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(k) for k in unknown)} (known: {', '.join(_KEYS)})"
            )
        manager = _name(where, "name", section.get("name", DEFAULT_MANAGER))
        where = f'{where} (name = "{manager}")'
        shards = section.get("shards", 64)
        if type(shards) is not int or not 1 <= shards <= MAX_SHARDS:
            raise ValueError(f"{where}: shards must be an integer from 1 to {MAX_SHARDS}")
        machine, module = _machine(where, section.get("machine", DEFAULT_SHARDED_MACHINE))
        interval = section.get("mover_interval", 0.1)
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise ValueError(f"{where}: mover_interval must be a positive number of seconds")
        groups = section.get("groups")
        if not isinstance(groups, dict) or not groups:
            raise ValueError(f'{where}: [sharded.groups] must list the groups: g1 = ["n1", ...]')
        all_groups = {}
        for group, members in groups.items():
            _name(where, f"groups.{group}", group)
            if not isinstance(members, list) or not members:
                raise ValueError(f"{where}: groups.{group} must be a non-empty list of nodes")
            all_groups[group] = members
        for group in [manager, *all_groups]:
            if group in taken:
                raise ValueError(
                    f"{where}: the group name {group!r} is used twice ({taken[group]})"
                )
            taken[group] = where
        manager_nodes = _members(
            f"{where}: manager", section.get("manager"), node, peers, member=False
        )
        for app in (PAXOS_APP, SHARDING_APP, module, MANAGER_MACHINE.partition(":")[0]):
            if app not in apps:
                apps.append(app)
        if node in manager_nodes:
            spec = [MANAGER_MACHINE, {"shards": shards}]
            roots.extend(
                RootSpec(actor_path(cls), name, args)
                for cls, args, name in group_roles(manager, manager_nodes, spec)
            )
        for group, value in all_groups.items():
            members = _members(f"{where}: groups.{group}", value, node, peers, member=False)
            if node not in members:
                continue
            spec = [machine, {"group": group, "shards": shards}]
            roots.extend(
                RootSpec(actor_path(cls), name, args)
                for cls, args, name in group_roles(group, members, spec)
            )
            roots.append(
                RootSpec(
                    actor_path(ShardMover),
                    mover_name(group),
                    (group, members, manager, manager_nodes, float(interval)),
                )
            )
    return roots


register_section(SECTION, _sharded_roots)
