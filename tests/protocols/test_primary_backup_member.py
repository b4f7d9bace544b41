"""A primary-backup group's member core, by its rules (``actorfw.protocols.primary_backup.member``).

Three members exchange their messages through a little in-memory network
(delivered when a test says so); the keeper's notes are handed in by hand.
"""

from __future__ import annotations

from typing import Any

import pytest

from actorfw.kv import KVStateMachine
from actorfw.protocols.effects import Effects
from actorfw.protocols.paxos import Command, Read, Request
from actorfw.protocols.primary_backup import Append, Entry, EpochSeen, PrimaryOptions, Written
from actorfw.protocols.primary_backup.member import (
    KEEPER,
    Busy,
    LeaseGranted,
    Member,
    MemberOptions,
    Moved,
    Response,
    ViewIs,
    Wake,
)

NODES = ("n1", "n2", "n3")
OPTIONS = MemberOptions(PrimaryOptions(lag_time=0.5, drift=0.1), max_queue=4)


class ReadableKV(KVStateMachine):
    def is_read_only(self, op: Any) -> bool:
        return op[0] == "get"

    def query(self, op: Any) -> Any:
        return self.apply(op)


class Group:
    """Three members and the messages in flight between them."""

    def __init__(self, options: MemberOptions = OPTIONS) -> None:
        self.members = {n: Member(n, NODES, ReadableKV(), options) for n in NODES}
        self.flight: list[tuple[str, str, Any]] = []  # (from, to, message)
        self.out: dict[str, list[Any]] = {n: [] for n in NODES}  # responses and outputs
        self.records: dict[str, list[Any]] = {n: [] for n in NODES}
        self.wakes = 0
        self.now = 0.0
        self.held: set[str] = set()  # nodes whose records are not made durable

    def take(self, node: str, effects: Effects) -> Effects:
        self.records[node].extend(effects.persist)
        member = self.members[node]
        if node not in self.held:
            member.made_durable(member.durability.persisted)
        for to, message in effects.send + effects.send_now:
            if to == KEEPER:
                assert type(message) is Wake
                self.wakes += 1
            else:
                self.flight.append((node, to, message))
        self.out[node].extend(effects.responses + effects.outputs)
        return effects

    def step(self, node: str, *messages: Any) -> Effects:
        return self.take(node, self.members[node].handle_all(list(messages), self.now))

    def deliver(self, *, drop_to: set[str] = frozenset(), rounds: int = 20) -> None:
        for _ in range(rounds):
            if not self.flight:
                return
            flight, self.flight = self.flight, []
            for _, to, message in flight:
                if to not in drop_to:
                    self.step(to, message)

    def view(self, epoch: int, primary: str, in_sync: tuple[str, ...], grants: int = 0) -> None:
        for node in NODES:
            self.step(node, ViewIs(epoch, primary, in_sync, grants))

    def lead(self, primary: str = "n1", epoch: int = 1) -> Member:
        """``primary`` elected for ``epoch``, the others in sync; leased, its no-op committed."""
        others = tuple(n for n in NODES if n != primary)
        self.view(epoch, primary, others)
        self.step(primary, LeaseGranted(epoch, self.now + 1.0))
        self.deliver()
        return self.members[primary]


def command(seq: int, op: Any, client: str = "c") -> Command:
    return Command(client, seq, op)


def test_rule_1_a_member_named_for_a_new_epoch_records_it_and_becomes_primary() -> None:
    g = Group()
    g.view(1, "n1", ("n2", "n3"))
    m = g.members["n1"]
    assert m.acting == 1 and g.records["n1"] == [EpochSeen(1)]
    assert g.members["n2"].acting == 0


def test_rule_1_a_restarted_member_named_for_an_epoch_it_had_seen_does_not_act() -> None:
    m = Member.restore("n1", NODES, ReadableKV(), [EpochSeen(1), Written(1, (Entry(1, None),))])
    effects = m.handle_all([ViewIs(1, "n1", ("n2", "n3"), 3)], 0.0)
    assert m.acting == 0 and not effects.persist
    answer = m.handle_all([Request(command(1, ["put", "x", 1]))], 0.0)
    assert answer.responses == [Moved("c", 1, "")]  # it knows it is no primary: no hint


