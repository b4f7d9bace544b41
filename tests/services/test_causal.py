"""Causal broadcast groups on the driver: the simulator with faults, and node processes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actorfw import Simulation
from actorfw.check import CausalMessage, check_causal
from actorfw.kernels import vclock
from actorfw.node import ActorSystem
from actorfw.protocols.causal import CausalOptions, Data, Delivery
from actorfw.services.causal import (
    Broadcast,
    CausalGroup,
    CausalMemberActor,
    Deliveries,
    MemberState,
    MemberStatus,
    causal_group,
    member_name,
)
from actorfw.sim.network import NetworkConfig
from tests.support.actors import Collector, Get, Recorder, Send

NODES = ["n1", "n2", "n3"]
FAST = CausalOptions(gossip_interval=0.2)


@pytest.fixture(params=["sim", "processes"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "sim":
        context: Any = Simulation(nodes=3, seed=3)
    else:
        context = ActorSystem(3, apps=["actorfw.services.causal", "tests.support.actors"])
    with context as cluster:
        yield cluster


def settled(group: CausalGroup, count: int, timeout: float = 30.0) -> dict[str, list[Delivery]]:
    """Wait until every member delivered ``count`` messages; return what each one reported."""
    for node in group.members:
        group.cluster.poll(
            group.member(node),
            MemberStatus(),
            until=lambda state: sum(c for _, c in state.reported.items()) >= count,
            timeout=timeout,
        )
    return {node: group.deliveries(node) for node in group.members}


def once(deliveries: list[Delivery]) -> list[Delivery]:
    """What an application that drops repeats (by ``(sender, seq)``) sees."""
    seen: set[tuple[str, int]] = set()
    kept = []
    for d in deliveries:
        if (d.sender, d.seq) not in seen:
            seen.add((d.sender, d.seq))
            kept.append(d)
    return kept


def verdict(deliveries: dict[str, list[Delivery]]) -> Any:
    messages = {
        f"{d.sender}#{d.seq}": CausalMessage(d.sender, d.clock)
        for ds in deliveries.values()
        for d in ds
    }
    order = {node: [f"{d.sender}#{d.seq}" for d in ds] for node, ds in deliveries.items()}
    return check_causal(messages, order, complete=True)


def test_a_reply_is_delivered_after_what_it_answers_everywhere(runtime: Any) -> None:
    group = causal_group(runtime, "chat", options=FAST)
    question = group.broadcast("n1", "question")
    assert question.seq == 1 and question.clock == vclock.VectorClock({"n1": 1})
    runtime.poll(group.member("n2"), Deliveries(), until=lambda page: page.next >= 1)
    reply = group.broadcast("n2", "reply")  # n2 delivered the question: the reply follows it
    aside = group.broadcast("n3", "aside")  # n3 may not have: concurrent with one of them
    assert question.clock < reply.clock
    deliveries = settled(group, 3)
    assert verdict(deliveries).ok, verdict(deliveries)
    for node, ds in deliveries.items():
        payloads = [d.payload for d in ds]
        assert payloads.index("question") < payloads.index("reply"), node
    by_payload = {d.payload: d for d in deliveries["n1"]}
    if not aside.clock >= question.clock:
        assert by_payload["aside"].concurrent_with(by_payload["question"])


def test_a_member_down_while_others_broadcast_catches_up(runtime: Any) -> None:
    group = causal_group(runtime, "chat", options=FAST)
    for i in range(5):
        group.broadcast(NODES[i % 2], f"before {i}")
    before = settled(group, 5)
    runtime.crash("n3")
    for i in range(5):
        group.broadcast(NODES[i % 2], f"during {i}")
    runtime.restart("n3")
    after = settled(group, 10)  # n3 reports again what it kept, then what it missed
    n3 = once(before["n3"] + after["n3"])
    result = verdict({**after, "n3": n3})
    assert result.ok, result
    assert sorted(d.payload for d in n3) == sorted(
        [f"before {i}" for i in range(5)] + [f"during {i}" for i in range(5)]
    )


def test_deliveries_are_told_to_a_subscriber_in_causal_order(runtime: Any) -> None:
    inboxes = {node: runtime.spawn(node, Collector, name="inbox") for node in NODES}
    group = causal_group(runtime, "chat", options=FAST, subscribers=inboxes)
    group.broadcast("n1", "a")
    group.broadcast("n1", "b")
    told = runtime.poll(inboxes["n2"], Get(), until=lambda items: len(items) >= 2)
    assert [d.payload for d in told] == ["a", "b"]
    assert all(isinstance(d, Delivery) for d in told)


def test_bad_input_is_refused_counted_and_the_member_lives_on(runtime: Any) -> None:
    group = causal_group(runtime, "chat", options=FAST)
    mole = runtime.spawn("n1", Recorder, name="mole")  # an actor on a member's node
    target = group.member("n2")
    bad = [
        Data("n1", vclock.VectorClock({"n2": 1}), "my clock does not name me"),
        Data("n9", vclock.VectorClock({"n9": 1}), "not a member"),
        Data("n1", vclock.VectorClock({"n1": 1_000_000}), "far ahead"),
        "not a causal message at all",
    ]
    for payload in bad:
        runtime.tell(mole, Send(target, payload))
    state: MemberState = runtime.poll(
        target, MemberStatus(), until=lambda s: s.refused >= len(bad), timeout=10.0
    )
    assert state.held_back == 0 and state.refused == len(bad)
    with pytest.raises(TypeError, match=r"object"):
        runtime.ask(group.member("n1"), Broadcast(object()))
    assert group.broadcast("n2", "still here").seq == 1
    assert [d.payload for d in settled(group, 1)["n3"]] == ["still here"]


TOLD: dict[str, list[str]] = {}
"""What each member's application was told, across crashes (the simulator runs in this process)."""


class RecordingMember(CausalMemberActor):
    """A member whose application notes each delivery once, where a crash cannot undo it."""

    def output(self, outputs: list[Any]) -> None:
        told = TOLD.setdefault(self.me, [])
        told.extend(f"{d.sender}#{d.seq}" for d in outputs if f"{d.sender}#{d.seq}" not in told)
        super().output(outputs)


@pytest.mark.simulation(seeds=300)
def test_every_member_delivers_once_in_causal_order_under_every_fault(sim_seed: int) -> None:
    seed = sim_seed
    TOLD.clear()
    network = NetworkConfig(drop=0.2, duplicate=0.1, reorder=True, latency=(0.001, 0.05))
    with Simulation(nodes=4, seed=seed, network=network, lose_unsynced="prefix") as sim:
        nodes = list(sim.nodes)
        for node in nodes:
            sim.spawn(node, RecordingMember, "chat", nodes, None, FAST, name=member_name("chat"))
        group = CausalGroup(sim, "chat", nodes)
        answered: dict[str, CausalMessage] = {}
        for round_ in range(8):
            for index, node in enumerate(nodes):
                done = group.broadcast(node, f"{node}:{round_}")
                answered[f"{node}#{done.seq}"] = CausalMessage(node, done.clock)
                if (seed + round_ + index) % 7 == 0:
                    sim.crash(node)  # right after an answer: the broadcast must survive
                    sim.restart(node)
        everything = vclock.VectorClock({n: 8 for n in nodes})
        for node in nodes:
            sim.poll(
                group.member(node),
                MemberStatus(),
                until=lambda state: state.reported == everything and not state.held_back,
                timeout=120.0,
            )
        result = check_causal(answered, TOLD, members=nodes, complete=True)
        assert result.ok, f"seed {seed}: {result}"
