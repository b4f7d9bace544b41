"""A replica group's sharded machine: serving, fencing, handing shards over (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from actorfw.kv.sharded import ShardedKV
from actorfw.protocols.sharding import Configuration, ShardManagerMachine, next_actions, shard_of

SHARDS = 4
A = ["n1", "n2", "n3"]
B = ["n4", "n5", "n6"]


def configs(*ops: list[Any]) -> list[dict[str, Any]]:
    """The configurations a shard manager makes from ``ops`` (1, 2, ...)."""
    manager = ShardManagerMachine(shards=SHARDS)
    out = []
    for op in ops:
        result = manager.apply(op)
        assert isinstance(result, dict), result
        out.append(result)
    return out


def op(client: str, seq: int, kv: list[Any]) -> list[Any]:
    """A client's KV operation, routed by its key's shard."""
    return ["op", client, shard_of(kv[1], SHARDS), seq, kv]


X = shard_of("x", SHARDS)


def key_on(shard: int, start: int = 0) -> str:
    """A key of ``shard``."""
    return next(f"k{i}" for i in range(start, 10_000) if shard_of(f"k{i}", SHARDS) == shard)


def status(group: ShardedKV) -> dict[str, Any]:
    result = group.apply(["status"])
    assert result[0] == "status"
    return result[1]


def hand_over(source: ShardedKV, target: ShardedKV) -> None:
    """What the target's mover does: pull every shard it waits for, then confirm deletes."""
    for action in next_actions(status(target)):
        if action[0] == "pull":
            _, _, _, num, shard = action
            exported = source.apply(["export", num, shard])
            assert exported[0] == "shard", exported
            assert target.apply(["install", num, shard, exported[1]])[0] == "installed"
    for action in next_actions(status(target)):
        if action[0] == "delete":
            _, _, _, num, shard = action
            assert source.apply(["delete", num, shard])[0] == "deleted"
            assert target.apply(["confirmed", num, shard]) == ["confirmed", target.config.num]


@pytest.fixture
def two_groups() -> tuple[ShardedKV, ShardedKV, list[dict[str, Any]]]:
    """Group a owns every shard (configuration 1); b joins (configuration 2, not yet taken)."""
    a, b = ShardedKV("a", SHARDS), ShardedKV("b", SHARDS)
    made = configs(["join", {"a": A}], ["join", {"b": B}])
    for group in (a, b):
        assert group.apply(["config", made[0]]) == ["taken", 1]
    return a, b, made


def test_a_group_serves_the_shards_it_owns_and_sends_others_to_their_group(two_groups) -> None:
    a, b, _ = two_groups
    assert a.apply(op("c", 1, ["put", "x", 1])) == ["ok", None]
    assert a.apply(op("c", 2, ["get", "x"])) == ["ok", 1]
    assert b.apply(op("c", 1, ["get", "x"])) == ["wrong_group", 1]


def test_a_retried_operation_gets_its_first_answer_and_runs_once(two_groups) -> None:
    a, _, _ = two_groups
    assert a.apply(op("c", 1, ["append", "x", "y"])) == ["ok", "y"]
    assert a.apply(op("c", 1, ["append", "x", "y"])) == ["ok", "y"]
    assert a.apply(op("c", 2, ["get", "x"])) == ["ok", "y"]
    # A number below the last is a client's bug: refused, nothing runs.
    assert a.apply(op("c", 1, ["append", "x", "z"]))[0] == "error"
    # A client without a session whose number is not 1 may have run before it was dropped.
    assert a.apply(op("d", 5, ["append", "x", "z"])) == ["expired", 1]
    assert a.apply(op("c", 3, ["get", "x"])) == ["ok", "y"]


def test_a_moving_shard_is_fenced_at_both_ends_until_it_arrives(two_groups) -> None:
    a, b, made = two_groups
    moving = [s for s, g in enumerate(made[1]["shards"]) if g == "b"]
    staying = [s for s, g in enumerate(made[1]["shards"]) if g == "a"]
    assert moving and staying
    key, other = key_on(moving[0]), key_on(staying[0])
    assert a.apply(op("c", 1, ["put", key, "before"])) == ["ok", None]
    assert a.apply(op("c", 1, ["put", other, "stays"])) == ["ok", None]

    assert a.apply(["config", made[1]]) == ["taken", 2]
    assert a.apply(op("c", 2, ["get", key])) == ["wrong_group", 2]  # from the moment it takes 2
    assert a.apply(op("c", 2, ["get", other])) == ["ok", "stays"]  # shards that stay serve on
    assert b.apply(["config", made[1]]) == ["taken", 2]
    assert b.apply(op("c", 2, ["get", key])) == ["not_ready", 2]  # until it arrives
    assert status(b)["pulling"] == [[s, "a", 2, A] for s in moving]

    hand_over(a, b)
    # The shard came with its data and its clients' sessions: the retry of the
    # put that ran at a is answered, not run again.
    assert b.apply(op("c", 1, ["put", key, "before"])) == ["ok", None]
    assert b.apply(op("c", 2, ["get", key])) == ["ok", "before"]
    assert status(a)["outgoing"] == []  # deleted at the old owner once b holds it
    assert status(b)["confirming"] == []