def test_rule_2_nothing_is_appended_or_answered_before_the_lease() -> None:
    g = Group()
    g.view(1, "n1", ("n2", "n3"))
    g.step("n1", Request(command(1, ["put", "x", 1])))
    g.deliver()
    m = g.members["n1"]
    assert m.backup.end == 0 and not g.out["n1"]
    g.step("n1", LeaseGranted(1, 1.0))
    g.deliver()
    assert [e.command for e in m.backup.log] == [None, command(1, ["put", "x", 1])]
    assert g.out["n1"] == [Response("c", 1, None)]


def test_rule_2_a_lease_of_another_epoch_is_ignored() -> None:
    g = Group()
    g.view(2, "n1", ("n2", "n3"))
    g.step("n1", LeaseGranted(1, 5.0))
    assert g.members["n1"].backup.end == 0 and g.members["n1"].primary.lease_until == 0


def test_rule_4_a_command_is_answered_once_every_in_sync_backup_has_it() -> None:
    g = Group()
    m = g.lead()
    g.step("n1", Request(command(1, ["put", "x", 1])))
    g.deliver(drop_to={"n3"})  # n3 never acknowledges
    assert g.out["n1"] == [] and m.backup.committed == 1
    g.step("n1", Request(command(1, ["put", "x", 1])))  # a retry: the same command
    g.flight.clear()
    g.take("n1", m.tick(1.0))  # the heartbeat re-sends to n3
    g.deliver()
    assert g.out["n1"] == [Response("c", 1, None)]  # answered once
    assert list(m.backup.log).count(Entry(1, command(1, ["put", "x", 1]))) == 1


def test_rule_4_every_member_applies_committed_entries_and_a_retry_runs_once() -> None:
    g = Group()
    m = g.lead()
    g.step("n1", Request(command(1, ["append", "x", "a"])))
    g.deliver()
    g.take("n1", m.tick(0.1))  # the heartbeat carries committed to the backups
    g.deliver()
    for node in NODES:
        assert g.members[node].machine.apply(["get", "x", None]) == "a"
    g.out["n1"].clear()
    g.step("n1", Request(command(1, ["append", "x", "a"])))
    assert g.out["n1"] == [Response("c", 1, "a")]  # from the session, not run again
    assert m.machine.apply(["get", "x", None]) == "a"


def test_rule_4_a_backup_answers_moved_with_the_primary() -> None:
    g = Group()
    g.lead()
    effects = g.step("n2", Request(command(1, ["put", "x", 1])))
    assert effects.responses == [Moved("c", 1, "n1")]


def test_rule_4_a_full_queue_answers_busy() -> None:
    g = Group()
    g.view(1, "n1", ("n2", "n3"))  # no lease: commands wait in the queue
    for seq in range(1, 5):
        g.step("n1", Request(command(seq, ["put", "x", seq], client=f"c{seq}")))
    effects = g.step("n1", Request(command(1, ["put", "x", 9], client="c9")))
    assert effects.responses == [Busy("c9", 1)]
    g.step("n1", LeaseGranted(1, 1.0))  # the queue goes into the log
    g.deliver()
    assert [r.client for r in g.out["n1"] if type(r) is Response] == ["c1", "c2", "c3", "c4"]


def test_rule_3_a_newer_view_deposes_the_primary_and_what_it_owed_is_moved() -> None:
    g = Group()
    m = g.lead()
    g.step("n1", Request(command(1, ["put", "x", 1])))  # not delivered: owed
    effects = g.step("n1", ViewIs(2, "n2", ("n3",), 0))
    assert m.acting == 0 and effects.responses == [Moved("c", 1, "n2")]


def test_rule_7_an_append_of_an_epoch_no_view_named_yet_is_not_taken_until_one_does() -> None:
    g = Group()
    m = g.lead()
    g.step("n2", ViewIs(2, "n2", ("n3",), 0))
    g.step("n2", LeaseGranted(2, 2.0))
    wakes = g.wakes
    g.deliver()  # n1 and n3 have not been told of epoch 2: they take nothing of it
    assert m.acting == 1 and m.backup.epoch == 1 and g.wakes > wakes
    assert g.members["n3"].backup.epoch == 1 and g.members["n3"].stats["append_ahead_of_view"]
    g.step("n1", ViewIs(2, "n2", ("n3",), 0))
    g.step("n3", ViewIs(2, "n2", ("n3",), 0))
    g.take("n2", g.members["n2"].tick(1.0))  # the heartbeats bring the entries again
    g.deliver()
    assert m.acting == 0 and g.members["n2"].acting == 2
    assert m.backup.epoch == 2 and list(m.backup.log) == list(g.members["n2"].backup.log)


