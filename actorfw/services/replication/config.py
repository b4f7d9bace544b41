"""The ``[[replicated]]`` section of a node's TOML file: Multi-Paxos groups started at boot.

A node's configuration (see :mod:`actorfw.node.config`) may hold any number
of these::

    [[replicated]]                       # a state machine replicated by Multi-Paxos
    name = "kv"                                    # the group's name (default "kv")
    machine = "actorfw.kv.machine:KVStateMachine"  # module:QualName (default: the KV store)
    nodes = ["n1", "n2", "n3"]           # the members (default: this node and its peers, sorted)
    [replicated.leader]                  # optional: LeaderOptions fields
    leader_timeout = 1.0
    [replicated.replica]                 # optional: ReplicaOptions fields
    max_batch = 64

    [[replicated]]                       # the same, replicated by primary-backup
    name = "orders"
    replication = "primary-backup"       # default "paxos"
    lease = 1.0                          # the primary's lease, seconds (default 1.0)
    views = ["n1", "n2", "n3"]           # the view service's nodes (default: the members)
    [replicated.primary]                 # optional: PrimaryOptions fields (mode "sync" or "async")
    lag_time = 0.5
    [replicated.member]                  # optional: the other MemberOptions fields
    snapshot_interval = 16384

Each section starts, on this node, the three actors that
:func:`~actorfw.services.replication.replicate` starts on each node of a group
(the acceptor, replica and leader ``<name>-acceptor``, ``<name>-replica``,
``<name>-leader``), before the ``[[spawn]]`` actors, and adds the machine's
module and ``actorfw.services.paxos`` to ``apps``. Every member of a group
must list the same ``nodes`` in the same order: a leader's identity in its
ballots is its index in that list. A primary-backup section starts the
actors :func:`~actorfw.services.replication.group.primary_backup_roles`
places on this node (its view service's roles, its member and its view
keeper), and adds ``actorfw.services.primary_backup`` to ``apps``.

The section is registered with the node runtime when this module is
imported, which ``import actorfw`` does.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from typing import Any, TypeVar

from actorfw.core.actor import actor_path
from actorfw.node.config import RootSpec, SectionContext, register_section
from actorfw.protocols.paxos.types import Config, LeaderOptions, ReplicaOptions
from actorfw.protocols.primary_backup.notes import MemberOptions
from actorfw.protocols.primary_backup.primary import PrimaryOptions
from actorfw.services.replication.group import REPLICATION, group_roles, primary_backup_roles

__all__ = ["DEFAULT_GROUP", "DEFAULT_MACHINE", "PAXOS_APP", "SECTION"]

SECTION = "replicated"
"""The section's key in a node's TOML file."""

DEFAULT_GROUP = "kv"
"""The group name of a ``[[replicated]]`` section that gives none."""

DEFAULT_MACHINE = "actorfw.kv.machine:KVStateMachine"
"""The state machine of a ``[[replicated]]`` section that gives none: the KV store."""

PAXOS_APP = "actorfw.services.paxos"
"""The module of the Multi-Paxos role actors, added to ``apps`` by ``[[replicated]]``."""

PRIMARY_BACKUP_APP = "actorfw.services.primary_backup"
"""The module of the primary-backup actors, added to ``apps`` by a primary-backup section."""

_REPLICATED_KEYS = (
    "name",
    "machine",
    "nodes",
    "leader",
    "replica",
    "replication",
    "lease",
    "views",
    "primary",
    "member",
)
_PRIMARY_BACKUP_KEYS = ("lease", "views", "primary", "member")


def _replicated_roots(context: SectionContext, sections: Any) -> list[RootSpec]:
    """The top-level actors of every ``[[replicated]]`` section; adds their modules to ``apps``."""
    path, node, peers, apps = context.path, context.node, context.peers, context.apps
    if not isinstance(sections, list) or not all(isinstance(s, dict) for s in sections):
        raise ValueError(
            f"{path}: 'replicated' must be an array of tables: write each group as [[replicated]]"
        )
    roots: list[RootSpec] = []
    groups: dict[str, int] = {}
    for number, section in enumerate(sections, start=1):
        where = f"{path}: [[replicated]] #{number}"
        unknown = sorted(set(section) - set(_REPLICATED_KEYS))
        if unknown:
            raise ValueError(
                f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(k) for k in unknown)} (known: {', '.join(_REPLICATED_KEYS)})"
            )
        group = section.get("name", DEFAULT_GROUP)
        if not isinstance(group, str) or not group or "/" in group or group.startswith("$"):
            raise ValueError(
                f"{where}: name must be a non-empty string without '/', not starting with '$' "
                f"(it prefixes the group's actor names), not {group!r}"
            )
        where = f'{where} (name = "{group}")'
        if group in groups:
            raise ValueError(f"{where}: the group {group!r} is also section #{groups[group]}")
        groups[group] = number
        machine, module = _machine(where, section.get("machine", DEFAULT_MACHINE))
        members = _members(where, section.get("nodes"), node, peers)

        leader = _options(where, "leader", LeaderOptions, section.get("leader"))
        replica = _options(where, "replica", ReplicaOptions, section.get("replica"))
        replication = section.get("replication", "paxos")
        if replication not in REPLICATION:
            raise ValueError(
                f"{where}: replication is one of {', '.join(map(repr, REPLICATION))}, "
                f"not {replication!r}"
            )
        placed: list[tuple[type[Any], tuple[Any, ...], str]]
        if replication == "paxos":
            stray = [k for k in _PRIMARY_BACKUP_KEYS if k in section]
            if stray:
                raise ValueError(
                    f"{where}: {', '.join(map(repr, stray))} only apply with replication = "
                    '"primary-backup"'
                )
            group_apps = [PAXOS_APP, module]
            placed = group_roles(group, members, machine, leader, replica)
        else:
            lease = section.get("lease", 1.0)
            if not (isinstance(lease, int | float) and not isinstance(lease, bool) and lease > 0):
                raise ValueError(f"{where}: lease must be a positive number of seconds")
            views = _members(f"{where}: views", section.get("views"), node, peers, member=False)
            primary = _options(where, "primary", PrimaryOptions, section.get("primary"))
            table = section.get("member")
            if isinstance(table, dict) and "primary" in table:
                raise ValueError(
                    f"{where}: member: the primary's options go in [replicated.primary]"
                )
            member = _options(where, "member", MemberOptions, table) or MemberOptions()
            try:
                options = dataclasses.replace(member, primary=primary) if primary else member
            except ValueError as error:
                raise ValueError(f"{where}: primary: {error}") from None
            group_apps = [PAXOS_APP, PRIMARY_BACKUP_APP, module]
            try:
                roles = primary_backup_roles(
                    group, members, machine, options, float(lease), views, leader, replica
                )
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
            placed = [(cls, args, name) for at, cls, args, name in roles if at == node]
        for app in group_apps:
            if app not in apps:
                apps.append(app)
        roots.extend(RootSpec(actor_path(cls), name, args) for cls, args, name in placed)
    return roots


def _machine(where: str, value: Any) -> tuple[str, str]:
    """Check a ``module:QualName`` state machine path by importing it; (path, module)."""
    if not isinstance(value, str):
        raise ValueError(f"{where}: machine must be a 'module:QualName' string, not {value!r}")
    module_name, colon, qualname = value.partition(":")
    dotted = [*module_name.split("."), *qualname.split(".")]
    if not colon or not all(part.isidentifier() for part in dotted):
        raise ValueError(
            f"{where}: machine {value!r} is not 'module:QualName' (e.g. {DEFAULT_MACHINE!r})"
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"{where}: machine {value!r}: cannot import {module_name} ({error}); install the "
            "application on this node or put it on PYTHONPATH"
        ) from None
    for part in qualname.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{where}: machine {value!r}: module {module_name} has no {qualname}")
        target = getattr(target, part)
    if not isinstance(target, type) or not callable(getattr(target, "apply", None)):
        raise ValueError(
            f"{where}: machine {value!r} is not a state machine class (a class with "
            "apply(operation))"
        )
    return value, module_name


def _members(
    where: str, value: Any, node: str, peers: dict[str, str], member: bool = True
) -> list[str]:
    """The group's members: as listed, or this node and its peers sorted by name.

    ``member``: this node must be one of them.
    """
    known = {node, *peers}
    if value is None:
        return sorted(known)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where}: nodes must be a list of node names, not {value!r}")
    if not value:
        raise ValueError(f"{where}: nodes is empty; list the group's members")
    doubled = sorted({v for v in value if value.count(v) > 1})
    if doubled:
        raise ValueError(f"{where}: nodes lists {', '.join(doubled)} more than once")
    if member and node not in value:
        raise ValueError(
            f"{where}: nodes {value} does not include this node ({node}): a node runs only "
            "the groups it is a member of"
        )
    strangers = [v for v in value if v not in known]
    if strangers:
        raise ValueError(
            f"{where}: nodes {', '.join(strangers)} {'is' if len(strangers) == 1 else 'are'} "
            "neither this node nor one of its [peers]"
        )
    try:
        Config.colocated(value)
    except ValueError as error:
        raise ValueError(f"{where}: nodes: {error}") from None
    return list(value)


_Options = TypeVar("_Options", LeaderOptions, ReplicaOptions, PrimaryOptions, MemberOptions)


def _options(where: str, key: str, cls: type[_Options], table: Any) -> _Options | None:
    """An options dataclass from a TOML table (None: the table is absent)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ValueError(
            f"{where}: {key} must be a table of {cls.__name__} fields ([replicated.{key}])"
        )
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    values: dict[str, Any] = {}
    for name, value in table.items():
        if name not in fields:
            raise ValueError(
                f"{where}: {key}: unknown option {name!r} ({cls.__name__} has: {', '.join(fields)})"
            )
        values[name] = _option_value(f"{where}: {key}.{name}", hints[name], value)
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{where}: {key}: {error}") from None


def _option_value(where: str, hint: Any, value: Any) -> Any:
    """``value`` as the type ``hint`` of an options field; ``false`` stands for None."""
    arguments = typing.get_args(hint)
    if type(None) in arguments:
        if value is False:
            return None
        others = [a for a in arguments if a is not type(None)]
        hint = others[0] if len(others) == 1 else hint
        where = f"{where} (false: none)"
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(hint, type):
        ok = isinstance(value, hint)
    else:  # a field of a shape TOML does not name: its own checks decide
        ok = True
    if not ok:
        raise ValueError(f"{where} must be {_HINT_WORDS.get(hint, hint)}, not {value!r}")
    return value


_HINT_WORDS: dict[Any, str] = {bool: "true or false", int: "an integer", float: "a number"}


register_section(SECTION, _replicated_roots)
