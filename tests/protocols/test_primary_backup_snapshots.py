"""Snapshots, compaction and snapshot transfer of primary-backup members (member rule 10).

The members run in the little in-memory network of the member tests;
their records go through the records codec into a dict, as storage would
keep them, so that a restart reads back exactly what compaction left.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from actorfw.kv import KVStateMachine
from actorfw.protocols.paxos import Request
from actorfw.protocols.primary_backup import (
    Compacted,
    Entry,
    EpochSeen,
    InstallSnapshot,
    Log,
    PrimaryOptions,
    SnapshotDue,
    Snapshotted,
    Written,
)
from actorfw.protocols.primary_backup.member import LeaseGranted, Member, MemberOptions, ViewIs
from actorfw.protocols.primary_backup.records import CODEC
from tests.protocols.test_primary_backup_member import NODES, Group, ReadableKV, command
from tests.support.stored import stored as stored_by

SMALL = MemberOptions(PrimaryOptions(lag_time=0.5, drift=0.1), snapshot_interval=4, log_tail=1)


def stored(records: list[Any]) -> dict[bytes, bytes]:
    """What storage holds after ``records``, written in order through the codec."""
    return stored_by(CODEC, records)


def restarted(g: Group, node: str, machine: Any = None) -> Member:
    records = CODEC.load(sorted(stored(g.records[node]).items()))
    return Member.restore(node, NODES, machine or ReadableKV(), records, SMALL)


def write(g: Group, count: int, start: int = 1, drop_to: frozenset[str] = frozenset()) -> None:
    for seq in range(start, start + count):
        g.step("n1", Request(command(seq, ["put", f"k{seq % 3}", seq])))
        g.deliver(drop_to=drop_to)


def beat(g: Group, after: float = 0.1) -> None:
    """The primary's next heartbeat, and its answers: backups learn what is committed."""
    g.now += after
    g.take("n1", g.members["n1"].tick(g.now))
    g.deliver()


def lead_without_n3(g: Group) -> None:
    """n1 primary of epoch 1 with only n2 in sync, leased for long; n3 hears nothing."""
    for node in NODES:
        g.step(node, ViewIs(1, "n1", ("n2",), 0))
    g.step("n1", LeaseGranted(1, 100.0))
    g.deliver(drop_to={"n3"})


# -- the log ---------------------------------------------------------------------------------


def entries(epoch: int, *commands: Any) -> tuple[Entry, ...]:
    return tuple(Entry(epoch, c) for c in commands)


def test_a_log_keeps_its_runs_and_batches_through_truncation_and_compaction() -> None:
    log = Log()
    log.write(1, entries(1, "a", "b", "c"))
    log.write(4, entries(2, "d", "e"))
    log.write(6, entries(2, "f"))
    assert log.runs() == ((1, 1), (4, 2)) and log.starts == [1, 4, 6] and log.end == 6
    log.truncate(5)  # cuts the batch at 4 short, drops the one at 6
    assert log.end == 4 and log.starts == [1, 4] and log.runs() == ((1, 1), (4, 2))
    log.write(5, entries(3, "g", "h"))
    assert log.runs() == ((1, 1), (4, 2), (5, 3)) and log.starts == [1, 4, 5]
    assert log.compact(5) == [1, 4]  # the batch at 5 still holds 6
    assert (log.base, log.base_epoch, log.end) == (5, 3, 6)
    assert log.epoch_of(2) == 1 and log.epoch_of(6) == 3 and log.epoch_of(7) is None
    assert log.entry(6) == Entry(3, "h") and log.between(6, 9) == (Entry(3, "h"),)
    with pytest.raises(ValueError):
        log.truncate(5)  # the snapshot covers it
    assert log.compact(6) == [5] and len(log) == 0 and log.end == 6
    assert log.reset(9, 4, [(1, 1), (7, 4), (12, 5)]) == []
    assert log.runs() == ((1, 1), (7, 4)) and log.end == 9 and log.epoch_at(9) == 4