def test_a_configuration_is_taken_only_next_and_only_once_every_shard_is_here(
    two_groups,
) -> None:
    a, b, made = two_groups
    third = configs(["join", {"a": A}], ["join", {"b": B}], ["leave", ["a"]])[2]
    assert b.apply(["config", third]) == ["skipped", 1]  # not the next one
    assert b.apply(["config", made[1]]) == ["taken", 2]
    assert b.apply(["config", made[1]]) == ["skipped", 2]  # taken already
    assert b.apply(["config", third]) == ["skipped", 2]  # shards of 2 still to arrive
    assert next_actions(status(b)) == [
        ("pull", "a", tuple(A), 2, s) for s, g in enumerate(made[1]["shards"]) if g == "b"
    ]
    a.apply(["config", made[1]])
    hand_over(a, b)
    assert ("next", 3) in next_actions(status(b))
    assert b.apply(["config", third]) == ["taken", 3]


def test_a_shard_asked_for_too_early_or_again_is_answered_without_harm(two_groups) -> None:
    a, b, made = two_groups
    shard = next(s for s, g in enumerate(made[1]["shards"]) if g == "b")
    assert a.apply(["export", 2, shard]) == ["not_yet", 1]  # a has not taken 2
    assert a.apply(["delete", 2, shard]) == ["not_yet", 1]
    a.apply(["config", made[1]])
    b.apply(["config", made[1]])
    exported = a.apply(["export", 2, shard])
    assert b.apply(["install", 2, shard, exported[1]]) == ["installed", 2]
    assert b.apply(["install", 2, shard, exported[1]]) == ["skipped", 2]  # repeated
    assert a.apply(["delete", 2, shard]) == ["deleted", 2]
    assert a.apply(["delete", 2, shard]) == ["deleted", 2]  # repeated: still gone
    assert a.apply(["export", 2, shard]) == ["gone", 2]


def test_a_shard_that_was_unassigned_comes_back_from_the_group_that_held_it() -> None:
    a, b = ShardedKV("a", SHARDS), ShardedKV("b", SHARDS)
    made = configs(["join", {"a": A}], ["leave", ["a"]], ["join", {"b": B}], ["join", {"a": A}])
    key = key_on(0)
    a.apply(["config", made[0]])
    a.apply(op("c", 1, ["put", key, "kept"]))
    assert a.apply(["config", made[1]]) == ["taken", 2]  # every shard unassigned: a keeps them
    assert len(status(a)["outgoing"]) == SHARDS
    b.apply(["config", made[0]])
    b.apply(["config", made[1]])
    assert b.apply(["config", made[2]]) == ["taken", 3]
    assert status(b)["pulling"][0] == [0, "a", 2, A]  # from a, as of configuration 2
    a.apply(["config", made[2]])
    hand_over(a, b)
    assert b.apply(op("c", 2, ["get", key])) == ["ok", "kept"]
    # Half of the shards go back to a in configuration 4: pulled from b as of 4.
    b.apply(["config", made[3]])
    a.apply(["config", made[3]])
    back = [s for s, g in enumerate(made[3]["shards"]) if g == "a"]
    assert [p[0] for p in status(a)["pulling"]] == back


def test_a_shard_that_comes_back_to_the_group_that_kept_it_is_taken_from_there() -> None:
    a = ShardedKV("a", SHARDS)
    made = configs(["join", {"a": A}], ["leave", ["a"]], ["join", {"a": A}])
    a.apply(["config", made[0]])
    a.apply(op("c", 1, ["put", key_on(1), "kept"]))
    a.apply(["config", made[1]])
    assert a.apply(["config", made[2]]) == ["taken", 3]
    assert status(a)["pulling"] == [] and status(a)["outgoing"] == []
    assert a.apply(op("c", 2, ["get", key_on(1)])) == ["ok", "kept"]


def test_a_snapshot_restores_every_shard_in_every_state(two_groups) -> None:
    a, b, made = two_groups
    a.apply(op("c", 1, ["put", key_on(0), 1]))
    a.apply(["config", made[1]])
    b.apply(["config", made[1]])
    copy_a, copy_b = ShardedKV("a", SHARDS), ShardedKV("b", SHARDS)
    copy_a.restore(a.snapshot())
    copy_b.restore(b.snapshot())
    assert status(copy_a) == status(a) and status(copy_b) == status(b)
    hand_over(copy_a, copy_b)
    assert copy_b.snapshot() != b.snapshot()


