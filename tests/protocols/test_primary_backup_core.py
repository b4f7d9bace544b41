"""The primary-backup copying cores: the backup's rules case by case, the primary's, and both
under a network that drops, duplicates and reorders (a model check over random schedules)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorfw.protocols.effects import Effects
from actorfw.protocols.primary_backup import (
    Acked,
    Append,
    Applied,
    Backup,
    Discarded,
    Entry,
    EpochSeen,
    Mismatch,
    Primary,
    PrimaryOptions,
    Rebuilt,
    Stale,
    Truncated,
    Written,
)
from actorfw.protocols.primary_backup.log import Log


def entries(epoch: int, *commands: Any) -> tuple[Entry, ...]:
    return tuple(Entry(epoch, c) for c in commands)


def backup_with(*log: Entry, epoch: int | None = None, committed: int = 0) -> Backup:
    b = Backup("b1")
    b.log.write(1, log)
    b.epoch = epoch if epoch is not None else max((e.epoch for e in log), default=0)
    b.committed = b.applied = committed
    return b


def sent(effects: Effects) -> list[Any]:
    return [m for _, m in effects.send + effects.send_now]


# -- the backup, rule by rule ------------------------------------------------------------


def test_rule_1_an_older_epoch_is_answered_stale_and_nothing_is_taken() -> None:
    b = backup_with(*entries(2, "a"))
    effects = b.handle_all([Append(1, "p", 0, 0, entries(1, "x"), 0)], 0.0)
    assert sent(effects) == [Stale(2, "b1")] and not effects.persist and b.end == 1


def test_rule_1_a_higher_epoch_is_recorded_before_its_entries() -> None:
    b = backup_with(*entries(1, "a"))
    effects = b.handle_all([Append(3, "p", 1, 1, entries(3, "b"), 0)], 0.0)
    assert effects.persist == [EpochSeen(3), Written(2, entries(3, "b"))]
    assert effects.send == [("p", Acked(3, "b1", 2))]


def test_rule_2_a_gap_is_answered_with_the_logs_end() -> None:
    b = backup_with(*entries(1, "a"))
    effects = b.handle_all([Append(1, "p", 3, 1, entries(1, "d"), 0)], 0.0)
    assert sent(effects) == [Mismatch(1, "b1", 1)] and b.end == 1


def test_rule_2_a_fork_skips_the_whole_divergent_run() -> None:
    b = backup_with(*entries(1, "a"), *entries(2, "x", "y", "z"), committed=1)
    effects = b.handle_all([Append(3, "p", 4, 3, entries(3, "q"), 1)], 0.0)
    assert sent(effects) == [Mismatch(3, "b1", 1)]  # resume after position 1, epoch 1's end


def test_rule_3_a_resent_append_is_acknowledged_again_and_written_once() -> None:
    b = backup_with()
    first = b.handle_all([Append(1, "p", 0, 0, entries(1, "a", "b"), 0)], 0.0)
    again = b.handle_all([Append(1, "p", 0, 0, entries(1, "a", "b"), 0)], 0.0)
    assert first.persist == [EpochSeen(1), Written(1, entries(1, "a", "b"))]
    assert again.persist == [] and sent(again) == [Acked(1, "b1", 2)] and b.end == 2


def test_rule_4_a_rejoining_tail_is_truncated_and_reported() -> None:
    b = backup_with(*entries(1, "a", "b"), *entries(2, "lost1", "lost2"), committed=2)
    effects = b.handle_all([Append(3, "p", 2, 1, entries(3, "new"), 2)], 0.0)
    assert effects.persist == [EpochSeen(3), Truncated(3, 4), Written(3, entries(3, "new"))]
    assert Discarded(3, entries(2, "lost1", "lost2")) in effects.outputs
    assert [e.command for e in b.log] == ["a", "b", "new"]
    again = Backup.restore("b1", [Written(1, entries(1, "a", "b", "c")), *effects.persist])
    assert list(again.log) == list(b.log)


def test_rule_4_a_committed_entry_is_never_discarded() -> None:
    b = backup_with(*entries(1, "a", "b"), committed=2)
    effects = b.handle_all([Append(2, "p", 1, 1, entries(2, "other"), 0)], 0.0)
    assert effects.refused and [e.command for e in b.log] == ["a", "b"]


def lossy(*log: Entry, committed: int = 0, applied: int = 0) -> Backup:
    b = backup_with(*log, committed=committed)
    b.lossy = True  # an async group's backup
    b.applied = applied
    return b


def test_rule_4_async_a_committed_entry_not_yet_applied_is_discarded_and_counted() -> None:
    b = lossy(*entries(1, "a", "b"), *entries(2, "acked1", "acked2", "x"), committed=4, applied=2)
    effects = b.handle_all([Append(3, "p", 2, 1, entries(3, "new"), 2)], 0.0)
    assert Discarded(3, entries(2, "acked1", "acked2", "x"), 2) in effects.outputs
    assert effects.persist == [EpochSeen(3), Truncated(3, 5), Written(3, entries(3, "new"))]
    assert b.committed == 2 and [e.command for e in b.log] == ["a", "b", "new"]
    assert effects.send == [("p", Acked(3, "b1", 3))]


def test_rule_4_async_an_applied_entry_not_in_the_new_epoch_empties_the_log() -> None:
    b = lossy(*entries(1, "a"), *entries(2, "acked", "x"), committed=3, applied=3)
    effects = b.handle_all([Append(3, "p", 1, 1, entries(3, "new"), 1)], 0.0)
    assert Discarded(2, entries(2, "acked", "x"), 2) in effects.outputs
    assert Rebuilt((1,), 0) in effects.outputs  # the batch at 1 goes
    assert sent(effects) == [Mismatch(3, "b1", 0)] and not any(
        type(m) is Acked for m in sent(effects)
    )
    assert (b.end, b.committed, b.applied, b.log.base) == (0, 0, 0, 0)
    again = b.handle_all([Append(3, "p", 0, 0, (*entries(1, "a"), *entries(3, "new")), 2)], 0.0)
    assert again.outputs == [Applied(1, Entry(1, "a")), Applied(2, Entry(3, "new"))]


def test_rule_7_async_an_append_below_the_base_is_compared_by_the_epoch_runs() -> None:
    b = lossy(*entries(1, "a", "b", "c"), committed=3, applied=3)
    b.log.compact(2)
    # The same epochs as this log's runs, below the base and above: taken.
    assert sent(b.handle_all([Append(2, "p", 1, 1, entries(1, "b", "c"), 3)], 0.0)) == [
        Acked(2, "b1", 3)
    ]
    # Another epoch below the base (here an entry at 2): the snapshot is not theirs.
    effects = b.handle_all([Append(2, "p", 1, 1, entries(2, "q"), 3)], 0.0)
    assert Rebuilt((1,), 2) in effects.outputs and sent(effects) == [Mismatch(2, "b1", 0)]
    # The entry held above the base is discarded; both committed ones from 2 on were lost.
    assert Discarded(3, entries(1, "c"), 2) in effects.outputs
    # The same, told by the epoch at prev; and at the base itself.
    for append in (Append(2, "p", 1, 2, (), 3), Append(2, "p", 2, 2, entries(2, "q"), 3)):
        b = lossy(*entries(1, "a", "b", "c"), committed=3, applied=3)
        b.log.compact(2)
        effects = b.handle_all([append], 0.0)
        assert Rebuilt((1,), 2) in effects.outputs and sent(effects) == [Mismatch(2, "b1", 0)]
    # A sync group's backup takes it: committed entries are the same in every log.
    s = backup_with(*entries(1, "a", "b", "c"), committed=3)
    s.log.compact(2)
    assert sent(s.handle_all([Append(2, "p", 1, 1, entries(1, "b", "c"), 3)], 0.0)) == [
        Acked(2, "b1", 3)
    ]


def test_rule_5_and_6_acks_wait_for_durability_and_commits_apply_in_order() -> None:
    b = backup_with()
    effects = b.handle_all([Append(1, "p", 0, 0, entries(1, "a", "b", "c"), 2)], 0.0)
    assert effects.send == [("p", Acked(1, "b1", 3))] and not effects.send_now
    assert effects.outputs == [Applied(1, Entry(1, "a")), Applied(2, Entry(1, "b"))]
    later = b.handle_all([Append(1, "p", 3, 1, (), 3)], 0.0)  # a heartbeat
    assert later.outputs == [Applied(3, Entry(1, "c"))]


@pytest.mark.parametrize(
    "bad",
    [
        Append(0, "p", 0, 0, (), 0),
        Append(1, "p", -1, 0, (), 0),
        Append(1, "p", 0, 0, (Entry(2, "future"),), 0),  # an entry from after its epoch
        Append(1, "p", 0, 0, ("not an entry",), 0),  # type: ignore[arg-type]
        Append(2, "p", 1, 2, (Entry(1, "older"),), 0),  # epochs going down
        Append(1, "p", 0, 1, (), 0),  # position 0 has epoch 0
        "not an append",
    ],
)
def test_bad_input_is_refused_and_changes_nothing(bad: Any) -> None:
    b = backup_with(*entries(1, "a"))
    effects = b.handle_all([bad], 0.0)
    assert effects.refused and not effects.persist and not sent(effects)
    assert list(b.log) == list(entries(1, "a")) and b.refused == 1


# -- the primary -------------------------------------------------------------------------


def primary(mode: str = "sync", log: list[Entry] | None = None, **options: Any) -> Primary:
    held = Log()
    held.write(1, log or [])
    p = Primary("p", 1, held, 0, ["b1", "b2"], {"b1", "b2"}, PrimaryOptions(mode=mode, **options))
    p.grant_lease(100.0, 0.0)
    return p


def test_a_write_is_persisted_and_shipped_in_the_same_step() -> None:
    p = primary()
    effects = p.submit(["x"], 1.0)
    assert effects.persist == [Written(1, entries(1, "x"))]
    assert sorted(to for to, _ in effects.send_now) == ["b1", "b2"]
    assert effects.outputs == []  # sync: not yet


def test_sync_commits_once_every_in_sync_backup_has_acknowledged() -> None:
    p = primary("sync")
    p.submit(["x"], 1.0)
    assert p.handle_all([Acked(1, "b1", 1)], 1.0).outputs == []
    assert p.handle_all([Acked(1, "b2", 1)], 1.0).outputs == [Applied(1, Entry(1, "x"))]


def test_async_commits_on_its_own_write() -> None:
    p = primary("async")
    assert p.submit(["x", "y"], 1.0).outputs == [
        Applied(1, Entry(1, "x")),
        Applied(2, Entry(1, "y")),
    ]


def test_a_lagging_backup_is_named_and_sync_waits_until_it_leaves_the_set() -> None:
    p = primary("sync", lag_bound=2)
    p.submit(["a", "b", "c"], 1.0)
    p.handle_all([Acked(1, "b1", 3)], 1.0)
    assert p.lagging == [] and p.committed == 0  # b2 has not answered: its match is unknown
    p.handle_all([Acked(1, "b2", 0)], 1.0)
    assert p.lagging == ["b2"] and p.committed == 0
    assert p.set_in_sync({"b1"}, 1.0).outputs == [Applied(i, p.log.entry(i)) for i in (1, 2, 3)]


def test_a_mismatch_moves_the_backup_back_and_resends() -> None:
    p = primary("sync", log=list(entries(1, "a", "b", "c")))
    effects = p.handle_all([Mismatch(1, "b1", 1)], 1.0)
    assert sent(effects) == [Append(1, "p", 1, 1, entries(1, "b", "c"), 0)]


def test_a_stale_answer_deposes_the_primary() -> None:
    p = primary("async")
    p.handle_all([Stale(2, "b1")], 1.0)
    assert p.deposed and p.fenced(1.0)
    with pytest.raises(RuntimeError, match="not an acknowledging primary"):
        p.submit(["x"], 1.0)


def test_the_lease_fences_acknowledgements_and_a_new_lease_releases_them() -> None:
    p = primary("sync", drift=0.5)
    p.submit(["x"], 1.0)
    assert p.handle_all([Acked(1, "b1", 1), Acked(1, "b2", 1)], 99.6).outputs == []  # fenced
    with pytest.raises(RuntimeError):
        p.submit(["y"], 99.6)
    assert p.grant_lease(200.0, 99.7).outputs == [Applied(1, Entry(1, "x"))]


def test_answers_from_outside_the_group_are_refused() -> None:
    p = primary()
    effects = p.handle_all([Acked(1, "mallory", 1), "junk"], 1.0)
    assert len(effects.refused) == 2 and p.committed == 0


# -- both, under a faulty network: a model check -------------------------------------------


def run_group(seed: int, mode: str, writes: int) -> tuple[Primary, dict[str, Backup], list[int]]:
    """A primary and two backups over a network that drops, duplicates and reorders.

    Effects are carried out at once (every write is durable when its step
    ends). Returns the cores and the positions the primary acknowledged.
    """
    rng = random.Random(seed)
    p = primary(mode, heartbeat=0.01)
    backups = {name: Backup(name) for name in ("b1", "b2")}
    wire: list[tuple[str, Any]] = []
    acked: list[int] = []
    now = 0.0

    def carry(effects: Effects) -> None:
        for output in effects.outputs:
            if type(output) is Applied:
                acked.append(output.position)
                if mode == "sync":  # acknowledged only once every in-sync backup holds it
                    for backup in backups.values():
                        assert list(backup.log)[: output.position] == list(p.log)[: output.position]
        for to, message in effects.send + effects.send_now:
            if rng.random() < 0.2:
                continue  # dropped
            wire.append((to, message))
            if rng.random() < 0.1:
                wire.append((to, message))  # duplicated

    submitted = 0
    for _ in range(4000):
        now += 0.001
        if submitted < writes and rng.random() < 0.3:
            carry(p.submit([submitted], now))
            submitted += 1
        if wire and rng.random() < 0.7:
            to, message = wire.pop(rng.randrange(len(wire)))  # reordered
            if to == "p":
                carry(p.handle_all([message], now))
            else:
                backup = backups[to]
                effects = backup.handle_all([message], now)
                carry(Effects(send=effects.send, send_now=effects.send_now))
        if now >= (p.next_deadline() or 0.0):
            carry(p.tick(now))
        if submitted == writes and p.committed == writes and not wire:
            break
    else:
        raise AssertionError(f"seed {seed}: not done in 4,000 steps: {p.committed} committed")
    return p, backups, acked


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(["sync", "async"]))
def test_every_write_commits_in_order_and_every_log_matches(seed: int, mode: str) -> None:
    p, backups, acked = run_group(seed, mode, writes=30)
    assert acked == list(range(1, 31)), "acknowledged once each, in order"
    assert [e.command for e in p.log] == list(range(30))
    if mode == "sync":  # every acknowledged write is on every in-sync backup
        for backup in backups.values():
            assert list(backup.log) == list(p.log)
    for backup in backups.values():
        assert list(backup.log) == list(p.log)[: backup.end]
        assert backup.committed <= p.committed


# -- records -------------------------------------------------------------------------------


def test_records_stored_and_read_back_rebuild_the_same_backup() -> None:
    from actorfw.protocols.primary_backup.records import CODEC

    b = Backup("b1")
    store: dict[bytes, bytes] = {}
    steps = [
        Append(1, "p", 0, 0, entries(1, "a", "b", ("c", 3)), 1),
        Append(1, "p", 3, 1, entries(1, "d"), 1),
        Append(2, "q", 2, 1, entries(2, "e"), 2),  # a new epoch: truncates c and d
    ]
    for append in steps:
        for record in b.handle_all([append], 0.0).persist:
            for key, value in CODEC.ops(record):
                if value is None:
                    store.pop(key, None)
                else:
                    store[key] = value
    again = Backup.restore("b1", CODEC.load(sorted(store.items())))
    assert list(again.log) == list(b.log) and again.epoch == b.epoch == 2
    assert [e.command for e in again.log] == ["a", "b", "e"]
    assert len(store) == 3  # the epoch, and one key per batch written: [a, b, c], [e]


def test_a_stored_log_with_a_hole_or_a_foreign_key_is_refused() -> None:
    from actorfw.protocols.primary_backup.records import CODEC

    (first,) = CODEC.ops(Written(1, entries(1, "a", "b")))
    (third,) = CODEC.ops(Written(4, entries(1, "d")))
    with pytest.raises(ValueError, match="skips to position 4"):
        CODEC.load([first, third])
    with pytest.raises(ValueError, match="not a key"):
        CODEC.load([(b"Z", b"")])
