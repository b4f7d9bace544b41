"""The causal broadcast core (actorfw.protocols.causal): table cases and a faulty-network model."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorfw import ActorRef, VectorClock
from actorfw.check import CausalMessage, check_causal
from actorfw.protocols.causal import (
    CausalMember,
    CausalOptions,
    Data,
    DataRun,
    Effects,
    Forgotten,
    Logged,
    LoggedRun,
    Record,
    Status,
)
from actorfw.protocols.causal.delivery import RUN_RECORD_BYTES, RUN_RECORD_MAX, stored_size

MEMBERS = ("n1", "n2", "n3")


def _vc(**entries: int) -> Any:
    return VectorClock(entries)


def test_a_broadcast_is_delivered_at_once_and_sent_to_every_peer_after_its_record() -> None:
    member = CausalMember("n1", MEMBERS)
    effects = member.broadcast("hello")
    assert [d.payload for d in effects.outputs] == ["hello"]
    assert effects.persist == [Logged("n1", 1, _vc(n1=1), "hello")]
    assert sorted(to for to, _ in effects.send) == ["n2", "n3"]
    assert all(msg == Data("n1", _vc(n1=1), "hello") for _, msg in effects.send)


def test_a_message_waits_for_what_happened_before_it() -> None:
    member = CausalMember("n3", MEMBERS)
    effect = Data("n2", _vc(n1=1, n2=1), "reply")  # n2 had delivered n1's first
    cause = Data("n1", _vc(n1=1), "question")
    first = member.handle_all([("n2", effect)], 0.0)
    assert first.outputs == [] and len(member.holdback) == 1
    second = member.handle_all([("n1", cause)], 0.0)
    assert [d.payload for d in second.outputs] == ["question", "reply"]
    assert member.holdback == {}


def test_duplicates_are_dropped_whether_delivered_or_held_back() -> None:
    member = CausalMember("n3", MEMBERS)
    data = Data("n1", _vc(n1=1), "x")
    later = Data("n1", _vc(n1=3), "z")
    assert len(member.handle_all([("n1", data), ("n1", data)], 0.0).outputs) == 1
    member.handle_all([("n1", later), ("n2", later)], 0.0)
    assert member.duplicates == 2
    assert len(member.holdback) == 1


@pytest.mark.parametrize(
    ("peer", "message", "says"),
    [
        ("n9", Data("n9", _vc(n9=1), "x"), "not a member"),
        ("n2", Data("n2", _vc(n1=1), "x"), "does not name its sender"),
        ("n2", Data("n2", {"n2": 1}, "x"), "must be a VectorClock"),
        ("n2", Data("n2", _vc(n2=10_001), "x"), "beyond the 0 delivered"),
        ("n2", Status("n1", _vc()), "not a peer"),
        ("n2", "hello", "takes Data, DataRun or Status"),
        ("n2", Data(["n2"], _vc(n2=1), "x"), "not a member"),
        ("n2", DataRun("n2", _vc(n2=1), ["x", "y"]), "payloads in a tuple"),
        ("n2", DataRun("n2", _vc(n2=1), ()), "payloads in a tuple, not 0 of them"),
        ("n2", DataRun("n2", _vc(n2=1), ("x",) * 10_001), "not 10001 of them"),
        ("n2", DataRun("n2", {"n2": 1}, ("x", "y")), "must be a VectorClock"),
        ("n2", DataRun("n9", _vc(n9=1), ("x", "y")), "not a member"),
    ],
)
def test_bad_input_is_refused_with_a_reason_and_not_held(
    peer: str, message: Any, says: str
) -> None:
    member = CausalMember("n1", MEMBERS)
    effects = member.handle_all([(peer, message)], 0.0)
    assert [r.peer for r in effects.refused] == [peer]
    assert says in effects.refused[0].reason
    assert member.holdback == {} and effects.outputs == []


def test_a_steps_broadcasts_travel_as_one_run_that_peers_deliver_in_order() -> None:
    sender, receiver = CausalMember("n1", MEMBERS), CausalMember("n2", MEMBERS)
    sender.broadcast("first")
    effects = sender.broadcast_all(["a", "b", "c"])
    runs = [msg for _, msg in effects.send]
    assert [to for to, _ in effects.send] == ["n2", "n3"] and runs[0] is runs[1]
    assert type(runs[0]) is DataRun and runs[0].clock == _vc(n1=2)
    assert runs[0].payloads == ("a", "b", "c")
    # The run arrives before the message it follows: it is held back, then delivered after.
    assert receiver.handle_all([("n1", runs[0])], 0.0).outputs == []
    first = Data("n1", _vc(n1=1), "first")
    delivered = receiver.handle_all([("n1", first)], 0.0).outputs
    assert [(d.seq, d.payload) for d in delivered] == [(1, "first"), (2, "a"), (3, "b"), (4, "c")]
    assert [d.clock for d in delivered] == [d.clock for d in sender.start(0.0).outputs]


def test_a_senders_consecutive_deliveries_of_a_step_are_stored_as_one_run() -> None:
    member = CausalMember("n3", MEMBERS)
    assert member.broadcast_all(["a", "b"]).persist == [LoggedRun("n3", 1, _vc(n3=1), ("a", "b"))]
    run = DataRun("n1", _vc(n1=1, n3=2), ("x", "y", "z"))
    alone = Data("n2", _vc(n2=1), "w")
    persist = member.handle_all([("n1", run), ("n2", alone)], 0.0).persist
    assert persist == [LoggedRun("n1", 1, _vc(n1=1, n3=2), ("x", "y", "z")), Logged(*_at(alone, 1))]
    # Consecutive numbers whose stamps are not one apart are two records: the second
    # message of n2 here had delivered n1's 4th before it was sent.
    later = [Data("n2", _vc(n2=2), "p"), Data("n2", _vc(n1=4, n2=3, n3=2), "q")]
    member.handle_all([("n1", Data("n1", _vc(n1=4, n3=2), "o"))], 0.0)
    persist = member.handle_all([("n2", data) for data in later], 0.0).persist
    assert persist == [Logged(*_at(later[0], 2)), Logged(*_at(later[1], 3))]


def test_a_run_due_now_is_delivered_at_once_and_one_overlapping_it_only_for_what_is_new() -> None:
    member = CausalMember("n3", MEMBERS)
    effects = member.handle_all([("n1", DataRun("n1", _vc(n1=1), ("a", "b")))], 0.0)
    assert [(d.seq, d.payload, d.clock) for d in effects.outputs] == [
        (1, "a", _vc(n1=1)),
        (2, "b", _vc(n1=2)),
    ]
    assert member.heard["n1"] == _vc(n1=2) and member.holdback == {}
    # A run from the start again: its first two are duplicates, its third is new.
    again = member.handle_all([("n2", DataRun("n1", _vc(n1=1), ("a", "b", "c")))], 0.0)
    assert [(d.seq, d.payload) for d in again.outputs] == [(3, "c")]
    assert member.duplicates == 2
    # One whose later message is held already goes the general way: each once.
    member.handle_all([("n1", Data("n1", _vc(n1=5), "e"))], 0.0)
    late = member.handle_all([("n1", DataRun("n1", _vc(n1=4), ("d", "e", "f")))], 0.0)
    assert [(d.seq, d.payload) for d in late.outputs] == [(4, "d"), (5, "e"), (6, "f")]
    assert member.duplicates == 3 and member.holdback == {}


def _at(data: Data, seq: int) -> tuple[str, int, Any, Any]:
    return data.sender, seq, data.clock, data.payload


def test_a_run_record_holds_at_most_its_bound_and_goes_when_all_of_it_is_stable() -> None:
    member = CausalMember("n1", MEMBERS)
    payloads = list(range(RUN_RECORD_MAX + 2))
    persist = member.broadcast_all(payloads).persist
    assert [(r.seq, len(r.payloads)) for r in persist] == [(1, RUN_RECORD_MAX), (1025, 2)]
    member.made_durable(1)
    everyone = [(peer, Status(peer, _vc(n1=len(payloads)))) for peer in ("n2", "n3")]
    # Stable up to 1,000: the first run is only partly so, and stays stored.
    some = [(peer, Status(peer, _vc(n1=1000))) for peer in ("n2", "n3")]
    assert member.handle_all(some, 0.0).persist == [Forgotten("n1", 1000, ())]
    assert min(member.log["n1"]) == 1001
    assert member.handle_all(everyone, 0.0).persist == [
        Forgotten("n1", len(payloads), (1, 1 + RUN_RECORD_MAX))
    ]
    assert member.log["n1"] == {}


def test_a_run_record_holds_about_its_byte_bound_and_a_large_payload_alone() -> None:
    member = CausalMember("n1", MEMBERS)
    quarter = "x" * (RUN_RECORD_BYTES // 4)  # a little over a quarter, as counted
    big = "y" * (2 * RUN_RECORD_BYTES)
    persist = member.broadcast_all([quarter] * 5 + [big, "small", "small"]).persist
    assert [(r.seq, type(r).__name__) for r in persist] == [
        (1, "LoggedRun"),
        (4, "LoggedRun"),
        (6, "Logged"),
        (7, "LoggedRun"),
    ]
    assert len(persist[0].payloads) == 3 and persist[3].payloads == ("small", "small")
    assert all(
        sum(stored_size(p) for p in r.payloads) <= RUN_RECORD_BYTES
        for r in persist
        if type(r) is LoggedRun
    )


def test_stored_size_counts_what_a_message_value_holds() -> None:
    import numpy as np

    tick = Data("n1", _vc(n1=1), "x" * 100)  # a registered message, its fields counted
    assert stored_size("x" * 1000) >= 1000 and stored_size(b"x" * 500) >= 500
    ref = ActorRef("n1", "x" * 100_000)  # a ref counts its names, as encoded
    assert stored_size([ref] * 10) >= 1_000_000
    assert stored_size(object()) > RUN_RECORD_BYTES  # not a message value: a record alone
    assert stored_size(["x" * 500, ("y" * 500,), {"k": "z" * 500}]) >= 1500
    assert stored_size(tick) >= 100 + stored_size(_vc(n1=1))
    assert stored_size(np.zeros(1000)) >= 8000
    assert 0 < stored_size(None) < 32 and 0 < stored_size(3.5) < 32


def test_a_run_of_payloads_as_deep_as_a_message_may_be_is_stored_and_read_back() -> None:
    from actorfw.protocols.causal.records import CODEC

    deep: Any = "x"
    for _ in range(98):
        deep = [deep]
    member = CausalMember("n1", MEMBERS)
    persist = member.broadcast_all([deep, deep]).persist
    assert [type(r) for r in persist] == [LoggedRun]
    ((key, value),) = CODEC.ops(persist[0])
    assert CODEC.load([(key, value)]) == persist


def test_a_full_holdback_queue_drops_new_arrivals() -> None:
    member = CausalMember("n3", MEMBERS, CausalOptions(max_holdback=2))
    member.handle_all([("n1", Data("n1", _vc(n1=s), s)) for s in (2, 3, 4)], 0.0)
    assert len(member.holdback) == 2 and member.dropped == 1


class _ScanningMember(CausalMember):
    """Rule 7 as first written: the whole queue scanned for its heaviest message."""

    def _make_room(self, data: Data) -> bool:
        def weight(clock: Any) -> int:
            return sum(count for _, count in clock.items())

        key, heaviest = max(self.holdback.items(), key=lambda item: weight(item[1].clock))
        if weight(heaviest.clock) <= weight(data.clock):
            return False
        del self.holdback[key]
        self.dropped += 1
        return True


_ARRIVAL = st.builds(
    lambda sender, seq, other, mine: Data(
        sender, _vc(**{sender: seq, ("n2" if sender == "n1" else "n1"): other, "n3": mine}), seq
    ),
    st.sampled_from(["n1", "n2"]),
    st.integers(1, 12),
    st.integers(0, 12),
    st.integers(0, 12),  # n3's own broadcasts before it: heavy, and maybe deliverable
)


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 8),
    mine=st.integers(0, 10),
    batches=st.lists(st.lists(_ARRIVAL, max_size=8), max_size=30),
)
def test_making_room_in_a_full_queue_evicts_what_a_scan_of_it_would(
    limit: int, mine: int, batches: list[list[Data]]
) -> None:
    # The member keeps its queue as a heap while it is full; the same arrivals into a
    # member that scans the queue instead must deliver, hold, evict and drop the same.
    options = CausalOptions(max_holdback=limit)
    member, model = CausalMember("n3", MEMBERS, options), _ScanningMember("n3", MEMBERS, options)
    member.broadcast_all(range(mine))
    model.broadcast_all(range(mine))
    for batch in batches:
        arrivals = [(data.sender, data) for data in batch]
        got, want = member.handle_all(arrivals, 0.0), model.handle_all(arrivals, 0.0)
        assert got.outputs == want.outputs
        assert list(member.holdback.items()) == list(model.holdback.items())
        assert (member.dropped, member.duplicates) == (model.dropped, model.duplicates)


def test_a_full_queue_makes_room_past_messages_delivered_since_it_filled() -> None:
    member = CausalMember("n3", MEMBERS, CausalOptions(max_holdback=5))
    member.broadcast_all(range(9))

    def arrive(sender: str, payload: Any, **clock: int) -> list[Any]:
        effects = member.handle_all([(sender, Data(sender, _vc(**clock), payload))], 0.0)
        return [d.payload for d in effects.outputs]

    arrive("n1", "top", n1=2, n3=20)  # 22 events before it; never deliverable
    arrive("n2", "heavy", n2=2, n3=9)  # 11; waits for n2's first
    for seq in (3, 4, 5):
        arrive("n1", seq, n1=seq)
    arrive("n1", "heavier", n1=6, n3=30)  # the queue is full: dropped
    assert member.dropped == 1
    # n2's first evicts the heaviest held, then is delivered, and "heavy" after it.
    assert arrive("n2", "cause", n2=1) == ["cause", "heavy"]
    assert member.dropped == 2 and sorted(member.holdback) == [("n1", s) for s in (3, 4, 5)]
    arrive("n1", 6, n1=6)
    arrive("n1", 7, n1=7)  # full again
    # The heaviest held now is n1's 7th, "heavy" being gone: the 8th, heavier, is dropped...
    arrive("n1", 8, n1=8)
    assert member.dropped == 3 and sorted(member.holdback) == [("n1", s) for s in range(3, 8)]
    # ... and a lighter one takes the 7th's place.
    arrive("n2", "light", n2=4)
    assert member.dropped == 4 and ("n1", 7) not in member.holdback
    assert ("n2", 4) in member.holdback


def test_the_full_queues_heap_keeps_few_entries_of_messages_delivered_since() -> None:
    member = CausalMember("n3", MEMBERS, CausalOptions(max_holdback=1000))
    # n1's first is lost: its next 1,000 wait, and one more finds the queue full.
    member.handle_all([("n1", Data("n1", _vc(n1=s), s)) for s in range(2, 1003)], 0.0)
    # n2's messages pass through the full queue, each delivered at once.
    for seq in range(1, 2000):
        member.handle_all([("n2", Data("n2", _vc(n2=seq), "p" * 100))], 0.0)
    heap = member._heaviest
    assert heap is not None and len(member.holdback) > 500  # the heap is kept
    gone = [entry for entry in heap if member.holdback.get(entry[2]) is not entry[3]]
    assert len(gone) <= 1000 // 4


def test_a_status_is_answered_with_what_the_peer_lacks_oldest_first_within_the_budget() -> None:
    member = CausalMember("n1", MEMBERS, CausalOptions(max_resend=2))
    for text in ("a", "b", "c"):
        member.broadcast(text)
    effects = member.handle_all([("n2", Status("n2", _vc(n1=1)))], 0.0)
    assert [(to, msg.payload) for to, msg in effects.send] == [("n2", "b"), ("n2", "c")]
    effects = member.handle_all([("n3", Status("n3", _vc()))], 0.0)
    assert [msg.payload for _, msg in effects.send] == ["a", "b"]


def test_what_every_member_delivered_is_forgotten() -> None:
    member = CausalMember("n1", MEMBERS)
    member.broadcast("a")
    member.broadcast("b")
    member.handle_all([("n2", Status("n2", _vc(n1=2)))], 0.0)
    member.made_durable(2)  # both broadcasts are durable here, so reported
    assert len(member.log["n1"]) == 2  # n3 has not said
    effects = member.handle_all([("n3", Status("n3", _vc(n1=1)))], 0.0)
    assert effects.persist == [Forgotten("n1", 1, (1,))]
    assert list(member.log["n1"]) == [2]


def test_a_member_forgets_only_what_is_durable_here() -> None:
    member = CausalMember("n1", MEMBERS)
    member.broadcast("a")
    peers_have_it = [("n2", Status("n2", _vc(n1=1))), ("n3", Status("n3", _vc(n1=1)))]
    assert not member.handle_all(peers_have_it, 0.0).persist  # not durable here yet (rule 4)
    member.made_durable(1)
    assert member.handle_all(peers_have_it, 0.0).persist == [Forgotten("n1", 1, (1,))]


def test_a_restarted_member_reports_again_what_it_keeps_in_causal_order() -> None:
    records: list[Record] = [
        Logged("n2", 1, _vc(n1=1, n2=1), "reply"),
        Logged("n1", 1, _vc(n1=1), "question"),
    ]
    member = CausalMember.restore("n1", MEMBERS, records)
    outputs = member.start(0.0).outputs
    assert [d.payload for d in outputs] == ["question", "reply"]


def test_a_restored_member_resumes_its_clock_log_and_floor() -> None:
    records: list[Record] = [
        Logged("n1", 3, _vc(n1=3), "c"),
        Forgotten("n1", 2, (1, 2)),
        Logged("n1", 2, _vc(n1=2), "b"),
        Logged("n2", 1, _vc(n2=1), "x"),
    ]
    member = CausalMember.restore("n1", MEMBERS, records)
    assert member.delivered == _vc(n1=3, n2=1)
    assert list(member.log["n1"]) == [3]
    assert member.broadcast("d").persist[0].seq == 4


def test_a_floor_far_ahead_is_restored_and_raised_without_counting_up_to_it() -> None:
    far = 10**15  # a floor a long-lived group may reach; counting up to it would never end
    records: list[Record] = [Forgotten("n1", far), Logged("n1", far + 1, _vc(n1=far + 1), "x")]
    member = CausalMember.restore("n1", MEMBERS, records)
    assert member.delivered == _vc(n1=far + 1) and list(member.log["n1"]) == [far + 1]
    member.broadcast("y")
    member.made_durable(1)
    member.handle_all([("n2", Status("n2", _vc(n1=far + 2)))], 0.0)
    effects = member.handle_all([("n3", Status("n3", _vc(n1=far + 1)))], 0.0)
    assert effects.persist == [Forgotten("n1", far + 1, (far + 1,))]
    assert list(member.log["n1"]) == [far + 2] and member.floor["n1"] == far + 1


def test_gossip_is_due_every_interval() -> None:
    member = CausalMember("n1", MEMBERS, CausalOptions(gossip_interval=1.0))
    assert sorted(to for to, _ in member.tick(10.0).send) == ["n2", "n3"]
    assert member.next_deadline() == 11.0
    assert not member.tick(10.5)
    assert member.tick(11.0).send


# -- a faulty network, with crashes that lose what was not synced ---------------------


@dataclass
class Node:
    """A member with a driver's obligations: a step's effects leave when it is synced."""

    name: str
    core: CausalMember
    durable: list[Record] = field(default_factory=list)
    unsynced: list[Effects] = field(default_factory=list)
    app: list[str] = field(default_factory=list)  # what the application was told, in order
    seen: set[str] = field(default_factory=set)  # the application drops what it saw (rule 4)
    written: int = 0  # steps that persisted anything, since the core's restore


@dataclass
class Run:
    rng: random.Random
    nodes: dict[str, Node]
    network: list[tuple[str, str, Any]] = field(default_factory=list)  # (to, from, message)
    messages: dict[str, CausalMessage] = field(default_factory=dict)
    now: float = 0.0

    def step(self, node: Node, effects: Effects) -> None:
        assert not effects.refused, effects.refused
        node.written += bool(effects.persist)
        node.unsynced.append(effects)

    def sync(self, node: Node) -> None:
        for effects in node.unsynced:  # in step order (rule 4)
            node.durable.extend(effects.persist)
            self.report(node, effects)
            self.network.extend((to, node.name, msg) for to, msg in effects.send)
        node.unsynced.clear()
        node.core.made_durable(node.written)

    def report(self, node: Node, effects: Effects) -> None:
        for delivery in effects.outputs:
            mid = f"{delivery.sender}#{delivery.seq}"
            if mid not in node.seen:
                node.seen.add(mid)
                node.app.append(mid)
            if delivery.sender == node.name:
                self.messages[mid] = CausalMessage(delivery.sender, delivery.clock)

    def crash(self, node: Node) -> None:
        # The writes not synced are lost, but for a prefix of them, which reached the disk
        # although their sync never completed; nothing of those steps left.
        kept = self.rng.randrange(len(node.unsynced) + 1)
        for effects in node.unsynced[:kept]:
            node.durable.extend(effects.persist)
        node.unsynced.clear()
        node.core = CausalMember.restore(node.name, MEMBERS, node.durable, node.core.options)
        node.written = 0
        self.report(node, node.core.start(self.now))

    def transmit(self, index: int, drop: float, dup: float) -> None:
        to, sender, msg = self.network.pop(index)
        if self.rng.random() < drop:
            return
        if self.rng.random() < dup:
            self.network.append((to, sender, msg))
        node = self.nodes[to]
        self.step(node, node.core.handle_all([(sender, msg)], self.now))

    def settle(self) -> None:
        """Heal, then gossip and deliver until every member has everything and forgot it."""
        for _ in range(200):
            for node in self.nodes.values():
                self.now += 1.0
                self.step(node, node.core.tick(self.now))
                self.sync(node)
            while self.network:
                self.transmit(0, 0.0, 0.0)
                for node in self.nodes.values():
                    self.sync(node)
            if (
                all(
                    not n.core.holdback and all(not e for e in n.core.log.values())
                    for n in self.nodes.values()
                )
                and len({str(n.core.delivered) for n in self.nodes.values()}) == 1
            ):
                return
        raise AssertionError("the group did not settle")


def run_faulty(seed: int, rounds: int, options: CausalOptions | None = None) -> Run:
    rng = random.Random(seed)
    run = Run(rng, {m: Node(m, CausalMember(m, MEMBERS, options)) for m in MEMBERS})
    for _ in range(rounds):
        node = run.nodes[rng.choice(MEMBERS)]
        roll = rng.random()
        if roll < 0.25:
            run.step(node, node.core.broadcast(f"p{rng.randrange(10**6)}"))
        elif roll < 0.5:
            run.sync(node)
        elif roll < 0.85 and run.network:
            run.transmit(rng.randrange(len(run.network)), drop=0.2, dup=0.1)
        elif roll < 0.95:
            run.now += rng.random()
            run.step(node, node.core.tick(run.now))
        else:
            run.crash(node)
    run.settle()
    return run


@settings(max_examples=60)
@given(seed=st.integers(0, 2**32), rounds=st.integers(0, 300))
def test_under_drops_duplicates_reordering_and_crashes_every_member_delivers_all_in_causal_order(
    seed: int, rounds: int
) -> None:
    run = run_faulty(seed, rounds)
    deliveries = {name: node.app for name, node in run.nodes.items()}
    result = check_causal(run.messages, deliveries, complete=True)
    assert result.ok, f"seed {seed}: {result}"


@settings(max_examples=20)
@given(seed=st.integers(0, 2**32))
def test_small_bounds_only_slow_the_group_down(seed: int) -> None:
    options = CausalOptions(max_holdback=2, max_resend=1, gossip_interval=0.1)
    run = run_faulty(seed, 200, options)
    deliveries = {name: node.app for name, node in run.nodes.items()}
    assert check_causal(run.messages, deliveries, complete=True).ok


def test_a_broken_delivery_rule_is_caught_by_the_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    # Plant a bug: deliver whatever arrives, ignoring the holdback condition.
    def deliver_at_once(self: CausalMember, effects: Effects) -> None:
        for key in sorted(self.holdback, key=lambda k: (k[1], k[0])):
            data = self.holdback.pop(key)
            if data.clock.get(data.sender) == self.delivered.get(data.sender) + 1:
                self._deliver(data.sender, data.clock, data.payload, effects)

    monkeypatch.setattr(CausalMember, "_drain", deliver_at_once)
    caught = 0
    for seed in range(30):
        try:
            run = run_faulty(seed, 200)
        except AssertionError:
            caught += 1  # it lost messages for good: it never settles
            continue
        deliveries = {name: node.app for name, node in run.nodes.items()}
        caught += not check_causal(run.messages, deliveries, complete=True).ok
    assert caught > 0
