"""A batch taken at once (``Inbound.receive_batch``) does what its envelopes taken one by one do.

Node processes hand the engine each batch off the socket at once, with the
common tell inline; the simulator hands it envelopes one at a time. Both
must leave the engine in the same state: the same mailboxes, counters,
credit, dead letters and answers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from actorfw import ActorRef, NodeConfig, Simulation
from actorfw.core.envelopes import ASK, FAILURE, REPLY, TELL, Envelope
from actorfw.core.messages import Heartbeat, StatusRequest
from actorfw.core.node_protocol import NODE_TARGET
from actorfw.core.tracing import Traced
from actorfw.kernels import vclock
from actorfw.values import codec
from tests.support.actors import SlowSink, Work


def tell(target: str, value: Any, sender: str | None = "producer") -> Envelope:
    body, buffers, plain = codec.encode(value)
    return Envelope(TELL, "n1", target, sender, 0, body, buffers, plain)


def mixed() -> list[Envelope]:
    """Every way an envelope can leave the common path, between runs of common tells."""
    out = [tell("sink", Work(n)) for n in range(20)]
    out.append(tell("nobody", Work(20)))  # a dead letter
    out.append(Envelope(TELL, "n1", "sink", None, 0, b'{"$t": 7', [], False))  # malformed
    out.append(tell("sink", Work(21), sender=None))
    out.append(tell("sink", Work(-1), sender=""))  # a sender with no name: refused alone
    body, buffers, plain = codec.encode(Work(-2))
    out.append(Envelope(ASK, "n1", "sink", "", 8, body, buffers, plain))
    body, buffers, plain = codec.encode(Work(22))
    out.append(Envelope(ASK, "n1", "sink", "asker", 9, body, buffers, plain))
    out.append(tell("sink", Traced(vclock.VectorClock({"n1": 3}), Work(23))))  # from a tracer
    out.append(tell("sink", Traced(vclock.VectorClock(), Traced(vclock.VectorClock(), 1))))
    body, buffers, plain = codec.encode(StatusRequest())
    out.append(Envelope(ASK, "n1", NODE_TARGET, None, 11, body, buffers, plain))
    body, buffers, plain = codec.encode("late")
    out.append(Envelope(REPLY, "n1", "", None, 12345, body, buffers, plain))  # nobody asked
    out.append(Envelope(7, "n1", "sink", None, 0, b"1", [], True))  # an unknown kind
    body, buffers, plain = codec.encode(Work(23))
    out.append(Envelope(TELL, "n3", "sink", "producer", 0, body, buffers, plain))  # not the peer
    out.extend(tell("sink", Work(n)) for n in range(24, 140))  # past the mailbox bound
    out.append(tell("sink", b"x" * 3000))  # a bigger tell costs more units
    return out


class Recording:
    """A transport that notes what the engine sends through it, then sends it."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.sent: list[tuple[str, int, int, str]] = []

    def send(self, destination: str, envelope: Envelope) -> None:
        self.sent.append((destination, envelope.kind, envelope.corr, envelope.target))
        self.transport.send(destination, envelope)


def state_after(feed: Callable[[Any, list[Envelope]], None]) -> dict[str, Any]:
    with Simulation(nodes=2, seed=21, node_config=NodeConfig(flow_window=256)) as sim:
        sim.spawn("n2", SlowSink, 10.0, name="sink")
        n2 = sim.node("n2")
        sim.run_for(0.01)
        recording = n2.transport = Recording(n2.transport)
        feed(n2, mixed())
        cell = n2.cells["sink"]
        credit = n2.flow.incoming("n1")
        return {
            "mailbox": [(m, s, r, t) for m, s, r, t in cell.mailbox],
            "stats": dataclasses.asdict(n2.stats),
            "credit": (credit.released, credit.owed, credit.due),
            "credit of n3": vars_of(n2.flow.counts.get("n3")),
            "owed": sorted(cell.owed.values()) if cell.owed else [],
            "scheduled": cell.scheduled,
            "sent": recording.sent,
        }


def vars_of(count: Any) -> tuple[int, int, int] | None:
    return None if count is None else (count.released, count.owed, count.due)


def one_by_one(engine: Any, envelopes: list[Envelope]) -> None:
    for envelope in envelopes:
        engine.inbound.heard_from("n1")
        engine.inbound.receive(envelope)


def at_once(engine: Any, envelopes: list[Envelope]) -> None:
    engine.inbound.heard_from("n1")
    engine.inbound.receive_batch("n1", envelopes)


def test_a_batch_leaves_the_engine_as_its_envelopes_one_by_one_do() -> None:
    batch = state_after(at_once)
    single = state_after(one_by_one)
    assert batch == single
    # And the mix did reach every path: queued, refused, malformed, owed.
    assert len(batch["mailbox"]) > SlowSink.mailbox_limit
    assert batch["stats"]["malformed"] >= 5
    assert all(message.n >= 0 for message, *_ in batch["mailbox"] if isinstance(message, Work))
    assert batch["credit"][1] > 0
    assert batch["sent"]  # the node protocol's answer, at least
    assert batch["credit of n3"] is not None  # the tell from another node than the peer's
    assert any(s is not None and s.node == "n3" for _, s, *_ in batch["mailbox"])


