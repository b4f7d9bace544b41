"""The sharded KV store in the simulator: rebalanced under every fault, every run checked.

Each seed places a shard manager and three replica groups on four nodes
(see :mod:`tests.support.shard_sim`), runs clients on a few keys while an
administrator joins groups, moves shards and has groups leave, and a
nemesis crashes and restarts nodes, partitions them and makes the network
drop, duplicate and reorder. Every run must be linearizable key by key
(with every outcome known: clients retry until answered), no shard may be
served by two groups in one configuration, no write may run twice (each
written value is unique, and is applied in one group and configuration
only), and once the faults stop every group must take the latest
configuration with every moved shard deleted where it came from. A second
set of seeds runs the groups on primary-backup replication.

``pytest --sim-seeds N`` runs more seeds; a failure prints the command that
replays its seed.
"""

from __future__ import annotations

from typing import Any

import pytest

from actorfw.check import KeyValue, Status, Verdict, check
from tests.support.shard_sim import run

SEEDS = 120
PRIMARY_BACKUP_SEEDS = 50
CHECK_STEPS = 20_000_000
"""The checker's budget per key, in search steps (counted, not timed: the same verdict on
every machine)."""


def _explain(outcome) -> str:
    return (
        "changes:\n  "
        + "\n  ".join(outcome.changes)
        + "\nfaults:\n  "
        + "\n  ".join(outcome.faults)
    )


@pytest.mark.simulation(seeds=SEEDS)
def test_shards_move_under_every_fault_and_every_key_stays_linearizable(sim_seed: int) -> None:
    _check_run(run(sim_seed + 4_000_000))


@pytest.mark.simulation(seeds=PRIMARY_BACKUP_SEEDS)
def test_primary_backup_groups_move_shards_under_every_fault_and_stay_linearizable(
    sim_seed: int,
) -> None:
    _check_run(run(sim_seed + 8_000_000, replication="primary-backup"))


def _check_run(outcome: Any) -> None:
    assert outcome.finished, f"clients did not finish after the faults stopped\n{_explain(outcome)}"
    unknown = [op for op in outcome.history if op.status is Status.INFO]
    assert not unknown, f"{len(unknown)} outcomes left unknown, the first {unknown[0]}"
    result = check(outcome.history, KeyValue(), max_steps=CHECK_STEPS)
    assert result.verdict is Verdict.OK, f"{result}\n{_explain(outcome)}"
    served_twice = {k: g for k, g in outcome.recorder.answers.items() if len(g) > 1}
    assert not served_twice, f"(configuration, shard) served by two groups: {served_twice}"
    ran_twice = {v: where for v, where in outcome.recorder.writes.items() if len(where) > 1}
    assert not ran_twice, f"writes applied in two places: {ran_twice}"
    assert outcome.settled, f"the groups did not settle\n{outcome.statuses}\n{_explain(outcome)}"
    for group, status in outcome.statuses.items():
        assert status["num"] == outcome.latest, (group, status)
        assert status["outgoing"] == [] and status["confirming"] == [], (group, status)


def test_a_run_moves_shards_and_redirects_clients() -> None:
    # The runs above are not vacuous: shards move with data in them, and clients follow.
    outcome = run(4_000_001)
    assert len(outcome.changes) >= 4 and outcome.latest >= 4
    assert outcome.redirects > 0
    held = sorted(s for status in outcome.statuses.values() for s in status["held"])
    assert held == list(range(8))  # every shard held by exactly one group at the end
    writers = {group for where in outcome.recorder.writes.values() for group, _ in where}
    assert len(writers) >= 2
