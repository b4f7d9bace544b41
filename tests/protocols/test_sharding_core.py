"""Sharding's sans-IO pieces: keys to shards, rebalancing, the shard manager's machine."""

from __future__ import annotations

import itertools
import math
import random
import subprocess
import sys
from collections import Counter
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actorfw.protocols.sharding import (
    Configuration,
    ShardManagerMachine,
    rebalance,
    shard_of,
    targets,
)

# -- keys to shards ---------------------------------------------------------------------


def test_a_keys_shard_is_fixed_forever() -> None:
    # Part of the wire contract: these must never change.
    assert [shard_of(k, 64) for k in ("user:42", "", "ключ")] == [54, 30, 49]
    assert (shard_of(b"x", 64), shard_of(7, 64), shard_of(7, 10)) == (50, 21, 3)


def test_a_keys_shard_is_the_same_in_another_process_whatever_its_hash_seed() -> None:
    code = "from actorfw.protocols.sharding import shard_of; print(shard_of('user:42', 64))"
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.strip() == "54"


def test_keys_spread_evenly_over_shards() -> None:
    counts = Counter(shard_of(f"key-{i}", 16) for i in range(16_000))
    assert len(counts) == 16 and max(counts.values()) < 1.1 * 1000


@pytest.mark.parametrize(
    ("key", "shards", "error"),
    [
        (True, 8, TypeError),
        (1.5, 8, TypeError),
        (None, 8, TypeError),
        ("k", 0, ValueError),
        ("k", 65_537, ValueError),
        ("k", 8.0, ValueError),
    ],
)
def test_bad_keys_and_shard_counts_are_refused(key: Any, shards: Any, error: type) -> None:
    with pytest.raises(error):
        shard_of(key, shards)


# -- rebalance: table ---------------------------------------------------------------------

A, B, C, D = "a", "b", "c", "d"


@pytest.mark.parametrize(
    ("current", "groups", "weights", "expected"),
    [
        # first join: every shard free
        ((None,) * 4, [A], None, (A, A, A, A)),
        ((None,) * 4, [B, A], None, (A, A, B, B)),
        # a join takes from each the fewest needed
        ((A, A, A, A, A, A), [A, B], None, (A, A, A, B, B, B)),
        ((A, A, A, B, B, B), [A, B, C], None, (A, A, C, B, B, C)),
        # a leave hands its shards to the others only
        ((A, A, C, B, B, C), [A, B], None, (A, A, A, B, B, B)),
        # leave of every group: unassigned
        ((A, B, A), [], None, (None, None, None)),
        # more groups than shards: the ones holding shards keep them
        ((A, B), [A, B, C, D], None, (A, B)),
        ((None, None), [D, C, B, A], None, (A, B)),
        # an odd count: the leftover shard stays with the group holding it
        ((A, A, B, B, B), [A, B], None, (A, A, B, B, B)),
        # weights in proportion
        ((None,) * 6, [A, B], {A: 2}, (A, A, A, A, B, B)),
        ((A, A, A, B, B, B), [A, B], {B: 2}, (A, A, B, B, B, B)),
        # a moved shard stays put while balance allows
        ((A, B, A, B, C, C), [A, B, C], None, (A, B, A, B, C, C)),
    ],
)
def test_rebalance_table(
    current: tuple[str | None, ...], groups: list[str], weights: Any, expected: tuple[Any, ...]
) -> None:
    assert rebalance(current, groups, weights) == expected


def test_bad_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="not joined"):
        rebalance((None,) * 4, [A], {B: 1})
    with pytest.raises(ValueError, match="int >= 1"):
        rebalance((None,) * 4, [A], {A: 0})


# -- rebalance: properties ----------------------------------------------------------------

names = st.sampled_from(["g1", "g2", "g3", "g4", "g5", "g6"])


@st.composite
def placements(draw: st.DrawFn) -> tuple[tuple[str | None, ...], list[str], dict[str, int] | None]:
    shards = draw(st.integers(1, 40))
    current = tuple(draw(st.lists(st.none() | names, min_size=shards, max_size=shards)))
    groups = draw(st.lists(names, unique=True, max_size=6))
    weights = None
    if groups and draw(st.booleans()):
        weights = {g: draw(st.integers(1, 4)) for g in groups}
    return current, groups, weights


@given(placements())
def test_every_shard_lands_on_a_group_and_the_counts_meet_their_targets(
    case: tuple[tuple[str | None, ...], list[str], dict[str, int] | None],
) -> None:
    current, groups, weights = case
    placed = rebalance(current, groups, weights)
    if not groups:
        assert placed == (None,) * len(current)
        return
    assert all(g in groups for g in placed)
    counts = Counter(placed)
    goal = targets(len(current), groups, Counter(g for g in current if g in groups), weights)
    assert {g: counts.get(g, 0) for g in groups} == goal
    total = sum((weights or {}).get(g, 1) for g in groups)
    for g in groups:  # within one of the exact share
        share = len(current) * (weights or {}).get(g, 1) / total
        assert abs(counts.get(g, 0) - share) < 1
    if weights is None:
        assert max(counts.get(g, 0) for g in groups) - min(counts.get(g, 0) for g in groups) <= 1