def test_a_batch_from_a_peer_the_transport_did_not_name_counts_its_own_credit() -> None:
    def elsewhere(engine: Any, envelopes: list[Envelope]) -> None:
        engine.inbound.heard_from("n3")  # the count of another peer is current
        engine.inbound.receive_batch("n1", envelopes)

    assert state_after(elsewhere)["credit"] == state_after(at_once)["credit"]


def test_tells_after_a_restarted_peers_heartbeat_count_toward_its_new_credit() -> None:
    with Simulation(nodes=2, seed=22, node_config=NodeConfig(flow_window=256)) as sim:
        sim.spawn("n2", SlowSink, 10.0, name="sink")
        n2 = sim.node("n2")
        sim.run_for(0.01)
        n2.inbound.heard_from("n1")
        n2.inbound.receive_batch("n1", [tell("sink", Work(n)) for n in range(5)])
        old = n2.flow.counts["n1"]
        # n1 restarted: its heartbeat ends the old count, and its tells begin a new one.
        restarted = [tell(NODE_TARGET, Heartbeat(99), sender=None)]
        n2.inbound.receive_batch("n1", restarted + [tell("sink", Work(n)) for n in range(40)])
        new = n2.flow.counts["n1"]
        assert new is not old and old.released == 5
        assert new.released == 40


def replies() -> list[Envelope]:
    """Replies to asks 1…4 between tells: good, malformed, traced, twice traced, from elsewhere."""

    def reply(corr: int, value: Any, source: str = "n1") -> Envelope:
        body, buffers, plain = codec.encode(value)
        return Envelope(REPLY, source, "", None, corr, body, buffers, plain)

    return [
        tell("sink", Work(0)),
        reply(1, Work(1)),
        Envelope(REPLY, "n1", "", None, 2, b'{"$t": 7', [], False),  # malformed: ends its ask
        reply(3, Traced(vclock.VectorClock({"n1": 1}), "traced")),
        reply(4, Traced(vclock.VectorClock(), Traced(vclock.VectorClock(), 1))),
        reply(1, "late"),  # its ask has ended: counted
        reply(5, "from n3", source="n3"),  # not the peer's: as receive takes it
        reply(999, "nobody asked"),
        tell("sink", Work(1)),
    ]


def answers_after(feed: Callable[[Any, list[Envelope]], None]) -> dict[str, Any]:
    with Simulation(nodes=3, seed=23) as sim:
        sim.spawn("n2", SlowSink, 10.0, name="sink")
        n2 = sim.node("n2")
        sim.run_for(0.01)
        futures = {}
        for _ in range(5):
            future = n2.loop.create_future()
            futures[n2.asks.open(future, ActorRef("n1", "x"), 60.0)] = future
        feed(n2, replies())
        sim.run_for(0.001)  # the futures' callbacks
        return {
            "answers": {
                corr: repr(f.exception() or f.result()) if f.done() else "open"
                for corr, f in futures.items()
            },
            "stats": dataclasses.asdict(n2.stats),
            "mailbox": [(m, s, r, t) for m, s, r, t in n2.cells["sink"].mailbox],
        }


def test_replies_in_a_batch_end_their_asks_as_one_by_one() -> None:
    batch = answers_after(at_once)
    single = answers_after(one_by_one)
    assert batch == single
    assert batch["answers"][1] == "Work(n=1)" and batch["answers"][3] == "'traced'"
    assert "MalformedMessage" in batch["answers"][2] and "MalformedMessage" in batch["answers"][4]
    assert batch["answers"][5] == "'from n3'"
    assert batch["stats"]["late_replies"] == 2


class CrashingOnFailure:
    """A transport whose node dies as it answers an ask with an error."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.transport = engine.transport

    def send(self, destination: str, envelope: Envelope) -> None:
        if envelope.kind == FAILURE:
            self.engine.crash()
            return
        self.transport.send(destination, envelope)


def after_a_crash_mid_batch(feed: Callable[[Any, list[Envelope]], None]) -> dict[str, Any]:
    with Simulation(nodes=2, seed=24) as sim:
        sim.spawn("n2", SlowSink, 10.0, name="sink")
        n2 = sim.node("n2")
        sim.run_for(0.01)
        for _ in range(2):
            n2.asks.open(n2.loop.create_future(), ActorRef("n1", "x"), 60.0)
        n2.transport = CrashingOnFailure(n2)
        body, buffers, plain = codec.encode("answer")
        feed(
            n2,
            [
                Envelope(ASK, "n1", "sink", "asker", 7, b'{"$t": 7', [], False),  # answered: dies
                Envelope(REPLY, "n1", "", None, 1, body, buffers, plain),
                Envelope(REPLY, "n1", "", None, 2, body, buffers, plain),
                tell("sink", Work(1)),
            ],
        )
        return dataclasses.asdict(n2.stats)


def test_a_node_that_dies_mid_batch_takes_nothing_after_it() -> None:
    batch = after_a_crash_mid_batch(at_once)
    assert batch == after_a_crash_mid_batch(one_by_one)
    assert batch["late_replies"] == 0 and batch["malformed"] == 1
