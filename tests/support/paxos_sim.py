"""A Paxos group in the simulator under faults, with clients recording a checkable history.

``run(seed, nodes)`` builds a simulated cluster from the seed, starts the
replicated KV store on every node, runs clients and a nemesis (crashes and
restarts of a minority, partitions of every shape, a lossy, duplicating,
reordering network), then stops the faults and lets every client finish.
It returns what a test checks: the client history (for linearizability),
the invariant violations the roles' steps showed (for "one command per
slot"), and whether the clients finished in time after the faults stopped.

Compaction runs with tiny intervals (a snapshot every 4 applied slots,
keeping 2 in the log; a collection every 4 slots a majority applied), so
snapshots, truncation, collection and catch-up by snapshot all happen under
the faults. ``leases=True`` turns leader leases on and sends every ``get``
as a :class:`~actorfw.protocols.paxos.Read`.

Each run also measures its availability (:class:`Availability`): how much
of the time a leader could commit and the clients could reach it, how many
asks timed out or were refused, and the longest stretch in which no client
saw an answer. ``python -m tests.support.paxos_sim SEED [--nodes 5]
[--leases]`` prints it beside the fault schedule.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from actorfw import ActorRef, AskTimeout, NetworkConfig, NodeDown, Simulation
from actorfw.check import History
from actorfw.kv import KVStateMachine
from actorfw.protocols.paxos import (
    Collected,
    Command,
    Config,
    InstallSnapshot,
    Invariants,
    InvariantViolation,
    LeaderOptions,
    Read,
    ReplicaOptions,
    Request,
    Role,
    Snapshotted,
    Truncated,
)
from actorfw.services.paxos import AcceptorActor, Answered, LeaderActor, ReplicaActor, role_name
from actorfw.values.errors import ActorNotFound

GROUP = "kv"
CLIENT_NODE = "clients"
"""A node of the simulation outside the Paxos group, where the clients run: never crashed."""
KEYS = ("x", "y", "z")
FAULTY = NetworkConfig(latency=(0.0005, 0.01), drop=0.02, duplicate=0.02, reorder=True)
CALM = NetworkConfig(latency=(0.0005, 0.002))
SNAPSHOT_INTERVAL = 4
LOG_TAIL = 2
COLLECT_INTERVAL = 4
LEASE = LeaderOptions(lease_duration=1.0, max_drift=0.05, collect_interval=COLLECT_INTERVAL)


class ReadableKV(KVStateMachine):
    """The KV machine, able to serve ``get`` by lease.

    (A :class:`~actorfw.protocols.paxos.Querying` machine.)
    """

    def is_read_only(self, operation: Any) -> bool:
        return (
            isinstance(operation, (list, tuple)) and len(operation) >= 2 and operation[0] == "get"
        )

    def query(self, operation: Any) -> Any:
        return self.apply(operation)  # a get changes nothing


class Observer:
    """Feeds every role step to the invariant checker; keeps violations rather than raising them.

    Also counts what compaction and leases did (``counts``): snapshots
    persisted, snapshots sent to peers, log truncations, collections, reads
    served by lease.
    """

    def __init__(self, nodes: list[str], window: int) -> None:
        # Storage may lose unsynced writes at a crash: count what acceptors sent.
        self.checker = Invariants(Config.colocated(nodes), window, lossy_storage=True)
        self.violations: list[str] = []
        self.counts: Counter[str] = Counter()
        self.clock: ServingClock | None = None  # told after every step

    def _guard(self, check: Callable[[], None]) -> None:
        try:
            check()
        except InvariantViolation as violation:
            self.violations.append(str(violation))

    def __call__(self, role: Role, node: str, core: Any, effects: Any) -> None:
        step: Callable[[str, Any, Any], None] = {  # type: ignore[assignment]
            Role.ACCEPTOR: self.checker.acceptor_step,
            Role.LEADER: self.checker.leader_step,
            Role.REPLICA: self.checker.replica_step,
        }[role]
        self._guard(lambda: step(node, core, effects))
        for record in effects.persist:
            kind = type(record)
            if kind in _COUNTED:
                self.counts[_COUNTED[kind]] += 1
        for _, message in effects.send:
            if type(message) is InstallSnapshot:
                self.counts["snapshots sent"] += 1
        for response in effects.responses:
            if response.by_lease:
                self.counts["reads by lease"] += 1
        if self.clock is not None:
            self.clock.update()

    def delivered(self, role: Role, node: str, sends: list[tuple[str, Any]]) -> None:
        if role is Role.ACCEPTOR:
            self._guard(lambda: self.checker.acceptor_sent(node, (m for _, m in sends)))
        elif role is Role.LEADER:
            self._guard(lambda: self.checker.leader_sent(node, (m for _, m in sends)))

    def restarted(self, role: Role, node: str, core: Any) -> None:
        if role is Role.ACCEPTOR:
            self._guard(lambda: self.checker.acceptor_restarted(node, core))
        elif role is Role.REPLICA:
            self._guard(lambda: self.checker.replica_restarted(node, core))
        else:
            self._guard(lambda: self.checker.leader_restarted(node, core))


_COUNTED = {Snapshotted: "snapshots persisted", Truncated: "truncations", Collected: "collections"}


def start_group(
    sim: Simulation,
    nodes: list[str],
    observer: Observer | None,
    max_batch: int = 64,
    *,
    replica_options: ReplicaOptions | None = None,
    leader_options: LeaderOptions | None = None,
    machine: type = KVStateMachine,
) -> None:
    """The three roles of the KV group on every node."""
    options = replica_options or ReplicaOptions(max_batch=max_batch)
    for node in nodes:
        sim.spawn(node, AcceptorActor, GROUP, nodes, observer, name=role_name(GROUP, Role.ACCEPTOR))
        sim.spawn(
            node,
            LeaderActor,
            GROUP,
            nodes,
            observer,
            leader_options,
            name=role_name(GROUP, Role.LEADER),
        )
        sim.spawn(
            node,
            ReplicaActor,
            GROUP,
            nodes,
            machine,
            observer,
            options,
            name=role_name(GROUP, Role.REPLICA),
        )


@dataclasses.dataclass
class Availability:
    """How available the group was to its clients in one run.

    Attributes:
        serving: the share of the time, from the start to the clients' end,
            in which some node's leader was active, reached a majority of the
            running nodes, and some replica the clients reached reached it
            (looked at after every step of every role and every fault, so
            that measuring schedules nothing: the run stays the same run).
        allowed: the share of the time in which the faults allowed that
            (some running node reached a majority, and the clients reached
            it): what any protocol could have served at best.
        completed: operations answered.
        timeouts: asks that timed out (and were asked again elsewhere).
        refused: asks refused at once (node down or restarting).
        stall: the longest stretch with no answer to any client, as
            ``(start, end)`` in simulated seconds.
    """

    serving: float = 0.0
    allowed: float = 0.0
    completed: int = 0
    timeouts: int = 0
    refused: int = 0
    stall: tuple[float, float] = (0.0, 0.0)

    def __str__(self) -> str:
        start, end = self.stall
        return (
            f"a leader could serve {self.serving:.0%} of the time, the faults allowed "
            f"{self.allowed:.0%}; {self.completed} operations "
            f"answered, {self.timeouts} asks timed out, {self.refused} refused; longest "
            f"stretch without an answer {end - start:.2f}s ({start:.2f}-{end:.2f})"
        )


@dataclasses.dataclass
class Outcome:
    """What one run produced."""

    seed: int
    history: History
    violations: list[str]
    finished: bool
    operations: int
    faults: list[str]
    sim_time: float
    counts: Counter[str] = dataclasses.field(default_factory=Counter)
    trace_digest: str = ""
    """A SHA-256 of the run's whole trace: equal digests, the same run, delivery by delivery."""
    availability: Availability = dataclasses.field(default_factory=Availability)


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
    name: str,
    nodes: list[str],
    history: History,
    rng: random.Random,
    until: float,
    after: int,
    leases: bool = False,
    tries: Counter[str] | None = None,
) -> None:
    """Operations one at a time while the faults last, then ``after`` more.

    ``tries`` counts the asks that timed out and those refused at once.
    """
    tries = Counter() if tries is None else tries
    home = rng.choice(nodes)
    n = 0
    calm_ops = 0
    # Exactly-once makes a retry safe: the client asks again under the same (id, seq),
    # from replica to replica, until it is answered, so nearly every outcome becomes
    # known (what is still unanswered when the run ends is left pending: unknown).
    seq = 0
    while calm_ops < after:
        n += 1
        seq += 1
        if sim.now >= until:
            calm_ops += 1
        f, key, value = _operation(rng, name, n)
        command = Command(name, seq, [f, key, value])
        op = history.invoke(name, f, key, value, time=sim.now)
        replica = home
        by_lease = leases and f == "get" and seq > 1
        ask: Request | Read = Read(command) if by_lease else Request(command)
        while True:
            try:
                result = await ActorRef(replica, role_name(GROUP, Role.REPLICA)).ask(
                    ask, timeout=1.5
                )
            except AskTimeout:
                tries["timeouts"] += 1
                replica = rng.choice(nodes)  # retry elsewhere: the same (client, seq) runs once
                continue
            except (NodeDown, ActorNotFound):
                # Refused at once (the node is known down, or restarting): back off before
                # the next try, or a client cut off from every replica would retry forever
                # without the virtual clock moving.
                tries["refused"] += 1
                replica = rng.choice(nodes)
                await asyncio.sleep(rng.uniform(0.05, 0.2))
                continue
            if type(result) is Answered:
                result = result.result
            history.ok(op, result, time=sim.now)
            break
        await asyncio.sleep(rng.uniform(0.0, 0.05))


