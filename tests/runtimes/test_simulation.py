"""The simulator itself: virtual time, the faulty network, crashes, and replay from one seed."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pytest

from actorfw import (
    Actor,
    ActorNotFound,
    ActorRef,
    AskTimeout,
    NetworkConfig,
    NodeDown,
    Simulation,
    handler,
    message,
)
from actorfw.core.engine import ASK_TIMER_SLACK
from actorfw.sim import SimulationStuck, SimulationTimeout, VirtualTimeLoop
from tests.support.actors import (
    Counter,
    Deferred,
    Get,
    Put,
    Recorder,
    Send,
    SendAll,
    StartTimer,
    Sync,
    Timed,
)

# -- virtual time --------------------------------------------------------------------------


def test_a_ten_second_timer_fires_at_ten_virtual_seconds() -> None:
    with Simulation(nodes=1) as sim:
        ref = sim.spawn("n1", Timed, name="t")
        sim.ask(ref, StartTimer("long", 10.0))
        start = sim.now
        ticks = sim.poll(ref, Get(), until=lambda t: t, interval=1.0)
        assert ticks[0][1] == pytest.approx(start + 10.0, abs=1e-6)


def test_an_hour_of_virtual_time_passes_without_waiting_for_it() -> None:
    with Simulation(nodes=1) as sim:
        ref = sim.spawn("n1", Timed, name="t")
        sim.ask(ref, StartTimer("beat", 60.0, True))
        wall = time.monotonic()
        sim.run_for(3600.0)
        # 60 beats in a virtual hour; the wall clock is not consulted by the run.
        assert len(sim.ask(ref, Get())) == 60
        assert sim.now >= 3600.0
        assert time.monotonic() - wall < 3600.0


def test_async_code_sleeps_on_virtual_time() -> None:
    with Simulation(nodes=1) as sim:

        async def main() -> float:
            before = asyncio.get_running_loop().time()
            await asyncio.sleep(42.0)
            return asyncio.get_running_loop().time() - before

        assert sim.run(main) == pytest.approx(42.0)


def test_run_raises_when_the_driver_does_not_finish_in_time() -> None:
    with Simulation(nodes=1) as sim:

        async def forever() -> None:
            await asyncio.sleep(1e9)

        with pytest.raises(SimulationTimeout, match="did not finish within 5"):
            sim.run(forever, timeout=5.0)


@message(name="test.sim.Spin")
class Spin:
    """Tells its receiver to tell itself again: forever, at one instant."""


class Spinner(Actor):
    @handler
    def spin(self, msg: Spin) -> None:
        self.context.ref.tell(msg)


def test_a_run_stuck_at_one_instant_is_stopped_with_a_clear_error() -> None:
    with Simulation(nodes=1, stuck_after=20) as sim:  # each turn: a batch of Spin
        spinner = sim.spawn("n1", Spinner, name="spinner")
        sim.run_for(0.5)
        sim.tell(spinner, Spin())
        with pytest.raises(SimulationStuck, match=r"stuck at t=0\.50.*without the clock moving"):
            sim.run_for(1.0)


def test_the_loop_counts_turns_at_one_instant_only() -> None:
    loop = VirtualTimeLoop(stuck_after=50)
    try:
        # 40 turns at t=0, 40 at t=1: the count starts again when the clock moves.
        again_at = iter([*range(40), None, *range(40)])

        def steps() -> None:
            step = next(again_at, "done")
            if step is None:
                loop.call_later(1.0, steps)
            elif step != "done":
                loop.call_soon(steps)

        loop.call_soon(steps)
        assert not loop.run_until(lambda: False, deadline=5.0)
        loop.call_soon(spin := lambda: loop.call_soon(spin))
        with pytest.raises(SimulationStuck, match="turned 50 times"):
            loop.run_until(lambda: False, deadline=10.0)
    finally:
        loop.close()
    with pytest.raises(ValueError, match="stuck_after"):
        VirtualTimeLoop(stuck_after=0)


# -- the network ---------------------------------------------------------------------------


@message(name="test.sim.Stamp")
@dataclass(frozen=True)
class Stamp:
    sender: str
    seq: int


class Sink(Actor):
    """Records stamps in arrival order."""

    def on_start(self) -> None:
        self.arrivals: list[list[object]] = []

    @handler
    def stamp(self, msg: Stamp) -> None:
        self.arrivals.append([msg.sender, msg.seq])

    @handler
    def get(self, msg: Get) -> list[list[object]]:
        return self.arrivals


class Source(Actor):
    """Sends ``count`` numbered stamps to a sink when told."""

    @handler
    def send(self, msg: Send) -> None:
        for seq in range(msg.payload):
            msg.target.tell(Stamp(self.context.node, seq))


def _arrivals(network: NetworkConfig, seed: int = 3, count: int = 40) -> list[list[object]]:
    with Simulation(nodes=4, seed=seed, network=network) as sim:
        sink = sim.spawn("n4", Sink, name="sink")
        for node in ("n1", "n2", "n3"):
            sim.tell(sim.spawn(node, Source, name="src"), Send(sink, count))
        return sim.poll(sink, Get(), until=lambda a: len(a) >= 3 * count, timeout=60.0)


def test_fifo_per_pair_holds_while_pairs_interleave() -> None:
    # Latency spread wide enough that, without the FIFO rule, messages of one
    # pair would overtake each other all the time.
    arrivals = _arrivals(NetworkConfig(latency=(0.001, 0.2)))
    per_sender = defaultdict(list)
    for sender, seq in arrivals:
        per_sender[sender].append(seq)
    assert all(seqs == list(range(40)) for seqs in per_sender.values())
    senders_in_arrival_order = [s for s, _ in arrivals]
    assert senders_in_arrival_order != sorted(senders_in_arrival_order)  # pairs interleave


@pytest.mark.parametrize("shape", [(1, 0, 2), (0,), (3, 4)])
def test_arrays_of_any_shape_cross_the_simulated_network(shape: tuple[int, ...]) -> None:
    # The network checksums every buffer for its trace, an empty one with a
    # zero in its shape too.
    with Simulation(nodes=2, seed=3) as sim:
        recorder = sim.spawn("n2", Recorder, name="r")
        value = np.zeros(shape, dtype=np.float32)
        assert sim.ask(recorder, Put(value), on="n1") == 1
        (item,) = sim.ask(recorder, Get(), on="n1")["items"]
        assert item[0].shape == shape and item[0].dtype == np.float32


def test_the_reorder_switch_lets_messages_of_one_pair_overtake() -> None:
    arrivals = _arrivals(NetworkConfig(latency=(0.001, 0.2), reorder=True))
    per_sender = defaultdict(list)
    for sender, seq in arrivals:
        per_sender[sender].append(seq)
    assert any(seqs != sorted(seqs) for seqs in per_sender.values())
    assert all(sorted(seqs) == list(range(40)) for seqs in per_sender.values())


def test_the_duplicate_switch_delivers_some_messages_twice() -> None:
    with Simulation(nodes=2, seed=5, network=NetworkConfig(duplicate=0.3)) as sim:
        sink = sim.spawn("n2", Sink, name="sink")
        sim.tell(sim.spawn("n1", Source, name="src"), Send(sink, 100))
        sim.run_for(1.0)
        seqs = [seq for _, seq in sim.ask(sink, Get())]
    assert set(seqs) == set(range(100))
    assert len(seqs) > 100
    assert seqs == sorted(seqs)  # duplicates keep FIFO unless reordering is on


def test_the_drop_switch_loses_some_messages() -> None:
    with Simulation(nodes=2, seed=5, network=NetworkConfig(drop=0.3)) as sim:
        sink = sim.spawn("n2", Sink, name="sink")
        sim.tell(sim.spawn("n1", Source, name="src"), Send(sink, 100))
        sim.run_for(1.0)
        sim.network.configure(drop=0.0)
        seqs = [seq for _, seq in sim.ask(sink, Get())]
    assert 0 < len(seqs) < 100
    assert seqs == sorted(set(seqs))


def test_a_partition_cuts_messages_until_healed() -> None:
    with Simulation(nodes=3, seed=2) as sim:
        sink = sim.spawn("n3", Sink, name="sink")
        src = sim.spawn("n1", Source, name="src")
        sim.partition(["n1"], ["n2", "n3"])
        sim.tell(src, Send(sink, 5))
        sim.run_for(0.5)
        assert sim.ask(sink, Get()) == []
        sim.heal()
        sim.tell(src, Send(sink, 5))
        assert [s for _, s in sim.poll(sink, Get(), until=lambda a: len(a) == 5)] == list(range(5))


def test_a_node_cut_off_is_declared_down_then_readmitted_after_healing() -> None:
    with Simulation(nodes=3, seed=2) as sim:
        sim.run_for(2.0)
        sim.partition(["n1"], ["n2", "n3"])
        assert sim.run_until(lambda: sim.node("n2").liveness.is_down("n1"), timeout=10.0)
        down_at = sim.now
        with pytest.raises(NodeDown, match="node n1 is declared down"):
            sim.ask(ActorRef("n1", "anyone"), Get(), on="n2")
        assert sim.now == down_at  # failed fast, not after a timeout
        sim.heal()
        assert sim.run_until(lambda: not sim.node("n2").liveness.is_down("n1"), timeout=10.0)


def test_latency_may_follow_any_distribution_drawn_from_the_seed() -> None:
    network = NetworkConfig(latency=lambda rng: rng.expovariate(1 / 0.05), reorder=True)
    with Simulation(nodes=2, seed=9, network=network) as sim:
        sink = sim.spawn("n2", Sink, name="sink")
        sim.tell(sim.spawn("n1", Source, name="src"), Send(sink, 20))
        arrivals = sim.poll(sink, Get(), until=lambda a: len(a) == 20)
        assert sorted(seq for _, seq in arrivals) == list(range(20))
        sent = next(e.time for e in sim.trace if e.kind == "deliver" and "src" in e.detail)
        delays = [e.time - sent for e in sim.trace if e.kind == "recv" and "tell sink" in e.detail]
        assert len(set(delays)) == 20 and max(delays) > 3 * min(delays)


# -- names, dead letters, traces ---------------------------------------------------------


def test_the_driver_can_look_actors_up_by_name() -> None:
    with Simulation(nodes=3, seed=1) as sim:
        sim.spawn("n3", Recorder, name="needle")
        assert sim.lookup("needle") == ActorRef("n3", "needle")
        assert sim.lookup("needle", node="n2") is None
        assert sim.lookup("hay") is None


def test_dead_letters_are_counted_and_logged_at_a_limited_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="actorfw")
    with Simulation(nodes=1, seed=1) as sim:
        for _ in range(50):
            sim.tell(ActorRef("n1", "ghost"), Put(1))
        sim.run_for(20.0)
        assert sim.node("n1").stats.dead_letters == 50
    lines = [r.getMessage() for r in caplog.records if "dead letter" in r.getMessage()]
    assert 1 <= len(lines) <= 10
    assert "'ghost' is not on node n1" in lines[0]


def test_a_tell_to_a_node_not_in_the_cluster_is_refused_or_a_dead_letter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="actorfw")
    nowhere = ActorRef("n9", "x")
    with Simulation(nodes=2, seed=1) as sim:
        with pytest.raises(ActorNotFound, match=r"no node 'n9' in this cluster \(nodes: n1, n2\)"):
            sim.tell(nowhere, Put(1))  # from a client: refused at the call, as an ask is
        with pytest.raises(ActorNotFound, match="the ask to n9/x was not sent"):
            sim.ask(nowhere, Put(1))
        rec = sim.spawn("n1", Recorder, name="rec")
        sink = sim.spawn("n2", Recorder, name="sink")
        sim.ask(rec, Send(nowhere, Put(1)))  # from an actor: a dead letter of its node
        sim.ask(rec, SendAll((nowhere, sink), Put(2)))  # the others still get theirs
        sim.run_for(1.0)
        assert sim.node("n1").stats.dead_letters == 2
        assert sim.ask(sink, Get())["items"] == [[2, "n1/rec"]]
    lines = [r.getMessage() for r in caplog.records if "no node 'n9'" in r.getMessage()]
    assert len(lines) == 2 and "the tell to n9/x was not sent" in lines[0]
    assert "Put from n1/rec" in lines[0]


def test_a_routine_messages_dead_letters_are_counted_but_logged_only_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from actorfw.protocols.paxos.messages import Applied

    caplog.set_level(logging.INFO, logger="actorfw")
    with Simulation(nodes=1, seed=1) as sim:
        sim.tell(ActorRef("n1", "rsm-leader"), Applied("n1", 3))  # a status report, routine
        sim.tell(ActorRef("n1", "ghost"), Put(1))
        sim.run_for(1.0)
        assert sim.node("n1").stats.dead_letters == 2
    lines = [r.getMessage() for r in caplog.records if "dead letter" in r.getMessage()]
    assert len(lines) == 1 and "Put" in lines[0]


def test_dead_letters_while_a_node_stops_gracefully_are_logged_only_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="actorfw")
    with Simulation(nodes=2, seed=1) as sim:
        sim.node("n1").stopping = True  # as Engine.stop() sets it, before its actors go down
        sim.tell(ActorRef("n1", "ghost"), Put(1), on="n2")
        sim.run_for(1.0)
        assert sim.node("n1").stats.dead_letters == 1
    assert not [r for r in caplog.records if "dead letter" in r.getMessage()]


def test_the_trace_can_be_saved(tmp_path: object) -> None:
    from pathlib import Path

    with Simulation(nodes=2, seed=1) as sim:
        sim.run_for(1.0)
        target = Path(str(tmp_path)) / "trace.txt"
        sim.save_trace(target)
        assert target.read_text().splitlines() == sim.trace_text().splitlines()
        assert " recv " in target.read_text()


# -- crashes and storage -------------------------------------------------------------------


def test_synced_writes_survive_a_crash_and_unsynced_ones_do_not() -> None:
    with Simulation(nodes=2, seed=4) as sim:
        ref = sim.spawn("n1", Counter, name="c")
        assert sim.ask(ref, Put(5)) == 5
        assert sim.ask(ref, Sync()) == 5
        assert sim.ask(ref, Put(7)) == 12  # written, never synced
        sim.crash("n1")
        sim.restart("n1")
        assert sim.ask(ref, Get()) == 5


def test_writes_synced_after_they_were_made_survive_in_full() -> None:
    with Simulation(nodes=1, seed=4) as sim:
        ref = sim.spawn("n1", Counter, name="c")
        for _ in range(10):
            sim.ask(ref, Put(1))
        sim.ask(ref, Sync())
        sim.crash("n1")
        sim.restart("n1")
        assert sim.ask(ref, Get()) == 10


@pytest.mark.parametrize("seed", range(12))
def test_with_adversarial_crashes_some_unsynced_writes_may_survive_but_in_order(seed: int) -> None:
    with Simulation(nodes=1, seed=seed, lose_unsynced="prefix") as sim:
        ref = sim.spawn("n1", Counter, name="c")
        sim.ask(ref, Put(1))
        sim.ask(ref, Sync())
        for _ in range(5):
            sim.ask(ref, Put(1))  # each write holds the running count: 2, 3, 4, 5, 6
        sim.crash("n1")
        sim.restart("n1")
        assert 1 <= sim.ask(ref, Get()) <= 6


def test_a_restarted_node_rebuilds_its_top_level_actors_but_not_stopped_ones() -> None:
    with Simulation(nodes=2, seed=4) as sim:
        kept = sim.spawn("n1", Recorder, "kept", name="kept")
        gone = sim.spawn("n1", Recorder, "gone", name="gone")
        sim.ask(kept, Put("lost at the crash"))
        sim.node("n1").lifecycle.stop_actor(gone)
        sim.crash("n1")
        with pytest.raises(AskTimeout):
            sim.ask(kept, Get(), on="n2", timeout=1.0)
        sim.restart("n1")
        state = sim.ask(kept, Get())
        assert (state["label"], state["items"]) == ("kept", [])  # rebuilt from its spawn arguments
        assert "gone" not in sim.node("n1").cells


def test_asks_to_a_crashed_node_fail_as_the_failure_detector_declares_it_down() -> None:
    with Simulation(nodes=2, seed=4) as sim:
        ref = sim.spawn("n2", Recorder, name="r")
        sim.run_for(2.0)
        sim.crash("n2")
        with pytest.raises((AskTimeout, NodeDown)):
            sim.ask(ref, Get(), on="n1", timeout=1.0)
        assert sim.run_until(lambda: sim.node("n1").liveness.is_down("n2"), timeout=10.0)
        with pytest.raises(NodeDown):
            sim.ask(ref, Get(), on="n1", timeout=1.0)


def test_asks_time_out_no_earlier_than_their_timeout_and_at_most_the_slack_later() -> None:
    with Simulation(nodes=2, seed=3) as sim:
        held = sim.spawn("n2", Deferred, name="held")  # answers nothing until told

        async def main() -> list[tuple[float, float]]:
            loop = asyncio.get_running_loop()
            ended: list[tuple[float, float]] = []

            async def one(delay: float, timeout: float) -> None:
                await asyncio.sleep(delay)
                began = loop.time()
                with pytest.raises(AskTimeout, match=f"within {timeout:g}s"):
                    await held.ask(Get(), timeout)
                ended.append((timeout, loop.time() - began))

            # Interleaved timeouts, and a short one asked last that is due first.
            asks = [(i * 0.003, 0.05 if i % 2 else 0.2) for i in range(40)]
            await asyncio.gather(*(one(d, t) for d, t in [*asks, (0.121, 0.01)]))
            return ended

        ended = sim.run(main, on="n1")
        assert len(ended) == 41
        for timeout, took in ended:
            assert timeout - 1e-9 <= took <= timeout + ASK_TIMER_SLACK + 1e-9, (timeout, took)


def test_answered_asks_leave_no_growing_queue_of_deadlines() -> None:
    with Simulation(nodes=2, seed=3) as sim:
        counter = sim.spawn("n2", Counter, name="c")

        async def main() -> None:
            for _ in range(20_000):
                await counter.ask(Get(), 60.0)  # answered long before any deadline

        sim.run(main, on="n1")
        node = sim.node("n1")
        queued = node.asks.queued_deadlines()
        assert 0 < queued <= 2 * 4096
        assert node.stats.ask_timeouts == 0


# -- replay from one seed ------------------------------------------------------------------


@message(name="test.sim.Rumor")
@dataclass(frozen=True)
class Rumor:
    hops: int
    origin: str
    data: tuple[int, ...]


@message(name="test.sim.Round")
@dataclass(frozen=True)
class Round:
    pass


class Gossip(Actor):
    """Spreads rumors to random peers on a timer, with async pauses: every kind of choice."""

    def __init__(self, peers: list[str]) -> None:
        self.peers = peers
        self.heard = 0

    def on_start(self) -> None:
        self.context.start_timer("round", Round(), 0.05, repeat=True)
        self.context.storage.put("started", b"1")

    @handler
    def round(self, msg: Round) -> None:
        peer = self.context.random.choice(self.peers)
        ActorRef(peer, "g").tell(Rumor(0, self.context.node, (self.heard,)))

    @handler
    async def rumor(self, msg: Rumor) -> None:
        self.heard += 1
        if self.context.random.random() < 0.1:
            await asyncio.sleep(self.context.random.uniform(0.0, 0.01))
            await self.context.storage.sync()
        if msg.hops < 3:
            peer = self.context.random.choice(self.peers)
            ActorRef(peer, "g").tell(Rumor(msg.hops + 1, msg.origin, (*msg.data, self.heard)))


ALL_FAULTS = NetworkConfig(latency=(0.001, 0.02), drop=0.05, duplicate=0.05, reorder=True)


def _gossip_trace(seed: int, deliveries: int = 10_000) -> str:
    nodes = [f"n{i}" for i in range(1, 6)]
    with Simulation(nodes=nodes, seed=seed, network=ALL_FAULTS, lose_unsynced="prefix") as sim:
        for node in nodes:
            sim.spawn(node, Gossip, nodes, name="g")
        sim.run_until(lambda: sim.deliveries() >= deliveries // 3, timeout=1000.0)
        sim.crash("n3")
        sim.partition(["n1", "n2"], ["n4", "n5"])
        sim.run_until(lambda: sim.deliveries() >= deliveries // 2, timeout=1000.0)
        sim.restart("n3")
        sim.heal()
        assert sim.run_until(lambda: sim.deliveries() >= deliveries, timeout=1000.0)
        return sim.trace_text()


def test_the_same_seed_replays_the_same_run_and_another_seed_does_not() -> None:
    first = _gossip_trace(seed=11)
    again = _gossip_trace(seed=11)
    other = _gossip_trace(seed=12)
    assert first.count(" deliver ") >= 10_000
    assert first == again
    assert first != other
    for kind in (" drop ", " dup ", " crash ", " restart ", " partition ", " heal ", " timer "):
        assert kind in first, f"the run exercised no {kind.strip()} event"


def test_an_actor_costs_under_3_kib_and_its_random_source_is_made_at_first_use() -> None:
    import random
    import tracemalloc

    from actorfw.core.cell import derive_seed

    with Simulation(nodes=1, seed=7) as sim:
        sim.spawn("n1", Recorder, name="warm")  # classes, handler tables and the like, once
        engine = sim.node("n1")
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(2000):
                engine.spawn(Recorder, name=f"r{i}")
            per_actor = (tracemalloc.get_traced_memory()[0] - before) / 2000
        finally:
            tracemalloc.stop()
        # 5 KiB each while every cell made its own Mersenne Twister (2.5 KiB of state).
        assert per_actor < 3 << 10, per_actor
        cell = engine.cells["r7"]
        assert cell.rng is None
        draws = [cell.context.random.random() for _ in range(3)]
        seed = derive_seed(engine.seed, engine.id, engine.incarnation, "r7")
        reference = random.Random(seed)
        assert draws == [reference.random() for _ in range(3)]  # the seed it always had
        assert cell.context.random is cell.rng  # one source, kept


def test_a_traced_tell_to_a_node_not_in_the_cluster_is_neither_sent_nor_traced(
    tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    from pathlib import Path

    from actorfw.core.engine import NodeConfig

    caplog.set_level(logging.INFO, logger="actorfw")
    config = NodeConfig(trace_dir=str(tmp_path))
    with Simulation(nodes=2, seed=1, node_config=config) as sim:
        rec = sim.spawn("n1", Recorder, name="rec")
        sim.ask(rec, Send(ActorRef("n9", "x"), Put(1)))
        sim.run_for(1.0)
        assert sim.node("n1").stats.dead_letters == 1
    lines = [r.getMessage() for r in caplog.records if "no node 'n9'" in r.getMessage()]
    assert len(lines) == 1 and "dead letter: Put from n1/rec" in lines[0]
    trace = (Path(str(tmp_path)) / "n1.trace.jsonl").read_text()
    assert '"peer":"n9"' not in trace
