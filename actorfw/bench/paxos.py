"""Replicated state machine benchmarks: the replicated KV store on node processes.

Each configuration is a fresh cluster of node processes on one machine
(:class:`~actorfw.node.ActorSystem` over IPC) running the Multi-Paxos roles
of one KV group (:func:`~actorfw.services.replication.replicate` of
:class:`~actorfw.kv.KVStateMachine`), chosen by:

- the number of nodes (3 or 5: a quorum of 2 or 3 acceptors);
- the nodes' storage: ``sqlite`` (durable: an acceptor's promise or accepted
  value is fsynced before its reply leaves) or ``memory`` (a sync completes at
  once; nothing survives a restart);
- the replica's batch size (``ReplicaOptions(max_batch=...)``): 1 (a slot per
  command) or 64 (up to 64 commands share a slot).

Two measurements per configuration, both of ``["put", key, value]`` commands
submitted through the exactly-once clients from the driving process:

- **throughput**: ``clients`` concurrent clients, each with one command
  outstanding (a client is sequential by design), run for a warm-up and then
  for a fixed window, after which each client stops once its command in
  flight is answered; the figure is the commands answered from the end of
  the warm-up to the last answer, divided by that time. Every client
  completes one command first (the leader is elected and known to every
  client before the clock starts). Beside it, the median time from submit
  to answer of those commands (``load p50``): at that rate, each client
  waits about ``clients / rate`` per command, mostly in queues.
  The default of 1,024 clients keeps the cluster busy: with 256 a run on
  the 2-core development machine left gaps in which the nodes waited for
  the next burst, and each command cost the nodes about a quarter more CPU.
- **latency**: one client, sequential commands after a short warm-up; the
  50th and 99th percentiles of the time from submit to answer.

The baseline, measured right after each configuration's latency, in the
same run: a raw pyzmq DEALER/ROUTER ping-pong between two processes over IPC
(:func:`actorfw.bench.raw.raw_round_trips`), the floor of any request and
answer between processes. The ratios are latency over that round trip: how
many raw round trips one committed command costs (a command needs at least
two: client to leader, leader to acceptors and back, then the answer).

A second floor, on the same cluster right after the latency: the message
pattern of a replicated command with no protocol in it
(:class:`~actorfw.bench.actors.QuorumLeader` on the first node, a
:class:`~actorfw.bench.actors.QuorumFollower` on each other one): the client
asks the leader actor, which tells every follower; each node writes a
200-byte record and syncs its storage; the client is answered once a
majority has synced. The ``floor p50`` of those sequential writes is what
any protocol on these nodes and this storage pays per command; ``p50`` minus
it is what Multi-Paxos and the state machine add. Beside it, measured after
the cluster stops, its raw twin (:mod:`actorfw.bench.raw_quorum`): the same
hops and the same synced SQLite writes on pyzmq and ``sqlite3`` alone, one
process per node; ``floor / raw floor`` is what the node runtime costs over
them.

Beside the rate, the CPU time the node processes used during the throughput
figure, per committed command (Linux only, from ``/proc``): on a shared
machine the rate depends on what else runs, the cost of a command much less.

The clients used for throughput wait up to 5 s for a replica before trying
another (the default is 1 s), so that a loaded but healthy cluster is
measured rather than the clients' retries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from actorfw.bench import raw, raw_quorum

__all__ = [
    "APPS",
    "SCALES",
    "TARGETS",
    "PaxosResult",
    "Target",
    "TargetCheck",
    "check_targets",
    "measure_configuration",
    "render",
    "run_paxos",
]

SCALES: dict[str, dict[str, Any]] = {
    "full": {
        "clients": 1024,
        "warmup": 1.0,
        "seconds": 5.0,
        "latency_warmup": 50,
        "latency": 1000,
        "raw": 2000,
    },
    "quick": {
        "clients": 4,
        "warmup": 0.05,
        "seconds": 0.2,
        "latency_warmup": 3,
        "latency": 20,
        "raw": 50,
    },
}
"""How much work each configuration does: ``full`` for figures, ``quick`` to check it runs.

