"""The Paxos leader core: phase 1 and adoption, batched phase 2, preemption, liveness."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from actorfw.kernels import ballot as kb
from actorfw.protocols.paxos import (
    Applied,
    Command,
    Config,
    Decision,
    Effects,
    Leader,
    LeaderBallot,
    LeaderMode,
    LeaderOptions,
    P1a,
    P1b,
    P2a,
    P2b,
    Ping,
    Pong,
    Progress,
    Promised,
    Propose,
)

CONFIG = Config.colocated(["n1", "n2", "n3"])
EMPTY = np.zeros(0, dtype=np.int64)


def B(round: int, leader: int) -> int:
    return int(kb.make_ballot(round, leader))


def slots(*numbers: int) -> np.ndarray:
    return np.array(numbers, dtype=np.int64)


def batch(name: str) -> tuple[Command, ...]:
    return (Command(name, 1, name),)


def propose(*numbers: int, replica: str = "n1", slot_out: int = 1) -> Propose:
    return Propose(replica, slot_out, slots(*numbers), tuple(batch(f"c{n}") for n in numbers))


def p1b(
    acceptor: str, ballot: int, pvalues: Sequence[tuple[int, int, Any]] = (), floor: int = 0
) -> P1b:
    return P1b(
        acceptor,
        ballot,
        floor,
        slots(*(p[0] for p in pvalues)),
        slots(*(p[1] for p in pvalues)),
        tuple(p[2] for p in pvalues),
        ballot,  # the answer to a p1a of this ballot
    )


def p2b(acceptor: str, ballot: int, *numbers: int) -> P2b:
    return P2b(acceptor, ballot, slots(*numbers), EMPTY)


def sent(effects: Effects, kind: type) -> list[tuple[str, Any]]:
    return [(to, m) for to, m in effects.send if type(m) is kind]


def mode(leader: Leader) -> LeaderMode:
    """The leader's mode, read afresh (mypy keeps narrowing ``leader.mode`` otherwise)."""
    return leader.mode


def new_leader(me: str = "n1", rng: random.Random | None = None, **options: Any) -> Leader:
    return Leader(CONFIG, me, rng or random.Random(0), LeaderOptions(**options))


def active_leader(**options: Any) -> Leader:
    """Leader n1, active at ballot 0.0 with nothing accepted anywhere."""
    leader = new_leader(**options)
    leader.start(0.0)
    leader.handle_all([p1b("n1", B(0, 0)), p1b("n2", B(0, 0))], 0.0)
    assert leader.is_active
    return leader


def p2a_slots(effects: Effects, acceptor: str = "n1") -> list[list[int]]:
    return [m.slots.tolist() for to, m in sent(effects, P2a) if to == acceptor]


# -- start and phase 1 ---------------------------------------------------------------------


def test_initial_leader_scouts_at_start_and_persists_its_ballot_with_the_p1a() -> None:
    effects = new_leader().start(0.0)
    assert effects.persist == [LeaderBallot(B(0, 0))]
    assert sent(effects, P1a) == [(a, P1a(B(0, 0), 1)) for a in ("n1", "n2", "n3")]


def test_other_leaders_start_passive_following_the_initial_leader() -> None:
    leader = new_leader("n2")
    effects = leader.start(0.0)
    assert mode(leader) is LeaderMode.PASSIVE
    assert leader.following == B(0, 0)
    assert effects.persist == []
    assert sent(leader.tick(0.0), Ping) == [("n1", Ping("n2", B(0, 0)))]


def test_leader_becomes_active_with_a_quorum_of_p1b() -> None:
    leader = new_leader()
    leader.start(0.0)
    leader.handle(p1b("n3", B(0, 0)), 0.0)
    assert mode(leader) is LeaderMode.SCOUTING
    leader.handle(p1b("n1", B(0, 0)), 0.0)
    assert mode(leader) is LeaderMode.ACTIVE


def test_two_p1b_from_one_acceptor_are_not_a_quorum() -> None:
    leader = new_leader()
    leader.start(0.0)
    leader.handle_all([p1b("n3", B(0, 0)), p1b("n3", B(0, 0))], 0.0)
    assert mode(leader) is LeaderMode.SCOUTING


