"""Flow control: bounded mailboxes, senders held back, credit between nodes (see core.flow).

The first tests run on every runtime (the ``cluster`` fixture) and look at
actors only through asks; the simulator tests after them look inside the
engines too, at mailbox lengths and backlogs while the load runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from actorfw import Actor, ActorRef, NodeConfig, Overloaded, Simulation
from actorfw.core.envelopes import TELL, Envelope
from actorfw.core.messages import Credit, CreditProbe, StatusRequest
from actorfw.sim import NetworkConfig
from actorfw.values import codec
from tests.support.actors import (
    DroppingSink,
    Get,
    Produce,
    Producer,
    Put,
    Relay,
    SlowSink,
    SmallSlowSink,
    Work,
)


def ask_past_overload(cluster: Any, ref: Any, message: Any, until: Callable[[Any], bool]) -> Any:
    """Ask until ``until(reply)``; ``poll`` takes an ``Overloaded`` refusal as "not yet"."""
    return cluster.poll(ref, message, until=until, timeout=60.0)


# -- on every runtime ------------------------------------------------------------------------


def test_an_ask_to_a_full_mailbox_is_refused_with_overloaded(cluster: Any) -> None:
    sink = cluster.spawn("n2", SmallSlowSink, 0.2, name="sink")
    for n in range(15):
        cluster.tell(sink, Work(n))
    # The ask travels behind the 15 tells; at 0.2 s each, at most a few are done
    # (the mailbox stays full for 9 of them: almost 2 s).
    with pytest.raises(Overloaded, match="mailbox_limit is 5\\)"):
        cluster.ask(sink, Work(1000))
    state = ask_past_overload(cluster, sink, Get(), until=lambda s: s["count"] == 15)
    assert state["in_order"]  # every tell went in, in order: the senders' were not dropped


def test_a_dropping_mailbox_drops_tells_past_its_bound_and_counts_them(cluster: Any) -> None:
    sink = cluster.spawn("n2", DroppingSink, 0.05, name="dropper")
    for n in range(70):
        cluster.tell(sink, Work(n))
    status = cluster.ask(ActorRef("n2", "$node"), StatusRequest(), on="n2")
    dropped = status["stats"]["overloaded"]
    assert dropped >= 1
    state = ask_past_overload(cluster, sink, Get(), until=lambda s: s["count"] + dropped >= 70)
    assert state["count"] + dropped == 70 and state["in_order"]


def test_a_producer_on_another_node_is_held_back_and_loses_nothing(cluster: Any) -> None:
    sink = cluster.spawn("n2", SlowSink, 0.0005, name="sink")
    producer = cluster.spawn("n1", Producer, name="producer")
    cluster.tell(producer, Produce(sink, 3000, 100))
    state = cluster.poll(sink, Get(), until=lambda s: s["count"] == 3000, timeout=60.0)
    assert state["in_order"] and state["last"] == 2999


def test_actor_classes_refuse_a_bad_mailbox_limit_or_policy() -> None:
    with pytest.raises(TypeError, match="mailbox_limit must be a positive int or None"):

        class Zero(Actor):
            mailbox_limit = 0

    with pytest.raises(TypeError, match="mailbox_policy must be 'hold' or 'drop'"):

        class Odd(Actor):
            mailbox_policy = "block"


# -- on the simulator, looking inside ---------------------------------------------------------


def run_watching(sim: Simulation, done: Callable[[], bool], look: Callable[[], None]) -> None:
    """Run ``sim`` in steps of 10 ms until ``done()``, calling ``look()`` after each step."""
    for _ in range(20_000):
        if done():
            return
        sim.run_for(0.01)
        look()
    raise AssertionError("the load did not finish in 200 simulated seconds")


def small_window(**more: Any) -> NodeConfig:
    return NodeConfig(flow_window=256, **more)


def test_a_slow_actor_on_another_node_bounds_its_mailbox_and_the_senders_backlog() -> None:
    with Simulation(nodes=2, seed=3, node_config=small_window()) as sim:
        sink = sim.spawn("n2", SlowSink, 0.001, name="sink")
        producer = sim.spawn("n1", Producer, name="producer")
        sim.tell(producer, Produce(sink, 20_000, 100))
        cell = sim.node("n2").cells["sink"]
        n1 = sim.node("n1")
        peaks = {"mailbox": 0, "backlog": 0}

        def look() -> None:
            peaks["mailbox"] = max(peaks["mailbox"], len(cell.mailbox))
            peaks["backlog"] = max(peaks["backlog"], n1.flow.backlog("n2"))

        run_watching(sim, lambda: cell.instance.count == 20_000, look)  # type: ignore[union-attr]
        # The mailbox: its bound, plus at most the window in flight.
        assert 50 <= peaks["mailbox"] <= 50 + 256
        # The sender's backlog: at most the one turn it was held after (a chunk).
        assert 0 < peaks["backlog"] <= 100
        assert n1.stats.held > 0
        assert sim.ask(sink, Get())["in_order"]


def test_a_slow_actor_on_the_same_node_holds_its_sender_between_turns() -> None:
    with Simulation(nodes=1, seed=4) as sim:
        sink = sim.spawn("n1", SlowSink, 0.001, name="sink")
        producer = sim.spawn("n1", Producer, name="producer")
        sim.tell(producer, Produce(sink, 5000, 100))
        engine = sim.node("n1")
        cell = engine.cells["sink"]
        peak = [0]

        def look() -> None:
            peak[0] = max(peak[0], len(cell.mailbox))

        run_watching(sim, lambda: cell.instance.count == 5000, look)  # type: ignore[union-attr]
        assert 50 <= peak[0] <= 50 + 100
        assert engine.stats.held > 0
        assert sim.ask(sink, Get())["in_order"]


@pytest.mark.parametrize("nodes", [("n1", "n2"), ("n1", "n1")], ids=["across", "same-node"])
def test_actors_flooding_each_other_never_wait_for_each_other_forever(
    nodes: tuple[str, str],
) -> None:
    with Simulation(nodes=2, seed=5, node_config=small_window()) as sim:
        a = sim.spawn(nodes[0], Relay, name="a")
        b = sim.spawn(nodes[1], Relay, name="b")
        sim.tell(a, Put(b))
        sim.tell(b, Put(a))
        sim.run_for(0.01)
        for _ in range(200):
            sim.tell(a, Work(40))
            sim.tell(b, Work(40))
        total = 2 * 200 * 41
        cells = [sim.node(nodes[0]).cells["a"], sim.node(nodes[1]).cells["b"]]
        run_watching(
            sim,
            lambda: sum(c.instance.count for c in cells) == total,  # type: ignore[union-attr]
            lambda: None,
        )


def test_tells_lost_on_the_way_do_not_leak_credit() -> None:
    with Simulation(
        nodes=2, seed=6, network=NetworkConfig(drop=0.3), node_config=small_window()
    ) as sim:
        sink = sim.spawn("n2", SlowSink, 0.0, name="sink")
        producer = sim.spawn("n1", Producer, name="producer")
        sim.run_for(0.1)
        sim.tell(producer, Produce(sink, 5000, 50))
        n1 = sim.node("n1")
        producer_cell = n1.cells["producer"]
        # Without probes, the units of lost tells are never given back: the
        # sender would stop for good after about a window's worth of losses.
        run_watching(sim, lambda: producer_cell.instance.done, lambda: None)  # type: ignore[union-attr]
        sim.network.configure(drop=0.0)
        sim.run_until(lambda: n1.flow.backlog("n2") == 0, timeout=30.0)
        assert 0 < sim.node("n2").cells["sink"].instance.count < 5000  # type: ignore[union-attr]


def test_a_peer_declared_down_lets_its_held_senders_go() -> None:
    with Simulation(nodes=2, seed=7, node_config=small_window()) as sim:
        sink = sim.spawn("n2", SlowSink, 0.01, name="sink")
        producer = sim.spawn("n1", Producer, name="producer")
        sim.tell(producer, Produce(sink, 100_000, 100))
        n1 = sim.node("n1")
        sim.run_until(lambda: n1.flow.backlog("n2") > 0, timeout=10.0)
        sim.crash("n2")
        cell = n1.cells["producer"]
        # Down, n2 gets the rest without credit (the transport drops it), so the producer finishes.
        assert sim.run_until(lambda: cell.instance.done, timeout=60.0)  # type: ignore[union-attr]
        assert n1.flow.backlog("n2") == 0


def test_a_peer_that_ignores_credit_is_refused_past_twice_its_window() -> None:
    with Simulation(nodes=2, seed=8, node_config=small_window()) as sim:
        sim.spawn("n2", SlowSink, 10.0, name="sink")
        n2 = sim.node("n2")
        sim.run_for(0.01)
        # A peer flooding tells straight into n2's input, as if it had credit to spare.
        for n in range(2000):
            body, buffers, plain = codec.encode(Work(n))
            n2.inbound.receive(Envelope(TELL, "n1", "sink", None, 0, body, buffers, plain))
        cell = n2.cells["sink"]
        kept = SlowSink.mailbox_limit + 2 * 256 + 1  # what goes in below the bound, and credit
        assert len(cell.mailbox) <= kept
        assert n2.stats.overloaded >= 2000 - kept


def test_a_tell_from_outside_any_actor_is_refused_past_the_backlog_bound() -> None:
    with Simulation(nodes=1, seed=9, node_config=NodeConfig(max_backlog=100)) as sim:
        sink = sim.spawn("n1", SlowSink, 10.0, name="sink")
        sim.run_for(0.01)
        for n in range(150):  # the bound (50) and the backlog bound (100) past it
            sim.tell(sink, Work(n))
        with pytest.raises(Overloaded, match="max_backlog past its mailbox_limit"):
            sim.tell(sink, Work(150))


def test_forged_credit_probes_change_no_bound_and_raise_nothing() -> None:
    with Simulation(nodes=2, seed=10, node_config=small_window()) as sim:
        sim.spawn("n2", SlowSink, 10.0, name="sink")
        n2 = sim.node("n2")
        sim.run_for(0.01)
        before = n2.stats.malformed
        for n in range(2000):
            if n % 100 == 0:  # a peer claiming it has sent nothing: it restarted, it says
                n2.node_protocol.handle(CreditProbe(0), None, "n1")
            body, buffers, plain = codec.encode(Work(n))
            n2.inbound.heard_from("n1")
            n2.inbound.receive(Envelope(TELL, "n1", "sink", None, 0, body, buffers, plain))
        assert len(n2.cells["sink"].mailbox) <= SlowSink.mailbox_limit + 2 * 256 + 1
        for sent in (1 << 63, (1 << 64) - 1, -1):
            n2.node_protocol.handle(CreditProbe(sent), None, "n1")
            n2.node_protocol.handle(Credit(sent), None, "n1")
        sim.run_for(0.1)
        assert n2.stats.malformed == before + 6


def test_tells_to_a_node_not_in_the_cluster_hold_nobody() -> None:
    with Simulation(nodes=2, seed=11, node_config=small_window()) as sim:
        producer = sim.spawn("n1", Producer, name="producer")
        sim.tell(producer, Produce(ActorRef("ghost", "sink"), 2000, 100))
        n1 = sim.node("n1")
        cell = n1.cells["producer"]
        assert sim.run_until(lambda: cell.instance.done, timeout=10.0)  # type: ignore[union-attr]
        assert not cell.held and "ghost" not in n1.flow.outgoing


def test_a_held_forwarder_holds_back_its_own_senders_past_twice_its_bound() -> None:
    # producer (n2) -> forwarder (n1) -> a sink that takes nothing: the forwarder is held
    # at once, and its mailbox must not grow without bound behind it.
    with Simulation(nodes=2, seed=12, node_config=small_window()) as sim:
        sink = sim.spawn("n1", SlowSink, 3600.0, name="sink")
        forwarder = sim.spawn("n1", Relay, name="forwarder")
        sim.tell(forwarder, Put(sink))
        producer = sim.spawn("n2", Producer, name="producer")
        sim.run_for(0.1)
        sim.tell(producer, Produce(forwarder, 100_000, 100))
        sim.run_for(5.0)
        n1 = sim.node("n1")
        assert n1.cells["forwarder"].held
        # Twice its bound, the window it owed when it was held (given back then, rule 5),
        # and one more window: bounded, whatever the producer has left to send.
        assert len(n1.cells["forwarder"].mailbox) <= 2 * Relay.mailbox_limit + 2 * 256
        assert sim.node("n2").cells["producer"].instance.sent < 1000  # type: ignore[union-attr]