@given(placements())
def test_no_balanced_placement_moves_fewer_shards(
    case: tuple[tuple[str | None, ...], list[str], dict[str, int] | None],
) -> None:
    current, groups, weights = case
    placed = rebalance(current, groups, weights)
    moved = sum(1 for before, after in zip(current, placed, strict=True) if before != after)
    if not groups:
        return
    # The fewest possible: a shard must move if its group is gone; a group above any
    # balanced target must give up its excess; and targets are chosen to keep the most.
    held = Counter(g for g in current if g in groups)
    goal = targets(len(current), groups, held, weights)
    forced = sum(1 for g in current if g not in groups) + sum(
        max(0, held[g] - goal[g]) for g in groups
    )
    assert moved == forced
    # and no other balanced targets (each count the floor or the ceiling of its exact
    # share, summing to the shards) keep more shards in place
    total = sum((weights or {}).get(g, 1) for g in groups)
    shares = {g: Fraction(len(current) * (weights or {}).get(g, 1), total) for g in groups}
    choices = [sorted({math.floor(shares[g]), math.ceil(shares[g])}) for g in groups]
    kept = sum(min(held[g], goal[g]) for g in groups)
    for option in itertools.product(*choices):
        if sum(option) == len(current):
            assert kept >= sum(min(held[g], t) for g, t in zip(groups, option, strict=True))


@given(placements(), st.randoms(use_true_random=False))
def test_the_result_does_not_depend_on_the_order_of_groups_or_weights(
    case: tuple[tuple[str | None, ...], list[str], dict[str, int] | None], rnd: random.Random
) -> None:
    current, groups, weights = case
    shuffled = list(groups)
    rnd.shuffle(shuffled)
    reweights = (
        None if weights is None else dict(sorted(weights.items(), key=lambda _: rnd.random()))
    )
    assert rebalance(current, shuffled, reweights) == rebalance(current, groups, weights)
    assert rebalance(current, set(groups), weights) == rebalance(current, groups, weights)


# -- the shard manager ----------------------------------------------------------------------


def _config(result: Any) -> Configuration:
    assert not (isinstance(result, list) and result[:1] == ["error"]), result
    return Configuration.from_value(result)


def test_joins_leaves_and_moves_make_numbered_configurations() -> None:
    manager = ShardManagerMachine(shards=8)
    first = _config(manager.apply(["join", {"g1": ["n1", "n2", "n3"]}]))
    assert first.num == 1 and set(first.shards) == {"g1"}
    second = _config(manager.apply(["join", {"g2": ["n4"]}]))
    assert Counter(second.shards) == {"g1": 4, "g2": 4}
    moved = _config(manager.apply(["move", 0, "g2"]))
    assert moved.num == 3 and moved.group_of(0) == "g2"
    left = _config(manager.apply(["leave", ["g1"]]))
    assert set(left.shards) == {"g2"} and left.groups == {"g2": ("n4",)}
    assert _config(manager.apply(["query", 2])) == second
    assert _config(manager.apply(["query"])) == left
    assert _config(manager.apply(["query", -1])) == left


def test_a_join_of_a_present_group_replaces_its_members_and_moves_nothing() -> None:
    manager = ShardManagerMachine(shards=4)
    before = _config(manager.apply(["join", {"g1": ["n1"], "g2": ["n2"]}]))
    after = _config(manager.apply(["join", {"g1": ["n1", "n5"]}]))
    assert after.shards == before.shards and after.groups["g1"] == ("n1", "n5")


@pytest.mark.parametrize(
    ("operation", "says"),
    [
        (["join", {}], "one group or more"),
        (["join", {"g9": []}], "at least one member"),
        (["join", {"g9": ["n1", "n1"]}], "names a member twice"),
        (["join", {"g9": [""]}], "non-empty strs"),
        (["join", {"g9": ["n1"]}, {"g8": 2}], "does not name"),
        (["join", {"g9": ["n1"]}, {"g9": 0}], "int >= 1"),
        (["leave", ["g9"]], "not joined"),
        (["leave", []], "one group or more"),
        (["move", 8, "g1"], "does not exist"),
        (["move", 0, "g9"], "not joined"),
        (["query", 99], "does not exist yet"),
        (["query", "1"], "int >= 0"),
        (["split", 1], "no operation 'split'"),
        (["move", 1], "takes 2 arguments"),
        ("join", "an operation is"),
    ],
)
def test_bad_operations_are_refused_and_change_nothing(operation: Any, says: str) -> None:
    manager = ShardManagerMachine(shards=8)
    manager.apply(["join", {"g1": ["n1"]}])
    before = manager.snapshot()
    result = manager.apply(operation)
    assert result[0] == "error" and says in result[1], result
    assert manager.snapshot() == before


def test_old_configurations_are_forgotten_past_the_bound_and_said_so() -> None:
    manager = ShardManagerMachine(shards=2, history=3)
    for n in range(5):
        manager.apply(["join", {f"g{n}": ["n1"]}])
    assert len(manager.configs) == 3
    result = manager.apply(["query", 1])
    assert result[0] == "error" and "forgotten" in result[1]
    assert _config(manager.apply(["query", 5])).num == 5


def test_a_snapshot_restores_the_same_sequence() -> None:
    manager = ShardManagerMachine(shards=8)
    manager.apply(["join", {"g1": ["n1"], "g2": ["n2"]}, {"g2": 3}])
    manager.apply(["move", 1, "g1"])
    copy = ShardManagerMachine(shards=8)
    copy.restore(manager.snapshot())
    assert copy.snapshot() == manager.snapshot()
    assert copy.apply(["join", {"g3": ["n3"]}]) == manager.apply(["join", {"g3": ["n3"]}])


def test_every_replica_computes_the_same_configurations_whatever_the_dict_order() -> None:
    one, two = ShardManagerMachine(shards=16), ShardManagerMachine(shards=16)
    one.apply(["join", {"g1": ["n1"], "g2": ["n2"], "g3": ["n3"]}])
    two.apply(["join", {"g3": ["n3"], "g1": ["n1"], "g2": ["n2"]}])
    assert one.snapshot() == two.snapshot()