def test_a_batch_read_back_from_below_the_base_is_skipped_up_to_it() -> None:
    log = Log()
    log.reset(3, 1, [(1, 1)])
    log.write(2, entries(1, "b", "c", "d"))
    assert list(log) == [Entry(1, "d")] and log.end == 4 and log.starts == [2]


# -- snapshots and compaction ---------------------------------------------------------------


def test_rule_10_every_member_snapshots_and_its_log_and_storage_stay_bounded() -> None:
    g = Group(SMALL)
    g.lead()
    for round_ in range(5):
        write(g, 10, start=1 + 10 * round_)
        for node in NODES:
            member = g.members[node]
            assert len(member.backup.log) <= 4 + 1, (node, member.backup.log)
            keys = [k for k in stored(g.records[node]) if k.startswith(b"L")]
            assert len(keys) <= 4 + 1, (node, keys)
    assert all(g.members[n].stats["snapshots"] >= 10 for n in NODES)
    beat(g)
    state = g.members["n1"].machine.snapshot()
    assert all(g.members[n].machine.snapshot() == state for n in NODES)


def test_rule_10_a_restarted_member_reads_back_its_snapshot_then_its_log() -> None:
    g = Group(SMALL)
    g.lead()
    write(g, 13)
    for node in NODES:
        before = g.members[node]
        again = restarted(g, node)
        assert again.applied == before.snapshot_position <= before.applied
        assert again.backup.end == before.backup.end and again.backup.epoch == 1
        assert list(again.backup.log)[-1] == list(before.backup.log)[-1]
        assert again.clients.sessions["c"][0] <= before.clients.sessions["c"][0]
        assert again.acting == 0


def test_rule_10_a_stored_snapshot_needs_a_machine_that_restores_one() -> None:
    g = Group(SMALL)
    g.lead()
    write(g, 6)
    with pytest.raises(TypeError, match="snapshot"):
        restarted(g, "n2", machine=object())


def test_rule_10_a_machine_without_snapshots_keeps_the_whole_log() -> None:
    class Plain:
        def __init__(self) -> None:
            self.kv = KVStateMachine()

        def apply(self, op: Any) -> Any:
            return self.kv.apply(op)

    g = Group(SMALL)
    g.members = {n: Member(n, NODES, Plain(), SMALL) for n in NODES}
    g.lead()
    write(g, 12)
    assert all(g.members[n].backup.log.base == 0 for n in NODES)
    assert not any(type(r) is Snapshotted for r in g.records["n2"])


# -- snapshot transfer ----------------------------------------------------------------------


def test_rule_10_a_backup_behind_the_primarys_base_installs_its_snapshot() -> None:
    g = Group(SMALL)
    lead_without_n3(g)
    write(g, 12, drop_to=frozenset({"n3"}))  # n3 hears nothing; n1 and n2 compact past it
    n1, n3 = g.members["n1"], g.members["n3"]
    assert n1.backup.log.base > n3.backup.end
    beat(g)
    assert n1.stats["snapshot_sent"] == 1 and n3.stats["snapshot_installed"] == 1
    assert n3.machine.snapshot() == n1.machine.snapshot() and n3.discarded == 0
    assert n1.primary is not None and n1.primary.match["n3"] == n1.backup.end
    installed = [r for r in g.records["n3"] if type(r) is Snapshotted][-1]
    assert installed.base == installed.position and type(g.records["n3"][-1]) is Compacted
    # Later writes reach it by Appends again, and it restarts from the installed snapshot.
    write(g, 3, start=13)
    beat(g)
    assert n3.machine.snapshot() == n1.machine.snapshot()
    assert restarted(g, "n3").backup.end == n3.backup.end


