"""Primary-backup replication (``sync`` mode) in the simulator: many seeds, every fault on.

Each seed runs the KV store replicated by primary-backup on 3 or 5 nodes,
its view service on the same nodes, while clients record their history
and a nemesis crashes and restarts a minority (often the acting primary),
partitions the nodes (halves, the primary isolated with or without the
clients, a bridge) and the network drops, duplicates and reorders. Every
run must be linearizable (so no acknowledged write is lost), every member
must apply the same entry at every position, no two members may act as the
primary of one epoch, and every client must finish once the faults stop.

Beside the seeds, scenarios that random schedules reach rarely: a primary
isolated with a client that reads from it while the others elect and
write; a killed primary that rejoins; bad input at a member.

``pytest --sim-seeds N`` runs more seeds; a failure prints the command that
replays its seed.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from actorfw import ActorRef, AskTimeout, Simulation
from actorfw.check import KeyValue, Status, Verdict, check
from actorfw.protocols.paxos import Command, Read
from actorfw.protocols.primary_backup import Append, Entry
from actorfw.protocols.primary_backup.member import LeaseGranted, ViewIs
from actorfw.services.paxos import Answered
from actorfw.services.primary_backup import (
    MemberStatus,
    SwitchoverRefused,
    member_name,
    switchover,
)
from actorfw.services.replication import AsyncGroupClient, replicate
from actorfw.services.replication.client import Redirect
from tests.support.paxos_sim import ReadableKV
from tests.support.pb_sim import GROUP, LEASE, OPTIONS, acting_primary, run

SEEDS_3 = 120
SEEDS_5 = 60
CHECK_STEPS = 20_000_000
"""The checker's budget per key, in search steps (an ``unknown`` fails the test)."""


def _check_run(seed: int, nodes: int = 3, **options: Any) -> None:
    """One run checked: no violation, every client done, every outcome known, linearizable."""
    outcome = run(seed, nodes=nodes, clients=5, **options)
    faults = "\n  ".join([str(dict(outcome.counts)), *outcome.faults])
    assert not outcome.violations, f"{outcome.violations[:3]}\nfaults:\n  {faults}"
    assert outcome.finished, f"clients did not finish after the faults stopped\n  {faults}"
    unknown = [op for op in outcome.history if op.status is Status.INFO]
    assert not unknown, f"{len(unknown)} outcomes left unknown, the first {unknown[0]}"
    result = check(outcome.history, KeyValue(), max_steps=CHECK_STEPS)
    assert result.verdict is Verdict.OK, f"{result}\nfaults:\n  {faults}"


@pytest.mark.simulation(seeds=SEEDS_3)
def test_three_nodes_in_sync_mode_stay_linearizable_under_every_fault(sim_seed: int) -> None:
    _check_run(sim_seed + 5_000_000, nodes=3)


@pytest.mark.simulation(seeds=SEEDS_5)
def test_five_nodes_in_sync_mode_stay_linearizable_under_every_fault(sim_seed: int) -> None:
    _check_run(sim_seed + 6_000_000, nodes=5)


