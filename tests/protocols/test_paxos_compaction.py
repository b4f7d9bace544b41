"""Log compaction: snapshots, log truncation, collection, catch-up by snapshot, bounded memory.

Unit tests of each piece (replica snapshots and installs, the leader's
collection policy, adoption above a floor, the records), then runs on the
harness: 200,000 commands whose retained state stays within the configured
windows after every step, and a replica restarted far behind that catches
up by snapshot.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import numpy as np
import pytest

from actorfw.kernels import ballot as kb
from actorfw.protocols.paxos import (
    Acceptor,
    Applied,
    CatchUp,
    CatchUpReply,
    Collect,
    Command,
    Config,
    Decided,
    Decision,
    Effects,
    InstallSnapshot,
    Leader,
    LeaderOptions,
    P1a,
    P1b,
    P2a,
    P2b,
    Propose,
    Replica,
    ReplicaOptions,
    Response,
    Role,
    Snapshotted,
    Truncated,
    records_from_storage,
    storage_ops,
)
from tests.support.paxos_harness import Cluster, KeyValueStore, apply_to

CONFIG = Config.colocated(["n1", "n2", "n3"])


def slots(*numbers: int) -> np.ndarray:
    return np.array(numbers, dtype=np.int64)


def cmd(client: str, seq: int = 1, op: Any = None) -> Command:
    return Command(client, seq, op if op is not None else ("incr", "k"))


def replica(me: str = "n1", machine: Any = None, **options: Any) -> Replica:
    return Replica(
        CONFIG, me, machine if machine is not None else KeyValueStore(), ReplicaOptions(**options)
    )


def decide(r: Replica, start: int, *batches: tuple[Command, ...], now: float = 0.0) -> Effects:
    return r.handle(Decision(slots(*range(start, start + len(batches))), tuple(batches)), now)


def records(effects: Effects, kind: type) -> list[Any]:
    return [record for record in effects.persist if type(record) is kind]


def sent(effects: Effects, kind: type) -> list[tuple[str, Any]]:
    return [(to, m) for to, m in effects.send if type(m) is kind]


class Plain:
    """A state machine without snapshots."""

    def __init__(self) -> None:
        self.n = 0

    def apply(self, operation: Any) -> Any:
        self.n += 1
        return self.n


# -- replica: snapshots and truncation -------------------------------------------------------


def test_a_replica_snapshots_its_state_and_sessions_every_interval_applied_slots() -> None:
    r = replica(snapshot_interval=4, log_tail=1)
    assert records(decide(r, 1, (cmd("a"),), (cmd("b"),), (cmd("a", 2),)), Snapshotted) == []
    effects = decide(r, 4, (cmd("c"),))
    (snapshot,) = records(effects, Snapshotted)
    assert snapshot.slot == 5
    assert snapshot.state == ({"k": 4}, 4)
    assert snapshot.sessions == {"a": (2, 3), "b": (1, 2), "c": (1, 4)}
    assert r.snapshot_slot == 5


def test_a_snapshot_drops_the_log_below_the_tail_in_the_same_write() -> None:
    r = replica(snapshot_interval=4, log_tail=1)
    decide(r, 1, (cmd("a"),), (cmd("b"),), (cmd("c"),))  # slots 1-3 persisted
    effects = decide(r, 4, (cmd("d"),))
    assert records(effects, Truncated) == [Truncated(1, 4)]
    (decided,) = records(effects, Decided)
    assert (decided.slot, len(decided.batches)) == (4, 1)  # the tail slot is written
    assert (r.log_base, len(r.log)) == (4, 1)
    assert r.applied(3) is None and r.applied(4) == (cmd("d"),)


def test_slots_truncated_in_the_step_that_applied_them_are_never_written() -> None:
    r = replica(snapshot_interval=4, log_tail=0)
    effects = decide(r, 1, *[(cmd(f"c{i}"),) for i in range(6)])
    assert records(effects, Decided) == []
    assert records(effects, Truncated) == []
    assert (r.log_base, r.log, r.slot_out) == (7, [], 7)


@pytest.mark.parametrize(("interval", "tail"), [(1, 0), (4, 2), (8, 8), (5, 20)])
def test_the_log_never_holds_more_than_interval_plus_tail_minus_one_slots(
    interval: int, tail: int
) -> None:
    r = replica(snapshot_interval=interval, log_tail=tail)
    store: dict[bytes, bytes] = {}
    rng = random.Random(interval * 100 + tail)
    slot = 1
    for _ in range(200):
        count = rng.randint(1, 3)
        apply_to(store, decide(r, slot, *[(cmd(f"c{slot + i}"),) for i in range(count)]))
        slot += count
        assert len(r.log) <= interval + tail - 1
        assert len([k for k in store if k.startswith(b"log/")]) == len(r.log)


def test_a_machine_without_snapshots_keeps_its_whole_log() -> None:
    r = replica(machine=Plain(), snapshot_interval=2, log_tail=0)
    effects = decide(r, 1, *[(cmd(f"c{i}"),) for i in range(10)])
    assert records(effects, Snapshotted) == []
    assert (r.log_base, len(r.log)) == (1, 10)


def test_snapshots_off_keeps_the_whole_log() -> None:
    r = replica(snapshot_interval=None)
    decide(r, 1, *[(cmd(f"c{i}"),) for i in range(3000)])
    assert (r.log_base, len(r.log)) == (1, 3000)


# -- replica: restore ---------------------------------------------------------------------


def test_a_restored_replica_restores_its_snapshot_then_replays_the_log_after_it() -> None:
    r = replica(snapshot_interval=4, log_tail=1)
    store: dict[bytes, bytes] = {}
    apply_to(store, decide(r, 1, (cmd("a"),), (cmd("b"),), (cmd("c"),), (cmd("a", 2),)))
    apply_to(store, decide(r, 5, (cmd("d"),), (cmd("e"),)))
    machine = KeyValueStore()
    restored = Replica.restore(
        CONFIG, "n1", machine, records_from_storage(store.items()), ReplicaOptions(log_tail=1)
    )
    assert (restored.snapshot_slot, restored.log_base, restored.slot_out) == (5, 4, 7)
    assert machine.data == {"k": 6}
    assert machine.executed == 6  # 4 from the snapshot, 2 replayed
    assert restored.applied(4) == (cmd("a", 2),)  # the tail, kept but not re-applied
    assert restored.session("a") == (2, 4)


def test_exactly_once_survives_a_restart_from_a_snapshot() -> None:
    r = replica(snapshot_interval=2, log_tail=0)
    store: dict[bytes, bytes] = {}
    apply_to(store, r.request(cmd("a"), 0.0))
    apply_to(store, decide(r, 1, (cmd("a"),), (cmd("b"),)))
    machine = KeyValueStore()
    restored = Replica.restore(CONFIG, "n1", machine, records_from_storage(store.items()))
    assert restored.log == [] and restored.slot_out == 3
    effects = restored.request(cmd("a"), 1.0)  # a retry after the restart
    assert effects.responses == [Response("a", 1, 1)]
    assert machine.executed == 2


def test_restore_refuses_a_log_that_does_not_continue_the_snapshot() -> None:
    snapshot = Snapshotted(5, ({}, 0), {})
    with pytest.raises(ValueError, match="jumps from slot 5 to 7"):
        Replica.restore(CONFIG, "n1", KeyValueStore(), [snapshot, Decided(7, ((),))])


def test_restore_refuses_a_snapshot_for_a_machine_that_cannot_restore_one() -> None:
    with pytest.raises(TypeError, match="has no snapshot"):
        Replica.restore(CONFIG, "n1", Plain(), [Snapshotted(5, 3, {})])


# -- replica: catch-up by snapshot ------------------------------------------------------------


def test_a_peer_asked_for_truncated_slots_answers_with_a_snapshot_of_its_state() -> None:
    peer = replica("n2", snapshot_interval=4, log_tail=0)
    decide(peer, 1, *[(cmd(f"c{i}", op=("put", "x", i)),) for i in range(6)])
    assert peer.log_base == 7
    ((to, message),) = sent(peer.handle(CatchUp("n1", 2), 0.0), InstallSnapshot)
    assert to == "n1"
    assert (message.slot, message.slot_out) == (7, 7)
    assert message.state == ({"x": 5}, 6)
    assert message.sessions["c5"] == (1, "ok")
    assert peer.stats["snapshot_sent"] == 1


def test_a_peer_asked_for_slots_it_still_holds_answers_from_its_log() -> None:
    peer = replica("n2", snapshot_interval=4, log_tail=2)
    decide(peer, 1, *[(cmd(f"c{i}"),) for i in range(6)])
    assert peer.log_base == 5
    ((_, reply),) = sent(peer.handle(CatchUp("n1", 5), 0.0), CatchUpReply)
    assert reply.slots.tolist() == [5, 6]


def snapshot_of(slot: int, data: dict[str, Any], executed: int, sessions: Any) -> InstallSnapshot:
    return InstallSnapshot("n2", slot + 3, slot, (data, executed), sessions)


def test_installing_a_snapshot_replaces_state_and_sessions_and_jumps_slot_out() -> None:
    r = replica()
    decide(r, 1, (cmd("a", op=("put", "x", 1)),))
    effects = r.handle(snapshot_of(10, {"x": 9}, 9, {"a": (4, "ok")}), 0.0)
    assert (r.slot_out, r.slot_in, r.log_base, r.log) == (10, 10, 10, [])
    assert r.machine.data == {"x": 9}  # type: ignore[attr-defined]
    assert r.session("a") == (4, "ok")
    assert r.stats["snapshot_installed"] == 1
    (record,) = records(effects, Snapshotted)
    assert (record.slot, record.state) == (10, ({"x": 9}, 9))
    assert records(effects, Truncated) == [Truncated(1, 2)]  # the old log goes


def test_an_installed_snapshot_is_followed_by_a_catchup_from_its_slot_while_behind() -> None:
    r = replica()
    effects = r.handle(snapshot_of(10, {}, 0, {}), 0.0)  # the peer is at 13
    assert sent(effects, CatchUp) == [("n2", CatchUp("n1", 10))]


def test_decisions_held_above_an_installed_snapshot_are_applied_and_those_below_dropped() -> None:
    r = replica()
    decide(r, 5, (cmd("old"),))
    decide(r, 10, (cmd("b", op=("put", "y", 2)),))
    r.handle(snapshot_of(10, {"x": 1}, 1, {}), 0.0)
    assert r.slot_out == 11
    assert r.machine.data == {"x": 1, "y": 2}  # type: ignore[attr-defined]
    assert r.decided(5) is None


def test_an_older_snapshot_is_not_installed() -> None:
    r = replica()
    decide(r, 1, *[(cmd(f"c{i}"),) for i in range(5)])
    effects = r.handle(snapshot_of(4, {"x": 1}, 1, {}), 0.0)
    assert r.slot_out == 6 and effects.persist == []
    assert r.stats["snapshot_useless"] == 1


def test_a_command_run_inside_an_installed_snapshot_is_answered_from_its_session() -> None:
    r = replica()
    r.request(cmd("a", 3), 0.0)  # proposed into slot 1, then the replica fell behind
    effects = r.handle(snapshot_of(10, {"k": 7}, 7, {"a": (3, 7)}), 0.0)
    assert effects.responses == [Response("a", 3, 7)]
    assert r.proposals == {}
    assert r.machine.executed == 7  # type: ignore[attr-defined]


def test_a_proposal_below_an_installed_snapshot_that_did_not_run_is_proposed_again() -> None:
    r = replica()
    r.request(cmd("a", 3), 0.0)
    effects = r.handle(snapshot_of(10, {}, 0, {"a": (2, None)}), 0.0)
    assert effects.responses == []
    assert r.proposals == {10: (cmd("a", 3),)}
    assert r.stats["requeued"] == 1


def test_exactly_once_survives_a_snapshot_install() -> None:
    r = replica()
    r.handle(snapshot_of(10, {"k": 7}, 7, {"a": (3, 7)}), 0.0)
    effects = r.request(cmd("a", 3), 0.0)  # a retry of a command the snapshot holds
    assert effects.responses == [Response("a", 3, 7)]
    assert r.proposals == {}


MALFORMED_SNAPSHOTS = [
    InstallSnapshot("n9", 5, 4, {}, {}),  # not a peer
    InstallSnapshot("n2", 5, 0, {}, {}),  # below the first slot
    InstallSnapshot("n2", 5, 4, {}, {"a": [1, None]}),  # type: ignore[dict-item]
    InstallSnapshot("n2", 5, 4, {}, []),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("message", MALFORMED_SNAPSHOTS, ids=repr)
def test_a_malformed_snapshot_is_counted_and_dropped(message: InstallSnapshot) -> None:
    r = replica()
    assert not r.handle(message, 0.0)
    assert r.stats["malformed"] == 1
    assert r.slot_out == 1


# -- records --------------------------------------------------------------------------------


def test_a_snapshot_record_comes_back_from_storage_with_bytes_and_tuples() -> None:
    record = Snapshotted(9, {"blob": b"\x00\x01", "t": (1, 2)}, {"c": (2, ("ok", b"x"))})
    store: dict[bytes, bytes] = dict(storage_ops(record))  # type: ignore[arg-type]
    (back,) = records_from_storage(store.items())
    assert isinstance(back, Snapshotted)
    assert (back.slot, back.state, back.sessions) == (record.slot, record.state, record.sessions)


def test_a_truncation_deletes_exactly_its_log_keys() -> None:
    store: dict[bytes, bytes] = {}
    apply_to(store, Effects(persist=[Decided(1, ((), (), (), ()))]))
    apply_to(store, Effects(persist=[Truncated(1, 3)]))
    assert [int.from_bytes(k[4:], "big") for k in sorted(store)] == [3, 4]


# -- leader: collection policy --------------------------------------------------------------


def B(round: int, leader: int) -> int:
    return int(kb.make_ballot(round, leader))


def p1b(acceptor: str, ballot: int, pvalues: Any = (), floor: int = 0) -> P1b:
    return P1b(
        acceptor,
        ballot,
        floor,
        slots(*(p[0] for p in pvalues)),
        slots(*(p[1] for p in pvalues)),
        tuple(p[2] for p in pvalues),
        ballot,  # the answer to a p1a of this ballot
    )


def new_leader(me: str = "n1", **options: Any) -> Leader:
    return Leader(CONFIG, me, random.Random(0), LeaderOptions(**options))


def active_leader(**options: Any) -> Leader:
    leader = new_leader(**options)
    leader.start(0.0)
    leader.handle_all([p1b("n1", B(0, 0)), p1b("n2", B(0, 0))], 0.0)
    assert leader.is_active
    return leader


def collects(effects: Effects) -> list[tuple[str, int]]:
    return [(to, m.below) for to, m in sent(effects, Collect)]


def test_the_active_leader_collects_once_a_majority_applied_collect_interval_slots() -> None:
    leader = active_leader(collect_interval=10)
    assert collects(leader.handle(Applied("n1", 30), 0.0)) == []  # one replica: no majority
    assert collects(leader.handle(Applied("n2", 8), 0.0)) == []  # majority at 8 < 1 + 10
    effects = leader.handle(Applied("n2", 12), 0.0)
    assert collects(effects) == [("n1", 12), ("n2", 12), ("n3", 12)]
    assert collects(leader.handle(Applied("n2", 20), 0.0)) == []  # not 10 more yet
    assert collects(leader.handle(Applied("n3", 25), 0.0)) == [
        ("n1", 25),
        ("n2", 25),
        ("n3", 25),
    ]


def test_a_passive_leader_never_collects() -> None:
    leader = new_leader("n2", collect_interval=1)
    leader.start(0.0)
    effects = leader.handle_all([Applied("n1", 50), Applied("n2", 50), Applied("n3", 50)], 0.0)
    assert collects(effects) == []


def test_collection_off_sends_no_collect() -> None:
    leader = active_leader(collect_interval=None)
    effects = leader.handle_all([Applied("n1", 5000), Applied("n2", 5000)], 0.0)
    assert collects(effects) == []


def test_a_dead_replica_pins_neither_collection_nor_the_leaders_decisions() -> None:
    leader = active_leader(collect_interval=4)
    leader.handle(Applied("n3", 1), 0.0)  # n3 reports once, then is never heard of again
    numbers = list(range(1, 41))
    leader.handle(Propose("n1", 1, slots(*numbers), tuple((cmd(f"c{n}"),) for n in numbers)), 0.0)
    for acceptor in ("n1", "n2"):
        leader.handle(P2b(acceptor, B(0, 0), slots(*numbers), slots()), 0.0)
    assert leader.decisions_kept == 40
    effects = leader.handle_all([Applied("n1", 41), Applied("n2", 41)], 0.0)
    assert collects(effects) == [("n1", 41), ("n2", 41), ("n3", 41)]
    assert leader.decisions_kept == 0


# -- leader: adoption above floors ----------------------------------------------------------


def p2a_slots(effects: Effects) -> list[int]:
    return sorted({s for to, m in sent(effects, P2a) for s in m.slots.tolist()})


def test_a_leader_adopting_with_a_collected_acceptor_proposes_nothing_below_its_floor() -> None:
    leader = new_leader()
    leader.start(0.0)
    stale = [(5, B(0, 1), (cmd("x"),)), (12, B(0, 1), (cmd("y"),))]
    effects = leader.handle_all(
        [p1b("n1", B(0, 0), floor=10), p1b("n2", B(0, 0), stale, floor=0)], 0.0
    )
    assert leader.is_active
    assert p2a_slots(effects) == [10, 11, 12]  # 10 and 11 are no-ops, 12 re-proposed
    assert leader.decided_below == 10


def test_a_leader_adopting_from_acceptors_that_all_collected_proposes_nothing_there() -> None:
    leader = new_leader()
    leader.start(0.0)
    effects = leader.handle_all([p1b("n2", B(0, 0), floor=40), p1b("n3", B(0, 0), floor=40)], 0.0)
    assert p2a_slots(effects) == []
    assert leader.decided_below == 40
    effects = leader.handle(Propose("n1", 1, slots(3, 41), ((cmd("a"),), (cmd("b"),))), 0.0)
    assert p2a_slots(effects) == [41]


# -- the acceptor: collection ----------------------------------------------------------------


def test_a_restored_acceptor_keeps_its_floor_and_refuses_collected_slots() -> None:
    acceptor = Acceptor(CONFIG, "n1")
    store: dict[bytes, bytes] = {}
    apply_to(store, acceptor.handle(P2a(B(0, 0), slots(1, 2, 3), ((), (), ()))))
    apply_to(store, acceptor.handle(Collect(3)))
    assert sorted(store) == [b"acc/" + (3).to_bytes(8, "big"), b"floor", b"promised"]
    restored = Acceptor.restore(CONFIG, "n1", records_from_storage(store.items()))
    assert restored.floor == 3
    effects = restored.handle(P2a(B(0, 0), slots(2, 4), ((), ())))
    ((_, p2b),) = effects.send
    assert (p2b.slots.tolist(), p2b.collected.tolist()) == ([4], [2])


def test_a_promise_raised_by_a_p2a_survives_collecting_its_pvalues_and_a_restart() -> None:
    # Found by the simulator: the promise of a p2a lives only in its Accepted
    # records; collecting them used to drop it from storage.
    acceptor = Acceptor(CONFIG, "n1")
    store: dict[bytes, bytes] = {}
    apply_to(store, acceptor.handle(P1a(B(0, 1), 1)))
    apply_to(store, acceptor.handle(P2a(B(1, 0), slots(1, 2), ((), ()))))  # promise 1.0
    effects = acceptor.collect(3)
    assert [type(r).__name__ for r in effects.persist] == ["Promised", "Collected"]
    apply_to(store, effects)
    restored = Acceptor.restore(CONFIG, "n1", records_from_storage(store.items()))
    assert restored.promised == B(1, 0)
    ((_, p2b),) = restored.handle(P2a(B(0, 1), slots(3), ((),))).send
    assert p2b.slots.tolist() == []  # the older ballot is refused


def test_a_collection_writes_the_promise_only_when_its_key_lags() -> None:
    acceptor = Acceptor(CONFIG, "n1")
    acceptor.handle(P1a(B(1, 0), 1))
    acceptor.handle(P2a(B(1, 0), slots(1), ((),)))
    assert [type(r).__name__ for r in acceptor.collect(2).persist] == ["Collected"]


# -- harness runs ------------------------------------------------------------------------------


def _bounded_cluster(
    interval: int, tail: int, collect: int, leader_window: int, replica_window: int
) -> tuple[Cluster, Counter[str], list[str]]:
    """A cluster whose after-step hook records the largest retained sizes, and any breach."""
    peak: Counter[str] = Counter()
    breaches: list[str] = []
    log_bound = interval + tail - 1
    # Pvalues an acceptor may hold: the slots above the last collection, which is at
    # most `collect` slots behind what a majority applied, plus what is decided but
    # not yet applied by a majority and the leader's pipeline (its window).
    pvalue_bound = collect + 2 * leader_window
    held_bound = collect + 2 * leader_window
    cluster: Cluster

    def watch(role: Role, node: str, core: Any, effects: Effects) -> None:
        if core is None:
            return
        stored = cluster.stored(role, node)
        if role is Role.REPLICA:
            sizes = {"replica log": len(core.log), "replica stored keys": stored}
            bounds = {"replica log": log_bound, "replica stored keys": log_bound + 1}
        elif role is Role.ACCEPTOR:
            sizes = {"acceptor pvalues": core.entries, "acceptor stored keys": stored}
            bounds = {"acceptor pvalues": pvalue_bound, "acceptor stored keys": pvalue_bound + 2}
        else:
            sizes = {
                "leader decisions kept": core.decisions_kept,
                "leader queued + in flight": core.queued + core.in_flight,
                "leader stored keys": stored,
            }
            bounds = {
                "leader decisions kept": held_bound,
                "leader queued + in flight": leader_window + replica_window,
                "leader stored keys": 1,
            }
        for name, size in sizes.items():
            peak[name] = max(peak[name], size)
            if size > bounds[name] and len(breaches) < 5:
                breaches.append(f"{name} at {node}: {size} > {bounds[name]}")

    cluster = Cluster(
        3,
        seed=7,
        replica_options=ReplicaOptions(
            window=replica_window, max_batch=64, snapshot_interval=interval, log_tail=tail
        ),
        leader_options=LeaderOptions(
            window=leader_window, max_slots_per_p2a=64, collect_interval=collect
        ),
        after_step=watch,
    )
    return cluster, peak, breaches


def test_200000_commands_keep_logs_pvalues_decisions_and_stores_within_the_windows() -> None:
    interval, tail, collect, leader_window, replica_window = 8, 4, 8, 32, 16
    cluster, peak, breaches = _bounded_cluster(
        interval, tail, collect, leader_window, replica_window
    )
    cluster.start()
    cluster.deliver_rounds()
    clients = [f"c{i}" for i in range(400)]  # 7 slots a wave: snapshots fall mid-wave
    total = 200_000
    started = time.perf_counter()
    submitted = 0
    while submitted < total:
        for name in clients:
            cluster.submit(name, ("incr", name[-1]))
        submitted += len(clients)
        cluster.deliver_rounds()
        cluster.advance(0.5)  # status reports: replicas tell the leaders their slot_out
        cluster.deliver_rounds()
        assert not breaches, breaches
    elapsed = time.perf_counter() - started
    assert cluster.unanswered() == 0
    expected = Counter(name[-1] for name in clients)
    for machine in cluster.machines.values():
        assert machine.data == {
            key: count * (total // len(clients)) for key, count in expected.items()
        }
    slots_used = max(r.slot_out for r in cluster.replicas.values() if r is not None)
    assert slots_used > 10 * (interval + collect + leader_window)  # far more than any bound
    print(f"\n200,000 commands in {slots_used} slots, {elapsed:.1f}s; peak retained: {dict(peak)}")


def test_a_replica_restarted_far_behind_catches_up_by_snapshot_and_answers_correctly() -> None:
    cluster = Cluster(
        3,
        seed=3,
        replica_options=ReplicaOptions(window=16, max_batch=8, snapshot_interval=16, log_tail=8),
        leader_options=LeaderOptions(window=64, collect_interval=16),
    )
    cluster.start()
    cluster.deliver_all()
    first = cluster.submit("early", ("incr", "k"), via="n3")
    assert cluster.run_until(lambda: cluster.unanswered() == 0)
    cluster.crash(Role.REPLICA, "n3")
    for _ in range(100):
        for i in range(20):
            cluster.submit(f"c{i}", ("incr", "k"), via="n1")
        cluster.run(0.5)
    assert cluster.unanswered() == 0
    live = cluster.replicas["n1"]
    assert live is not None and live.slot_out > 200
    floors = [a.floor for a in cluster.acceptors.values() if a is not None]
    assert min(floors) > 100  # the acceptors collected while n3 was down
    assert live.log_base > 100  # and the peers truncated their logs

    cluster.restart(Role.REPLICA, "n3")
    restarted = cluster.replicas["n3"]
    assert restarted is not None and restarted.slot_out < 10  # what it had persisted
    assert cluster.run_until(lambda: restarted.slot_out == live.slot_out, timeout=10)
    assert restarted.stats["snapshot_installed"] >= 1
    assert cluster.machines["n3"].data == cluster.machines["n1"].data == {"k": 2001}
    command = cluster.submit("late", ("incr", "k"), via="n3")
    assert cluster.run_until(lambda: cluster.unanswered() == 0)
    assert cluster.client("late").results[command.seq] == 2002
    # A retry of its first command, long compacted away, is answered, not run again.
    cluster.retry("early", via="n3", seq=first.seq)
    cluster.run(1.0)
    assert cluster.client("early").results[first.seq] == 1
    assert cluster.machines["n3"].data == {"k": 2002}