def test_rule_10_a_primary_asks_for_a_snapshot_at_most_once_per_retry() -> None:
    g = Group(SMALL)
    lead_without_n3(g)
    write(g, 12, drop_to=frozenset({"n3"}))
    primary = g.members["n1"].primary
    assert primary is not None
    primary.next["n3"] = 1  # as a Mismatch from it would
    due = [primary.tick(g.now + t).outputs for t in (1.0, 1.5, 2.0)]
    assert due == [[SnapshotDue("n3")], [], [SnapshotDue("n3")]]


def test_rule_10_a_backup_installing_resumes_from_the_log_while_the_primary_compacts() -> None:
    g = Group(SMALL)
    lead_without_n3(g)
    write(g, 12, drop_to=frozenset({"n3"}))
    n1, n3 = g.members["n1"], g.members["n3"]
    g.now += 0.1
    g.take("n1", n1.tick(g.now))  # n3 hears a heartbeat, answers where it is,
    g.deliver(rounds=2)  # and n1 sends it a snapshot: held while n1 goes on
    held = [f for f in g.flight if f[1] == "n3"]
    g.flight = [f for f in g.flight if f[1] != "n3"]
    (position,) = [m.position for _, _, m in held if type(m) is InstallSnapshot]
    write(g, 12, start=13, drop_to=frozenset({"n3"}))
    assert n1.primary is not None and n1.snapshot_position - SMALL.log_tail > position
    assert n1.backup.log.base <= position  # compaction kept what n3 resumes from
    g.flight.extend(held)
    g.deliver()
    beat(g)
    assert n3.stats["snapshot_installed"] == 1 and n1.stats["snapshot_sent"] == 1
    assert n3.backup.end == n1.backup.end and n3.machine.snapshot() == n1.machine.snapshot()
    # Past snapshot_retry, nothing pins the log any more.
    assert n1.primary.pinned(g.now + 2.0) == n1.backup.end


def test_rule_4_the_primary_appends_at_most_twice_lag_bound_past_what_is_committed() -> None:
    g = Group(MemberOptions(PrimaryOptions(lag_bound=3, lag_time=9.0), max_queue=64))
    g.lead()
    n1 = g.members["n1"]
    opened = n1.backup.end
    for seq in range(1, 11):
        g.step("n1", Request(command(seq, ["put", "k", seq])))
    g.deliver(drop_to=frozenset({"n2", "n3"}))  # no backup answers: nothing commits
    assert n1.backup.end - opened == 6 and len(n1.clients.requests) == 4
    g.deliver()
    beat(g)
    write(g, 0)
    assert n1.backup.end - opened >= 6  # the queue drains as the backups answer


def test_options_a_member_cannot_keep_are_refused() -> None:
    for bad in (0, -1, "9"):
        with pytest.raises(ValueError, match="max_sessions"):
            MemberOptions(max_sessions=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="snapshot_retry"):
        PrimaryOptions(snapshot_retry=0)


def test_a_stored_rebuilding_mark_is_read_back_and_a_bad_one_refused() -> None:
    from actorfw.protocols.primary_backup import Rebuilding
    from actorfw.values.packed import pack_value

    assert stored([Rebuilding(True)]) == {b"R": pack_value(True)}
    assert stored([Rebuilding(True), Rebuilding(False)]) == {}
    assert CODEC.load([(b"R", pack_value(True))]) == [Rebuilding(True)]
    with pytest.raises(ValueError, match="rebuilding"):
        CODEC.load([(b"R", pack_value(1))])


@pytest.mark.parametrize(
    "runs",
    [[[3, 2], [1, 1]], [["a", 1]], [[1, 1, 1]], "runs"],
)
def test_a_stored_snapshot_with_bad_runs_is_refused_on_reading_back(runs: Any) -> None:
    from actorfw.values.packed import pack_value

    value = pack_value((4, 1, 3, 1, {}, {}, runs))
    with pytest.raises(ValueError, match="snapshot"):
        CODEC.load([(b"S", value)])


