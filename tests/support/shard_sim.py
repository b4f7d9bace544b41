"""A sharded KV store in the simulator, rebalanced under faults while clients record a history.

``run(seed)`` builds four nodes from the seed and places on them a shard
manager and three replica groups of the sharded KV store, each group on
three of the nodes (so every node hosts the roles of two or three groups).
Group ``g1`` starts with every shard. While clients run operations on a
few keys (recording a history) and a nemesis crashes and restarts a node,
partitions the nodes and makes the network drop, duplicate and reorder,
an administrator joins the other groups, moves single shards and has
groups leave and come back. Then the faults stop, the clients finish and
the groups settle.

Besides the history, the run records, through :class:`Recorder`, which
group answered each operation in which configuration and where every
written value was applied, so a test can check that no shard was served
by two groups in one configuration and that no write ran twice across a
move; and at the end each group's status, to check that every moved
shard was deleted where it came from.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import defaultdict
from typing import Any

from actorfw import NetworkConfig, Simulation
from actorfw.check import History
from actorfw.kv import KVStateMachine
from actorfw.kv.sharded import ShardedKV
from actorfw.protocols.sharding import shard_of
from actorfw.services.replication import AsyncGroupClient, Unavailable
from actorfw.services.sharding import AsyncShardedClient, ShardedCluster
from tests.support.paxos_sim import CLIENT_NODE, _nemesis

FAULTY = NetworkConfig(latency=(0.0005, 0.01), drop=0.02, duplicate=0.02, reorder=True)
CALM = NetworkConfig(latency=(0.0005, 0.002))
NODES = ["n1", "n2", "n3", "n4"]
GROUPS = {"g1": ["n1", "n2", "n3"], "g2": ["n2", "n3", "n4"], "g3": ["n1", "n3", "n4"]}
MANAGER_NODES = ["n1", "n2", "n4"]
SHARDS = 8
KEYS = ("a", "b", "c", "d", "e", "f")


class Recorder:
    """What every replica of every group did, gathered across one run (in-process only)."""

    current: Recorder | None = None

    def __init__(self) -> None:
        self.answers: defaultdict[tuple[int, int], set[str]] = defaultdict(set)
        """(configuration, shard) -> the groups that answered an operation on it."""
        self.writes: defaultdict[str, set[tuple[str, int]]] = defaultdict(set)
        """Written value -> the (group, configuration) pairs that applied it."""


class _RecordedShard(KVStateMachine):
    def __init__(self, owner: RecordingKV) -> None:
        super().__init__()
        self.owner = owner

    def apply(self, operation: Any) -> Any:
        recorder = Recorder.current
        if recorder is not None and operation[0] in ("put", "append", "cas"):
            value = operation[2] if operation[0] != "cas" else operation[2][1]
            recorder.writes[str(value)].add((self.owner.group, self.owner.config.num))
        return super().apply(operation)


class RecordingKV(ShardedKV):
    """The sharded KV store, telling the run's :class:`Recorder` what it serves."""

    def new_shard(self) -> KVStateMachine:
        return _RecordedShard(self)

    def _op(self, client: Any, routed: Any, seq: Any, op: Any) -> list[Any]:
        result = super()._op(client, routed, seq, op)
        recorder = Recorder.current
        if recorder is not None and result[0] == "ok":
            shard = shard_of(self.key_of(op), len(self.config.shards))
            recorder.answers[(self.config.num, shard)].add(self.group)
        return result


@dataclasses.dataclass
class Outcome:
    """What one run produced."""

    seed: int
    history: History
    recorder: Recorder
    finished: bool
    settled: bool
    statuses: dict[str, dict[str, Any]]
    latest: int
    changes: list[str]
    faults: list[str]
    redirects: int


def _operation(rng: random.Random, client: str, n: int) -> tuple[str, str, Any]:
    key = rng.choice(KEYS)
    roll = rng.random()
    if roll < 0.4:
        return "get", key, None
    if roll < 0.7:
        return "put", key, f"{client}:{n}"
    if roll < 0.85:
        return "cas", key, [rng.choice([None, f"{client}:{n - 1}"]), f"{client}:{n}"]
    return "append", key, f"{client}:{n},"  # every written value unique: a read pins its write


async def _client(
    sim: Simulation,
    client: AsyncShardedClient,
    name: str,
    history: History,
    rng: random.Random,
    until: float,
    after: int,
) -> None:
    """Operations one at a time while the faults last, then ``after`` more.

    The client's deadline outlasts the run, so it retries each operation
    (under its numbers: exactly once) until it is answered.
    """
    n = 0
    calm_ops = 0
    while calm_ops < after:
        n += 1
        if sim.now >= until:
            calm_ops += 1
        f, key, value = _operation(rng, name, n)
        op = history.invoke(name, f, key, value, time=sim.now)
        result = await client.call([f, key, value])
        history.ok(op, result, time=sim.now)
        await asyncio.sleep(rng.uniform(0.0, 0.05))