``clients`` concurrent clients for throughput, ``warmup`` then ``seconds`` of
it; ``latency_warmup`` then ``latency`` sequential commands of one client;
``raw`` raw-pyzmq round trips.
"""

APPS = ["actorfw.kv.machine", "actorfw.services.paxos", "actorfw.bench.actors"]
"""The modules every node imports: the state machine, the Paxos role actors, the floor's."""

GROUP = "kv-bench"
KEYS_PER_CLIENT = 64
"""Each throughput client cycles through this many keys of its own."""
THROUGHPUT_TIMEOUT = 5.0
"""Seconds a throughput client waits for one replica before trying another."""


@dataclasses.dataclass(frozen=True)
class PaxosResult:
    """The figures of one configuration, with the raw-pyzmq round trip of the same run.

    Times are in microseconds.
    """

    nodes: int
    storage: str
    batch: int
    """``ReplicaOptions.max_batch``: commands at most in one slot."""
    clients: int
    """Concurrent clients of the throughput measurement."""
    commands: int
    """Commands answered from the end of the warm-up to the last answer."""
    seconds: float
    """Seconds from the end of the warm-up to the last answer."""
    latency_commands: int
    """Sequential commands timed for the latency figures."""
    p50_us: float
    p99_us: float
    mean_us: float
    raw_p50_us: float
    raw_p99_us: float
    node_cpu_seconds: float | None = None
    """CPU time all node processes used during the throughput figure (None: unknown)."""
    load_p50_us: float | None = None
    """Median time from submit to answer of the commands counted for throughput: what
    one of the ``clients`` waits per command at that rate (None: not measured)."""
    floor_p50_us: float | None = None
    """Median of the quorum writes with no protocol in them, on the same cluster (None:
    not measured): the part of ``p50_us`` that the nodes and their storage cost."""
    raw_floor_p50_us: float | None = None
    """Median of the same quorum writes on pyzmq and ``sqlite3`` alone, one process per
    node (:func:`~actorfw.bench.raw_quorum.raw_quorum_writes`; None: not measured)."""

    @property
    def floor_over_raw_floor(self) -> float | None:
        """The runtime's floor over its raw twin: what the node runtime costs per command."""
        if self.floor_p50_us is None or not self.raw_floor_p50_us:
            return None
        return self.floor_p50_us / self.raw_floor_p50_us

    @property
    def node_cpu_us_per_command(self) -> float | None:
        """Node CPU time per committed command, all nodes together: the cost, whatever the load.

        On a shared machine this varies much less than the rate does.
        """
        if self.node_cpu_seconds is None or not self.commands:
            return None
        return self.node_cpu_seconds / self.commands * 1e6

    @property
    def node_cores(self) -> float | None:
        """Cores the node processes kept busy on average during the throughput figure."""
        if self.node_cpu_seconds is None or not self.seconds:
            return None
        return self.node_cpu_seconds / self.seconds

    @property
    def commands_per_second(self) -> float:
        """Committed (applied and answered) commands per second, all clients together."""
        return self.commands / self.seconds if self.seconds else float("nan")

    @property
    def p50_over_raw(self) -> float:
        """Median command latency over the median raw round trip."""
        return self.p50_us / self.raw_p50_us if self.raw_p50_us else float("nan")

    @property
    def p99_over_raw(self) -> float:
        """99th-percentile command latency over the raw round trip's."""
        return self.p99_us / self.raw_p99_us if self.raw_p99_us else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the derived figures."""
        return {
            **dataclasses.asdict(self),
            "commands_per_second": self.commands_per_second,
            "p50_over_raw": self.p50_over_raw,
            "p99_over_raw": self.p99_over_raw,
            "node_cpu_us_per_command": self.node_cpu_us_per_command,
            "node_cores": self.node_cores,
            "floor_over_raw_floor": self.floor_over_raw_floor,
        }


@dataclasses.dataclass(frozen=True)
class Target:
    """A figure the project aims at for one configuration."""

    name: str
    nodes: int
    storage: str
    batch: int
    figure: str
    """``"commands_per_second"`` (at least ``goal``) or ``"p50_us"`` (below ``goal``)."""
    goal: float

    def met_by(self, value: float) -> bool:
        """Whether ``value`` of :attr:`figure` reaches the goal."""
        return value >= self.goal if self.figure == "commands_per_second" else value < self.goal


TARGETS = (
    Target(
        "3 nodes, sqlite, batch 64: >= 20,000 commands/s",
        nodes=3,
        storage="sqlite",
        batch=64,
        figure="commands_per_second",
        goal=20_000.0,
    ),
    Target(
        "3 nodes, sqlite, batch 64: one client's p50 < 1 ms",
        nodes=3,
        storage="sqlite",
        batch=64,
        figure="p50_us",
        goal=1000.0,
    ),
)
"""The project's targets for the replicated KV store on node processes."""