def test_adopted_leader_reproposes_the_highest_ballot_batch_of_each_slot() -> None:
    leader = new_leader("n3")  # follows n1, then takes over
    leader.start(0.0)
    leader.handle(propose(1), 0.0)  # a replica's proposal for slot 1
    leader.tick(5.0)
    leader.tick(10.0)  # silent leader, back-off over: scout
    ballot = leader.ballot
    effects = leader.handle_all(
        [
            p1b("n1", ballot, [(1, B(0, 0), batch("a")), (2, B(0, 0), batch("x"))]),
            p1b("n2", ballot, [(1, B(0, 1), batch("a2"))]),
        ],
        10.0,
    )
    (_, message) = sent(effects, P2a)[0]
    assert message.slots.tolist() == [1, 2]
    assert message.batches == (batch("a2"), batch("x"))


def test_adopted_leader_fills_gaps_with_held_proposals_or_noops() -> None:
    leader = new_leader()
    leader.start(0.0)
    leader.handle(propose(3), 0.0)
    effects = leader.handle_all(
        [
            p1b("n1", B(0, 0), [(1, B(0, 0), batch("a")), (5, B(0, 0), batch("e"))]),
            p1b("n2", B(0, 0)),
        ],
        0.0,
    )
    (_, message) = sent(effects, P2a)[0]
    assert message.slots.tolist() == [1, 2, 3, 4, 5]
    assert message.batches == (batch("a"), (), batch("c3"), (), batch("e"))


def test_adopted_leader_skips_slots_below_the_collection_floor() -> None:
    leader = new_leader()
    leader.start(0.0)
    effects = leader.handle_all(
        [
            p1b("n1", B(0, 0), [(1, B(0, 0), batch("a")), (3, B(0, 0), batch("c"))]),
            p1b("n2", B(0, 0), [(3, B(0, 0), batch("c"))], floor=3),
        ],
        0.0,
    )
    assert p2a_slots(effects) == [[3]]
    assert leader.decided_below == 3


def test_a_scout_asks_only_for_slots_not_known_decided() -> None:
    leader = new_leader("n2", leader_timeout=1.0, backoff_base=0.1)
    leader.start(0.0)
    leader.handle(Applied("n1", 7), 0.0)
    leader.tick(2.0)
    effects = leader.tick(3.0)
    assert {m.from_slot for _, m in sent(effects, P1a)} == {7}


def test_the_p1a_ballot_is_above_every_ballot_seen() -> None:
    leader = new_leader("n2", leader_timeout=1.0)
    leader.start(0.0)
    leader.handle(p2b("n1", B(9, 2)), 0.0)  # a stale answer reveals ballot 9.2
    leader.tick(2.0)
    effects = leader.tick(5.0)
    assert mode(leader) is LeaderMode.SCOUTING
    assert effects.persist == [LeaderBallot(B(10, 1))]


# -- phase 2 -------------------------------------------------------------------------------


def test_one_propose_of_many_slots_goes_out_as_one_p2a_per_acceptor() -> None:
    leader = active_leader()
    effects = leader.handle(propose(*range(1, 101)), 0.0)
    assert [to for to, _ in sent(effects, P2a)] == ["n1", "n2", "n3"]
    assert p2a_slots(effects) == [list(range(1, 101))]


@pytest.mark.parametrize(
    ("count", "per_message", "messages"),
    [(1, 4, 1), (4, 4, 1), (5, 4, 2), (9, 2, 5), (100, 512, 1)],
)
def test_a_p2a_carries_at_most_max_slots_per_p2a(
    count: int, per_message: int, messages: int
) -> None:
    leader = active_leader(max_slots_per_p2a=per_message)
    chunks = p2a_slots(leader.handle(propose(*range(1, count + 1)), 0.0))
    assert len(chunks) == messages
    assert max(len(c) for c in chunks) <= per_message
    assert [slot for chunk in chunks for slot in chunk] == list(range(1, count + 1))


def test_at_most_window_slots_are_in_phase_2_at_once() -> None:
    leader = active_leader(window=4)
    leader.handle(propose(*range(1, 11)), 0.0)
    assert (leader.in_flight, leader.queued) == (4, 6)
    effects = leader.handle_all(
        [p2b("n1", B(0, 0), 1, 2, 3, 4), p2b("n2", B(0, 0), 1, 2, 3, 4)], 0.0
    )
    assert p2a_slots(effects) == [[5, 6, 7, 8]]
    assert (leader.in_flight, leader.queued) == (4, 2)


