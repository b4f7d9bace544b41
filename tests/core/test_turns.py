"""An actor's turn ends at its bounds (``mailbox_batch`` messages, ``turn_time`` seconds).

So one busy actor never keeps the others of its node from their turns. The
engine reads the clock every 16 messages of a turn; these tests run an
engine on a real event loop, with handlers that take a known minimum time,
so where a turn ends does not depend on the machine's speed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from actorfw import Actor, NodeConfig, Simulation, handler, message
from actorfw.core.engine import Engine
from actorfw.core.storage import MemoryBackend

ORDER: list[tuple[str, int]] = []
SENDERS: list[tuple[str, str | None]] = []  # (who handled a step, who sent it)


@message(name="test.turns.Step")
class Step:
    n: int
    again: int = 0  # tell itself this many more steps, one per step


class Busy(Actor):
    """Records each step; spins ``spin`` seconds on each, as a slow handler does."""

    def __init__(self, spin: float = 0.0) -> None:
        self.spin = spin

    @handler
    def step(self, msg: Step) -> None:
        ORDER.append((self.context.name, msg.n))
        sender = self.context.sender
        SENDERS.append((self.context.name, sender.name if sender is not None else None))
        now = self.context.now  # the engine's clock: time.monotonic here, as on a node
        end = now() + self.spin
        while now() < end:
            pass
        if msg.again:
            self.context.ref.tell(Step(msg.n + 1, msg.again - 1))  # through the current door


class _Nowhere:
    """A transport for one node alone: there is nobody to send to."""

    def send(self, destination: str, envelope: Any) -> None:
        raise AssertionError(f"nothing here sends to another node ({destination})")

    def attach(self, inbound: Any) -> None:
        pass


def turns(config: NodeConfig, load: list[tuple[str, float, list[Step]]]) -> list[tuple[str, int]]:
    """Spawn each ``(name, spin, steps)`` actor, queue its steps, and run until all are done."""

    async def main() -> list[tuple[str, int]]:
        loop = asyncio.get_running_loop()
        storage = MemoryBackend(lambda _delay, flush: flush(), lambda: 0.0, loop.create_future)
        engine = Engine("n1", loop, _Nowhere(), storage, config=config, clock=time.monotonic)
        engine.start()
        for name, spin, _ in load:
            engine.spawn(Busy, spin, name=name)
        await asyncio.sleep(0)  # they start
        ORDER.clear()
        SENDERS.clear()
        for name, _, steps in load:
            for step in steps:
                engine.enqueue(name, (step, None, None, None))
        expected = sum(len(steps) + sum(s.again for s in steps) for _, _, steps in load)
        deadline = time.monotonic() + 30.0
        while len(ORDER) < expected:
            assert time.monotonic() < deadline, f"only {len(ORDER)} of {expected} handled"
            await asyncio.sleep(0.001)
        await engine.stop()
        return list(ORDER)

    return asyncio.run(main())


def test_a_turn_ends_after_mailbox_batch_messages() -> None:
    order = turns(
        NodeConfig(mailbox_batch=10),
        [("a", 0.0, [Step(n) for n in range(25)]), ("b", 0.0, [Step(0)])],
    )
    assert order.index(("b", 0)) == 10  # a's first turn, then b's
    assert [n for name, n in order if name == "a"] == list(range(25))


def test_a_turn_ends_at_its_time_bound() -> None:
    # 2 ms a message, 10 ms a turn: the clock, read at the 16th message, says stop.
    order = turns(
        NodeConfig(turn_time=0.01),
        [("a", 0.002, [Step(n) for n in range(40)]), ("b", 0.0, [Step(0)])],
    )
    assert order.index(("b", 0)) == 16


def test_a_turn_whose_mailbox_grows_as_it_runs_ends_at_its_time_bound_too() -> None:
    # One message waits at first; each one brings the next. The turn first reads
    # the clock at its 16th message, and ends at its 32nd.
    order = turns(
        NodeConfig(turn_time=0.01),
        [("a", 0.002, [Step(0, again=40)]), ("b", 0.0, [Step(0)])],
    )
    assert order.index(("b", 0)) == 32
    assert [n for name, n in order if name == "a"] == list(range(41))


def test_refs_in_handlers_send_from_their_own_actor_in_each_turn_of_a_round() -> None:
    order = turns(
        NodeConfig(),
        [(f"a{i}", 0.0, [Step(0, again=2)]) for i in range(5)],
    )
    for i in range(5):
        assert [n for name, n in order if name == f"a{i}"] == [0, 1, 2]
    # Each self-tell came from the actor itself, whichever actor's turn came before.
    told = [(name, sender) for name, sender in SENDERS if sender is not None]
    assert len(told) == 10
    assert all(name == sender for name, sender in told)


def test_a_turn_ends_at_a_zero_time_bound_at_the_simulators_time_zero() -> None:
    with Simulation(nodes=1, seed=1, node_config=NodeConfig(turn_time=0.0)) as sim:
        sim.spawn("n1", Busy, name="a")
        sim.spawn("n1", Busy, name="b")
        sim.run_for(0.0)
        engine = sim.node("n1")
        assert engine.now() == 0.0  # a deadline of 0.0 is still a deadline
        ORDER.clear()
        for n in range(40):
            engine.enqueue("a", (Step(n), None, None, None))
        engine.enqueue("b", (Step(0), None, None, None))
        sim.run_for(0.0)
        assert ORDER.index(("b", 0)) == 16
