"""Multi-Paxos in the simulator: many seeds, every fault on, every run checked.

Each seed builds a 3- or 5-node cluster running the replicated KV store,
with clients recording their history while a nemesis crashes and restarts
a minority (the leader included), partitions the nodes (random halves, an
isolated leader, a bridge), and the network drops, duplicates and reorders.
Then the faults stop. Every run must be linearizable, must never decide two
different batches for one slot (the invariant checker watched every step of
every role), and every client must finish once the faults stop. Clients
retry a command under the same (id, seq) until it is answered, so every
outcome is known by the end: a history the checker can decide.

Every run compacts with tiny intervals (snapshots every 4 slots, collection
every 4), so replicas truncate, acceptors collect and lagging replicas
install snapshots under the faults. A second set of seeds runs with leader
leases on, every ``get`` sent as a read served by lease where possible.

``pytest --sim-seeds N`` runs more seeds; a failure prints the command that
replays its seed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from actorfw.check import KeyValue, Status, Verdict, check
from tests.support.paxos_sim import run

SEEDS_PER_SIZE = 150
LEASE_SEEDS_PER_SIZE = 50
CHECK_STEPS = 20_000_000
"""The checker's budget per key, in search steps: counted, not timed, so a seed's verdict
is the same on every machine however busy (an ``unknown`` fails the test)."""


def _check_run(sim_seed: int, nodes: int, leases: bool = False) -> None:
    outcome = run(sim_seed, nodes=nodes, clients=5, leases=leases)
    faults = "\n  ".join([str(outcome.availability), *outcome.faults])
    assert not outcome.violations, (
        f"invariants broken: {outcome.violations[:3]}\nfaults:\n  {faults}"
    )
    assert outcome.finished, f"clients did not finish after the faults stopped\nfaults:\n  {faults}"
    unknown = [op for op in outcome.history if op.status is Status.INFO]
    assert not unknown, f"{len(unknown)} outcomes left unknown, the first {unknown[0]}"
    result = check(outcome.history, KeyValue(), max_steps=CHECK_STEPS)
    assert result.verdict is Verdict.OK, f"{result}\nfaults:\n  {faults}"


@pytest.mark.simulation(seeds=SEEDS_PER_SIZE)
def test_three_nodes_stay_linearizable_and_consistent_under_every_fault(sim_seed: int) -> None:
    _check_run(sim_seed, nodes=3)


@pytest.mark.simulation(seeds=SEEDS_PER_SIZE)
def test_five_nodes_stay_linearizable_and_consistent_under_every_fault(sim_seed: int) -> None:
    _check_run(sim_seed + 1_000_000, nodes=5)


@pytest.mark.simulation(seeds=LEASE_SEEDS_PER_SIZE)
def test_three_nodes_with_leader_leases_stay_linearizable_under_every_fault(sim_seed: int) -> None:
    _check_run(sim_seed + 2_000_000, nodes=3, leases=True)


@pytest.mark.simulation(seeds=LEASE_SEEDS_PER_SIZE)
def test_five_nodes_with_leader_leases_stay_linearizable_under_every_fault(sim_seed: int) -> None:
    _check_run(sim_seed + 3_000_000, nodes=5, leases=True)


def test_a_run_that_served_little_was_cut_off_by_its_faults_not_stalled_by_the_protocol() -> None:
    # Seed 170 of the 5-node lease test once left 302 of 353 outcomes unknown. Its
    # fault schedule isolates the leader at 0.67 s and then crashes and partitions
    # without a heal until the faults stop at 6.37 s: no node reaches a majority
    # that the clients reach in between. A leader serves whenever the faults allow.
    availability = run(3_000_170, nodes=5, clients=5, leases=True).availability
    assert availability.allowed < 0.3
    assert availability.serving >= availability.allowed - 0.02
    assert availability.completed > 50


def test_simulated_runs_snapshot_truncate_collect_install_and_read_by_lease() -> None:
    seen: Counter[str] = Counter()
    for seed in range(4):
        seen.update(run(seed, nodes=3, clients=5).counts)
        seen.update(run(seed + 2_000_000, nodes=3, clients=5, leases=True).counts)
    for what in (
        "snapshots persisted",
        "truncations",
        "collections",
        "snapshots sent",
        "reads by lease",
    ):
        assert seen[what] > 0, f"no {what} in 8 runs: {dict(seen)}"


_DIGEST = (
    "from tests.support.paxos_sim import run; print(run({seed}, nodes=3, clients=5).trace_digest)"
)


def _digest_in_a_process(seed: int, hash_seed: int) -> str:
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    done = subprocess.run(
        [sys.executable, "-c", _DIGEST.format(seed=seed)],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("seed", [0, 2])
def test_a_seed_replays_the_same_run_in_another_process_whatever_its_hash_seed(seed: int) -> None:
    # A failing seed is replayed in a new process, where str hashes differ: nothing a
    # run does may depend on the order of a set of strings.
    digests = {_digest_in_a_process(seed, hash_seed) for hash_seed in (1, 2, 3)}
    assert len(digests) == 1, digests