def test_rule_7_an_append_of_an_older_epoch_than_the_view_is_answered_stale() -> None:
    from actorfw.protocols.primary_backup import Stale

    g = Group()
    g.lead()
    g.view(2, "n2", ("n3",))
    effects = g.step("n3", Append(1, "n1", 0, 0, (), 0))
    assert effects.send_now == [("n1", Stale(2, "n3"))] and not effects.persist


def test_rule_7_a_forged_future_epoch_does_not_lock_out_the_real_primary() -> None:
    g = Group()
    m = g.lead()
    g.step("n3", Append(99, "n2", 0, 0, (Entry(99, "forged"),), 0))
    assert g.members["n3"].backup.epoch == 1 and g.members["n3"].backup.end == 1
    g.step("n1", Request(command(1, ["put", "x", 1])))
    g.deliver()
    assert g.out["n1"] == [Response("c", 1, None)]
    assert list(g.members["n3"].backup.log) == list(m.backup.log)


def test_rule_5_a_read_is_answered_from_the_state_under_the_lease() -> None:
    g = Group()
    m = g.lead()
    g.step("n1", Request(command(1, ["put", "x", 1])))
    g.deliver()
    end = m.backup.end
    g.out["n1"].clear()
    g.step("n1", Read(command(2, ["get", "x", None])))
    assert g.out["n1"] == [Response("c", 2, 1)] and m.backup.end == end  # outside the log
    g.now = 0.95  # past the lease less the drift bound: fenced
    effects = g.step("n1", Read(command(3, ["get", "x", None])))
    assert effects.responses == [Moved("c", 3, "")] or not g.out["n1"][1:]


def test_rule_5_a_write_asked_as_a_read_goes_through_the_log() -> None:
    g = Group()
    m = g.lead()
    g.step("n1", Read(command(1, ["put", "x", 1])))
    assert list(m.backup.log)[-1].command == command(1, ["put", "x", 1])


def test_rule_6_a_lagging_backup_is_asked_out_and_waited_for_until_the_view_drops_it() -> None:
    g = Group()
    m = g.lead()
    assert m.wanted == ("n2", "n3")
    g.step("n1", Request(command(1, ["put", "x", 1])))
    g.deliver(drop_to={"n3"})
    g.now = 0.6  # n3 behind with no progress for longer than lag_time
    g.take("n1", m.tick(g.now))
    g.deliver(drop_to={"n3"})
    assert m.wanted == ("n2",) and not g.out["n1"]  # still waited for: the view has it
    g.step("n1", ViewIs(1, "n1", ("n2",), 0))
    assert g.out["n1"] == [Response("c", 1, None)]


def test_rule_6_a_backup_that_holds_every_committed_entry_is_asked_in() -> None:
    g = Group()
    g.view(1, "n1", ("n2",))
    g.step("n1", LeaseGranted(1, 1.0))
    g.deliver()
    m = g.members["n1"]
    assert "n3" in m.primary.in_sync and m.wanted == ("n2", "n3") and g.wakes


def test_rule_7_an_append_of_the_primarys_own_epoch_from_another_node_is_refused() -> None:
    g = Group()
    m = g.lead()
    end = m.backup.end
    effects = g.step("n1", Append(1, "n2", end, 1, (Entry(1, "forged"),), 0))
    assert effects.refused and m.backup.end == end and m.acting == 1


@pytest.mark.parametrize(
    "note",
    [
        ViewIs("1", "n1", (), 0),
        ViewIs(1, "n1", ("stranger",), 0),
        ViewIs(-1, "n1", (), 0),
        LeaseGranted(1, "soon"),
        Append(1, "stranger", 0, 0, (), 0),
        Request(Command("c", "one", ["get", "x", None])),
    ],
)
def test_rule_7_bad_input_is_refused_and_changes_nothing(note: Any) -> None:
    g = Group()
    m = g.lead()
    before = (m.view, m.backup.end, m.acting, m.primary.lease_until)
    effects = g.step("n1", note)
    assert effects.refused and (m.view, m.backup.end, m.acting, m.primary.lease_until) == before