def installing(
    runs: tuple[tuple[int, int], ...], own: list[Entry], committed: int = 1
) -> tuple[Member, InstallSnapshot]:
    """A backup holding ``own`` (``committed`` of it known), and a snapshot from n1 of epoch 2."""
    member = Member.restore(
        "n3", NODES, ReadableKV(), [EpochSeen(1), Written(1, tuple(own))], SMALL
    )
    member.backup.committed = committed
    member.handle_all([ViewIs(2, "n1", ("n2",), 1)], 0.0)
    machine = ReadableKV()
    machine.apply(["put", "x", "snap"])
    snapshot = InstallSnapshot(2, "n1", 8, 2, runs, 10, machine.snapshot(), {"c": (4, None)})
    return member, snapshot


def test_rule_10_an_install_counts_as_discarded_exactly_what_the_primarys_log_lacks() -> None:
    own = [Entry(1, None), Entry(1, "a"), Entry(1, "b"), Entry(1, "c")]
    # The primary's log holds epoch 1 up to 2, then epoch 2 from 3: n3's 3 and 4 are not in it.
    member, snapshot = installing(((1, 1), (3, 2)), own)
    effects = member.handle_all([snapshot], 0.0)
    assert member.discarded == 2 and member.applied == 8 and member.backup.end == 8
    assert member.machine.apply(["get", "x", None]) == "snap"
    assert member.clients.sessions == {"c": (4, None)}
    assert [type(r).__name__ for r in effects.persist] == ["EpochSeen", "Snapshotted", "Compacted"]
    acks = [m for to, m in effects.send if to == "n1"]
    assert [(type(a).__name__, a.upto) for a in acks] == [("Acked", 8)]
    # The same log held by the primary all along: nothing discarded.
    member, snapshot = installing(((1, 1), (5, 2)), own)
    member.handle_all([snapshot], 0.0)
    assert member.discarded == 0 and member.applied == 8


def test_rule_10_a_snapshot_of_what_the_backup_holds_is_acknowledged_not_installed() -> None:
    own = [Entry(1, None), *(Entry(1, f"e{i}") for i in range(9))]
    member, snapshot = installing(((1, 1),), own, committed=1)
    snapshot = InstallSnapshot(2, "n1", 8, 1, ((1, 1),), 10, {}, {})
    effects = member.handle_all([snapshot], 0.0)
    assert member.stats["snapshot_useless"] == 1 and member.applied == 0
    assert not [r for r in effects.persist if type(r) is Snapshotted]
    assert [m.upto for _, m in effects.send] == [8]


@pytest.mark.parametrize(
    "change",
    [
        {"position": 0},
        {"position": "8"},
        {"last_epoch": 3},  # above the snapshot's epoch
        {"end": 7},  # before its own position
        {"runs": ((3, 2), (1, 1))},  # not rising
        {"runs": "runs"},
        {"sessions": {"c": 4}},
        {"sessions": [("c", (4, None))]},
    ],
)
def test_rule_10_a_malformed_snapshot_is_refused_and_changes_nothing(
    change: dict[str, Any],
) -> None:
    member, snapshot = installing(((1, 1), (3, 2)), [Entry(1, None), Entry(1, "a")])
    before = member.machine.snapshot()
    effects = member.handle_all([dataclasses.replace(snapshot, **change)], 0.0)
    assert effects.refused and member.refused == 1 and not effects.persist
    assert member.machine.snapshot() == before and member.backup.end == 2
    assert not [r for r in effects.persist if type(r) is Snapshotted]


def test_rule_10_a_state_the_machine_cannot_restore_is_refused_and_the_state_kept() -> None:
    member, snapshot = installing(((1, 1), (3, 2)), [Entry(1, None), Entry(1, "a")])
    member.machine.apply(["put", "mine", 1])
    before = member.machine.snapshot()
    bad = InstallSnapshot(2, "n1", 8, 2, snapshot.runs, 10, "not a KV state", {})
    effects = member.handle_all([bad], 0.0)
    assert effects.refused and "refused" in effects.refused[0].reason and not effects.persist
    assert member.backup.epoch == 1  # not even the epoch: a refused snapshot changes nothing
    assert member.machine.snapshot() == before and member.applied == 0