def test_a_slot_is_chosen_when_a_quorum_of_acceptors_accepted_it() -> None:
    leader = active_leader()
    leader.handle(propose(1, 2), 0.0)
    assert sent(leader.handle(p2b("n1", B(0, 0), 1, 2), 0.0), Decision) == []
    effects = leader.handle(p2b("n3", B(0, 0), 2), 0.0)
    decisions = sent(effects, Decision)
    assert [to for to, _ in decisions] == ["n1", "n2", "n3"]
    assert decisions[0][1].slots.tolist() == [2]
    assert decisions[0][1].batches == (batch("c2"),)


def test_votes_are_counted_without_numpy_bitwise_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    leader = active_leader()
    leader.handle(propose(1, 2), 0.0)
    assert sent(leader.handle(p2b("n1", B(0, 0), 1, 2), 0.0), Decision) == []
    effects = leader.handle(p2b("n3", B(0, 0), 2), 0.0)
    assert sent(effects, Decision)[0][1].slots.tolist() == [2]


def test_a_duplicated_p2b_does_not_make_a_quorum() -> None:
    leader = active_leader()
    leader.handle(propose(1), 0.0)
    effects = leader.handle_all([p2b("n2", B(0, 0), 1), p2b("n2", B(0, 0), 1)], 0.0)
    assert sent(effects, Decision) == []


def test_one_decision_per_replica_holds_every_slot_chosen_in_the_step() -> None:
    leader = active_leader()
    leader.handle(propose(1), 0.0)
    leader.handle(propose(2), 0.0)
    effects = leader.handle_all(
        [
            p2b("n1", B(0, 0), 1),
            p2b("n1", B(0, 0), 2),
            p2b("n2", B(0, 0), 2),
            p2b("n2", B(0, 0), 1),
        ],
        0.0,
    )
    decisions = sent(effects, Decision)
    assert len(decisions) == 3
    assert sorted(decisions[0][1].slots.tolist()) == [1, 2]


def test_p2b_of_an_older_ballot_is_counted_stale_and_ignored() -> None:
    leader = active_leader()
    leader.handle(p2b("n2", B(1, 2)), 0.0)  # preempted by 1.2
    leader.tick(1.0)
    leader.tick(10.0)  # n3 is silent: scout again, above 1.2
    assert leader.ballot == B(2, 0)
    leader.handle_all([p1b("n1", B(2, 0)), p1b("n2", B(2, 0))], 10.0)
    leader.handle(propose(1), 10.0)
    effects = leader.handle_all([p2b("n1", B(0, 0), 1), p2b("n2", B(0, 0), 1)], 10.0)
    assert sent(effects, Decision) == []
    assert leader.stats["stale"] == 2
    assert leader.is_active


def test_unchosen_slots_are_sent_again_after_p2a_timeout() -> None:
    leader = active_leader(p2a_timeout=0.5)
    leader.handle(propose(1, 2), 0.0)
    leader.handle_all([p2b("n1", B(0, 0), 1, 2), p2b("n2", B(0, 0), 1)], 0.1)
    assert leader.next_deadline() == pytest.approx(0.5)
    assert sent(leader.tick(0.4), P2a) == []
    effects = leader.tick(0.5)
    assert p2a_slots(effects) == [[2]]
    assert leader.stats["resent_p2a"] == 1


def test_a_p2a_whose_slots_are_all_chosen_sets_no_deadline() -> None:
    leader = active_leader(p2a_timeout=0.5)
    leader.handle(propose(1), 0.0)
    leader.handle(propose(2), 0.2)
    assert leader.next_deadline() == pytest.approx(0.5)  # slot 1's p2a
    leader.handle_all([p2b("n1", B(0, 0), 1), p2b("n2", B(0, 0), 1)], 0.3)
    assert leader.next_deadline() == pytest.approx(0.7)  # slot 2's p2a, still waiting
    leader.handle_all([p2b("n1", B(0, 0), 2), p2b("n2", B(0, 0), 2)], 0.4)
    assert leader.next_deadline() is None  # nothing to re-send, no tick to pay for
    assert sent(leader.tick(1.0), P2a) == []