@pytest.mark.simulation(seeds=SEEDS_5 // 4)
def test_a_new_primary_crashed_right_after_shipping_never_acts_again_in_its_epoch(
    sim_seed: int,
) -> None:
    # Its epoch and its first writes may not be durable when it crashes: restarted,
    # it must not start again as primary of that epoch (the observer checks it).
    _check_run(sim_seed + 7_000_000, crash_new_primary=True)


@pytest.mark.simulation(seeds=SEEDS_5 // 2)
def test_planned_switchovers_under_every_fault_stay_linearizable(sim_seed: int) -> None:
    # Switchovers asked at random times, to random members, while nodes crash and the
    # network partitions: the hold and the view's fencing keep one primary at a time.
    _check_run(sim_seed + 9_000_000, switchovers=True)


def _check_async_run(seed: int) -> int:
    """One async run checked: every loss explained by a failover; the count of losses."""
    outcome = run(seed, nodes=3, clients=5, mode="async")
    faults = "\n  ".join([str(dict(outcome.counts)), *outcome.faults])
    assert not outcome.violations, f"{outcome.violations[:3]}\nfaults:\n  {faults}"
    assert outcome.finished, f"clients did not finish after the faults stopped\n  {faults}"
    unknown = [op for op in outcome.history if op.status is Status.INFO]
    assert not unknown, f"{len(unknown)} outcomes left unknown, the first {unknown[0]}"
    return int(outcome.counts["lost_acknowledged"])


@pytest.mark.simulation(seeds=SEEDS_5 // 2)
def test_async_mode_loses_acknowledged_writes_only_at_a_failover(sim_seed: int) -> None:
    # Losses are allowed in async mode, but each must be an append acknowledged by the
    # primary of an epoch that a later one followed, before that one began (rule 11).
    _check_async_run(sim_seed + 10_000_000)


def test_async_mode_counts_the_writes_a_failover_lost() -> None:
    # A seed whose primary, cut off with its clients, acknowledged appends the next
    # epoch never had: they are counted, and each is explained.
    assert _check_async_run(10_000_001) > 0


def test_a_seed_replays_exactly() -> None:
    first, second = run(5_000_007), run(5_000_007)
    assert first.trace_digest == second.trace_digest
    assert len(first.history.operations) == len(second.history.operations) > 0


NODES = ["n1", "n2", "n3"]


def _group(sim: Simulation) -> Any:
    return replicate(
        sim,
        ReadableKV,
        NODES,
        name=GROUP,
        replication="primary-backup",
        member_options=OPTIONS,
        lease=LEASE,
    )


def _status(sim: Simulation, node: str) -> dict[str, Any]:
    status: dict[str, Any] = sim.ask(ActorRef(node, member_name(GROUP)), MemberStatus())
    return status


def test_an_isolated_primary_answers_no_read_once_another_primary_may_have_written() -> None:
    with Simulation([*NODES, "near", "far"], seed=3) as sim:
        group = _group(sim)
        near = group.client("near-client", on="near")
        near.call(["put", "x", "old"])
        primary = acting_primary(sim, NODES)
        assert primary is not None
        others = [n for n in NODES if n != primary]
        sim.partition([primary, "near"], [*others, "far"])
        far = group.client("far-client", on="far", deadline=30.0)
        far.call(["put", "x", "new"])  # after an election on the far side
        assert acting_primary(sim, others) is not None

        async def read(seq: int) -> Any:
            command = Command("near-reader", seq, ["get", "x", None])
            try:
                return await ActorRef(primary, member_name(GROUP)).ask(Read(command), 0.5)
            except AskTimeout:
                return None

        answers = [sim.run(read(seq), on="near") for seq in range(1, 6)]
        served = [a for a in answers if type(a) is Answered]
        assert not served, f"the old primary answered {served} after {primary} lost its lease"
        assert all(a is None or type(a) is Redirect for a in answers)


def test_a_killed_primary_is_replaced_and_rejoins_with_the_new_epochs_log() -> None:
    with Simulation(NODES, seed=4) as sim:
        group = _group(sim)
        client = group.client("writer", deadline=30.0)
        for i in range(5):
            client.call(["append", "x", f"{i},"])
        old = acting_primary(sim, NODES)
        assert old is not None
        sim.crash(old)
        for i in range(5, 10):
            client.call(["append", "x", f"{i},"])
        new = acting_primary(sim, NODES)
        assert new is not None and new != old
        sim.restart(old)
        assert sim.run_until(
            lambda: (
                sim.node(old).cells[member_name(GROUP)].instance.core.applied
                == sim.node(new).cells[member_name(GROUP)].instance.core.applied
            ),
            timeout=10.0,
        )
        rejoined = sim.node(old).cells[member_name(GROUP)].instance.core
        leading = sim.node(new).cells[member_name(GROUP)].instance.core
        assert rejoined.backup.end == leading.backup.end and rejoined.acting == 0
        held = range(max(rejoined.backup.log.base, leading.backup.log.base) + 1, leading.backup.end)
        assert all(rejoined.backup.log.entry(p) == leading.backup.log.entry(p) for p in held)
        assert rejoined.machine.apply(["get", "x", None]) == "".join(f"{i}," for i in range(10))
        assert sim.run_until(lambda: old in leading.view.in_sync, timeout=10.0)
        assert client.call(["get", "x", None]) == "".join(f"{i}," for i in range(10))


@pytest.mark.parametrize(
    "bad",
    [
        Append(9, "n2", 0, 0, (Entry(9, "forged"),), 0),  # says n2 sent it; the client did
        ViewIs(9, "client", (), 0),  # only this node's keeper tells the view
        LeaseGranted(1, 1e9),  # only this node's keeper grants the lease
    ],
)
def test_a_member_refuses_copying_and_notes_from_the_wrong_sender(bad: Any) -> None:
    with Simulation([*NODES, "client"], seed=5) as sim:
        group = _group(sim)
        client = group.client("c", on="client")
        client.call(["put", "x", 1])
        primary = acting_primary(sim, NODES)
        assert primary is not None
        before = _status(sim, primary)
        sim.tell(ActorRef(primary, member_name(GROUP)), bad, on="client")
        client.call(["put", "x", 2])
        after = _status(sim, primary)
        assert after["epoch"] == before["epoch"] and after["acting"] == before["acting"]
        assert client.call(["get", "x", None]) == 2


class _Appends:
    """Clients appending unique tokens to one key until told to stop; when each was answered."""

    def __init__(self, nodes: list[str], clients: int = 4) -> None:
        self.nodes = nodes
        self.clients = clients
        self.acknowledged: list[str] = []
        self.answered_at: list[float] = []
        self.acked_at: dict[str, float] = {}
        self.reads: list[tuple[float, str]] = []  # (asked at, what it read)
        self.stopping = False

    async def run(self, now: Any) -> None:
        async def one(index: int) -> None:
            client = AsyncGroupClient(GROUP, self.nodes, f"appender-{index}", deadline=30.0)
            step = 0
            while not self.stopping:
                step += 1
                token = f"{index}.{step};"
                await client.call(["append", "x", token])
                self.acknowledged.append(token)
                self.acked_at[token] = now()
                self.answered_at.append(now())

        async def reader() -> None:
            client = AsyncGroupClient(GROUP, self.nodes, "reader", deadline=30.0)
            while not self.stopping:
                asked = now()
                self.reads.append((asked, await client.read(["get", "x", None]) or ""))

        await asyncio.gather(reader(), *(one(i) for i in range(self.clients)))

    def stale_reads(self) -> list[tuple[float, str]]:
        """Reads that miss an append acknowledged before they were asked."""
        return [
            (asked, token)
            for asked, value in self.reads
            for token, at in self.acked_at.items()
            if at < asked and token not in value
        ]

    def longest_gap(self, start: float, end: float) -> float:
        times = sorted(t for t in self.answered_at if start <= t <= end)
        return max((b - a for a, b in itertools.pairwise(times)), default=end - start)


def test_a_planned_switchover_under_load_loses_nothing_and_pauses_briefly() -> None:
    with Simulation([*NODES, "client"], seed=6) as sim:
        group = _group(sim)
        group.client("warm", on="client").call(["get", "x", None])
        old = acting_primary(sim, NODES)
        assert old is not None
        to = next(n for n in NODES if n != old)
        load = _Appends(NODES)

        async def answers(more: int) -> None:
            # until ``more`` further answers came (simulated time, with a deadline)
            target, give_up = len(load.answered_at) + more, sim.now + 30.0
            while len(load.answered_at) < target:
                assert sim.now < give_up, f"only {len(load.answered_at)} answers"
                await asyncio.sleep(0.01)

        async def main() -> tuple[dict[str, Any], float, float]:
            running = asyncio.ensure_future(load.run(lambda: sim.now))
            await answers(100)
            began = sim.now
            view = await switchover(GROUP, NODES, to)
            done = sim.now
            await answers(100)  # the new primary serves
            load.stopping = True
            await running
            return view, began, done

        view, began, done = sim.run(main, on="client", timeout=60.0)
        assert view["primary"] == to and acting_primary(sim, NODES) == to
        assert done - began < 0.5, f"the switchover took {done - began:.3f}s"
        assert load.longest_gap(began - 0.5, done + 0.5) < 0.5
        final = group.client("final-reader", on="client").call(["get", "x", None])
        tokens = final.split(";")[:-1]
        assert len(tokens) == len(set(tokens))
        assert not {t.rstrip(";") for t in load.acknowledged} - set(tokens)
        assert len(load.reads) > 10 and not load.stale_reads()


def test_a_switchover_to_a_node_out_of_sync_or_of_a_paxos_group_is_refused() -> None:
    with Simulation(NODES, seed=7) as sim:
        group = _group(sim)
        group.client("warm").call(["get", "x", None])
        primary = acting_primary(sim, NODES)
        with pytest.raises(SwitchoverRefused, match="is the primary of kv already"):
            group.switchover(primary)  # the primary itself is no backup
        with pytest.raises(SwitchoverRefused, match="not an in-sync backup"):
            group.switchover("n9")
        assert acting_primary(sim, NODES) == primary
        assert group.client("after").call(["put", "x", 1]) is None  # it goes on
        with pytest.raises(ValueError, match="lease must be a positive"):
            replicate(sim, ReadableKV, NODES, name="bad", replication="primary-backup", lease=-1)
        paxos = replicate(sim, ReadableKV, NODES, name="px")
        with pytest.raises(TypeError, match="no primary"):
            paxos.switchover("n2")


def test_a_backup_answers_reads_within_the_staleness_asked_and_not_beyond() -> None:
    with Simulation([*NODES, "client"], seed=8) as sim:
        group = _group(sim)
        client = group.client("writer", on="client")
        client.call(["put", "x", 1])
        primary = acting_primary(sim, NODES)
        backup = next(n for n in NODES if n != primary)
        sim.run_for(0.2)  # heartbeats tell the backups x=1 is committed

        def read(seq: int) -> Any:
            ask = Read(Command("stale-reader", seq, ["get", "x", None]), 0.5)
            return sim.ask(ActorRef(backup, member_name(GROUP)), ask, on="client")

        assert read(1) == Answered(1, primary)
        sim.network.cut(primary, backup)  # the backup hears no more from its primary
        client.call(["put", "x", 2])  # once the backup is dropped from the in-sync set
        cut_at = sim.now
        sim.run_for(0.6)
        assert type(read(2)) is Redirect  # more than 0.5 s without news: not answered
        sim.network.heal()
        answers = []
        for seq in range(3, 53):  # until the backup hears from its primary again
            answers.append(read(seq))
            if answers[-1] == Answered(2, primary):
                break
            sim.run_for(0.1)
        assert answers[-1] == Answered(2, primary) and Answered(1, primary) not in answers
        assert cut_at < sim.now
        # Through the client, spread over the nodes, every read within the bound answers.
        spread = group.client("spread-reader", on="client")
        assert {spread.read(["get", "x", None], max_staleness=1.0) for _ in range(6)} == {2}
