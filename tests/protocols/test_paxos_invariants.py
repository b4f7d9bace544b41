"""The invariant checker's rules for compaction (11, 12), leases (13) and lossy storage."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from actorfw.kernels import ballot as kb
from actorfw.protocols.paxos import (
    Acceptor,
    Collect,
    Command,
    Config,
    Decision,
    Effects,
    InstallSnapshot,
    Invariants,
    InvariantViolation,
    Leader,
    LeaderOptions,
    P1a,
    P2a,
    Replica,
    ReplicaOptions,
    Snapshotted,
)
from tests.support.paxos_harness import KeyValueStore

CONFIG = Config.colocated(["n1", "n2", "n3"])


def B(round: int, leader: int) -> int:
    return int(kb.make_ballot(round, leader))


def slots(*numbers: int) -> np.ndarray:
    return np.array(numbers, dtype=np.int64)


def checker(*, lossy: bool = False) -> Invariants:
    return Invariants(CONFIG, 256, strict=False, lossy_storage=lossy)


def step(check: Invariants, acceptor: Acceptor, message: Any) -> Effects:
    effects = acceptor.handle(message)
    check.acceptor_step(acceptor.me, acceptor, effects)
    return effects


# -- lossy storage -------------------------------------------------------------------------


def test_with_lossy_storage_an_acceptor_may_forget_a_promise_it_never_sent() -> None:
    check = checker(lossy=True)
    acceptor = Acceptor(CONFIG, "n1")
    step(check, acceptor, P1a(B(1, 0), 1))  # crashed before the sync: the p1b never left
    check.acceptor_restarted("n1", Acceptor(CONFIG, "n1"))


def test_with_lossy_storage_an_acceptor_may_not_forget_a_promise_it_sent() -> None:
    check = checker(lossy=True)
    acceptor = Acceptor(CONFIG, "n1")
    effects = step(check, acceptor, P1a(B(1, 0), 1))
    check.acceptor_sent("n1", [m for _, m in effects.send])
    with pytest.raises(InvariantViolation, match="rule 1"):
        check.acceptor_restarted("n1", Acceptor(CONFIG, "n1"))


def test_without_lossy_storage_an_acceptor_may_forget_no_promise() -> None:
    check = checker()
    acceptor = Acceptor(CONFIG, "n1")
    step(check, acceptor, P1a(B(1, 0), 1))
    with pytest.raises(InvariantViolation, match="rule 1"):
        check.acceptor_restarted("n1", Acceptor(CONFIG, "n1"))


def test_with_lossy_storage_a_vote_counts_once_its_p2b_was_sent() -> None:
    check = checker(lossy=True)
    batch = (Command("c", 1, "op"),)
    sent = []
    for name in ("n1", "n2"):
        acceptor = Acceptor(CONFIG, name)
        sent.append((name, step(check, acceptor, P2a(B(0, 0), slots(1), (batch,)))))
    assert check.chosen() == {}
    for name, effects in sent:
        check.acceptor_sent(name, [m for _, m in effects.send])
    assert check.chosen() == {1: (B(0, 0), batch)}


def test_with_lossy_storage_a_leader_may_reuse_a_ballot_it_never_sent() -> None:
    check = checker(lossy=True)
    leader = Leader(CONFIG, "n1", random.Random(0), LeaderOptions())
    check.leader_step("n1", leader, leader.start(0.0))  # persisted 0.0, crashed before the p1a
    fresh = Leader.restore(CONFIG, "n1", [], random.Random(0))
    check.leader_restarted("n1", fresh)
    check.leader_step("n1", fresh, fresh.start(1.0))


def test_a_leader_restarted_below_a_ballot_it_sent_breaks_rule_9() -> None:
    check = checker(lossy=True)
    leader = Leader(CONFIG, "n1", random.Random(0), LeaderOptions())
    effects = leader.start(0.0)
    check.leader_step("n1", leader, effects)
    check.leader_sent("n1", [m for _, m in effects.send])
    with pytest.raises(InvariantViolation, match="rule 9"):
        check.leader_restarted("n1", Leader.restore(CONFIG, "n1", [], random.Random(0)))


# -- rule 11: snapshots agree ---------------------------------------------------------------


def test_two_different_snapshots_of_one_slot_break_rule_11() -> None:
    check = checker()
    replica = Replica(CONFIG, "n1", KeyValueStore())
    check.replica_step("n1", replica, Effects(persist=[Snapshotted(5, ({"x": 1}, 1), {})]))
    other = Replica(CONFIG, "n2", KeyValueStore())
    with pytest.raises(InvariantViolation, match="rule 11"):
        check.replica_step(
            "n2", other, Effects(send=[("n3", InstallSnapshot("n2", 5, 5, ({"x": 2}, 1), {}))])
        )


def test_a_replica_that_skips_slots_without_a_snapshot_breaks_rule_11() -> None:
    check = checker()
    replica = Replica(CONFIG, "n1", KeyValueStore(), ReplicaOptions(snapshot_interval=None))
    replica.handle(InstallSnapshot("n2", 9, 9, ({}, 0), {}), 0.0)
    with pytest.raises(InvariantViolation, match="rule 11"):
        check.replica_step("n1", replica, Effects())  # the snapshot's record was not shown


# -- rule 12: collection ---------------------------------------------------------------------


def test_collecting_above_what_a_majority_applied_breaks_rule_12() -> None:
    check = checker()
    replica = Replica(CONFIG, "n1", KeyValueStore())
    effects = replica.handle(Decision(slots(1, 2, 3), ((), (), ())), 0.0)
    check.replica_step("n1", replica, effects)  # only n1 applied slots 1-3
    acceptor = Acceptor(CONFIG, "n1")
    with pytest.raises(InvariantViolation, match="rule 12"):
        step(check, acceptor, Collect(4))


def test_collecting_below_what_a_majority_applied_keeps_rule_12() -> None:
    check = checker()
    for name in ("n1", "n2"):
        replica = Replica(CONFIG, name, KeyValueStore())
        check.replica_step(name, replica, replica.handle(Decision(slots(1, 2), ((), ())), 0.0))
    step(check, Acceptor(CONFIG, "n3"), Collect(3))
