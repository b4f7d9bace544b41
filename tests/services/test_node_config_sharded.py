"""``[[sharded]]`` in a node's TOML configuration: a sharded cluster's roles on this node."""

from __future__ import annotations

from pathlib import Path

import pytest

from actorfw.node.config import load_settings

TOP = 'name = "n2"\nlisten = "ipc://n2.sock"\n'
PEERS = '\n[peers]\nn1 = "ipc://n1.sock"\nn3 = "ipc://n3.sock"\nn4 = "ipc://n4.sock"\n'


def spawned(tmp_path: Path, section: str) -> list[tuple[str, str]]:
    config = tmp_path / "n2.toml"
    config.write_text(TOP + PEERS + section, encoding="utf-8")
    return [(spec.name, str(spec.actor_class)) for spec in load_settings(config).spawn]


def test_a_node_starts_the_manager_and_the_groups_it_is_a_member_of(tmp_path: Path) -> None:
    names = [
        name
        for name, _ in spawned(
            tmp_path,
            '\n[[sharded]]\nmanager = ["n1", "n2", "n3"]\n[sharded.groups]\n'
            'g1 = ["n1", "n2", "n3"]\ng2 = ["n3", "n4", "n1"]\ng3 = ["n2", "n3", "n4"]\n',
        )
    ]
    assert names == [
        "shards-acceptor",
        "shards-replica",
        "shards-leader",
        "g1-acceptor",
        "g1-replica",
        "g1-leader",
        "g1-mover",
        "g3-acceptor",
        "g3-replica",
        "g3-leader",
        "g3-mover",
    ]  # not g2: n2 is not one of its nodes


def test_the_groups_machine_gets_its_group_and_the_shard_count(tmp_path: Path) -> None:
    config = tmp_path / "n2.toml"
    config.write_text(
        TOP + PEERS + '\n[[sharded]]\nshards = 16\n[sharded.groups]\ng1 = ["n1", "n2", "n3"]\n',
        encoding="utf-8",
    )
    settings = load_settings(config)
    replica = next(s for s in settings.spawn if s.name == "g1-replica")
    assert replica.args[2] == ["actorfw.kv.sharded:ShardedKV", {"group": "g1", "shards": 16}]
    manager = next(s for s in settings.spawn if s.name == "shards-replica")
    assert manager.args[1] == ["n1", "n2", "n3", "n4"]  # default: every node, sorted
    assert {"actorfw.services.sharding", "actorfw.kv.sharded"} <= set(settings.apps)


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ("\n[[sharded]]\n", "must list the groups"),
        ('\n[[sharded]]\nshards = 0\n[sharded.groups]\ng1 = ["n1"]\n', "shards must be"),
        ('\n[[sharded]]\nnope = 1\n[sharded.groups]\ng1 = ["n1"]\n', "unknown key 'nope'"),
        ('\n[[sharded]]\n[sharded.groups]\ng1 = ["n9"]\n', "n9 is neither this node"),
        ("\n[[sharded]]\n[sharded.groups]\ng1 = []\n", "non-empty list"),
        ('\n[[sharded]]\n[sharded.groups]\nshards = ["n1"]\n', "used twice"),
        (
            '\n[[sharded]]\nmachine = "actorfw.kv:Nope"\n[sharded.groups]\ng1 = ["n1"]\n',
            "has no Nope",
        ),
        ('\n[[sharded]]\nmover_interval = -1\n[sharded.groups]\ng1 = ["n1"]\n', "mover_interval"),
        ("\n[sharded]\n", "array of tables"),
    ],
)
def test_a_bad_section_is_refused_naming_the_key(tmp_path: Path, section: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        spawned(tmp_path, section)
