"""The shard manager's state machine: a numbered sequence of configurations.

A :class:`Configuration` maps each of a fixed number of shards to a replica
group and lists each group's member nodes. The shard manager keeps the
sequence of them, numbered from 0 (no groups, every shard unassigned), and
makes the next one on every change. It is deterministic
(:class:`~actorfw.protocols.paxos.StateMachine`), so replicated with
:func:`~actorfw.replicate` every replica holds the same sequence.

Operations are lists, as for the key-value machine; a malformed or refused
operation returns ``["error", text]`` and changes nothing (every replica
refuses it the same way):

===================================  ==============================================
operation                            result
===================================  ==============================================
``["join", {group: [node, ...]}]``   the new configuration; the groups joined (or
``["join", groups, {group: w}]``     their members replaced, if present) with
                                     optional weights, and the shards rebalanced
``["leave", [group, ...]]``          the new configuration; the groups gone and
                                     their shards rebalanced onto the others
``["move", shard, group]``           the new configuration; that one shard moved
``["query", n]``                     configuration ``n``; ``-1`` (or ``None``):
                                     the latest
``["oldest"]``                       the oldest configuration still kept
===================================  ==============================================

A configuration travels as a dict: ``{"num": n, "shards": [group or None,
...], "groups": {group: [node, ...]}, "weights": {group: w}, "holders":
[[shard, group, k, [node, ...]], ...]}``. ``holders`` lists, for each shard
no group owns, the group that gave it away last, at configuration ``k``,
and that group's nodes then: where its data waits for its next owner (see
:mod:`actorfw.protocols.sharding.group`).

Rules:

1. Rebalancing is :func:`~actorfw.protocols.sharding.rebalance.rebalance`:
   balanced, fewest shards moved, the same on every replica.
2. A ``move`` is kept by later rebalances only as far as balance allows:
   the next join or leave rebalances from where the shards are, moving as
   few as it can, so a moved shard stays put unless its group then holds
   more than its share.
3. Refused, with nothing changed: a join with no groups, or a group with no
   members, a member that is not a non-empty ``str``; a leave of a group
   that is not joined; a move of a shard out of range or to a group not
   joined; a query of a configuration that does not exist yet, or that was
   forgotten.
4. Bounds: the manager keeps the last ``history`` configurations (1,000 by
   default); older ones are forgotten and a query for one is refused,
   saying so. A group started after that (it owns no shard in the oldest
   configuration kept) starts from the oldest one kept (``oldest``); a
   group that owned shards and fell further behind than that cannot catch
   up (see ``docs/sharding.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from actorfw.protocols.sharding.keys import MAX_SHARDS
from actorfw.protocols.sharding.rebalance import rebalance

__all__ = ["Configuration", "ShardManagerMachine", "ShardingError"]


class ShardingError(ValueError):
    """A shard-manager operation that is malformed or not allowed (rule 3)."""


@dataclass(frozen=True)
class Configuration:
    """Configuration number ``num``: each shard's group, each group's nodes, and weights.

    Attributes:
        num: its number in the sequence (0: no groups).
        shards: each shard's group (``None``: unassigned).
        groups: each group's member nodes.
        weights: each group's weight (groups not named weigh 1).
        holders: for each unassigned shard whose data a group keeps, that
            group, the configuration that took the shard from it, and its
            nodes then.
    """

    num: int
    shards: tuple[str | None, ...]
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    weights: Mapping[str, int] = field(default_factory=dict)
    holders: Mapping[int, tuple[str, int, tuple[str, ...]]] = field(default_factory=dict)

    def group_of(self, shard: int) -> str | None:
        """The group that owns ``shard`` in this configuration (None: unassigned)."""
        return self.shards[shard]

    def shards_of(self, group: str) -> tuple[int, ...]:
        """The shards ``group`` owns in this configuration."""
        return tuple(s for s, g in enumerate(self.shards) if g == group)

    def to_value(self) -> dict[str, Any]:
        """The configuration as a message value (see the module documentation)."""
        return {
            "num": self.num,
            "shards": list(self.shards),
            "groups": {g: list(nodes) for g, nodes in sorted(self.groups.items())},
            "weights": dict(sorted(self.weights.items())),
            "holders": [
                [s, g, k, list(nodes)] for s, (g, k, nodes) in sorted(self.holders.items())
            ],
        }

    @classmethod
    def from_value(cls, value: Any) -> Configuration:
        """The configuration a :meth:`to_value` dict stands for.

        Raises:
            ShardingError: ``value`` is not such a dict.
        """
        try:
            num, shards, groups = value["num"], value["shards"], value["groups"]
            weights = value.get("weights", {})
            holders = value.get("holders", [])
            config = cls(
                int(num),
                tuple(shards),
                {str(g): tuple(str(n) for n in nodes) for g, nodes in groups.items()},
                {str(g): int(w) for g, w in weights.items()},
                {int(s): (str(g), int(k), tuple(str(n) for n in ns)) for s, g, k, ns in holders},
            )
            if not all(g is None or type(g) is str for g in config.shards):
                raise ValueError("a shard's group is a str or None")
            if any(g is not None and g not in config.groups for g in config.shards):
                raise ValueError("a shard is placed on a group it does not list")
            if any(not 0 <= s < len(config.shards) for s in config.holders):
                raise ValueError("a holder is named for a shard that does not exist")
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ShardingError(f"not a configuration: {value!r} ({error})") from None
        return config


def _members(group: Any, nodes: Any) -> tuple[str, ...]:
    if not isinstance(group, str) or not group:
        raise ShardingError(f"a group is named by a non-empty str, not {group!r}")
    if not isinstance(nodes, list | tuple) or not nodes:
        raise ShardingError(f"group {group!r} needs at least one member node, not {nodes!r}")
    if not all(isinstance(n, str) and n for n in nodes):
        raise ShardingError(f"group {group!r}: member nodes are non-empty strs, not {nodes!r}")
    if len(set(nodes)) != len(nodes):
        raise ShardingError(f"group {group!r} names a member twice: {list(nodes)}")
    return tuple(nodes)


class ShardManagerMachine:
    """The shard manager as a deterministic state machine (see the module documentation).

    Args:
        shards: the number of shards, fixed when the cluster is made (1 to
            :data:`~actorfw.protocols.sharding.keys.MAX_SHARDS`).
        history: configurations kept at most (rule 4).
    """

    def __init__(self, shards: int = 64, history: int = 1000) -> None:
        if type(shards) is not int or not 1 <= shards <= MAX_SHARDS:
            raise ValueError(f"shards must be an int from 1 to {MAX_SHARDS}, not {shards!r}")
        if type(history) is not int or history < 1:
            raise ValueError(f"history must be an int >= 1, not {history!r}")
        self.history = history
        self.configs: list[Configuration] = [Configuration(0, (None,) * shards)]

    @property
    def latest(self) -> Configuration:
        """The latest configuration."""
        return self.configs[-1]

    def apply(self, operation: Any) -> Any:
        """Apply one operation; its result, or ``["error", text]`` (nothing changed)."""
        try:
            return self._apply(operation)
        except ShardingError as error:
            return ["error", str(error)]

    def _apply(self, operation: Any) -> Any:
        if not isinstance(operation, list | tuple) or not operation:
            raise ShardingError(f"an operation is [name, ...], not {operation!r}")
        name, args = operation[0], list(operation[1:])
        handler = _OPERATIONS.get(name) if isinstance(name, str) else None
        if handler is None:
            raise ShardingError(
                f"the shard manager has no operation {name!r}; it knows {', '.join(_OPERATIONS)}"
            )
        return handler(self, *_arity(name, args))

    # -- operations -----------------------------------------------------------------

    def join(self, groups: Any, weights: Any = None) -> dict[str, Any]:
        """Join ``groups`` (``{group: [node, ...]}``), replacing the members of present ones."""
        if not isinstance(groups, Mapping) or not groups:
            raise ShardingError(
                f"join takes {{group: [node, ...]}} with one group or more, not {groups!r}"
            )
        latest = self.latest
        members = dict(latest.groups)
        for group, nodes in groups.items():
            members[group] = _members(group, nodes)
        new_weights = dict(latest.weights)
        if weights is not None:
            if not isinstance(weights, Mapping):
                raise ShardingError(f"weights are {{group: int}}, not {weights!r}")
            for group, weight in weights.items():
                if group not in groups:
                    raise ShardingError(f"a weight for {group!r}, which this join does not name")
                if type(weight) is not int or weight < 1:
                    raise ShardingError(
                        f"the weight of {group!r} must be an int >= 1, not {weight!r}"
                    )
                new_weights[group] = weight
        return self._next(members, new_weights, rebalance(latest.shards, members, new_weights))

    def leave(self, groups: Any) -> dict[str, Any]:
        """Remove ``groups``; their shards go to the others."""
        if not isinstance(groups, list | tuple) or not groups:
            raise ShardingError(f"leave takes [group, ...] with one group or more, not {groups!r}")
        latest = self.latest
        unknown = [g for g in groups if g not in latest.groups]
        if unknown:
            raise ShardingError(
                f"leave of groups that are not joined: {unknown} "
                f"(joined: {sorted(latest.groups) or 'none'})"
            )
        members = {g: n for g, n in latest.groups.items() if g not in groups}
        weights = {g: w for g, w in latest.weights.items() if g in members}
        return self._next(members, weights, rebalance(latest.shards, members, weights))

    def move(self, shard: Any, group: Any) -> dict[str, Any]:
        """Move one shard to ``group`` (rule 2)."""
        latest = self.latest
        if type(shard) is not int or not 0 <= shard < len(latest.shards):
            raise ShardingError(
                f"shard {shard!r} does not exist: shards are 0 .. {len(latest.shards) - 1}"
            )
        if group not in latest.groups:
            raise ShardingError(
                f"move to group {group!r}, which is not joined "
                f"(joined: {sorted(latest.groups) or 'none'})"
            )
        shards = list(latest.shards)
        shards[shard] = group
        return self._next(dict(latest.groups), dict(latest.weights), tuple(shards))

    def oldest(self) -> dict[str, Any]:
        """The oldest configuration still kept (rule 4), as a message value."""
        return self.configs[0].to_value()

    def is_read_only(self, operation: Any) -> bool:
        """``query`` and ``oldest`` only read (a leader's lease may serve them)."""
        return isinstance(operation, list | tuple) and operation[:1] in (
            ["query"],
            ["oldest"],
            ("query",),
            ("oldest",),
        )

    def query(self, operation: Any) -> Any:
        """Run a read-only operation (``query``, ``oldest``); what :meth:`apply` would return."""
        return self.apply(operation)

    def configuration(self, num: Any = -1) -> dict[str, Any]:
        """Configuration ``num`` (-1 or None: the latest) as a message value (``query``)."""
        latest = self.latest.num
        if num is None or num == -1:
            return self.latest.to_value()
        if type(num) is not int or num < 0:
            raise ShardingError(f"a configuration number is an int >= 0 (or -1), not {num!r}")
        if num > latest:
            raise ShardingError(f"configuration {num} does not exist yet: the latest is {latest}")
        first = self.configs[0].num
        if num < first:
            raise ShardingError(
                f"configuration {num} was forgotten: the manager keeps the last "
                f"{self.history} ({first} .. {latest})"
            )
        return self.configs[num - first].to_value()

    # -- snapshots ------------------------------------------------------------------

    def snapshot(self) -> Any:
        """The whole state as a message value."""
        return {"history": self.history, "configs": [c.to_value() for c in self.configs]}

    def restore(self, snapshot: Any) -> None:
        """Replace the state with one :meth:`snapshot` returned."""
        self.history = int(snapshot["history"])
        self.configs = [Configuration.from_value(c) for c in snapshot["configs"]]

    def _next(
        self,
        groups: Mapping[str, tuple[str, ...]],
        weights: Mapping[str, int],
        shards: Sequence[str | None],
    ) -> dict[str, Any]:
        latest = self.latest
        num = latest.num + 1
        holders = {}
        for shard, (old, new) in enumerate(zip(latest.shards, shards, strict=True)):
            if new is not None:
                continue
            if old is not None:
                holders[shard] = (old, num, tuple(latest.groups[old]))
            elif shard in latest.holders:
                holders[shard] = latest.holders[shard]
        config = Configuration(num, tuple(shards), dict(groups), dict(weights), holders)
        self.configs.append(config)
        if len(self.configs) > self.history:
            del self.configs[: len(self.configs) - self.history]
        return config.to_value()


_ARITY = {"join": (1, 2), "leave": (1, 1), "move": (2, 2), "query": (0, 1), "oldest": (0, 0)}

_OPERATIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "join": ShardManagerMachine.join,
    "leave": ShardManagerMachine.leave,
    "move": ShardManagerMachine.move,
    "query": ShardManagerMachine.configuration,
    "oldest": ShardManagerMachine.oldest,
}


def _arity(name: str, args: list[Any]) -> list[Any]:
    low, high = _ARITY[name]
    if not low <= len(args) <= high:
        wanted = f"{low}" if low == high else f"{low} or {high}"
        raise ShardingError(f"{name} takes {wanted} arguments, not {len(args)}: {args!r}")
    return args