@dataclasses.dataclass(frozen=True)
class TargetCheck:
    """A target beside what was measured for it."""

    target: Target
    measured: float

    @property
    def met(self) -> bool:
        """Whether the measured figure reaches the target."""
        return self.target.met_by(self.measured)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "target": self.target.name,
            "figure": self.target.figure,
            "goal": self.target.goal,
            "measured": self.measured,
            "met": self.met,
        }


def check_targets(results: Iterable[PaxosResult]) -> list[TargetCheck]:
    """The targets whose configuration is among ``results``, each with its measured figure."""
    by_config = {(r.nodes, r.storage, r.batch): r for r in results}
    checks = []
    for target in TARGETS:
        result = by_config.get((target.nodes, target.storage, target.batch))
        if result is not None:
            checks.append(TargetCheck(target, float(getattr(result, target.figure))))
    return checks


def _percentile(times: Sequence[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu_seconds(pids: Sequence[int | None]) -> float | None:
    """CPU time (user and system, every thread) the processes used so far; None if unknown."""
    total = 0
    try:
        tick = os.sysconf("SC_CLK_TCK")
        for pid in pids:
            if pid is None:
                return None
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                # Fields after the command name, which may hold spaces: state is
                # the first, utime and stime the 12th and 13th.
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None  # not Linux, or a process is gone
    return total / tick


async def _throughput(
    group: Any,
    clients: int,
    warmup: float,
    seconds: float,
    cpu: Callable[[], float | None] = lambda: None,
) -> tuple[int, float, float | None, list[float]]:
    """Throughput: ``(commands, seconds, cpu seconds, latencies)`` from the end of the warm-up.

    The commands answered from the end of the warm-up to the last answer,
    that time, how much ``cpu()`` grew meanwhile (None if unknown), and the
    seconds from submit to answer of each of those commands.
    """
    workers = [
        group.async_client(timeout=THROUGHPUT_TIMEOUT, deadline=60.0) for _ in range(clients)
    ]
    # One command each: the leader is elected and known to every client.
    await asyncio.gather(*(w.call(["put", f"c{j}-0", 0]) for j, w in enumerate(workers)))
    clock = time.perf_counter
    start = clock() + warmup
    end = start + seconds
    cpu_at_start: list[float | None] = [None]

    def take_cpu() -> None:
        cpu_at_start[0] = cpu()

    asyncio.get_running_loop().call_later(warmup, take_cpu)
    counts = [0] * clients
    last = [0] * clients
    finished = [end] * clients
    times: list[float] = []

    async def work(j: int, client: Any) -> None:
        i = 1
        while True:
            began = clock()
            await client.call(["put", f"c{j}-{i % KEYS_PER_CLIENT}", i])
            now = clock()
            if now >= start:
                counts[j] += 1
                times.append(now - began)
            if now >= end:
                last[j], finished[j] = i, now
                return
            i += 1

    await asyncio.gather(*(work(j, w) for j, w in enumerate(workers)))
    cpu_at_end, began = cpu(), cpu_at_start[0]
    cpu_used = cpu_at_end - began if cpu_at_end is not None and began is not None else None
    # Sanity: the last value each of two clients wrote is what the store holds.
    for j in {0, clients - 1}:
        key = f"c{j}-{last[j] % KEYS_PER_CLIENT}"
        held = await workers[j].call(["get", key])
        if held != last[j]:
            raise RuntimeError(
                f"the replicated KV store holds {held!r} at {key!r}, but client {j} last wrote "
                f"{last[j]} there"
            )
    return sum(counts), max(finished) - start, cpu_used, times


async def _floor(leader: Any, warmup: int, count: int) -> list[float]:
    """Seconds from ask to answer of ``count`` sequential quorum writes (no protocol)."""
    from actorfw.bench.actors import QuorumWrite

    for i in range(warmup):
        await leader.ask(QuorumWrite(i), timeout=10.0)
    clock = time.perf_counter
    times = []
    for i in range(warmup, warmup + count):
        began = clock()
        answered = await leader.ask(QuorumWrite(i), timeout=10.0)
        times.append(clock() - began)
        if answered != i:
            raise RuntimeError(f"quorum write {i} was answered with {answered!r}")
    return times


async def _latencies(group: Any, warmup: int, count: int) -> list[float]:
    """Seconds from submit to answer of ``count`` sequential commands of one client."""
    client = group.async_client()
    for i in range(warmup):
        await client.call(["put", "latency", i])
    clock = time.perf_counter
    times = []
    for i in range(count):
        began = clock()
        await client.call(["put", "latency", i])
        times.append(clock() - began)
    held = await client.call(["get", "latency"])
    if count and held != count - 1:
        raise RuntimeError(f"the replicated KV store holds {held!r}, not {count - 1}, at 'latency'")
    return times


def measure_configuration(
    nodes: int,
    storage: str,
    batch: int,
    scale: str = "full",
    clients: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> PaxosResult:
    """Measure one configuration on a fresh cluster, then its raw baseline.

    Args:
        nodes: node processes, each running an acceptor, a leader and a replica.
        storage: ``"sqlite"`` or ``"memory"`` (see :class:`~actorfw.node.ActorSystem`).
        batch: the replicas' ``max_batch``.
        scale: a key of :data:`SCALES`.
        clients: concurrent clients for throughput (default: the scale's).
        progress: called with a short description before each step.
    """
    from actorfw.bench.actors import QuorumFollower, QuorumLeader, QuorumSetup
    from actorfw.kv import KVStateMachine
    from actorfw.node import ActorSystem
    from actorfw.protocols.paxos.types import ReplicaOptions
    from actorfw.services.replication import replicate

    settings = SCALES[scale]
    if clients is None:
        clients = settings["clients"]
    if clients < 1:
        raise ValueError(f"clients must be at least 1, not {clients}")
    label = f"{nodes} nodes, {storage}, batch {batch}"

    def note(text: str) -> None:
        if progress is not None:
            progress(f"{text} ({label})")

    note("starting the cluster")
    with ActorSystem(nodes, apps=APPS, storage=storage) as system:
        group = replicate(
            system, KVStateMachine, name=GROUP, replica_options=ReplicaOptions(max_batch=batch)
        )
        window = settings["warmup"] + settings["seconds"]
        note(f"throughput, {clients} clients")
        pids = [system.pid(node) for node in system.nodes]
        commands, seconds, cpu_used, loaded = system.run(
            _throughput(
                group, clients, settings["warmup"], settings["seconds"], lambda: _cpu_seconds(pids)
            ),
            timeout=window + 120.0,
        )
        note("latency, one client")
        times: list[float] = system.run(
            _latencies(group, settings["latency_warmup"], settings["latency"]),
            timeout=120.0 + settings["latency"] * 0.05,
        )
        note("floor: quorum writes with no protocol")
        first, *others = system.nodes
        floor_leader = system.spawn(first, QuorumLeader, name="floor-leader")
        followers = tuple(system.spawn(n, QuorumFollower, name="floor-follower") for n in others)
        system.ask(floor_leader, QuorumSetup(followers, nodes // 2 + 1))
        floor: list[float] = system.run(
            _floor(floor_leader, settings["latency_warmup"], settings["latency"]),
            timeout=120.0 + settings["latency"] * 0.05,
        )
    note("raw pyzmq round trips")
    base = raw.raw_round_trips("ipc", settings["raw"])
    note("raw floor: the same quorum writes on pyzmq and sqlite3 alone")
    raw_floor = raw_quorum.raw_quorum_writes(
        nodes, storage == "sqlite", settings["latency_warmup"], settings["latency"]
    )
    return PaxosResult(
        nodes=nodes,
        storage=storage,
        batch=batch,
        clients=clients,
        commands=commands,
        seconds=seconds,
        latency_commands=len(times),
        p50_us=_percentile(times, 0.5) * 1e6,
        p99_us=_percentile(times, 0.99) * 1e6,
        mean_us=statistics.fmean(times) * 1e6,
        raw_p50_us=_percentile(base, 0.5) * 1e6,
        raw_p99_us=_percentile(base, 0.99) * 1e6,
        node_cpu_seconds=cpu_used,
        load_p50_us=_percentile(loaded, 0.5) * 1e6 if loaded else None,
        floor_p50_us=_percentile(floor, 0.5) * 1e6 if floor else None,
        raw_floor_p50_us=_percentile(raw_floor, 0.5) * 1e6 if raw_floor else None,
    )


def run_paxos(
    scale: str = "full",
    nodes: Sequence[int] = (3, 5),
    storages: Sequence[str] = ("sqlite", "memory"),
    batches: Sequence[int] = (1, 64),
    clients: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[PaxosResult]:
    """Measure every configuration (each a fresh cluster), in that order; returns the figures.

    Args:
        scale: ``"full"`` or ``"quick"`` (see :data:`SCALES`).
        nodes, storages, batches: the configurations: every combination.
        clients: concurrent clients for throughput (default: the scale's).
        progress: called with a short description before each step.
    """
    if scale not in SCALES:
        raise ValueError(f"scale is one of {', '.join(SCALES)}, not {scale!r}")
    for storage in storages:
        if storage not in ("sqlite", "memory"):
            raise ValueError(f"storage is 'sqlite' or 'memory', not {storage!r}")
    for n in nodes:
        if n < 1:
            raise ValueError(f"a cluster needs at least one node, not {n}")
    for batch in batches:
        if batch < 1:
            raise ValueError(f"a batch holds at least one command, not {batch}")
    return [
        measure_configuration(n, storage, batch, scale, clients, progress)
        for n in nodes
        for storage in storages
        for batch in batches
    ]


def render(results: Sequence[PaxosResult]) -> str:
    """The figures as a plain-text table, then the targets and whether they are met."""
    rows = [
        [
            "nodes",
            "storage",
            "batch",
            "clients",
            "commands/s",
            "load p50",
            "p50",
            "p99",
            "floor p50",
            "raw floor",
            "floor / raw floor",
            "raw p50",
            "p50 / raw",
            "p99 / raw",
            "node CPU / cmd",
        ]
    ]
    for r in results:
        cpu = r.node_cpu_us_per_command
        loaded = "-" if r.load_p50_us is None else f"{r.load_p50_us / 1000:,.1f} ms"
        floor = "-" if r.floor_p50_us is None else f"{r.floor_p50_us:,.0f} µs"
        raw_floor = "-" if r.raw_floor_p50_us is None else f"{r.raw_floor_p50_us:,.0f} µs"
        over = r.floor_over_raw_floor
        rows.append(
            [
                str(r.nodes),
                r.storage,
                str(r.batch),
                str(r.clients),
                f"{r.commands_per_second:,.0f}",
                loaded,
                f"{r.p50_us:,.0f} µs",
                f"{r.p99_us:,.0f} µs",
                floor,
                raw_floor,
                "-" if over is None else f"{over:.2f}",
                f"{r.raw_p50_us:,.1f} µs",
                f"{r.p50_over_raw:,.1f}",
                f"{r.p99_over_raw:,.1f}",
                "-" if cpu is None else f"{cpu:,.0f} µs",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [c.ljust(widths[i]) if i == 1 else c.rjust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    checks = check_targets(results)
    if checks:
        lines.append("")
        for check in checks:
            if check.target.figure == "commands_per_second":
                measured = f"{check.measured:,.0f} commands/s"
            else:
                measured = f"p50 {check.measured / 1000:.2f} ms"
            verdict = "met" if check.met else "NOT met"
            lines.append(f"target {check.target.name}: {verdict} (measured {measured})")
    return "\n".join(lines)
