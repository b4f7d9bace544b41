"""Tells and asks from the driver's threads: queued, then taken by the client's loop in order.

The queue itself (:mod:`actorfw.node.handoff`) is tested on a plain event
loop with a stand-in engine, so that its bounds and its order can be held
still; what a driver sees is tested on every runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from typing import Any

import numpy as np
import pytest

from actorfw.core.envelopes import Envelope
from actorfw.node import ActorSystem
from actorfw.node.handoff import Handoff
from actorfw.node.system import SystemTimeout
from actorfw.values.errors import ActorNotFound, AskTimeout, MessageRefused, Overloaded
from actorfw.values.refs import ActorRef
from tests.support.actors import Cramped, Echo, Fail, Get, Put, Recorder, Sleep

# -- what a driver sees, on every runtime ---------------------------------------------------


def test_a_loop_of_driver_tells_arrives_whole_and_in_order_on_every_runtime(cluster: Any) -> None:
    ref = cluster.spawn("n2", Recorder, name="r")
    for n in range(1500):
        cluster.tell(ref, Put(n))
        if n % 500 == 499:  # an ask queued behind tells finds them all delivered
            assert len(cluster.ask(ref, Get())["items"]) == n + 1
    assert [value for value, _ in cluster.ask(ref, Get())["items"]] == list(range(1500))


def test_a_refused_driver_call_raises_at_the_call_and_sends_nothing(cluster: Any) -> None:
    ref = cluster.spawn("n2", Recorder, name="r")
    with pytest.raises(MessageRefused):
        cluster.tell(ref, Put(object()))
    with pytest.raises(MessageRefused):
        cluster.ask(ref, Put(object()))
    with pytest.raises(ValueError, match="ask timeout must be a positive number"):
        cluster.ask(ref, Put(1), timeout=0)
    with pytest.raises(TypeError, match=r"ActorRef\('n2', 'r'\)"):
        cluster.tell("n2/r", Put(1))
    assert cluster.ask(ref, Get())["items"] == []


def test_a_driver_ask_ends_with_its_errors_and_its_own_timeout(cluster: Any) -> None:
    ref = cluster.spawn("n2", Recorder, name="r")
    with pytest.raises(ActorNotFound, match="'nobody-here' is not on node n2"):
        cluster.ask(ActorRef("n2", "nobody-here"), Get())
    with pytest.raises(ValueError, match="boom"):
        cluster.ask(ref, Fail("ValueError", "boom"))
    with pytest.raises(AskTimeout):
        cluster.ask(ref, Sleep(2.0), timeout=0.2)
    # The restarted actor ran the sleep that outlived its ask, then this.
    assert cluster.ask(ref, Put("x")) == 2


def test_driver_tells_and_asks_from_several_threads_keep_each_threads_order() -> None:
    with ActorSystem(2, apps=["tests.support.actors"]) as system:
        ref = system.spawn("n2", Recorder, name="r")
        echo = system.spawn("n2", Echo, name="echo")
        answers: dict[int, list[Any]] = {}

        def drive(k: int) -> None:
            answers[k] = []
            for n in range(600):
                system.tell(ref, Put([k, n]))
                if n % 100 == 0:
                    answers[k].append(system.ask(echo, Put([k, n])))

        threads = [threading.Thread(target=drive, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60.0)
        items = system.poll(ref, Get(), until=lambda state: len(state["items"]) == 2400)["items"]
        for k in range(4):
            assert [n for (kk, n), _ in items if kk == k] == list(range(600))
            assert answers[k] == [Put([k, n]) for n in range(0, 600, 100)]


def test_a_slow_node_holds_back_no_driver_call_to_another() -> None:
    with ActorSystem(2, apps=["tests.support.actors"], storage="memory") as system:
        slow = system.spawn("n1", Cramped, name="slow")
        fast = system.spawn("n2", Recorder, name="fast")
        system._client.flow.max_backlog = 64  # the same path as 65,536, reached sooner
        system.tell(slow, Sleep(10.0))  # busy, with a mailbox of one: n1 gives no credit
        for n in range(8192 + 64 + 100):  # the credit window, the backlog, and more
            with contextlib.suppress(Overloaded):
                system.tell(slow, Put(n))
        deadline = time.monotonic() + 30.0
        while system.backlog("n1") < 64 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(Overloaded, match="max_backlog 64"):
            system.tell(slow, Put("one more"))
        # Nothing for n2, nor n1's own protocol, waits behind what n1 holds back.
        system.tell(fast, Put("told"))
        assert system.ask(fast, Put("asked"), timeout=2.0) == 2
        assert system.status("n1", timeout=2.0)["node"] == "n1"


def test_closing_a_connection_sends_what_was_queued_before_it() -> None:
    with ActorSystem(1, apps=["tests.support.actors"], storage="memory") as system:
        ref = system.spawn("n1", Recorder, name="r")
        from actorfw.node import connect

        for session in range(6):  # each time, the last tells are the ones a close could lose
            with connect({"n1": system.endpoint("n1")}) as client:
                for n in range(500):
                    client.tell(ref, Put(session * 500 + n))
        items = system.poll(ref, Get(), until=lambda state: len(state["items"]) >= 3000)["items"]
        assert sorted(value for value, _ in items) == list(range(3000))


def test_an_ask_without_an_end_in_sight_waits_for_its_reply() -> None:
    with ActorSystem(1, apps=["tests.support.actors"], storage="memory") as system:
        ref = system.spawn("n1", Recorder, name="r")
        assert system.ask(ref, Put(1), timeout=math.inf) == 1
        with pytest.raises(ValueError, match="ask timeout must be a positive number"):
            system.ask(ref, Put(2), timeout=True)


def test_a_closed_connection_refuses_driver_calls() -> None:
    with ActorSystem(1, apps=["tests.support.actors"]) as system:
        ref = system.spawn("n1", Recorder, name="r")
        addresses = {node: system.endpoint(node) for node in system.nodes}
        from actorfw.node import connect

        client = connect(addresses)
        assert client.ask(ref, Put(1)) == 1
        client.close()
        with pytest.raises(RuntimeError, match="is closed"):
            client.tell(ref, Put(2))
        with pytest.raises(RuntimeError, match="is closed"):
            client.ask(ref, Get())


def test_driver_calls_once_the_clients_loop_thread_ended_raise_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with ActorSystem(1, apps=["tests.support.actors"], storage="memory") as system:
        ref = system.spawn("n1", Recorder, name="r")
        ended = threading.Thread(target=lambda: None)  # stands for a loop thread that died
        ended.start()
        ended.join()
        with monkeypatch.context() as patch:
            patch.setattr(system, "_thread", ended)
            with pytest.raises(RuntimeError, match="has ended: nothing would send this"):
                system.tell(ref, Put(1))
            with pytest.raises(RuntimeError, match="has ended"):
                system.ask(ref, Get())
        assert system.ask(ref, Get())["items"] == []


# -- the queue, held still ---------------------------------------------------------------


class _Flow:
    def __init__(self) -> None:
        self.max_backlog = 3
        self.backlogs: dict[str, int] = {}

    def backlog(self, node: str) -> int:
        return self.backlogs.get(node, 0)

    def refuse(self, node: str, target: str, kind: str = "tell") -> None:
        raise Overloaded(f"the backlog to {node} is full; the {kind} to {node}/{target}")


class _Engine:
    """What a :class:`Handoff` uses of an engine; records what it is handed."""

    id = "client"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.flow = _Flow()
        self.sent: list[tuple[str, Any]] = []
        self.buffers: list[Any] = []

    def send_envelope(self, node: str, envelope: Envelope) -> None:
        self.sent.append((node, envelope.body))
        self.buffers.extend(envelope.buffers)

    def ask_encoded(self, target: ActorRef, encoded: Any, timeout: float, sender: Any) -> Any:
        future = self.loop.create_future()
        if encoded[0] == b'"fail"':
            future.set_exception(KeyError("no"))
        else:
            future.set_result(encoded[0])
        return future


def _settle(loop: asyncio.AbstractEventLoop, until: Any) -> None:
    async def wait() -> None:
        while not until():
            await asyncio.sleep(0.001)

    loop.run_until_complete(asyncio.wait_for(wait(), 10.0))


def test_the_queue_holds_its_entry_bound_and_the_caller_waits_then_gives_up() -> None:
    loop = asyncio.new_event_loop()
    try:
        handoff = Handoff(_Engine(loop), limit=2, wait=0.05)  # type: ignore[arg-type]
        handoff.tell(ActorRef("n2", "a"), 1)
        handoff.tell(ActorRef("n2", "a"), 2)
        with pytest.raises(SystemTimeout, match="took none of 2 queued"):
            handoff.tell(ActorRef("n2", "a"), 3)
        assert len(handoff) == 2  # the loop has not run: nothing taken, nothing dropped
    finally:
        loop.close()


def test_the_queue_holds_its_byte_bound_but_takes_one_big_entry_alone() -> None:
    loop = asyncio.new_event_loop()
    try:
        engine = _Engine(loop)
        handoff = Handoff(engine, max_bytes=64, wait=0.05)  # type: ignore[arg-type]
        handoff.tell(ActorRef("n2", "a"), "x" * 1000)
        with pytest.raises(SystemTimeout):
            handoff.tell(ActorRef("n2", "a"), "y")
        _settle(loop, lambda: len(handoff) == 0)
        handoff.tell(ActorRef("n2", "a"), "y")
        _settle(loop, lambda: len(engine.sent) == 2)
    finally:
        loop.close()


def test_a_caller_waiting_for_room_goes_on_once_the_loop_takes_the_queue() -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    engine = _Engine(loop)
    handoff = Handoff(engine, limit=1)  # type: ignore[arg-type]
    for n in range(200):  # each call waits for the loop to take the one before
        handoff.tell(ActorRef("n2", "a"), n)
        if n == 0:
            thread.start()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10.0)
    loop.close()
    assert [body for _, body in engine.sent] == [str(n).encode() for n in range(200)]


def test_a_tell_to_a_full_backlog_is_refused_at_the_call() -> None:
    loop = asyncio.new_event_loop()
    try:
        engine = _Engine(loop)
        engine.flow.backlogs["n2"] = 3
        handoff = Handoff(engine)  # type: ignore[arg-type]
        with pytest.raises(Overloaded, match="the tell to n2/a"):
            handoff.tell(ActorRef("n2", "a"), 1)
        handoff.tell(ActorRef("n3", "a"), 1)
        assert len(handoff) == 1
    finally:
        loop.close()


def test_tells_to_a_nodes_protocol_are_never_refused_at_the_call() -> None:
    loop = asyncio.new_event_loop()
    try:
        engine = _Engine(loop)
        engine.flow.backlogs["n2"] = 3
        handoff = Handoff(engine)  # type: ignore[arg-type]
        handoff.tell(ActorRef("n2", "$node"), 1)  # rule 3 of core.flow: never held back
        assert len(handoff) == 1
    finally:
        loop.close()


def test_small_arrays_are_frozen_at_the_call_and_count_toward_the_byte_bound() -> None:
    loop = asyncio.new_event_loop()
    try:
        engine = _Engine(loop)
        handoff = Handoff(engine, max_bytes=10_000, wait=0.05)  # type: ignore[arg-type]
        array = np.zeros(1000, dtype=np.int64)  # 8,000 bytes in a frame of its own
        handoff.tell(ActorRef("n2", "a"), array)
        array[:] = 7  # changed after the call, before the loop's turn
        with pytest.raises(SystemTimeout):  # 8,000 + 8,000 bytes pass the bound
            handoff.tell(ActorRef("n2", "a"), array)
        _settle(loop, lambda: len(engine.sent) == 1)
        assert engine.buffers[0] == bytes(8000)  # sent as it was at the call
    finally:
        loop.close()


def test_callers_waiting_for_room_each_give_up_within_the_wait() -> None:
    loop = asyncio.new_event_loop()
    try:
        handoff = Handoff(_Engine(loop), limit=1, wait=0.3)  # type: ignore[arg-type]
        handoff.tell(ActorRef("n2", "a"), 0)
        waited: list[float] = []

        def call() -> None:
            start = time.monotonic()
            with pytest.raises(SystemTimeout):
                handoff.tell(ActorRef("n2", "a"), 1)
            waited.append(time.monotonic() - start)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10.0)
        assert len(waited) == 4 and max(waited) < 0.3 + 0.25  # not one wait after another
    finally:
        loop.close()


def test_an_ask_handed_over_is_answered_with_the_reply_or_its_error() -> None:
    loop = asyncio.new_event_loop()
    try:
        handoff = Handoff(_Engine(loop))  # type: ignore[arg-type]
        good = handoff.ask(ActorRef("n2", "a"), "ok", 1.0)
        bad = handoff.ask(ActorRef("n2", "a"), "fail", 1.0)
        assert good.wait(0.01) == (False, None)  # the loop has not taken them yet
        _settle(loop, lambda: len(handoff) == 0)
        _settle(loop, lambda: True)  # the futures' callbacks run at the next turn
        assert good.wait(1.0) == (True, b'"ok"')
        with pytest.raises(KeyError):
            bad.wait(1.0)
    finally:
        loop.close()