def test_a_member_refuses_options_it_cannot_keep() -> None:
    class Plain:
        def apply(self, op: Any) -> Any:
            return op

    with pytest.raises(ValueError, match="'async' member needs a state machine with snapshot"):
        Member("n1", NODES, Plain(), MemberOptions(PrimaryOptions(mode="async")))
    with pytest.raises(ValueError, match="max_queue"):
        MemberOptions(max_queue=0)
    with pytest.raises(ValueError, match="not a member"):
        Member("x", NODES, ReadableKV())


def test_rule_1_nothing_is_appended_until_the_epoch_is_durable() -> None:
    g = Group()
    g.held.add("n1")
    g.view(1, "n1", ("n2", "n3"))
    effects = g.step("n1", LeaseGranted(1, 1.0))
    m = g.members["n1"]
    assert m.backup.end == 0 and not any(type(x) is Append for _, x in effects.send_now)
    m.made_durable(m.durability.persisted)  # the EpochSeen step is durable: the next step appends
    g.take("n1", m.tick(0.1))
    assert [e.command for e in m.backup.log] == [None]


def test_rule_1_the_epoch_step_asks_for_a_sync() -> None:
    g = Group()
    effects = g.step("n1", ViewIs(1, "n1", ("n2", "n3"), 0))
    assert effects.persist == [EpochSeen(1)] and effects.sync  # synced at once


def test_the_primarys_writes_ask_for_their_sync_at_once() -> None:
    g = Group()
    g.lead()
    effects = g.step("n1", Request(command(1, ["put", "x", 1])))
    assert effects.persist and effects.sync and not effects.send and not effects.outputs
    backup = g.step("n2", ViewIs(1, "n1", ("n2", "n3"), 9))
    assert not backup.sync


def test_rule_8_backups_apply_only_what_the_primary_holds_durably() -> None:
    from actorfw.protocols.primary_backup import Log, Primary

    p = Primary("n1", 2, Log(), 0, ["n2", "n3"], set())  # no backup in sync: commits need n1 only
    p.durable = 0
    p.grant_lease(10.0, 0.0)
    effects = p.submit(["a", "b"], 0.0)
    assert p.committed == 2  # committed (its answers still wait for n1's write)
    appends = [m for _, m in effects.send_now if type(m) is Append]
    assert appends and all(a.committed == 0 for a in appends)  # but not applied elsewhere yet
    p.durable = 2
    beats = [m for _, m in p.tick(1.0).send_now if type(m) is Append]
    assert beats and all(a.committed == 2 for a in beats)


def test_rule_8_the_member_tells_its_primary_what_is_durable() -> None:
    g = Group()
    m = g.lead()
    g.held.add("n1")
    g.step("n1", Request(command(1, ["put", "x", 1])))
    assert m.primary.durable < m.backup.end
    m.made_durable(m.durability.persisted)
    assert m.primary.durable == m.backup.end


def test_rule_3_a_stale_answer_of_an_older_epoch_does_not_depose() -> None:
    from actorfw.protocols.primary_backup import Stale

    g = Group()
    m = g.lead(epoch=3)
    g.step("n1", Stale(2, "n2"))  # a delayed answer to the primary of epoch 2
    assert m.acting == 3
    g.step("n1", Stale(4, "n2"))
    assert m.acting == 0


def test_rule_7_an_acknowledgement_that_is_not_a_position_is_refused() -> None:
    from actorfw.protocols.primary_backup import Acked

    g = Group()
    m = g.lead()
    effects = g.step("n1", Acked(1, "n2", "7"))
    assert effects.refused and m.acting == 1


def test_rule_7_an_older_view_of_the_same_epoch_is_ignored() -> None:
    g = Group()
    m = g.lead()
    g.step("n1", ViewIs(1, "n1", ("n2",), 5))
    g.step("n1", ViewIs(1, "n1", ("n2", "n3"), 4))  # read before the one above
    assert m.view.grants == 5 and m.view.in_sync == ("n2",)