def test_rule_10_a_snapshot_follows_the_view_as_an_append_does() -> None:
    member, _ = installing(((1, 1),), [Entry(1, None)])
    from_other = InstallSnapshot(2, "n2", 8, 2, ((1, 1),), 10, {}, {})
    assert member.handle_all([from_other], 0.0).refused  # n1 is the view's primary
    older = InstallSnapshot(1, "n1", 8, 1, ((1, 1),), 10, {}, {})
    stale = member.handle_all([older], 0.0)
    assert [type(m).__name__ for _, m in stale.send_now] == ["Stale"]
    assert member.applied == 0 and member.stats["snapshot_installed"] == 0


# -- async mode: lost writes counted, state rebuilt (rule 11) -------------------------------

ASYNC = MemberOptions(PrimaryOptions(mode="async", lag_time=0.5, drift=0.1), max_queue=16)


def test_rule_11_a_deposed_async_primarys_lost_writes_are_counted_and_its_state_rebuilt() -> None:
    g = Group(ASYNC)
    g.lead()
    write(g, 2)
    n1, n2 = g.members["n1"], g.members["n2"]
    # Cut off, n1 acknowledges three writes on its own durable write alone.
    for seq in (3, 4, 5):
        g.step("n1", Request(command(seq, ["put", "lost", seq])))
    g.deliver(drop_to=frozenset({"n2", "n3"}))
    assert [r.seq for r in g.out["n1"] if type(r).__name__ == "Response"][-3:] == [3, 4, 5]
    # The others elect n2 (epoch 2), which takes a write of its own.
    for node in ("n2", "n3"):
        g.step(node, ViewIs(2, "n2", ("n3",), 0))
    g.step("n2", LeaseGranted(2, 100.0))
    g.deliver(drop_to=frozenset({"n1"}))
    g.step("n2", Request(command(1, ["put", "kept", 1], client="d")))
    g.deliver(drop_to=frozenset({"n1"}))
    # n1 learns the view and follows n2: it had applied the lost writes, so it starts over.
    g.step("n1", ViewIs(2, "n2", ("n3",), 0))
    for _ in range(3):
        g.now += 0.1
        g.take("n2", n2.tick(g.now))
        g.deliver()
    assert n1.acting == 0 and n1.lost == 3 and n1.stats["rebuilt"] == 1
    assert n2.status()["lag"] == {"n1": 0, "n3": 0} and n1.status()["lag"] == {}
    assert n1.status()["lost"] == 3
    assert n1.machine.snapshot() == n2.machine.snapshot()
    assert n1.machine.apply(["get", "lost", None]) is None
    assert n1.machine.apply(["get", "kept", None]) == 1
    # Restarted, it reads back the rebuilt log, not the lost writes.
    again = restarted_with(g, "n1", ASYNC)
    assert [e.command for e in again.backup.log] == [e.command for e in n1.backup.log]


def restarted_with(g: Group, node: str, options: MemberOptions) -> Member:
    records = CODEC.load(sorted(stored(g.records[node]).items()))
    return Member.restore(node, NODES, ReadableKV(), records, options)


ASYNC_SMALL = MemberOptions(
    PrimaryOptions(mode="async", lag_time=0.5, drift=0.1), snapshot_interval=4, log_tail=1
)