@pytest.mark.parametrize(
    "operation",
    [
        "op",
        [],
        ["nope"],
        ["op", "c", 1],
        ["op", "", X, 1, ["get", "x"]],
        ["op", "c", X, 0, ["get", "x"]],
        ["op", "c", X, True, ["get", "x"]],
        ["op", "c", X, 1, ["get", 7]],
        ["op", "c", X, 1, "get"],
        ["op", "c", (X + 1) % SHARDS, 1, ["get", "x"]],  # routed by another shard
        ["op", "c", [X], 1, ["get", "x"]],
        ["config", {"num": 2, "shards": [[1]] * SHARDS, "groups": {}}],
        ["config", {"num": 2, "shards": ["a"] * SHARDS, "groups": {"a": ["n1"]}, "holders": 5}],
        ["delete", 1, []],
        ["delete", [], 0],
        ["confirmed", [], 0],
        ["export", [], 0],
        ["adopt", {"num": 5}],
        ["config", {"num": 2}],
        ["config", Configuration(2, ("z",) * SHARDS, {"z": ("n1",)}).to_value() | {"groups": {}}],
        ["install", 2, 0, {"state": 1}],
    ],
)
def test_malformed_operations_are_refused_and_change_nothing(two_groups, operation: Any) -> None:
    a, _, _ = two_groups
    a.apply(op("c", 1, ["put", "x", 1]))
    before = a.snapshot()
    result = a.apply(operation)
    assert result[0] in ("error", "skipped"), result
    assert a.snapshot() == before


def test_a_snapshot_that_does_not_decode_is_refused_when_installed(two_groups) -> None:
    a, b, made = two_groups
    a.apply(["config", made[1]])
    b.apply(["config", made[1]])
    shard = status(b)["pulling"][0][0]
    before = b.snapshot()
    assert b.apply(["install", 2, shard, {"state": {}, "sessions": [["c"]]}])[0] == "error"
    assert b.apply(["install", 2, shard, "junk"])[0] == "error"
    assert b.snapshot() == before


def test_a_configuration_with_another_number_of_shards_is_refused(two_groups) -> None:
    a, _, _ = two_groups
    wrong = configs(["join", {"a": A}], ["join", {"b": B}])[1]
    wrong["shards"] = wrong["shards"] + ["a"]
    assert a.apply(["config", wrong])[0] == "error"
    assert a.config.num == 1


def test_a_delete_before_any_group_was_given_the_shard_deletes_nothing() -> None:
    # Every group left: a keeps the shards for whoever gets them next. A delete of one
    # then (from no one that installed it) must not lose the only copy.
    a = ShardedKV("a", SHARDS)
    made = configs(["join", {"a": A}], ["leave", ["a"]], ["join", {"b": B}])
    a.apply(["config", made[0]])
    a.apply(op("c", 1, ["put", key_on(0), "only copy"]))
    a.apply(["config", made[1]])
    assert a.apply(["delete", 2, 0]) == ["not_yet", 2]
    assert [2, 0] in status(a)["outgoing"]
    # Once a configuration it took gave the shard to b, b's delete goes through.
    a.apply(["config", made[2]])
    assert a.apply(["delete", 2, 0]) == ["deleted", 3]
    assert [2, 0] not in status(a)["outgoing"]


def test_the_manager_names_where_each_unassigned_shard_waits() -> None:
    made = configs(["join", {"a": A}], ["leave", ["a"]], ["join", {"b": B}], ["leave", ["b"]])
    assert made[0]["holders"] == []
    assert made[1]["holders"] == [[s, "a", 2, A] for s in range(SHARDS)]
    assert made[2]["holders"] == []  # b owns them all
    assert made[3]["holders"] == [[s, "b", 4, B] for s in range(SHARDS)]


def test_a_group_started_late_adopts_the_oldest_configuration_kept() -> None:
    manager = ShardManagerMachine(shards=SHARDS, history=2)
    a, c = ShardedKV("a", SHARDS), ShardedKV("c", SHARDS)
    first = manager.apply(["join", {"a": A}])
    a.apply(["config", first])
    a.apply(op("k", 1, ["put", key_on(0), "kept"]))
    a.apply(["config", manager.apply(["leave", ["a"]])])  # configuration 2: all unassigned
    manager.apply(["join", {"b": B}])
    manager.apply(["leave", ["b"]])  # configuration 4; the manager keeps 3 and 4
    assert "forgotten" in manager.apply(["query", 1])[1]
    oldest = manager.apply(["oldest"])
    assert oldest["num"] == 3
    assert c.apply(["adopt", oldest]) == ["taken", 3]
    # c follows on from 3: b leaves at 4, so the shards wait at b, and c pulls them
    # from there when it joins at 5.
    assert c.apply(["config", manager.apply(["query", 4])]) == ["taken", 4]
    joined = manager.apply(["join", {"c": ["n7"]}])
    assert c.apply(["config", joined]) == ["taken", 5]
    assert {p[1] for p in status(c)["pulling"]} == {"b"}
    # A group that owns shards in the configuration it would adopt cannot skip to it.
    late = ShardedKV("c", SHARDS)
    assert late.apply(["adopt", joined]) == ["skipped", 0]
    assert a.apply(["adopt", oldest]) == ["skipped", 2]  # not a fresh group
