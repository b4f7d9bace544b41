"""Leader leases and reads served by lease: acceptors' promises, leaders' clocks, read indexes.

Unit tests of each rule (acceptor rules 6-7, leader rules 8-9, replica rule
11), then the drift reasoning on the harness with skewed clocks: a clock
that runs fast within ``max_drift`` allows no stale read, one beyond it
does.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from actorfw.kernels import ballot as kb
from actorfw.protocols.paxos import (
    Acceptor,
    Command,
    Config,
    Decision,
    Effects,
    InvariantViolation,
    Leader,
    LeaderOptions,
    LeaseGrant,
    LeaseGranted,
    LeaseRequest,
    P1a,
    P1b,
    P2a,
    P2b,
    Promised,
    Propose,
    Read,
    ReadIndex,
    ReadIndexReply,
    Replica,
    ReplicaOptions,
    Response,
    Role,
    records_from_storage,
)
from tests.support.paxos_harness import Cluster, KeyValueStore, apply_to

CONFIG = Config.colocated(["n1", "n2", "n3"])
LEASE = {"lease_duration": 1.0, "max_drift": 0.1}


def B(round: int, leader: int) -> int:
    return int(kb.make_ballot(round, leader))


def slots(*numbers: int) -> np.ndarray:
    return np.array(numbers, dtype=np.int64)


def sent(effects: Effects, kind: type) -> list[tuple[str, Any]]:
    return [(to, m) for to, m in effects.send + effects.send_now if type(m) is kind]


# -- the acceptor (rules 6, 7) ---------------------------------------------------------------


def leased_acceptor(ballot: int = B(1, 0), at: float = 10.0, duration: float = 2.0) -> Acceptor:
    acceptor = Acceptor(CONFIG, "n1")
    acceptor.handle(LeaseRequest(ballot, 1, duration), at)
    return acceptor


def test_an_acceptor_grants_a_lease_at_or_above_its_promise_persisting_the_duration_first() -> None:
    acceptor = Acceptor(CONFIG, "n1")
    effects = acceptor.handle(LeaseRequest(B(1, 0), 4, 2.0), 10.0)
    assert effects.persist == [Promised(B(1, 0)), LeaseGranted(2.0)]
    assert effects.send == [("n1", LeaseGrant("n1", B(1, 0), 4))]
    assert acceptor.lease() == ("n1", 12.0)


def test_only_a_lease_longer_than_any_granted_before_is_persisted() -> None:
    acceptor = leased_acceptor(duration=2.0)
    assert acceptor.handle(LeaseRequest(B(1, 0), 2, 1.0), 11.0).persist == []
    assert acceptor.handle(LeaseRequest(B(1, 0), 3, 3.0), 11.0).persist == [LeaseGranted(3.0)]


def test_acceptor_refuses_a_higher_ballots_phase_1_from_another_leader_during_a_lease() -> None:
    acceptor = leased_acceptor()  # leader n1 holds it until 12.0
    effects = acceptor.handle(P1a(B(2, 1), 1), 11.99)
    ((to, p1b),) = sent(effects, P1b)
    assert to == "n2"
    assert p1b.ballot == B(1, 0)  # its promise: not adopted
    assert effects.persist == []
    assert acceptor.promised == B(1, 0)
    assert acceptor.stats["leased_p1a"] == 1


def test_acceptor_adopts_another_leaders_ballot_once_the_lease_ran_out_on_its_clock() -> None:
    acceptor = leased_acceptor()
    ((_, p1b),) = sent(acceptor.handle(P1a(B(2, 1), 1), 12.0), P1b)
    assert p1b.ballot == B(2, 1)
    assert acceptor.promised == B(2, 1)


def test_the_lease_holder_may_raise_its_own_ballot_during_its_lease() -> None:
    acceptor = leased_acceptor()
    ((_, p1b),) = sent(acceptor.handle(P1a(B(2, 0), 1), 11.0), P1b)
    assert p1b.ballot == B(2, 0)


def test_acceptor_refuses_another_leaders_lease_request_during_a_running_lease() -> None:
    acceptor = leased_acceptor()
    effects = acceptor.handle(LeaseRequest(B(2, 1), 1, 2.0), 11.0)
    assert effects.send == [("n2", LeaseGrant("n1", B(1, 0), 1))]
    assert effects.persist == []
    assert acceptor.lease() == ("n1", 12.0)


def test_a_lease_request_below_the_promise_is_refused_with_the_higher_promise() -> None:
    acceptor = Acceptor(CONFIG, "n1")
    acceptor.handle(P1a(B(3, 2), 1), 0.0)
    effects = acceptor.handle(LeaseRequest(B(1, 0), 9, 2.0), 0.0)
    assert effects.send == [("n1", LeaseGrant("n1", B(3, 2), 9))]
    assert acceptor.lease()[0] is None


def test_a_higher_ballots_p2a_is_still_accepted_during_a_lease() -> None:
    # Only phase 1 is held back: a p2a at a higher ballot means that ballot was
    # already adopted by a quorum, so the lease it would break is already over.
    acceptor = leased_acceptor()
    effects = acceptor.handle(P2a(B(2, 1), slots(1), ((),)), 11.0)
    ((_, p2b),) = sent(effects, P2b)
    assert p2b.slots.tolist() == [1]


def restarted(at: float | None, *, duration: float = 2.0) -> Acceptor:
    store: dict[bytes, bytes] = {}
    acceptor = Acceptor(CONFIG, "n1")
    apply_to(store, acceptor.handle(LeaseRequest(B(1, 0), 1, duration), 10.0))
    return Acceptor.restore(CONFIG, "n1", records_from_storage(store.items()), now=at)


def test_a_restarted_acceptor_lets_no_leader_raise_its_promise_for_its_longest_lease() -> None:
    acceptor = restarted(50.0)
    for ballot in (B(2, 1), B(2, 0)):  # nobody, not even the former holder's leader
        ((_, p1b),) = sent(acceptor.handle(P1a(ballot, 1), 51.9), P1b)
        assert p1b.ballot == B(1, 0)
    ((_, p1b),) = sent(acceptor.handle(P1a(B(2, 1), 1), 52.0), P1b)
    assert p1b.ballot == B(2, 1)


def test_a_restarted_acceptor_given_no_time_counts_its_wait_from_its_first_input() -> None:
    acceptor = restarted(None)
    acceptor.handle(P2a(B(0, 0), slots(1), ((),)), 100.0)  # first input: the wait starts
    ((_, p1b),) = sent(acceptor.handle(P1a(B(2, 1), 1), 101.9), P1b)
    assert p1b.ballot == B(1, 0)
    ((_, p1b),) = sent(acceptor.handle(P1a(B(2, 1), 1), 102.0), P1b)
    assert p1b.ballot == B(2, 1)


def test_a_restarted_acceptor_still_grants_a_renewal_at_its_promised_ballot() -> None:
    acceptor = restarted(50.0)
    effects = acceptor.handle(LeaseRequest(B(1, 0), 2, 2.0), 50.5)
    assert effects.send == [("n1", LeaseGrant("n1", B(1, 0), 2))]
    assert acceptor.lease() == ("n1", 52.5)


MALFORMED_REQUESTS = [
    LeaseRequest(-1, 1, 1.0),
    LeaseRequest(B(1, 7), 1, 1.0),  # no leader 7
    LeaseRequest(B(1, 0), "1", 1.0),  # type: ignore[arg-type]
    LeaseRequest(B(1, 0), 1, 0.0),
    LeaseRequest(B(1, 0), 1, float("inf")),
    LeaseRequest(B(1, 0), 1, "1"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("message", MALFORMED_REQUESTS, ids=repr)
def test_a_malformed_lease_request_is_counted_and_dropped(message: LeaseRequest) -> None:
    acceptor = Acceptor(CONFIG, "n1")
    assert not acceptor.handle(message, 0.0)
    assert acceptor.stats["malformed"] == 1


# -- the leader (rules 8, 9) ----------------------------------------------------------------


def p1b(acceptor: str, ballot: int, pvalues: Any = ()) -> P1b:
    return P1b(
        acceptor,
        ballot,
        0,
        slots(*(p[0] for p in pvalues)),
        slots(*(p[1] for p in pvalues)),
        tuple(p[2] for p in pvalues),
        ballot,  # the answer to a p1a of this ballot
    )


def adopted(at: float = 0.0, pvalues: Any = (), **options: Any) -> tuple[Leader, Effects]:
    leader = Leader(CONFIG, "n1", random.Random(0), LeaderOptions(**{**LEASE, **options}))
    leader.start(at)
    effects = leader.handle_all([p1b("n1", B(0, 0), pvalues), p1b("n2", B(0, 0))], at)
    assert leader.is_active
    return leader, effects


def leased(at: float = 0.0, granted_at: float | None = None, **options: Any) -> Leader:
    leader, _ = adopted(at, **options)
    now = at if granted_at is None else granted_at
    leader.handle_all([LeaseGrant("n2", B(0, 0), 1), LeaseGrant("n3", B(0, 0), 1)], now)
    return leader


def test_an_adopted_leader_asks_every_acceptor_for_a_lease() -> None:
    leader, effects = adopted()
    requests = sent(effects, LeaseRequest)
    assert [to for to, _ in requests] == ["n1", "n2", "n3"]
    assert requests[0][1] == LeaseRequest(B(0, 0), 1, 1.0)
    assert not leader.has_lease(0.0)  # not granted yet


def test_a_lease_needs_a_quorum_of_grants() -> None:
    leader, _ = adopted()
    leader.handle(LeaseGrant("n2", B(0, 0), 1), 0.1)
    assert not leader.has_lease(0.1)
    leader.handle(LeaseGrant("n2", B(0, 0), 1), 0.1)  # a duplicate is not a second vote
    assert not leader.has_lease(0.1)
    leader.handle(LeaseGrant("n3", B(0, 0), 1), 0.1)
    assert leader.has_lease(0.1)


def test_the_lease_counts_from_when_the_granted_request_was_sent_not_when_granted() -> None:
    leader = leased(at=5.0, granted_at=5.3)
    assert leader.lease_until == pytest.approx(5.0 + 1.0 - 0.1)


def test_the_leader_stops_serving_reads_at_lease_end_minus_max_drift() -> None:
    leader = leased(at=5.0)
    assert leader.has_lease(5.8999)
    assert not leader.has_lease(5.9)
    ((_, reply),) = sent(leader.handle(ReadIndex("n1", 1), 5.8999), ReadIndexReply)
    assert reply.granted
    ((_, reply),) = sent(leader.handle(ReadIndex("n1", 2), 5.9), ReadIndexReply)
    assert reply == ReadIndexReply("n1", 2, False, 0)


def test_the_leader_renews_its_lease_every_third_of_its_usable_length() -> None:
    leader = leased()
    assert leader.next_deadline() == pytest.approx(0.3)
    assert sent(leader.tick(0.29), LeaseRequest) == []
    requests = sent(leader.tick(0.3), LeaseRequest)
    assert [m.round for _, m in requests] == [2, 2, 2]


def test_a_renewal_granted_by_a_quorum_moves_the_lease_start_to_its_send_time() -> None:
    leader = leased()
    leader.tick(0.3)
    leader.handle_all([LeaseGrant("n1", B(0, 0), 2), LeaseGrant("n3", B(0, 0), 2)], 0.45)
    assert leader.lease_until == pytest.approx(0.3 + 0.9)


def test_a_late_grant_of_an_older_round_never_moves_the_lease_back() -> None:
    leader, _ = adopted()
    leader.tick(0.3)  # round 2
    leader.handle_all([LeaseGrant("n1", B(0, 0), 2), LeaseGrant("n3", B(0, 0), 2)], 0.4)
    leader.handle_all([LeaseGrant("n2", B(0, 0), 1), LeaseGrant("n3", B(0, 0), 1)], 0.5)
    assert leader.lease_until == pytest.approx(0.3 + 0.9)


def test_preemption_ends_the_lease() -> None:
    leader = leased()
    leader.handle(P2b("n2", B(1, 2), slots(), slots()), 0.1)
    assert not leader.has_lease(0.1)
    assert leader.stats["preempted"] == 1


def test_a_refused_lease_with_a_higher_ballot_preempts_the_leader() -> None:
    leader, _ = adopted()
    leader.handle(LeaseGrant("n2", B(4, 1), 1), 0.1)
    assert not leader.is_active
    assert leader.following == B(4, 1)


def test_the_read_index_is_one_past_the_highest_slot_known_decided() -> None:
    leader = leased()
    leader.handle(Propose("n1", 1, slots(1, 2, 3), ((), (), ())), 0.0)
    leader.handle_all(
        [P2b("n1", B(0, 0), slots(1, 3), slots()), P2b("n2", B(0, 0), slots(1, 3), slots())],
        0.0,
    )
    ((_, reply),) = sent(leader.handle(ReadIndex("n1", 1), 0.1), ReadIndexReply)
    assert (reply.granted, reply.index) == (True, 4)  # slot 3 is decided, 2 is not yet


def test_the_read_index_covers_every_slot_phase_1_reported() -> None:
    earlier = (Command("c", 1, ("put", "x", 1)),)
    leader, _ = adopted(pvalues=[(7, B(0, 2), earlier)])
    leader.handle_all([LeaseGrant("n2", B(0, 0), 1), LeaseGrant("n3", B(0, 0), 1)], 0.0)
    assert leader.read_index == 8  # slot 7 may have been decided by the previous leader


def test_a_read_index_from_outside_the_configuration_is_counted_and_dropped() -> None:
    leader = leased()
    assert not leader.handle(ReadIndex("n9", 1), 0.0)
    assert leader.stats["malformed"] == 1


def test_with_leases_off_no_lease_is_asked_and_no_read_index_granted() -> None:
    leader = Leader(CONFIG, "n1", random.Random(0), LeaderOptions())
    leader.start(0.0)
    effects = leader.handle_all([p1b("n1", B(0, 0)), p1b("n2", B(0, 0))], 0.0)
    assert sent(effects, LeaseRequest) == []
    ((_, reply),) = sent(leader.handle(ReadIndex("n1", 1), 0.0), ReadIndexReply)
    assert not reply.granted


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lease_duration": 1.0, "max_drift": 1.0}, "must be below lease_duration"),
        ({"lease_duration": 0.0}, "must be positive"),
        ({"max_drift": -0.1}, "max_drift must be a finite number"),
    ],
)
def test_impossible_lease_options_are_refused_naming_the_fix(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LeaderOptions(**options)


# -- the replica (rule 11) --------------------------------------------------------------------


def get(client: str = "r", seq: int = 1, key: str = "x") -> Read:
    return Read(Command(client, seq, ("get", key)))


def replica(
    me: str = "n1", config: Config = CONFIG, machine: Any = None, **options: Any
) -> Replica:
    return Replica(
        config, me, machine if machine is not None else KeyValueStore(), ReplicaOptions(**options)
    )


def decide(r: Replica, start: int, *ops: Any) -> Effects:
    batches = tuple((Command(f"w{start + i}", 1, op),) for i, op in enumerate(ops))
    return r.handle(Decision(slots(*range(start, start + len(ops))), batches), 0.0)


def test_a_read_asks_the_leader_on_the_replicas_node_for_a_read_index() -> None:
    effects = replica().handle(get(), 0.0)
    assert sent(effects, ReadIndex) == [("n1", ReadIndex("n1", 1))]
    assert sent(effects, Propose) == []


def test_reads_taken_in_one_step_share_one_read_index() -> None:
    effects = replica().handle_all([get("a"), get("b"), get("c")], 0.0)
    assert sent(effects, ReadIndex) == [("n1", ReadIndex("n1", 1))]


def test_a_granted_read_waits_for_the_read_index_then_is_served_without_the_log() -> None:
    r = replica()
    r.handle(get(), 0.0)
    effects = r.handle(ReadIndexReply("n1", 1, True, 3), 0.0)
    assert effects.responses == [] and r.pending_reads == 1
    assert decide(r, 1, ("put", "x", 1)).responses == []  # slot_out 2 < 3
    effects = decide(r, 2, ("put", "x", 2))
    assert effects.responses == [Response("r", 1, 2, by_lease=True)]
    assert sent(effects, Propose) == []
    machine = r.machine
    assert (machine.executed, machine.queried) == (2, 1)  # type: ignore[attr-defined]


def test_a_read_whose_index_is_reached_is_served_at_once() -> None:
    r = replica()
    decide(r, 1, ("put", "x", 5))
    r.handle(get(), 0.0)
    effects = r.handle(ReadIndexReply("n1", 1, True, 2), 0.0)
    assert effects.responses == [Response("r", 1, 5, by_lease=True)]


def test_a_refused_read_goes_through_the_log() -> None:
    r = replica()
    r.handle(get(), 0.0)
    effects = r.handle(ReadIndexReply("n1", 1, False, 0), 0.0)
    ((_, propose), *_) = sent(effects, Propose)
    assert propose.batches == ((get().command,),)
    assert r.stats["read_refused"] == 1


def test_a_read_of_an_operation_that_writes_goes_through_the_log() -> None:
    effects = replica().handle(Read(Command("r", 1, ("put", "x", 1))), 0.0)
    assert sent(effects, ReadIndex) == []
    assert len(sent(effects, Propose)) == 3


def test_a_replica_with_no_leader_on_its_node_reads_through_the_log() -> None:
    config = Config(("a1", "a2", "a3"), ("l1",), ("r1", "r2"))
    effects = replica("r1", config).handle(get(), 0.0)
    assert sent(effects, ReadIndex) == []
    assert [to for to, _ in sent(effects, Propose)] == ["l1"]


def test_a_machine_that_cannot_query_reads_through_the_log() -> None:
    class Writes:
        def apply(self, operation: Any) -> Any:
            return None

    effects = replica(machine=Writes()).handle(get(), 0.0)
    assert sent(effects, ReadIndex) == []


def test_an_unanswered_read_index_falls_back_to_the_log_after_propose_timeout() -> None:
    r = replica(propose_timeout=1.0)
    r.handle(get(), 0.0)
    assert r.next_deadline() <= 1.0
    assert sent(r.tick(0.99), Propose) == []
    assert len(sent(r.tick(1.0), Propose)) == 3
    assert r.stats["read_index_unanswered"] == 1


def test_a_read_served_by_lease_leaves_the_clients_session_untouched() -> None:
    r = replica()
    r.handle(get("r", 5), 0.0)
    r.handle(ReadIndexReply("n1", 1, True, 1), 0.0)
    assert r.session("r") is None


def test_a_stale_read_index_reply_is_counted_and_ignored() -> None:
    r = replica()
    assert not r.handle(ReadIndexReply("n1", 9, True, 1), 0.0)
    assert r.stats["stale_read_index"] == 1


# -- clocks and drift, on the harness --------------------------------------------------------


def partitioned_leader(rate: float, *, check: bool = False) -> tuple[Cluster, Any]:
    """n1 leads with a lease; then it is cut off and n2 or n3 takes over as soon as it may.

    n2's and n3's clocks run ``rate`` times as fast as n1's. The lease is 1s
    with ``max_drift`` 0.1s; n2 and n3 suspect n1 quickly and scout every
    20ms. Returns the cluster at the first moment one of them is active and
    has decided ``put x 2`` (answered to its client), and what a read of x
    at n1 got after that.
    """
    cluster = Cluster(
        3,
        clock_rates={"n2": rate, "n3": rate},
        check=check,
        leader_options=LeaderOptions(
            lease_duration=1.0,
            max_drift=0.1,
            ping_interval=0.02,
            leader_timeout=0.1,
            backoff_base=0.01,
            backoff_max=0.01,
            scout_timeout=0.02,
        ),
    )
    cluster.start()
    cluster.deliver_all()  # n1 adopted at time 0, its lease granted at once
    assert cluster.leaders["n1"] is not None and cluster.leaders["n1"].has_lease(0.0)
    cluster.submit("w", ("put", "x", 1), via="n1")
    cluster.deliver_all()
    cluster.partition([{"n1"}, {"n2", "n3"}])
    while True:
        cluster.now = round(cluster.now + 0.002, 6)
        cluster.tick()
        cluster.deliver_all()
        new = [n for n in ("n2", "n3") if cluster.leaders[n].is_active]  # type: ignore[union-attr]
        if new:
            break
        assert cluster.now < 3.0, "nobody took over from n1"
    cluster.submit("w", ("put", "x", 2), via=new[0])
    cluster.deliver_all()
    assert cluster.client("w").results[2] == "ok"  # the write completed
    cluster.read("r", ("get", "x"), via="n1")  # then the read started
    cluster.deliver_all()
    return cluster, cluster.client("r").results.get(1)


def test_a_clock_fast_within_max_drift_allows_no_stale_read() -> None:
    # Over a 1s lease the acceptors' clocks gain 0.09s (< max_drift 0.1s): their
    # leases end after n1 stops serving, so n2 cannot take over while n1 serves.
    cluster, read = partitioned_leader(1.09)
    assert cluster.now >= 0.9  # n2 got in only after n1's lease was over ...
    n1 = cluster.leaders["n1"]
    assert n1 is not None and not n1.has_lease(cluster.time_at("n1"))
    assert read is None  # ... so the read went to the log (and n1 is cut off)
    assert cluster.leaders["n1"].stats["reads_refused"] == 1  # type: ignore[union-attr]


def test_a_clock_fast_beyond_max_drift_allows_a_stale_read() -> None:
    # Over a 1s lease the acceptors' clocks gain 0.25s (> max_drift 0.1s): their
    # leases end at 0.8s of real time, while n1 serves until 0.9s.
    cluster, read = partitioned_leader(1.25)
    assert 0.8 <= cluster.now < 0.9
    assert read == 1  # x=2 was written and acknowledged before this read began
    assert 1 in cluster.client("r").by_lease


def test_the_invariant_checker_catches_a_lease_overlap_beyond_max_drift() -> None:
    with pytest.raises(InvariantViolation, match="rule 13"):
        partitioned_leader(1.25, check=True)


def test_reads_by_lease_at_the_leaders_replica_see_every_completed_write() -> None:
    cluster = Cluster(3, leader_options=LeaderOptions(lease_duration=2.0, max_drift=0.1))
    cluster.start()
    cluster.run(0.1)
    for n in range(1, 30):
        cluster.submit("w", ("put", "x", n), via=["n1", "n2", "n3"][n % 3])
        cluster.run(0.05)
        cluster.read("r", ("get", "x"), via="n1")
        cluster.run(0.05)
        assert cluster.client("r").results[n] == n
    reads = cluster.client("r")
    assert len(reads.by_lease) == 29  # every one served by lease
    assert cluster.machines["n1"].executed == 29  # reads ran no command


def test_a_read_at_a_replica_whose_leader_holds_no_lease_is_answered_through_the_log() -> None:
    cluster = Cluster(3, leader_options=LeaderOptions(lease_duration=2.0, max_drift=0.1))
    cluster.start()
    cluster.run(0.1)
    cluster.submit("w", ("put", "x", 1), via="n1")
    cluster.run(0.1)
    cluster.read("r", ("get", "x"), via="n2")
    cluster.run(0.1)
    assert cluster.client("r").results[1] == 1
    assert cluster.client("r").by_lease == set()
    assert cluster.machines["n2"].executed == 2


def test_the_lease_holders_node_crashing_delays_the_next_leader_until_its_lease_ends() -> None:
    cluster = Cluster(
        3, leader_options=LeaderOptions(lease_duration=3.0, max_drift=0.1, leader_timeout=0.5)
    )
    cluster.start()
    cluster.run(0.2)  # n1 leads; its last lease grant came by 0.2
    cluster.crash(Role.LEADER, "n1")
    cluster.run(2.5)
    assert cluster.active_leader() is None
    assert sum(a.stats["leased_p1a"] for a in cluster.acceptors.values() if a is not None) > 0
    cluster.run(1.0)
    assert cluster.active_leader() in ("n2", "n3")
