"""``actorfw bench paxos`` runs end to end, and the nodes' storage option does what it says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actorfw.bench.raw_quorum import raw_quorum_writes
from actorfw.cli import main
from actorfw.node import ActorSystem
from actorfw.node.config import NodeSettings, load_settings
from tests.support.actors import Counter, Get, Put, Sync


def test_bench_paxos_quick_json_reports_the_configuration_and_its_targets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "paxos", "--quick", "--json", "--nodes", "3", "--storage", "sqlite"]
    assert main([*argv, "--batch", "64", "--clients", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["scale"] == "quick"
    (result,) = doc["results"]
    assert (result["nodes"], result["storage"], result["batch"], result["clients"]) == (
        3,
        "sqlite",
        64,
        2,
    )
    assert result["commands"] >= 2  # every client was answered at least once
    assert result["commands_per_second"] == pytest.approx(result["commands"] / result["seconds"])
    assert 0 < result["p50_us"] <= result["p99_us"]
    # Every counted command was timed, and took longer than nothing.
    assert result["load_p50_us"] is not None and result["load_p50_us"] > 0
    # The floor's quorum writes ran and were answered, each with its own number.
    assert result["floor_p50_us"] is not None and result["floor_p50_us"] > 0
    # And its raw twin: the same writes on pyzmq and sqlite3 alone.
    assert result["raw_floor_p50_us"] is not None and result["raw_floor_p50_us"] > 0
    assert result["floor_over_raw_floor"] == pytest.approx(
        result["floor_p50_us"] / result["raw_floor_p50_us"]
    )
    assert 0 < result["raw_p50_us"] <= result["raw_p99_us"]
    assert result["p50_over_raw"] == pytest.approx(result["p50_us"] / result["raw_p50_us"])
    figures = {t["figure"] for t in doc["targets"]}
    assert figures == {"commands_per_second", "p50_us"}
    assert all(isinstance(t["met"], bool) for t in doc["targets"])


@pytest.mark.parametrize(("nodes", "durable"), [(1, True), (2, False)])
def test_raw_quorum_writes_time_each_write(nodes: int, durable: bool) -> None:
    times = raw_quorum_writes(nodes, durable, warmup=1, count=3)
    assert len(times) == 3 and all(t > 0 for t in times)


def test_raw_quorum_writes_refuse_no_nodes() -> None:
    with pytest.raises(ValueError, match="at least one node"):
        raw_quorum_writes(0, True, warmup=0, count=1)


def test_bench_paxos_refuses_a_cluster_of_no_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "paxos", "--quick", "--nodes", "0"]) == 2
    assert "at least one node" in capsys.readouterr().err


@pytest.mark.parametrize(("storage", "after_restart"), [("sqlite", 5), ("memory", 0)])
def test_a_restarted_node_keeps_synced_writes_only_with_sqlite_storage(
    storage: str, after_restart: int
) -> None:
    with ActorSystem(nodes=1, apps=["tests.support.actors"], storage=storage) as system:
        counter = system.spawn("n1", Counter, name="counter")
        assert system.ask(counter, Put(5)) == 5
        assert system.ask(counter, Sync()) == 5  # the sync completes in either storage
        assert system.stop_node("n1") == 0
        system.restart("n1")
        assert system.ask(counter, Get()) == after_restart


def test_an_actor_system_refuses_an_unknown_storage() -> None:
    with pytest.raises(ValueError, match="'sqlite' or 'memory'"):
        ActorSystem(nodes=1, storage="disk")


def test_node_settings_refuse_an_unknown_storage() -> None:
    with pytest.raises(ValueError, match=r"storage is 'sqlite'.*'memory'.*not 'lmdb'"):
        NodeSettings("n1", "ipc:///tmp/n1.sock", {}, "data-n1", storage="lmdb")


def test_the_toml_storage_key_chooses_the_storage_and_defaults_to_sqlite(tmp_path: Path) -> None:
    plain = tmp_path / "plain.toml"
    plain.write_text('name = "n1"\nlisten = "ipc:///tmp/n1.sock"\n')
    memory = tmp_path / "memory.toml"
    memory.write_text('name = "n1"\nlisten = "ipc:///tmp/n1.sock"\nstorage = "memory"\n')
    assert load_settings(plain).storage == "sqlite"
    assert load_settings(memory).storage == "memory"