async def _admin(
    manager: AsyncGroupClient, rng: random.Random, until: float, log: list[str], now: Any
) -> None:
    """Joins, leaves (now and then of every group) and moves while the faults last."""
    joined = {"g1"}
    while now() < until:
        await asyncio.sleep(rng.uniform(0.5, 1.5))
        roll = rng.random()
        absent = sorted(set(GROUPS) - joined)
        if absent and (roll < 0.4 or not joined):
            group = rng.choice(absent)
            op: list[Any] = ["join", {group: GROUPS[group]}]
        elif joined and ((roll < 0.7 and len(joined) > 1) or roll > 0.95):
            group = rng.choice(sorted(joined))
            op = ["leave", [group]]  # the last one too, now and then: shards unassigned
        else:
            op = ["move", rng.randrange(SHARDS), rng.choice(sorted(joined))]
        while True:
            try:
                answer = await manager.call(op)
                break
            except Unavailable:
                continue  # the manager's quorum is cut off: the same change, again
        # A change retried after Unavailable may have run the first time: then it is
        # refused now. Either way the latest configuration says what is joined.
        latest = await _latest(manager)
        joined = set(latest["groups"])
        result = f"configuration {answer['num']}" if isinstance(answer, dict) else answer
        log.append(f"{now():.3f} {op} -> {result} (latest {latest['num']})")
    if not joined:  # the clients must be able to finish: some group owns the shards
        group = rng.choice(sorted(GROUPS))
        while True:
            try:
                await manager.call(["join", {group: GROUPS[group]}])
                break
            except Unavailable:
                continue
        log.append(f"{now():.3f} join {group} after the faults: every group had left")


async def _latest(manager: AsyncGroupClient) -> dict[str, Any]:
    while True:
        try:
            latest: dict[str, Any] = await manager.read(["query", -1])
            return latest
        except Unavailable:
            continue


def _settle(sim: Simulation, cluster: ShardedCluster, within: float) -> bool:
    """Wait (in virtual time) until every group has finished every move."""
    give_up = sim.now + within
    while not cluster.settled():
        if sim.now >= give_up:
            return False
        sim.run_for(0.2)
    return True


def run(
    seed: int,
    clients: int = 4,
    operations: int = 5,
    fault_time: float = 6.0,
    settle_time: float = 60.0,
    replication: str = "paxos",
) -> Outcome:
    """One seeded run (see the module documentation); the groups replicated by ``replication``."""
    rng = random.Random(seed)
    history = History()
    recorder = Recorder.current = Recorder()
    faults: list[str] = []
    changes: list[str] = []
    try:
        with Simulation(
            [*NODES, CLIENT_NODE], seed=seed, network=FAULTY, lose_unsynced="prefix"
        ) as sim:
            cluster = ShardedCluster.start(
                sim,
                RecordingKV,
                shards=SHARDS,
                manager_nodes=MANAGER_NODES,
                client_id="operator",
                replication=replication,
            )
            for group, nodes in GROUPS.items():
                cluster.start_group(group, nodes)
            cluster.configuration()  # the manager is up
            changes.append(f"{sim.now:.3f} {cluster.join({'g1': GROUPS['g1']})}")
            until = sim.now + fault_time
            sharded = [
                AsyncShardedClient("shards", MANAGER_NODES, f"c{i}", deadline=3600.0)
                for i in range(clients)
            ]

            async def main() -> bool:
                workers = [
                    asyncio.ensure_future(
                        _client(
                            sim,
                            sharded[i],
                            f"c{i}",
                            history,
                            random.Random(rng.getrandbits(64)),
                            until,
                            operations,
                        )
                    )
                    for i in range(clients)
                ]
                admin = AsyncGroupClient("shards", MANAGER_NODES, "admin", deadline=5.0)
                changer = asyncio.ensure_future(
                    _admin(
                        admin, random.Random(rng.getrandbits(64)), until, changes, lambda: sim.now
                    )
                )
                await _nemesis(sim, NODES, random.Random(rng.getrandbits(64)), until, faults)
                calm_from = sim.now
                _, pending = await asyncio.wait([*workers, changer], timeout=settle_time)
                for task in pending:
                    task.cancel()
                faults.append(
                    f"{sim.now:.3f} clients done after {sim.now - calm_from:.3f}s of calm"
                )
                return not pending

            finished = sim.run(main, on=CLIENT_NODE, timeout=fault_time + settle_time + 30.0)
            settled = finished and _settle(sim, cluster, 60.0)
            # A change retried after Unavailable may also run its first attempt, later
            # (an identical configuration with a higher number): the statuses are those
            # of the latest configuration only if it is still the latest after them.
            for _ in range(5):
                latest = cluster.configuration().num
                statuses = {name: cluster.status(name) for name in cluster.groups}
                behind = any(status["num"] != latest for status in statuses.values())
                if not settled or not behind:
                    break
                settled = _settle(sim, cluster, 60.0)  # a late change came in after settling
            return Outcome(
                seed,
                history,
                recorder,
                finished,
                settled,
                statuses,
                latest,
                changes,
                faults,
                sum(c.redirects for c in sharded),
            )
    finally:
        Recorder.current = None
