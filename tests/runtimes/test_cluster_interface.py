"""Every way of driving a cluster offers the one Cluster interface, with the same behaviour."""

from __future__ import annotations

from typing import Any

import pytest

from actorfw import Simulation
from actorfw.core.cluster import Cluster, FaultyCluster
from actorfw.core.messages import StatusRequest
from actorfw.node import ActorSystem, connect
from actorfw.values.errors import ActorNotFound, AskTimeout, NodeDown
from actorfw.values.refs import ActorRef
from tests.support.actors import Get, Put, Recorder, Send, SendAll


def test_the_simulation_an_actor_system_and_a_connected_client_are_clusters() -> None:
    with Simulation(nodes=2) as sim:
        assert isinstance(sim, FaultyCluster) and sim.in_process
    with ActorSystem(2, apps=["tests.support.actors"]) as system:
        assert isinstance(system, FaultyCluster) and not system.in_process
        addresses = {node: system.endpoint(node) for node in system.nodes}
        with connect(addresses) as client:
            assert isinstance(client, Cluster) and not isinstance(client, FaultyCluster)
            ref = client.spawn("n2", Recorder, name="r")
            assert client.lookup("r") == ref
            assert client.poll(ref, Get(), until=lambda state: state["items"] == [])["items"] == []
            assert client.ask(ActorRef("n1", "$node"), StatusRequest())["node"] == "n1"


def test_a_nodes_own_protocol_answers_asks_from_that_node(cluster: Any) -> None:
    # From a client on n1 itself in the simulator; from the client's own node otherwise.
    status = cluster.ask(ActorRef("n1", "$node"), StatusRequest(), on="n1")
    assert status["node"] == "n1" and sorted(status["peers"]) == ["n2", "n3"]
    # The loop it runs on: the simulator's own, or the default asyncio one.
    assert status["loop"].startswith("actorfw.sim." if cluster.in_process else "asyncio.")


def test_a_tell_to_a_node_not_in_the_cluster_is_refused_or_a_dead_letter_on_every_runtime(
    cluster: Any,
) -> None:
    nowhere = ActorRef("n9", "x")
    # From a driver: refused at the call, with the words of an ask's refusal.
    with pytest.raises(ActorNotFound, match=r"no node 'n9' in this cluster \(nodes: n1, n2, n3\)"):
        cluster.tell(nowhere, Put(1))
    with pytest.raises(ActorNotFound, match=r"\(nodes: n1, n2, n3\); the ask to n9/x was not sent"):
        cluster.ask(nowhere, Put(1))
    # From an actor: a dead letter of its node, counted; the other targets get theirs.
    rec = cluster.spawn("n1", Recorder, name="rec")
    sink = cluster.spawn("n2", Recorder, name="sink")
    cluster.ask(rec, Send(nowhere, Put(1)))
    cluster.ask(rec, SendAll((nowhere, sink), Put(2)))
    assert cluster.poll(sink, Get(), until=lambda s: s["items"])["items"] == [[2, "n1/rec"]]
    status = cluster.ask(ActorRef("n1", "$node"), StatusRequest(), on="n1")
    assert status["stats"]["dead_letters"] == 2


def test_lookup_and_poll_say_the_same_on_every_runtime(cluster: Any) -> None:
    ref = cluster.spawn("n3", Recorder, name="found")
    assert cluster.lookup("found") == ref
    assert cluster.lookup("found", node="n2") is None
    assert cluster.lookup("nowhere") is None
    with pytest.raises(AssertionError, match=r"never answered Get as wanted within 0\.5s"):
        cluster.poll(ref, Get(), until=lambda state: False, timeout=0.5)


def test_lookup_on_a_named_node_that_is_down_raises_on_every_runtime(cluster: Any) -> None:
    ref = cluster.spawn("n2", Recorder, name="r")
    assert cluster.lookup("r", node="n2") == ref
    cluster.crash("n2")
    with pytest.raises((NodeDown, AskTimeout)):  # not None: "no such actor" would be a lie
        cluster.lookup("r", node="n2", on="n1")
    assert cluster.lookup("r", on="n1") is None  # any node: a down one is passed over


def test_an_ask_to_a_crashed_node_ends_with_node_down_on_every_runtime(cluster: Any) -> None:
    # Drivers outside actors learn of a dead node as actors do: the simulator's driver
    # sits on a node, a connection probes the nodes it reaches.
    ref = cluster.spawn("n2", Recorder, name="r")
    assert cluster.ask(ref, Get())["instance"] >= 1
    cluster.crash("n2")
    with pytest.raises(NodeDown):
        cluster.ask(ref, Get(), timeout=60.0, on="n1")  # long before the timeout
    with pytest.raises(NodeDown, match="declared down"):
        cluster.ask(ref, Get(), timeout=60.0, on="n1")  # now refused before it leaves
    cluster.restart("n2")
    assert cluster.poll(ref, Get(), until=lambda state: state["items"] == [], on="n1")


def test_a_blocking_call_inside_run_says_to_await_instead_on_every_runtime(cluster: Any) -> None:
    async def main() -> Any:
        return cluster.ask(ActorRef("n1", "$node"), StatusRequest(), timeout=3.0)

    with pytest.raises(RuntimeError, match="would wait for itself; await the ref's ask instead"):
        cluster.run(main)
    assert cluster.ask(ActorRef("n1", "$node"), StatusRequest())["node"] == "n1"  # still fine