def test_slots_collected_at_an_acceptor_leave_phase_2() -> None:
    leader = active_leader()
    leader.handle(propose(1, 2, 3), 0.0)
    leader.handle(P2b("n2", B(0, 0), slots(3), slots(1, 2)), 0.0)
    assert leader.in_flight == 1
    assert leader.decided_below == 3


# -- proposals and what is decided ---------------------------------------------------------


def test_the_first_proposal_for_a_slot_wins() -> None:
    leader = active_leader()
    leader.handle(Propose("n1", 1, slots(1), (batch("first"),)), 0.0)
    effects = leader.handle(Propose("n2", 1, slots(1), (batch("second"),)), 0.0)
    assert sent(effects, P2a) == []
    effects = leader.handle_all([p2b("n1", B(0, 0), 1), p2b("n2", B(0, 0), 1)], 0.0)
    assert sent(effects, Decision)[0][1].batches == (batch("first"),)


def test_a_proposal_for_a_decided_slot_is_answered_with_the_decision() -> None:
    leader = active_leader()
    leader.handle(propose(1), 0.0)
    leader.handle_all([p2b("n1", B(0, 0), 1), p2b("n2", B(0, 0), 1)], 0.0)
    effects = leader.handle(Propose("n3", 1, slots(1), (batch("late"),)), 1.0)
    assert sent(effects, P2a) == []
    ((to, decision),) = sent(effects, Decision)
    assert to == "n3"
    assert decision.batches == (batch("c1"),)


def test_proposals_below_a_replicas_slot_out_are_dropped() -> None:
    leader = active_leader()
    leader.handle(Applied("n2", 5), 0.0)
    assert sent(leader.handle(propose(3, 5), 0.0), P2a)[0][1].slots.tolist() == [5]


def test_decided_batches_are_forgotten_once_a_majority_of_replicas_applied_them() -> None:
    leader = active_leader()
    leader.handle(propose(1, 2), 0.0)
    leader.handle_all([p2b("n1", B(0, 0), 1, 2), p2b("n2", B(0, 0), 1, 2)], 0.0)
    leader.handle(Applied("n1", 3), 0.0)
    assert leader.decided(1) == batch("c1")
    leader.handle(Applied("n2", 2), 0.0)
    assert (leader.decided(1), leader.decided(2)) == (None, batch("c2"))
    assert leader.decisions_kept == 1


def test_collection_is_safe_below_the_slot_a_majority_of_replicas_applied() -> None:
    leader = active_leader()
    leader.handle(Applied("n1", 9), 0.0)
    assert leader.collectable_below is None
    leader.handle(Applied("n2", 4), 0.0)
    assert leader.collectable_below == 4
    leader.handle(Applied("n3", 6), 0.0)
    assert leader.collectable_below == 6  # the second highest of 9, 6, 4


def test_a_replica_stuck_below_the_decided_slots_gets_them_again() -> None:
    leader = active_leader()
    leader.handle(propose(1, 2), 0.0)
    leader.handle_all([p2b("n1", B(0, 0), 1, 2), p2b("n2", B(0, 0), 1, 2)], 0.0)
    assert sent(leader.handle(Applied("n3", 1), 0.5), Decision) == []
    ((to, decision),) = sent(leader.handle(Applied("n3", 1), 1.0), Decision)
    assert to == "n3"
    assert decision.slots.tolist() == [1, 2]


# -- preemption and liveness ---------------------------------------------------------------


def test_p2b_with_a_higher_ballot_preempts_the_leader() -> None:
    leader = active_leader()
    leader.handle(propose(1, 2), 0.0)
    leader.handle(p2b("n2", B(1, 2)), 0.0)
    assert mode(leader) is LeaderMode.PASSIVE
    assert leader.following == B(1, 2)
    assert (leader.in_flight, leader.queued) == (0, 2)  # kept for a later adoption
    assert leader.stats["preempted"] == 1


def test_p1b_with_a_higher_ballot_preempts_the_scout() -> None:
    leader = new_leader()
    leader.start(0.0)
    leader.handle(p1b("n2", B(2, 1)), 0.0)
    assert mode(leader) is LeaderMode.PASSIVE
    assert leader.following == B(2, 1)


def test_a_scout_sends_p1a_again_to_silent_acceptors() -> None:
    leader = new_leader(scout_timeout=0.5)
    leader.start(0.0)
    leader.handle(p1b("n1", B(0, 0)), 0.1)
    assert leader.next_deadline() == pytest.approx(0.5)
    effects = leader.tick(0.5)
    assert [to for to, _ in sent(effects, P1a)] == ["n2", "n3"]
    assert effects.persist == []  # the same ballot: already durable