async def _nemesis(
    sim: Simulation,
    nodes: list[str],
    rng: random.Random,
    until: float,
    log: list[str],
    clock: ServingClock | None = None,
    leader_of: Callable[[Simulation, list[str]], str | None] | None = None,
) -> None:
    """Crashes, restarts and partitions until ``until``; the leader by ``leader_of``."""
    active_leader = leader_of or _active_leader

    def note(text: str) -> None:
        log.append(text)
        if clock is not None:
            clock.update()  # the time until this fault, then the state it made

    f = (len(nodes) - 1) // 2
    crashed: list[str] = []
    while sim.now < until:
        await asyncio.sleep(rng.uniform(0.3, 1.2))
        roll = rng.random()
        if roll < 0.35 and len(crashed) < f:
            leader = active_leader(sim, nodes)
            candidates = [n for n in nodes if n not in crashed]
            victim = (
                leader if leader in candidates and rng.random() < 0.5 else rng.choice(candidates)
            )
            if sim.nodes[victim].running:  # not crashed by a test's own hook meanwhile
                sim.crash(victim)
            crashed.append(victim)
            note(f"{sim.now:.3f} crash {victim}")
        elif roll < 0.55 and crashed:
            node = crashed.pop(rng.randrange(len(crashed)))
            if not sim.nodes[node].running:
                sim.restart(node)
            note(f"{sim.now:.3f} restart {node}")
        elif roll < 0.8:
            shape = rng.choice(["halves", "isolate-leader", "bridge"])
            shuffled = nodes[:]
            rng.shuffle(shuffled)
            # The clients' node joins a side at random: they see what that side sees.
            if shape == "halves":
                cut = rng.randint(1, len(nodes) - 1)
                sides = [shuffled[:cut], shuffled[cut:]]
                rng.choice(sides).append(CLIENT_NODE)
                sim.partition(*sides)
            elif shape == "isolate-leader":
                leader = active_leader(sim, nodes) or shuffled[0]
                sides = [[leader], [n for n in nodes if n != leader]]
                rng.choice(sides).append(CLIENT_NODE)
                sim.partition(*sides)
            else:  # a bridge: two sides that only one node reaches both of
                sim.heal()
                rest = shuffled[1:]  # shuffled[0] stays linked to everyone: the bridge
                half = max(1, len(rest) // 2)
                for a in rest[:half]:
                    for b in rest[half:]:
                        sim.network.cut(a, b)
            note(f"{sim.now:.3f} partition {shape}")
        else:
            sim.heal()
            note(f"{sim.now:.3f} heal")
    sim.heal()
    for node in crashed:
        if not sim.nodes[node].running:
            sim.restart(node)
        note(f"{sim.now:.3f} restart {node}")
    sim.network.configure(CALM)
    note(f"{sim.now:.3f} faults stop")


def _serving(sim: Simulation, nodes: list[str]) -> tuple[bool, bool]:
    """Could a client get a command committed now; and would the faults allow it at all?

    The faults allow it when some running node reaches a majority of the
    nodes (itself included) and the clients reach it or a replica that
    reaches it; a client can then be served if that node's leader is active.
    """
    running = [n for n in nodes if sim.nodes[n].running]
    majority = len(nodes) // 2 + 1
    connected = sim.network.connected
    allowed = False
    for leader in running:
        if sum(1 for n in running if n == leader or connected(leader, n)) < majority:
            continue
        if not any(
            connected(CLIENT_NODE, r) and (r == leader or connected(r, leader)) for r in running
        ):
            continue
        allowed = True
        cell = sim.node(leader).cells.get(role_name(GROUP, Role.LEADER))
        core = getattr(cell.instance, "core", None) if cell is not None else None
        if core is not None and core.is_active:
            return True, True
    return False, allowed


class ServingClock:
    """Adds up the simulated time in which a leader could serve (see :class:`Availability`)."""

    def __init__(self, sim: Simulation, nodes: list[str]) -> None:
        self.sim = sim
        self.nodes = nodes
        self.last = sim.now
        self.state = (False, False)
        self.serving = 0.0
        self.allowed = 0.0
        self.total = 0.0
        self.changes: list[tuple[float, bool, bool]] = []  # (time, serving, allowed), on change

    def update(self) -> None:
        """Count the time since the last look at the state then; look again."""
        now = self.sim.now
        if now > self.last:
            serving, allowed = self.state
            if serving:
                self.serving += now - self.last
            if allowed:
                self.allowed += now - self.last
            self.total += now - self.last
            self.last = now
        state = _serving(self.sim, self.nodes)
        if state != self.state:
            self.changes.append((now, *state))
        self.state = state


def _availability(
    history: History, clock: ServingClock, tries: Counter[str], end: float
) -> Availability:
    answered = sorted(op.complete for op in history.operations if op.complete is not None)
    stall, last = (0.0, 0.0), 0.0
    for moment in [*answered, end]:
        if moment - last > stall[1] - stall[0]:
            stall = (last, moment)
        last = max(last, moment)
    return Availability(
        serving=clock.serving / clock.total if clock.total else 0.0,
        allowed=clock.allowed / clock.total if clock.total else 0.0,
        completed=len(answered),
        timeouts=tries["timeouts"],
        refused=tries["refused"],
        stall=stall,
    )


def _active_leader(sim: Simulation, nodes: list[str]) -> str | None:
    for node in nodes:
        sim_node = sim.nodes[node]
        if not sim_node.running:
            continue
        cell = sim.node(node).cells.get(role_name(GROUP, Role.LEADER))
        leader = getattr(cell.instance, "core", None) if cell is not None else None
        if leader is not None and leader.is_active:
            return node
    return None


def run(
    seed: int,
    nodes: int = 3,
    clients: int = 4,
    operations: int = 5,
    fault_time: float = 6.0,
    settle_time: float = 60.0,
    leases: bool = False,
) -> Outcome:
    """One seeded run (see the module documentation)."""
    names = [f"n{i + 1}" for i in range(nodes)]
    rng = random.Random(seed)
    history = History()
    replica_options = ReplicaOptions(snapshot_interval=SNAPSHOT_INTERVAL, log_tail=LOG_TAIL)
    leader_options = LEASE if leases else LeaderOptions(collect_interval=COLLECT_INTERVAL)
    observer = Observer(names, replica_options.window)
    faults: list[str] = []
    tries: Counter[str] = Counter()
    with Simulation(
        [*names, CLIENT_NODE], seed=seed, network=FAULTY, lose_unsynced="prefix"
    ) as sim:
        start_group(
            sim,
            names,
            observer,
            replica_options=replica_options,
            leader_options=leader_options,
            machine=ReadableKV if leases else KVStateMachine,
        )
        clock = observer.clock = ServingClock(sim, names)
        until = sim.now + fault_time

        async def main() -> bool:
            workers = [
                asyncio.ensure_future(
                    _client(
                        sim,
                        f"c{i}",
                        names,
                        history,
                        random.Random(rng.getrandbits(64)),
                        until,
                        operations,
                        leases,
                        tries,
                    )
                )
                for i in range(clients)
            ]
            await _nemesis(sim, names, random.Random(rng.getrandbits(64)), until, faults, clock)
            calm_from = sim.now
            _, pending = await asyncio.wait(workers, timeout=settle_time)
            for task in pending:
                task.cancel()
            clock.update()
            faults.append(f"{sim.now:.3f} clients done after {sim.now - calm_from:.3f}s of calm")
            return not pending

        finished = sim.run(main, on=CLIENT_NODE, timeout=fault_time + settle_time + 30.0)
        return Outcome(
            seed,
            history,
            observer.violations,
            finished,
            len(history.operations),
            faults,
            sim.now,
            observer.counts,
            hashlib.sha256(sim.trace_text().encode()).hexdigest(),
            _availability(history, clock, tries, sim.now),
        )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="One seeded run: its availability and faults.")
    parser.add_argument("seed", type=int, help="the run's seed (as the test adds its offset)")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--leases", action="store_true")
    parser.add_argument("--clients", type=int, default=5)
    args = parser.parse_args()
    outcome = run(args.seed, nodes=args.nodes, clients=args.clients, leases=args.leases)
    print(f"seed {args.seed}: {outcome.operations} operations, finished: {outcome.finished}")
    print(outcome.availability)
    print("faults:\n  " + "\n  ".join(outcome.faults))