def test_rule_9_a_handover_holds_commands_and_reads_until_released() -> None:
    from actorfw.protocols.primary_backup.member import Handover

    g = Group()
    m = g.lead()
    g.step("n1", Request(command(1, ["put", "x", 1])))
    g.deliver()
    assert m.status()["handover"] is False
    g.step("n1", Handover(1, "n2"))
    assert m.status()["holding"] and m.status()["handover"]  # n2 holds the whole log
    end = m.backup.end
    g.out["n1"].clear()
    g.step("n1", Request(command(2, ["put", "x", 2])))
    g.step("n1", Read(command(3, ["get", "x", None])))
    g.deliver()
    assert m.backup.end == end and not g.out["n1"]  # nothing appended, nothing answered
    g.step("n1", Handover(1, ""))  # refused: it goes on
    g.deliver()
    assert [type(o) for o in g.out["n1"]] == [Response, Response]


def test_rule_9_the_switch_deposes_the_held_primary_and_what_it_owed_is_moved() -> None:
    from actorfw.protocols.primary_backup.member import Handover

    g = Group()
    m = g.lead()
    g.step("n1", Handover(1, "n2"))
    g.step("n1", Request(command(1, ["put", "x", 1])))
    effects = g.step("n1", ViewIs(2, "n2", ("n3",), 0))
    assert m.acting == 0 and effects.responses == [Moved("c", 1, "n2")]
    assert not m.status()["holding"]


def test_rule_9_a_handover_of_another_epoch_or_to_a_stranger_changes_nothing() -> None:
    from actorfw.protocols.primary_backup.member import Handover

    g = Group()
    m = g.lead()
    g.step("n1", Handover(7, "n2"))
    assert not m.status()["holding"]
    effects = g.step("n1", Handover(1, "stranger"))
    assert effects.refused and not m.status()["holding"]


def test_rule_5_a_backup_answers_a_read_as_fresh_as_asked_and_no_staler() -> None:
    g = Group()
    m = g.lead()
    g.step("n1", Request(command(1, ["put", "x", 1])))
    g.deliver()
    g.now = 0.1
    g.take("n1", m.tick(g.now))  # the heartbeat tells the backups x=1 is committed
    g.deliver()
    g.out["n2"].clear()
    g.now = 0.3
    effects = g.step("n2", Read(command(5, ["get", "x", None], client="r"), 0.5))
    assert g.out["n2"] == [Response("r", 5, 1)] and not effects.responses
    g.now = 0.7  # 0.6 s since n2 last heard from the primary
    effects = g.step("n2", Read(command(6, ["get", "x", None], client="r"), 0.5))
    assert effects.responses == [Moved("r", 6, "n1")]
    for read in (
        Read(command(7, ["get", "x", None], client="r")),  # no bound: linearizable only
        Read(command(8, ["put", "x", 2], client="r"), 5.0),  # not read-only
    ):
        assert g.step("n2", read).responses == [Moved("r", read.command.seq, "n1")]


def test_rule_5_a_backup_behind_its_primary_committed_is_not_fresh() -> None:
    g = Group()
    m = g.lead()
    g.step("n1", Request(command(1, ["put", "x", 1])))
    g.deliver(drop_to={"n2"})  # n2 misses the write...
    g.take("n1", m.tick(0.1))
    g.flight = [(f, to, msg) for f, to, msg in g.flight if to == "n2"]
    g.now = 0.5
    stale = Append(1, "n1", 0, 0, (), m.primary.committed)  # ...and hears only "committed"
    g.step("n2", stale)  # contact, but not fresh: it lacks what the primary says is committed
    effects = g.step("n2", Read(command(5, ["get", "x", None], client="r"), 0.2))
    assert effects.responses == [Moved("r", 5, "n1")]


def test_rule_8_a_truncation_takes_back_what_was_durable_from_its_cut_on() -> None:
    g = Group()
    g.lead()
    for seq in (1, 2):
        g.step("n1", Request(command(seq, ["put", "x", seq])))
    g.deliver(drop_to={"n1"})  # n3 holds the no-op and both puts, durably, unacknowledged
    n3 = g.members["n3"]
    assert n3.durability.end == n3.backup.end == 3
    g.held.add("n3")
    # A new primary n2 of epoch 2 that holds only the no-op: n3's tail is cut at 2.
    g.step("n3", ViewIs(2, "n2", ("n3",), 0))
    g.step("n3", Append(2, "n2", 1, 1, (Entry(2, None),), 1))
    assert n3.backup.log.entry(2) == Entry(2, None)
    assert n3.durability.end == 1  # not 3: position 2 changed
    n3.made_durable(n3.durability.persisted)
    assert n3.durability.end == n3.backup.end == 2