def test_rule_11_a_deposed_primary_compacted_past_the_new_log_rebuilds_without_looping() -> None:
    g = Group(ASYNC_SMALL)
    g.lead()
    write(g, 2)
    n1, n2 = g.members["n1"], g.members["n2"]
    for seq in range(3, 15):  # acknowledged by n1 alone, and compacted there
        g.step("n1", Request(command(seq, ["put", "lost", seq])))
    g.deliver(drop_to=frozenset({"n2", "n3"}))
    assert n1.backup.log.base > n2.backup.end
    for node in ("n2", "n3"):
        g.step(node, ViewIs(2, "n2", ("n3",), 0))
    g.step("n2", LeaseGranted(2, 100.0))
    g.deliver(drop_to=frozenset({"n1"}))
    g.step("n1", ViewIs(2, "n2", ("n3",), 0))
    mismatches = 0
    for _ in range(5):
        g.now += 0.1
        g.take("n2", n2.tick(g.now))
        for _ in range(10):
            mismatches += sum(type(m).__name__ == "Mismatch" for _, _, m in g.flight)
            g.deliver(rounds=1)
    assert mismatches <= 3  # one to start again from nothing, not a loop
    assert n1.stats["rebuilt"] == 1 and n1.machine.snapshot() == n2.machine.snapshot()
    assert n1.machine.apply(["get", "lost", None]) is None
    assert n1.discarded >= 1 and n1.lost >= 1


def test_rule_2_async_commits_wait_when_an_in_sync_backup_lags_past_lag_bound() -> None:
    options = MemberOptions(PrimaryOptions(mode="async", lag_bound=3, lag_time=9.0), max_queue=64)
    g = Group(options)
    g.lead()
    n1 = g.members["n1"]
    opened = n1.backup.committed
    for seq in range(1, 9):
        g.step("n1", Request(command(seq, ["put", "k", seq])))
    g.deliver(drop_to=frozenset({"n2", "n3"}))  # the in-sync backups hear nothing
    assert n1.backup.committed - opened == 3  # then commits wait for them
    assert [r.seq for r in g.out["n1"] if type(r).__name__ == "Response"] == [1, 2, 3]


def test_rule_11_a_member_starting_again_from_nothing_does_not_act_until_caught_up() -> None:
    g = Group(ASYNC_SMALL)
    g.lead()
    n1, n2, n3 = (g.members[n] for n in NODES)
    write(g, 8)
    for seq in range(9, 13):  # n3 holds and applies these; n2 does not
        g.step("n1", Request(command(seq, ["put", "k", seq])))
    g.deliver(drop_to=frozenset({"n2"}))
    g.now += 0.1
    g.take("n1", n1.tick(g.now))  # n3 learns they are committed, and applies them
    g.deliver(drop_to=frozenset({"n2"}))
    assert n3.applied > n2.backup.end
    # Elected on reports older than that, n2 leads epoch 2 with n3 in sync: n3 rebuilds.
    for node in ("n2", "n3"):
        g.step(node, ViewIs(2, "n2", ("n3",), 0))
    g.step("n2", LeaseGranted(2, 100.0))
    g.deliver(drop_to=frozenset({"n1"}), rounds=2)
    assert n3.stats["rebuilt"] == 1 and n3.backup.rebuilding and n3.status()["rebuilding"]
    # n2 fails there; the view names n3: it does not act, nor after a restart.
    g.step("n3", ViewIs(3, "n3", (), 0))
    assert n3.acting == 0 and n3.stats["declined_while_rebuilding"] == 1
    again = restarted_with(g, "n3", ASYNC_SMALL)
    again.handle_all([ViewIs(3, "n3", (), 0)], g.now)
    assert again.acting == 0 and again.backup.rebuilding
    # Back under n2 (say the view had not moved), it catches up, and may act again.
    n3.view = ViewIs(2, "n2", ("n3",), 0)
    for _ in range(4):
        g.now += 0.1
        g.take("n2", n2.tick(g.now))
        g.deliver(drop_to=frozenset({"n1"}))
    assert not n3.backup.rebuilding and n3.stats["rebuilt_caught_up"] == 1
    assert n3.machine.snapshot() == n2.machine.snapshot()
    g.step("n3", ViewIs(3, "n3", (), 0))
    assert n3.acting == 3