def test_a_passive_leader_pings_the_leader_of_the_ballot_that_preempted_it() -> None:
    leader = active_leader()
    leader.handle(p2b("n2", B(1, 2)), 1.0)
    assert sent(leader.tick(1.0), Ping) == [("n3", Ping("n1", B(1, 2)))]


def test_a_passive_leader_does_not_scout_while_the_leader_it_follows_answers() -> None:
    leader = new_leader("n2", ping_interval=0.25, leader_timeout=1.0)
    leader.start(0.0)
    now = 0.0
    while now < 10.0:
        now += 0.25
        leader.tick(now)
        leader.handle(Pong("n1", B(0, 0), True), now)
    assert mode(leader) is LeaderMode.PASSIVE
    assert leader.stats["scouts"] == 0


def test_a_passive_leader_scouts_after_the_leader_is_silent_and_a_back_off() -> None:
    leader = new_leader("n2", leader_timeout=1.0, backoff_base=0.5)
    leader.start(0.0)
    leader.tick(0.9)
    assert leader.stats["suspected"] == 0
    effects = leader.tick(1.0)
    assert leader.stats["suspected"] == 1
    assert sorted(to for to, _ in sent(effects, Ping)) == ["n1", "n3"]  # who leads now?
    deadline = leader.next_deadline()
    assert deadline is not None and 1.0 <= deadline <= 1.5
    leader.tick(1.5)
    assert mode(leader) is LeaderMode.SCOUTING
    assert leader.ballot == B(0, 1)


def test_a_pong_from_a_leading_leader_cancels_the_back_off() -> None:
    leader = new_leader("n2", leader_timeout=1.0, backoff_base=0.5)
    leader.start(0.0)
    leader.tick(1.0)
    leader.handle(Pong("n3", B(0, 2), True), 1.1)
    leader.tick(1.6)
    assert mode(leader) is LeaderMode.PASSIVE
    assert leader.following == B(0, 2)


