"""The driver runs a toy core (tests/support/toy.py) the same way in the simulator and on nodes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actorfw import Simulation
from actorfw.node import ActorSystem
from actorfw.protocols.effects import Core, Effects
from actorfw.services.driver import CoreActor
from actorfw.values.refs import ActorRef
from tests.support.toy import Add, Heard, TallyActor, TallyCore, Told

NODES = ["n1", "n2", "n3"]


@pytest.fixture(params=["sim", "processes"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Three nodes, each running a ``tally``."""
    if request.param == "sim":
        context: Any = Simulation(nodes=3, seed=5)
    else:
        context = ActorSystem(3, apps=["tests.support.toy"])
    with context as cluster:
        for node in NODES:
            cluster.spawn(node, TallyActor, NODES, name="tally")
        yield cluster


def tally(node: str) -> ActorRef:
    return ActorRef(node, "tally")


def test_the_toy_core_is_a_core() -> None:
    core = TallyCore("n1", ("n2",), 0)
    assert isinstance(core, Core)
    assert core.tick(0.0).send == [("n2", Told("n1", 0))]
    assert core.next_deadline() == 1.0


def test_an_add_is_answered_with_the_count_and_a_restart_keeps_it(runtime: Any) -> None:
    assert runtime.ask(tally("n1"), Add(2)) == 2
    assert runtime.ask(tally("n1"), Add(3)) == 5
    runtime.crash("n1")  # at once: the answer said 5, so 5 is durable
    runtime.restart("n1")
    assert runtime.poll(tally("n1"), Add(0), until=lambda count: count is not None) == 5
    assert runtime.ask(tally("n2"), Add(1)) == 1  # each node has its own


def test_peers_hear_each_count_on_the_cores_timer(runtime: Any) -> None:
    runtime.ask(tally("n1"), Add(7))
    runtime.ask(tally("n3"), Add(4))
    heard = runtime.poll(
        tally("n2"), Heard(), until=lambda h: h.get("n1") == 7 and h.get("n3") == 4, timeout=20.0
    )
    assert heard == {"n1": 7, "n3": 4}


