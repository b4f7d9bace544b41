"""The Paxos replica core: batching proposals, applying in order, exactly once, catch-up."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from actorfw.protocols.paxos import (
    Applied,
    CatchUp,
    CatchUpReply,
    Command,
    Config,
    Decided,
    Decision,
    Effects,
    InvariantViolation,
    P2a,
    Progress,
    Promised,
    Propose,
    Replica,
    ReplicaOptions,
    Request,
    Response,
    SessionExpired,
    records_from_storage,
    storage_ops,
)
from tests.support.paxos_harness import KeyValueStore, apply_to

CONFIG = Config.colocated(["n1", "n2", "n3"])


def slots(*numbers: int) -> np.ndarray:
    return np.array(numbers, dtype=np.int64)


def cmd(client: str, seq: int = 1, op: Any = None) -> Command:
    return Command(client, seq, op if op is not None else ("incr", "k"))


def replica(me: str = "n1", **options: Any) -> Replica:
    return Replica(CONFIG, me, KeyValueStore(), ReplicaOptions(**options))


def decision(start: int, *batches: tuple[Command, ...]) -> Decision:
    return Decision(slots(*range(start, start + len(batches))), tuple(batches))


def proposals(effects: Effects) -> list[Propose]:
    """The Propose messages of a step, one per leader; returns the first copy."""
    found = [m for _, m in effects.send_now if type(m) is Propose]
    assert len(found) in (0, 3)
    return found[:1]


def proposed(effects: Effects) -> dict[int, tuple[Command, ...]]:
    out: dict[int, tuple[Command, ...]] = {}
    for message in proposals(effects):
        out.update(zip(message.slots.tolist(), message.batches, strict=True))
    return out


def sent(effects: Effects, kind: type) -> list[tuple[str, Any]]:
    return [(to, m) for to, m in effects.send + effects.send_now if type(m) is kind]


# -- proposing -----------------------------------------------------------------------------


def test_a_request_is_proposed_to_every_leader() -> None:
    effects = replica().request(cmd("c1"), 0.0)
    assert [to for to, m in effects.send_now if type(m) is Propose] == ["n1", "n2", "n3"]
    assert proposed(effects) == {1: (cmd("c1"),)}


def test_requests_taken_in_one_step_share_a_slot_up_to_max_batch() -> None:
    effects = replica(max_batch=3).handle_all([Request(cmd(f"c{i}")) for i in range(7)], 0.0)
    assert proposed(effects) == {
        1: (cmd("c0"), cmd("c1"), cmd("c2")),
        2: (cmd("c3"), cmd("c4"), cmd("c5")),
        3: (cmd("c6"),),
    }


def test_requests_arriving_while_the_window_is_full_wait_and_then_share_a_slot() -> None:
    r = replica(window=1)
    r.request(cmd("a"), 0.0)
    assert proposed(r.request(cmd("b"), 0.0)) == {}
    assert proposed(r.request(cmd("c"), 0.0)) == {}
    effects = r.handle(decision(1, (cmd("a"),)), 0.0)
    assert proposed(effects) == {2: (cmd("b"), cmd("c"))}


@pytest.mark.parametrize(("window", "requests", "slots_used"), [(1, 5, 1), (3, 5, 3), (8, 5, 5)])
def test_a_replica_never_proposes_beyond_its_window(
    window: int, requests: int, slots_used: int
) -> None:
    r = replica(window=window, max_batch=1)
    effects = r.handle_all([Request(cmd(f"c{i}")) for i in range(requests)], 0.0)
    assert sorted(proposed(effects)) == list(range(1, 1 + slots_used))
    assert r.slot_in == 1 + slots_used
    assert r.pending_requests == requests - slots_used


def test_slots_already_decided_are_not_proposed_into() -> None:
    r = replica(window=8)
    r.handle(decision(2, (cmd("x"),)), 0.0)  # slot 2 decided by someone else
    effects = r.handle_all([Request(cmd("a")), Request(cmd("b"))], 0.0)
    assert sorted(proposed(effects)) == [1]  # one batch: both commands
    r2 = replica(window=8, max_batch=1)
    r2.handle(decision(2, (cmd("x"),)), 0.0)
    effects = r2.handle_all([Request(cmd("a")), Request(cmd("b"))], 0.0)
    assert sorted(proposed(effects)) == [1, 3]


def test_a_proposal_carries_the_replicas_slot_out() -> None:
    r = replica()
    r.handle(decision(1, (cmd("x"),), (cmd("y"),)), 0.0)
    r.made_durable(1)  # the decision's records are durable
    (message,) = proposals(r.request(cmd("a"), 0.0))
    assert message.slot_out == 3
    assert message.slots.tolist() == [3]


def test_a_proposal_leaves_now_and_reports_only_durable_progress() -> None:
    r = replica()
    applied = r.handle(decision(1, (cmd("x"),), (cmd("y"),)), 0.0)
    assert applied.persist  # slots 1-2 applied, written, not yet durable
    effects = r.request(cmd("a"), 0.0)
    (message,) = proposals(effects)
    assert message.slot_out == 1  # rule 13: 3 would not survive a crash yet
    assert not [m for _, m in effects.send if type(m) is Propose]
    r.made_durable(1)
    (message,) = proposals(r.request(cmd("b"), 0.0))
    assert message.slot_out == 3 and message.slots.tolist() == [4]


def test_an_undecided_proposal_is_proposed_again_after_propose_timeout() -> None:
    r = replica(propose_timeout=1.0)
    r.request(cmd("a"), 0.0)
    assert proposed(r.tick(0.9)) == {}
    assert proposed(r.tick(1.0)) == {1: (cmd("a"),)}
    assert r.stats["reproposed"] == 1


# -- applying --------------------------------------------------------------------------------


def test_decisions_are_applied_in_slot_order_whatever_order_they_arrive_in() -> None:
    r = replica()
    r.handle(decision(3, (cmd("c", op=("put", "x", 3)),)), 0.0)
    r.handle(decision(2, (cmd("b", op=("put", "x", 2)),)), 0.0)
    assert r.slot_out == 1
    r.handle(decision(1, (cmd("a", op=("put", "x", 1)),)), 0.0)
    assert r.slot_out == 4
    assert r.machine.data == {"x": 3}  # type: ignore[attr-defined]
    assert [b[0].client for b in r.log] == ["a", "b", "c"]


def test_a_noop_batch_fills_a_slot_and_runs_nothing() -> None:
    r = replica()
    r.handle(decision(1, (), (cmd("a"),)), 0.0)
    assert r.slot_out == 3
    assert r.machine.executed == 1  # type: ignore[attr-defined]


def test_the_replica_that_took_a_request_answers_it() -> None:
    r = replica()
    r.request(cmd("c1", op=("put", "x", 1)), 0.0)
    effects = r.handle(decision(1, (cmd("c1", op=("put", "x", 1)),)), 0.0)
    assert effects.responses == [Response("c1", 1, "ok")]


def test_a_replica_applies_commands_it_did_not_take_silently() -> None:
    r = replica("n2")
    effects = r.handle(decision(1, (cmd("c1"),)), 0.0)
    assert effects.responses == []
    assert r.machine.data == {"k": 1}  # type: ignore[attr-defined]


def test_a_command_decided_twice_runs_once_and_is_answered_with_its_result() -> None:
    r = replica()
    r.request(cmd("c1"), 0.0)
    first = r.handle(decision(1, (cmd("c1"),)), 0.0)
    second = r.handle(decision(2, (cmd("c1"),)), 0.0)
    assert first.responses == [Response("c1", 1, 1)]
    assert second.responses == []
    assert r.machine.executed == 1  # type: ignore[attr-defined]


def test_a_retry_of_a_command_that_ran_is_answered_from_the_session() -> None:
    r = replica()
    r.handle(decision(1, (cmd("c1"),)), 0.0)
    effects = r.request(cmd("c1"), 1.0)
    assert effects.responses == [Response("c1", 1, 1)]
    assert proposed(effects) == {}
    assert r.stats["answered_from_session"] == 1


def test_a_request_older_than_the_clients_last_is_ignored() -> None:
    r = replica()
    r.handle(decision(1, (cmd("c1", 1),), (cmd("c1", 2),)), 0.0)
    effects = r.request(cmd("c1", 1), 1.0)
    assert not effects
    assert r.stats["stale_request"] == 1


def test_a_request_already_waiting_is_not_proposed_twice() -> None:
    r = replica(window=1)
    r.request(cmd("a"), 0.0)
    r.request(cmd("b"), 0.0)
    r.request(cmd("b"), 0.0)
    effects = r.handle(decision(1, (cmd("a"),)), 0.0)
    assert proposed(effects) == {2: (cmd("b"),)}
    assert r.stats["duplicate_request"] == 1


def test_a_proposal_that_lost_its_slot_is_requeued_and_proposed_again() -> None:
    r = replica()
    r.handle_all([Request(cmd("a")), Request(cmd("b"))], 0.0)  # slot 1: (a, b)
    effects = r.handle(decision(1, (cmd("b"), cmd("z"))), 0.0)  # slot 1 went to another batch
    assert proposed(effects) == {2: (cmd("a"),)}  # b ran in slot 1: only a goes back
    assert r.stats["requeued"] == 1


def test_a_slot_decided_as_proposed_is_not_requeued() -> None:
    r = replica()
    r.request(cmd("a"), 0.0)
    effects = r.handle(decision(1, (cmd("a"),)), 0.0)
    assert proposed(effects) == {}
    assert r.proposals == {}


def test_two_batches_for_one_slot_break_an_invariant() -> None:
    r = replica()
    r.handle(decision(1, (cmd("a"),)), 0.0)
    with pytest.raises(InvariantViolation, match="two batches for slot 1"):
        r.handle(decision(1, (cmd("b"),)), 0.0)


def test_window_holds_after_every_step() -> None:
    r = replica(window=4, max_batch=1)
    for step in range(20):
        r.request(cmd(f"c{step}"), 0.0)
        if step % 3 == 0:
            r.handle(decision(r.slot_out, (cmd(f"other{step}"),)), 0.0)
        assert r.slot_out <= r.slot_in <= r.slot_out + 4


# -- durability ------------------------------------------------------------------------------


def test_applied_batches_are_persisted_in_the_step_that_applies_them() -> None:
    r = replica()
    effects = r.handle(decision(1, (cmd("a"),), (cmd("b"),)), 0.0)
    assert len(effects.persist) == 1
    record = effects.persist[0]
    assert isinstance(record, Decided)
    assert (record.slot, record.batches) == (1, ((cmd("a"),), (cmd("b"),)))
    assert r.handle(decision(5, (cmd("x"),)), 0.0).persist == []  # not applied yet


def test_a_restored_replica_replays_its_log_and_sessions_and_answers_nothing() -> None:
    r = replica()
    store: dict[bytes, bytes] = {}
    for effects in (
        r.handle(decision(1, (cmd("a"),), (cmd("b"),)), 0.0),
        r.handle(decision(3, (cmd("a", 2),)), 0.0),
    ):
        for record in effects.persist:
            store.update(storage_ops(record))  # type: ignore[arg-type]
    machine = KeyValueStore()
    restored = Replica.restore(CONFIG, "n1", machine, records_from_storage(store.items()))
    assert (restored.slot_out, restored.slot_in) == (4, 4)
    assert machine.data == {"k": 3}
    assert restored.session("a") == (2, 3)
    assert restored.request(cmd("a", 2), 1.0).responses == [Response("a", 2, 3)]


def test_beyond_max_sessions_the_least_recently_active_clients_session_is_dropped() -> None:
    r = replica(max_sessions=2)
    r.handle(decision(1, (cmd("a"),), (cmd("b"),), (cmd("a", 2),), (cmd("c"),)), 0.0)
    # a ran after b, so b's session was the oldest when c opened one.
    assert r.session("b") is None
    assert r.session("a") == (2, 3) and r.session("c") == (1, 4)
    assert r.stats["sessions_dropped"] == 1
    r.handle(decision(5, *((cmd(f"x{i}"),) for i in range(50))), 0.0)
    assert sum(r.session(c) is not None for c in ["a", "c", *(f"x{i}" for i in range(50))]) == 2


def test_a_command_of_a_client_whose_session_was_dropped_does_not_run() -> None:
    r = replica(max_sessions=1)
    r.handle(decision(1, (cmd("a"),), (cmd("b"),)), 0.0)  # b's session drops a's
    r.request(cmd("a", 2), 1.0)
    effects = r.handle(decision(3, (cmd("a", 2),), (cmd("a", 3),)), 1.0)
    assert effects.responses == [Response("a", 2, SessionExpired("a", 2))]
    assert r.machine.data == {"k": 2}  # neither ran: a retry could have run twice
    assert r.session("a") is None and r.session("b") == (1, 2)
    assert r.stats["session_expired"] == 2
    # A new client id starts at 1 and runs.
    r.request(cmd("a~1"), 2.0)
    assert r.handle(decision(5, (cmd("a~1"),)), 2.0).responses == [Response("a~1", 1, 3)]


def test_every_replica_drops_the_same_sessions_after_a_snapshot_and_a_restart() -> None:
    r = replica(max_sessions=2, snapshot_interval=2, log_tail=0)
    store: dict[bytes, bytes] = {}
    for effects in (
        r.handle(decision(1, (cmd("a"),), (cmd("b"),)), 0.0),
        r.handle(decision(3, (cmd("a", 2),), (cmd("b", 2),), (cmd("a", 3),)), 0.0),
    ):
        apply_to(store, effects)
    assert b"snap" in store  # the sessions come back from a snapshot, not only the log
    restored = Replica.restore(
        CONFIG,
        "n1",
        KeyValueStore(),
        records_from_storage(sorted(store.items())),
        ReplicaOptions(max_sessions=2, snapshot_interval=2, log_tail=0),
    )
    assert restored.slot_out == 6
    for core in (r, restored):
        core.handle(decision(6, (cmd("c"),)), 0.0)
        assert core.session("b") is None  # the least recently active, as before the restart
        assert core.session("a") == (3, 5)


def test_restore_refuses_a_log_with_a_gap() -> None:
    with pytest.raises(ValueError, match="jumps from slot 1 to 3"):
        Replica.restore(CONFIG, "n1", KeyValueStore(), [Decided(3, ((),))])


def test_restore_refuses_another_roles_records() -> None:
    with pytest.raises(TypeError, match="not a replica record"):
        Replica.restore(CONFIG, "n1", KeyValueStore(), [Promised(1)])


# -- status and catch-up -------------------------------------------------------------------


def test_a_tick_reports_slot_out_to_peers_and_leaders() -> None:
    effects = replica(status_interval=0.5).tick(0.0)
    assert sent(effects, Progress) == [("n2", Progress("n1", 1)), ("n3", Progress("n1", 1))]
    assert [to for to, _ in sent(effects, Applied)] == ["n1", "n2", "n3"]


def test_reports_come_every_status_interval() -> None:
    r = replica(status_interval=0.5)
    r.tick(0.0)
    assert sent(r.tick(0.4), Progress) == []
    assert len(sent(r.tick(0.5), Progress)) == 2


def test_a_gap_is_given_catchup_delay_before_asking_a_peer() -> None:
    r = replica(catchup_delay=0.2)
    r.tick(0.0)
    r.handle(decision(3, (cmd("c"),)), 0.0)  # slots 1 and 2 are missing
    assert r.next_deadline() == pytest.approx(0.2)
    assert sent(r.tick(0.1), CatchUp) == []
    assert sent(r.tick(0.2), CatchUp) == [("n2", CatchUp("n1", 1))]


def test_a_replica_behind_a_peer_asks_that_peer() -> None:
    r = replica(catchup_delay=0.2)
    r.handle_all([Progress("n2", 4), Progress("n3", 9)], 0.0)
    assert sent(r.tick(0.3), CatchUp) == [("n3", CatchUp("n1", 1))]


def test_an_unanswered_catchup_is_asked_of_the_next_peer_after_catchup_timeout() -> None:
    r = replica(catchup_delay=0.2, catchup_timeout=0.5)
    r.handle(Progress("n3", 9), 0.0)
    r.tick(0.2)
    assert sent(r.tick(0.6), CatchUp) == []
    ((to, _),) = sent(r.tick(0.7), CatchUp)
    assert to == "n2"


def test_a_peer_answers_catchup_with_its_decisions_from_the_asked_slot() -> None:
    peer = replica("n2", max_catchup_slots=3)
    peer.handle(decision(1, (cmd("a"),), (cmd("b"),), (cmd("c"),)), 0.0)
    peer.handle(decision(5, (cmd("e"),)), 0.0)  # held, not applied yet
    ((to, reply),) = sent(peer.handle(CatchUp("n1", 2), 0.0), CatchUpReply)
    assert to == "n1"
    assert reply.slot_out == 4
    assert reply.slots.tolist() == [2, 3]
    reply_far = sent(peer.handle(CatchUp("n1", 4), 0.0), CatchUpReply)[0][1]
    assert reply_far.slots.tolist() == [5]


def test_a_catchup_reply_that_leaves_the_replica_behind_asks_again_at_once() -> None:
    r = replica()
    effects = r.handle(CatchUpReply("n2", 10, slots(1, 2), ((cmd("a"),), (cmd("b"),))), 0.0)
    assert r.slot_out == 3
    assert sent(effects, CatchUp) == [("n2", CatchUp("n1", 3))]


def test_a_catchup_reply_that_brings_nothing_is_not_followed_at_once() -> None:
    r = replica()
    effects = r.handle(CatchUpReply("n2", 10, slots(), ()), 0.0)
    assert sent(effects, CatchUp) == []


# -- misuse and malformed input ----------------------------------------------------------


def test_request_takes_a_command() -> None:
    with pytest.raises(TypeError, match="takes a Command"):
        replica().request(("c1", 1, "op"), 0.0)  # type: ignore[arg-type]


def test_a_message_for_another_role_is_a_type_error_naming_that_role() -> None:
    with pytest.raises(TypeError, match="which the acceptor handles"):
        replica().handle(P2a(0, slots(1), ((),)), 0.0)


def test_an_address_outside_the_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="not a replica"):
        Replica(CONFIG, "n4", KeyValueStore())


MALFORMED = [
    Request(("c1", 1, "op")),  # type: ignore[arg-type]
    Decision(slots(1, 2), ((),)),
    Decision(slots(1), (("not a command",),)),  # type: ignore[arg-type]
    Progress("n9", 3),
    CatchUp("n1", 1),  # from itself: not a peer
    CatchUpReply("n2", 3, slots(1), [()]),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("message", MALFORMED, ids=repr)
def test_a_malformed_message_is_counted_and_dropped(message: Any) -> None:
    r = replica()
    assert not r.handle(message, 0.0)
    assert r.stats["malformed"] == 1
    assert r.slot_out == 1
