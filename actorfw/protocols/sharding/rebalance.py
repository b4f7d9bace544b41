"""Placing shards on replica groups: balanced, moving as few shards as possible, deterministic.

:func:`rebalance` takes where the shards are (a group name per shard, or
``None`` for an unassigned shard) and the groups there now are, and returns
where they should be.

Theory of operation
-------------------

1. **Targets.** Each group's share is ``shards * weight / total weight``
   (every weight 1 by default). A group gets the whole part of its share,
   and the shards left over go one each: first to groups that hold more
   shards now than that whole part (each then keeps one more in place),
   then to the largest remainders, then to the group that holds the most,
   then to the first by name. So each count is the floor or the ceiling of
   its exact share (without weights: the counts differ by at most one).
2. **Fewest moves.** A group keeps up to its target of the shards it holds
   (its lowest-numbered ones); the rest, and the shards of groups that are
   gone or of no group, are free; free shards go, lowest-numbered first, to
   the groups below their targets, the group furthest below first (then by
   name). A shard moves only if its group is gone or holds more than its
   target, and every group ends on its target, so no placement with these
   targets moves fewer shards; and rule 1 gives the leftover shards where
   they keep a shard in place, so no other balanced targets keep more.
3. **Determinism.** The result depends only on the shards' current groups,
   the set of groups and the weights, never on the order of a dict or a set
   (groups are sorted by name wherever an order is needed), so every
   replica of the shard manager computes the same placement.
4. **Edges.** More groups than shards leaves some groups with none (those
   with the fewest, then last by name); no groups leaves every shard
   unassigned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

__all__ = ["rebalance", "targets"]


def _check_weights(groups: list[str], weights: Mapping[str, int] | None) -> dict[str, int]:
    if weights is None:
        return dict.fromkeys(groups, 1)
    unknown = sorted(set(weights) - set(groups))
    if unknown:
        raise ValueError(f"weights for groups that are not joined: {unknown}")
    chosen = {}
    for group in groups:
        weight = weights.get(group, 1)
        if type(weight) is not int or weight < 1:
            raise ValueError(f"the weight of group {group!r} must be an int >= 1, not {weight!r}")
        chosen[group] = weight
    return chosen


def targets(
    shards: int,
    groups: Iterable[str],
    held: Mapping[str, int] | None = None,
    weights: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """How many shards each group should hold (rule 1).

    Args:
        shards: how many shards there are.
        groups: the groups.
        held: how many shards each group holds now (ties go to the larger).
        weights: each group's weight, an int >= 1 (default 1).
    """
    names = sorted(set(groups))
    if not names:
        return {}
    chosen = _check_weights(names, weights)
    total = sum(chosen.values())
    counts = held or {}
    exact = {g: Fraction(shards * chosen[g], total) for g in names}
    out = {g: int(exact[g]) for g in names}  # the whole part of each share
    left = shards - sum(out.values())
    by_claim = sorted(
        names,
        key=lambda g: (counts.get(g, 0) <= out[g], -(exact[g] - out[g]), -counts.get(g, 0), g),
    )
    for group in by_claim[:left]:
        out[group] += 1
    return out


def rebalance(
    current: Sequence[str | None],
    groups: Iterable[str],
    weights: Mapping[str, int] | None = None,
) -> tuple[str | None, ...]:
    """Where each shard should be: balanced, fewest moves, the same everywhere (the rules above).

    Args:
        current: each shard's group now (``None``: unassigned).
        groups: the groups that exist now (those of ``current`` that are
            missing here are gone).
        weights: each group's weight, an int >= 1 (default 1 each).

    Returns:
        each shard's group after rebalancing (``None`` only when there are
        no groups).

    Raises:
        ValueError: a weight is not an int >= 1, or names a group not in ``groups``.
    """
    names = sorted(set(groups))
    if not names:
        _check_weights(names, weights)
        return (None,) * len(current)
    held: dict[str, list[int]] = {g: [] for g in names}
    free: list[int] = []
    for shard, group in enumerate(current):
        if group in held:
            held[group].append(shard)
        else:
            free.append(shard)
    goal = targets(len(current), names, {g: len(s) for g, s in held.items()}, weights)
    placed: list[str | None] = list(current)
    for group in names:
        extra = held[group][goal[group] :]  # keep the lowest-numbered, free the rest
        free.extend(extra)
        del held[group][goal[group] :]
    free.sort()
    wanting = sorted(names, key=lambda g: (len(held[g]) - goal[g], g))
    at = 0
    for group in wanting:
        need = goal[group] - len(held[group])
        for shard in free[at : at + need]:
            placed[shard] = group
        at += max(need, 0)
    return tuple(placed)