def test_a_bad_ask_gets_a_clear_error_and_the_tally_lives_on(runtime: Any) -> None:
    with pytest.raises(TypeError, match="an amount is an int, not 'x'"):
        runtime.ask(tally("n1"), Add("x"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Told is not an ask to tally on n1"):
        runtime.ask(tally("n1"), Told("n2", 1))
    assert runtime.ask(tally("n1"), Add(1)) == 1


def test_outputs_wait_for_the_sync_and_leave_in_step_order() -> None:
    # Syncs on the simulator take virtual time: an answer must not come before its write
    # is durable, however the crash falls.
    for seed in range(5):
        with Simulation(nodes=3, seed=seed, lose_unsynced="all") as sim:
            for node in NODES:
                sim.spawn(node, TallyActor, NODES, name="tally")
            answered = [sim.ask(tally("n1"), Add(1)) for _ in range(3)]
            assert answered == [1, 2, 3]
            sim.crash("n1")
            sim.restart("n1")
            assert sim.poll(tally("n1"), Add(0), until=lambda c: c is not None) == 3


class _Records:
    def ops(self, record: Any) -> list[tuple[bytes, bytes | None]]:
        return [(b"k%d" % record, b"")]

    def load(self, items: Any) -> list[Any]:
        return []


class _Writer:
    """Persists one record per message, with ``sync`` as the message says; nothing waits."""

    def __init__(self) -> None:
        self.durable = 0
        self.written = 0

    def handle_all(self, messages: list[Any], now: float) -> Effects:
        if "boom" in messages:
            raise RuntimeError("boom")
        self.written += 1
        return Effects(persist=[self.written], sync=bool(messages[-1]))

    def tick(self, now: float) -> Effects:
        return Effects()

    def next_deadline(self) -> None:
        return None

    def made_durable(self, steps: int) -> None:
        self.durable = steps


class WriterActor(CoreActor):
    codec = _Records()

    def restore(self, records: list[Any]) -> _Writer:
        return _Writer()

    def resolve(self, address: str, msg: Any) -> ActorRef:
        raise AssertionError("the writer sends nothing")


def test_a_step_that_asks_for_its_sync_gets_it_though_nothing_waits() -> None:
    with Simulation(nodes=1, seed=1) as sim:
        writer = sim.spawn("n1", WriterActor, name="writer")
        sim.tell(writer, 0)  # nothing waits, no sync asked: it stays unsynced
        sim.run_for(0.5)
        core = sim.node("n1").cells["writer"].instance.core
        assert core.written == 1 and core.durable == 0
        sim.tell(writer, 1)  # sync asked: both writes become durable
        assert sim.run_until(lambda: core.durable == 2, timeout=1.0)


def test_a_restarted_actor_counts_only_its_own_syncs_and_first_syncs_what_it_read() -> None:
    with Simulation(nodes=1, seed=2) as sim:
        writer = sim.spawn("n1", WriterActor, name="writer")
        sim.run_for(0.1)
        first = sim.node("n1").cells["writer"].instance
        sim.tell(writer, 1)  # a write, its sync started...
        sim.run_for(0.00001)
        assert first.core.written == 1 and first._syncing
        sim.tell(writer, "boom")  # ...and the actor fails before it completes
        sim.run_for(0.5)
        second = sim.node("n1").cells["writer"].instance
        assert second is not first
        # The first instance's sync completed meanwhile: it is not the second's, which
        # has none of its own steps durable.
        assert second.core.durable == 0 and second._durable == second._base
        sim.tell(writer, 0)  # a write of its own, no sync asked
        sim.run_for(0.5)
        assert second.core.written == 1 and second.core.durable == 0


def test_an_actor_restarted_over_its_unsynced_writes_syncs_them_before_anything_leaves() -> None:
    with Simulation(nodes=1, seed=3) as sim:
        writer = sim.spawn("n1", WriterActor, name="writer")
        sim.run_for(0.1)
        first = sim.node("n1").cells["writer"].instance
        sim.tell(writer, 0)  # a write nothing waits for: unsynced
        sim.run_for(0.00001)
        sim.tell(writer, "boom")
        sim.run_for(0.5)
        second = sim.node("n1").cells["writer"].instance
        assert second is not first and second._base == 1  # it read back unsynced writes
        assert second._durable == 1  # synced at its start
        assert not second.context.storage.pending()


def test_effects_say_what_they_hold() -> None:
    assert not Effects()
    assert Effects(send_now=[("n1", 1)]) and Effects(outputs=[1]) and Effects(refused=[1])
    first = Effects(persist=[1], send=[("a", 1)])
    first.extend(Effects(persist=[2], responses=[3], send_now=[("b", 2)], outputs=[4]))
    assert first == Effects([1, 2], [("a", 1)], [3], [("b", 2)], [4], [])
    first.extend(Effects(sync=True))
    assert first.sync


class _Hair:
    """Due once, a hair after the first message: closer than the loop's clock resolution."""

    def __init__(self) -> None:
        self.due: float | None = None
        self.ticks: list[float] = []

    def handle_all(self, messages: list[Any], now: float) -> Effects:
        self.due = now + 1e-12
        return Effects()

    def tick(self, now: float) -> Effects:
        self.ticks.append(now)
        if len(self.ticks) >= 50 or (self.due is not None and now >= self.due):
            self.due = None  # done (or, at 50, given up: the driver kept ticking it early)
        return Effects()

    def next_deadline(self) -> float | None:
        return self.due


class HairActor(WriterActor):
    """Runs a :class:`_Hair`."""

    def restore(self, records: list[Any]) -> _Hair:  # type: ignore[override]
        return _Hair()


def test_a_deadline_a_hair_away_is_met_by_one_tick_though_the_timer_fires_early() -> None:
    # asyncio runs a timer due within its clock's resolution at once, if other work is
    # ready: the clock reads a hair before the deadline. The driver once ticked the
    # core at that reading, found nothing due, re-armed for the same deadline, and
    # (with the loop kept busy, as by a cluster's traffic) never let the clock move on.
    with Simulation(nodes=1, seed=4) as sim:
        hair = sim.spawn("n1", HairActor, name="hair")
        sim.run_for(0.1)
        busy = iter(range(1000))

        def keep_busy() -> None:  # other work, ready at each turn of the loop
            if next(busy, None) is not None:
                sim.loop.call_soon(keep_busy)

        sim.tell(hair, 0)
        sim.loop.call_soon(keep_busy)
        sim.run_for(0.1)
        core = sim.node("n1").cells["hair"].instance.core
        assert core.due is None and len(core.ticks) == 1
        assert core.ticks[0] >= 0.1 + 1e-12