class _Highest(random.Random):
    """A random source whose uniform() always returns its upper bound."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.mark.parametrize(
    ("preemptions", "span"), [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6), (8, 3.0)]
)
def test_the_back_off_range_doubles_with_each_recent_preemption(
    preemptions: int, span: float
) -> None:
    leader = new_leader("n2", rng=_Highest(), backoff_base=0.1, backoff_max=3.0)
    leader.start(0.0)
    now = 0.0
    for _ in range(preemptions):
        leader.tick(now + 1.0)  # leader_timeout: suspect
        now += 5.0
        leader.tick(now)  # past any back-off: scout
        assert mode(leader) is LeaderMode.SCOUTING
        leader.handle(p1b("n1", leader.ballot + 1), now)  # preempted
    leader.tick(now + 1.0)
    leader.tick(now + 1.0 + span - 1e-6)
    assert mode(leader) is LeaderMode.PASSIVE
    leader.tick(now + 1.0 + span)
    assert mode(leader) is LeaderMode.SCOUTING


def test_a_restored_leader_never_reuses_a_ballot() -> None:
    leader = Leader.restore(CONFIG, "n1", [LeaderBallot(B(3, 0))], random.Random(0))
    effects = leader.start(0.0)
    assert mode(leader) is LeaderMode.PASSIVE  # it does not know who leads now
    assert effects.persist == []
    leader.tick(0.0)
    leader.tick(5.0)
    effects = leader.tick(10.0)
    assert mode(leader) is LeaderMode.SCOUTING
    assert leader.ballot == B(4, 0)
    assert effects.persist == [LeaderBallot(B(4, 0))]


def test_an_adopted_leader_announces_itself_to_the_other_leaders() -> None:
    leader = new_leader()
    leader.start(0.0)
    effects = leader.handle_all([p1b("n1", B(0, 0)), p1b("n2", B(0, 0))], 0.0)
    assert sent(effects, Pong) == [
        ("n2", Pong("n1", B(0, 0), True)),
        ("n3", Pong("n1", B(0, 0), True)),
    ]


def test_an_active_leader_steps_down_for_a_higher_ballot_being_led() -> None:
    leader = active_leader()
    leader.handle(Pong("n3", B(0, 2), True), 1.0)
    assert mode(leader) is LeaderMode.PASSIVE
    assert leader.following == B(0, 2)


def test_an_active_leader_answers_a_ping_that_it_leads() -> None:
    effects = active_leader().handle(Ping("n2", B(0, 0)), 1.0)
    assert effects.send == [("n2", Pong("n1", B(0, 0), True))]


def test_a_passive_leader_answers_a_ping_with_the_ballot_it_follows() -> None:
    leader = new_leader("n1")
    leader.start(0.0)
    leader.handle(p1b("n2", B(2, 2)), 0.0)
    effects = leader.handle(Ping("n2", B(0, 0)), 1.0)
    assert effects.send == [("n2", Pong("n1", B(2, 2), False))]


def test_an_idle_active_leader_needs_no_timer() -> None:
    leader = active_leader()
    assert leader.next_deadline() is None


# -- misuse and malformed input ----------------------------------------------------------


def test_starting_twice_is_a_runtime_error() -> None:
    leader = new_leader()
    leader.start(0.0)
    with pytest.raises(RuntimeError, match="already started"):
        leader.start(0.0)


def test_handling_before_start_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match=r"call start\(now\)"):
        new_leader().handle(propose(1), 0.0)


def test_a_message_for_another_role_is_a_type_error_naming_that_role() -> None:
    leader = active_leader()
    with pytest.raises(TypeError, match="which the replica handles"):
        leader.handle(Progress("n2", 3), 0.0)


def test_restore_refuses_another_roles_records() -> None:
    with pytest.raises(TypeError, match="not a leader record"):
        Leader.restore(CONFIG, "n1", [Promised(3)], random.Random(0))


MALFORMED = [
    P2b("n9", B(0, 0), slots(1), EMPTY),
    P2b("n2", B(0, 0), [1], EMPTY),  # type: ignore[arg-type]
    P1b("n2", B(0, 0), 0, slots(1), slots(), ((),), B(0, 0)),
    Propose("n1", 1, slots(1, 2), ((),)),
    Propose("n7", 1, slots(1), ((),)),
    Applied("n1", "3"),  # type: ignore[arg-type]
    Ping("n8", 0),
    Pong("n2", 0, 1),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("message", MALFORMED, ids=repr)
def test_a_malformed_message_is_counted_and_dropped(message: Any) -> None:
    leader = active_leader()
    assert not leader.handle(message, 0.0)
    assert leader.stats["malformed"] == 1
    assert leader.is_active


def test_a_hole_below_a_decided_slot_is_filled_with_a_noop_after_p2a_timeout() -> None:
    # Slot 3 is decided; slots 1 and 2 were proposed to a leader that crashed, so nobody
    # proposes them here. Replicas apply in order: the leader fills them (rule 10).
    leader = active_leader(p2a_timeout=0.5)
    leader.handle(propose(3), 0.0)
    leader.handle_all([p2b("n1", B(0, 0), 3), p2b("n2", B(0, 0), 3)], 0.1)
    assert leader.read_index == 4
    assert leader.next_deadline() == pytest.approx(0.6)  # the first look
    assert sent(leader.tick(0.6), P2a) == []  # holes seen: 1 and 2; they get 0.5 s
    leader.handle(propose(2), 0.9)  # a replica does propose slot 2: that proposal is kept
    assert leader.next_deadline() == pytest.approx(1.1)
    effects = leader.tick(1.1)
    assert p2a_slots(effects) == [[1]]
    (noop,) = [m for to, m in sent(effects, P2a) if to == "n1"]
    assert noop.batches == ((),)
    assert leader.stats["holes_filled"] == 1
    leader.handle_all([p2b("n1", B(0, 0), 1, 2), p2b("n2", B(0, 0), 1, 2)], 1.2)
    assert leader.decided_below == 4 and leader.next_deadline() is None


def test_a_hole_seen_first_just_before_a_look_gets_its_full_time() -> None:
    leader = active_leader(p2a_timeout=0.5)
    leader.handle(propose(2), 0.0)
    leader.handle_all([p2b("n1", B(0, 0), 2), p2b("n2", B(0, 0), 2)], 0.0)  # 1 is a hole
    leader.handle(propose(1), 0.1)  # proposed after all: in flight, so slots stay open
    leader.handle(propose(4), 0.2)
    leader.handle_all([p2b("n1", B(0, 0), 4), p2b("n2", B(0, 0), 4)], 0.45)  # 3: a hole now
    assert leader.next_deadline() == pytest.approx(0.5)  # a look, due since slot 2
    leader.tick(0.5)
    assert leader.stats["holes_filled"] == 0  # 3 has been a hole for 0.05 s: not yet
    leader.handle(propose(3), 0.8)  # its replica's proposal, within the 0.5 s
    leader.tick(1.0)
    assert leader.stats["holes_filled"] == 0


def test_slots_in_flight_out_of_order_are_not_holes() -> None:
    leader = active_leader(p2a_timeout=0.5)
    leader.handle(propose(1, 2), 0.0)
    leader.handle_all([p2b("n1", B(0, 0), 2), p2b("n2", B(0, 0), 2)], 0.1)  # 2 before 1
    effects = leader.tick(0.6)
    assert leader.stats["holes_filled"] == 0
    assert p2a_slots(effects) == [[1]]  # re-sent as itself, not replaced by a no-op


def test_a_late_answer_to_an_older_p1a_neither_counts_nor_hides_accepted_pvalues() -> None:
    # An acceptor answers a late p1a of an older ballot with its promise, which may by
    # then be the scout's ballot, and no pvalues. Taken for an adoption, it replaced the
    # acceptor's real answer and hid a chosen value, which the new leader overwrote.
    leader = new_leader("n2", leader_timeout=1.0)
    leader.start(0.0)
    leader.handle(p2b("n1", B(3, 0)), 0.0)  # it scouts above 3.0: with 4.1
    leader.tick(2.0)
    effects = leader.tick(5.0)
    assert mode(leader) is LeaderMode.SCOUTING
    (ballot,) = [m.ballot for to, m in sent(effects, P1a) if to == "n1"]
    older = B(2, 1)  # a p1a of its own from an earlier term, delivered late
    chosen = batch("chosen")
    leader.handle(p1b("n1", ballot, [(5, B(0, 0), chosen)]), 5.0)
    late = P1b("n1", ballot, 0, EMPTY, EMPTY, (), older)
    stale = leader.stats["stale"]
    leader.handle(late, 5.0)
    assert leader.stats["stale"] == stale + 1
    leader.handle(P1b("n3", ballot, 0, EMPTY, EMPTY, (), older), 5.0)
    assert mode(leader) is LeaderMode.SCOUTING  # a late answer is not an adoption
    effects = leader.handle(p1b("n3", ballot), 5.0)
    assert mode(leader) is LeaderMode.ACTIVE
    (p2a,) = [m for to, m in sent(effects, P2a) if to == "n1"]
    assert p2a.slots.tolist() == [1, 2, 3, 4, 5] and p2a.batches[-1] == chosen


def test_a_slot_queued_beyond_the_window_is_not_a_hole() -> None:
    leader = active_leader(p2a_timeout=0.5, window=1)
    leader.handle(propose(3), 0.0)  # in flight
    leader.handle(propose(1, 2), 0.0)  # queued: the window is full
    # 3 is chosen: 1 goes out, 2 waits in the queue below a decided slot.
    effects = leader.handle_all([p2b("n1", B(0, 0), 3), p2b("n2", B(0, 0), 3)], 0.1)
    assert p2a_slots(effects) == [[1]]
    leader.tick(0.6)
    leader.tick(1.1)
    assert leader.stats["holes_filled"] == 0
    effects = leader.handle_all([p2b("n1", B(0, 0), 1), p2b("n2", B(0, 0), 1)], 1.2)
    (p2a,) = [m for to, m in sent(effects, P2a) if to == "n1"]
    assert p2a.slots.tolist() == [2] and p2a.batches == (batch("c2"),)  # its own batch


def test_a_passive_leader_fills_no_holes() -> None:
    leader = active_leader(p2a_timeout=0.5)
    leader.handle(propose(3), 0.0)
    leader.handle_all([p2b("n1", B(0, 0), 3), p2b("n2", B(0, 0), 3)], 0.1)
    leader.handle(p2b("n3", B(5, 2)), 0.2)  # preempted
    assert mode(leader) is LeaderMode.PASSIVE
    leader.tick(0.6)
    leader.tick(1.1)
    assert leader.stats["holes_filled"] == 0
