"""Primary-backup beside Multi-Paxos: the same KV store, the same nodes, the same run.

Each round starts a fresh cluster of 3 node processes with durable storage
(SQLite, a sync before anything that depends on a write leaves) for each
scheme in turn, and measures on it what :mod:`actorfw.bench.paxos` measures
(the same clients, the same commands):

- **throughput**: many concurrent clients (one command outstanding each),
  commands answered per second after a warm-up, with the node processes'
  CPU time per command; Multi-Paxos batches up to 64 commands per slot,
  the primary up to ``PrimaryOptions.max_batch`` per Append;
- **latency**: one client's sequential commands, p50 and p99;
- **failover**: on a third fresh cluster of each scheme, under a load of
  ``failover_clients`` clients, the leader (Paxos) or the primary
  (primary-backup) is killed with SIGKILL; the figure is the time from the
  kill to the first command answered by another node;
- **switchover** (primary-backup only), on the same cluster before the
  kill: the primary's role is handed to a backup under that load; the
  figures are how long the switchover took and the longest time in which
  no client was answered around it.

Primary-backup runs in both modes: ``sync`` (every in-sync backup holds a
write before it is acknowledged) and ``async`` (the primary's own durable
write alone; see ``docs/primary-backup.md`` for what a failover may lose).

The schemes alternate within each round (Paxos, then primary-backup in
``sync`` mode, then in ``async`` mode), so
that both see the machine in the same state; each figure is the median
over the rounds. The ratios are primary-backup's over Multi-Paxos': the
baseline is measured in the same run.

The view service of a primary-backup group is a Multi-Paxos group on the
same nodes; its traffic (lease renewals every third of a lease, reports of
the log's end every second, view reads every fifth of a lease) is part of
what primary-backup's figures cost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from actorfw.bench.paxos import _cpu_seconds, _latencies, _percentile, _throughput

__all__ = [
    "SCALES",
    "SCHEMES",
    "Comparison",
    "ReplicationResult",
    "compare",
    "measure",
    "render",
    "run_replication",
]

SCHEMES = ("paxos", "primary-backup", "primary-backup-async")
"""The replication schemes compared, the baseline first (the last is primary-backup, async)."""

SCALES: dict[str, dict[str, Any]] = {
    "full": {
        "clients": 1024,
        "warmup": 1.0,
        "seconds": 5.0,
        "latency_warmup": 50,
        "latency": 1000,
        "failover_clients": 16,
        "rounds": 3,
    },
    "quick": {
        "clients": 4,
        "warmup": 0.05,
        "seconds": 0.2,
        "latency_warmup": 3,
        "latency": 20,
        "failover_clients": 2,
        "rounds": 1,
    },
}
"""How much work each round does: ``full`` for figures, ``quick`` to check it runs."""

APPS = ["actorfw.kv.machine", "actorfw.services.paxos", "actorfw.services.primary_backup"]
GROUP = "kv-bench"
NODES = 3
PAXOS_BATCH = 64


@dataclasses.dataclass(frozen=True)
class ReplicationResult:
    """One scheme's figures in one round (times in microseconds)."""

    scheme: str
    mode: str
    """``sync`` or ``async`` for primary-backup; ``-`` for Multi-Paxos."""
    clients: int
    commands: int
    seconds: float
    p50_us: float
    p99_us: float
    failover_s: float | None
    """Seconds from the SIGKILL of the leader or primary to the first command answered by
    another node (None: not measured)."""
    node_cpu_seconds: float | None = None
    client_cpu_seconds: float | None = None
    switchover_s: float | None = None
    """Seconds a planned switchover took under load (None: not measured)."""
    switchover_gap_s: float | None = None
    """The longest stretch with no answer to any client around the switchover."""
    """CPU time the driving process (the clients) used during the throughput figure."""

    @property
    def commands_per_second(self) -> float:
        """Commands answered per second, all clients together."""
        return self.commands / self.seconds if self.seconds else float("nan")

    @property
    def node_cpu_us_per_command(self) -> float | None:
        """Node CPU time per command, all nodes together (None: unknown)."""
        if self.node_cpu_seconds is None or not self.commands:
            return None
        return self.node_cpu_seconds / self.commands * 1e6

    @property
    def client_cpu_us_per_command(self) -> float | None:
        """The clients' CPU time per command (None: unknown)."""
        if self.client_cpu_seconds is None or not self.commands:
            return None
        return self.client_cpu_seconds / self.commands * 1e6

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the derived figures."""
        return {
            **dataclasses.asdict(self),
            "commands_per_second": self.commands_per_second,
            "node_cpu_us_per_command": self.node_cpu_us_per_command,
            "client_cpu_us_per_command": self.client_cpu_us_per_command,
        }


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Primary-backup's medians over Multi-Paxos' medians, from the same rounds."""

    rounds: int
    rate_ratio: float
    """Commands/s of primary-backup over Multi-Paxos' (target: at least 1.3)."""
    p50_ratio: float
    """One client's p50 of primary-backup over Multi-Paxos' (target: at most 0.7)."""
    cpu_ratio: float | None
    """Node CPU per command of primary-backup over Multi-Paxos' (None: unknown)."""
    failover_s: dict[str, float | None]
    """Each scheme's median failover time, in seconds."""
    async_rate_ratio: float | None = None
    """Commands/s of primary-backup in ``async`` mode over Multi-Paxos' (None: not run)."""
    async_p50_ratio: float | None = None
    """One client's p50 in ``async`` mode over Multi-Paxos' (None: not run)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with whether each target (``sync`` mode's) is met."""
        return {
            **dataclasses.asdict(self),
            "rate_target_met": self.rate_ratio >= 1.3,
            "p50_target_met": self.p50_ratio <= 0.7,
        }


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def compare(results: Sequence[ReplicationResult]) -> Comparison:
    """The ratios of the medians over the rounds in ``results``."""
    by = {s: [r for r in results if r.scheme == s] for s in SCHEMES}
    paxos, backup = by["paxos"], by["primary-backup"]
    if not paxos or not backup:
        raise ValueError("a comparison needs figures of Multi-Paxos and primary-backup (sync)")

    def ratio(
        f: Callable[[ReplicationResult], float | None], scheme: str = "primary-backup"
    ) -> float | None:
        a, b = _median([f(r) for r in by[scheme]]), _median([f(r) for r in paxos])
        return a / b if a is not None and b else None

    return Comparison(
        rounds=min(len(paxos), len(backup)),
        rate_ratio=ratio(lambda r: r.commands_per_second) or float("nan"),
        p50_ratio=ratio(lambda r: r.p50_us) or float("nan"),
        cpu_ratio=ratio(lambda r: r.node_cpu_us_per_command),
        failover_s={s: _median([r.failover_s for r in by[s]]) for s in SCHEMES if by[s]},
        async_rate_ratio=ratio(lambda r: r.commands_per_second, "primary-backup-async"),
        async_p50_ratio=ratio(lambda r: r.p50_us, "primary-backup-async"),
    )


def _start(system: Any, scheme: str) -> Any:
    from actorfw.kv import KVStateMachine
    from actorfw.protocols.paxos.types import ReplicaOptions
    from actorfw.protocols.primary_backup import MemberOptions, PrimaryOptions
    from actorfw.services.replication import replicate

    if scheme == "paxos":
        options = ReplicaOptions(max_batch=PAXOS_BATCH)
        return replicate(system, KVStateMachine, name=GROUP, replica_options=options)
    member = MemberOptions(PrimaryOptions(mode=_mode(scheme)))
    return replicate(
        system, KVStateMachine, name=GROUP, replication="primary-backup", member_options=member
    )


def _mode(scheme: str) -> str:
    """Primary-backup's mode in ``scheme`` ("-" for Multi-Paxos)."""
    return "-" if scheme == "paxos" else "async" if scheme.endswith("-async") else "sync"


async def _failover(
    group: Any, system: Any, clients: int, switch: bool
) -> tuple[float, float | None, float | None]:
    """Seconds from killing the node that answers to the first answer from another node.

    With ``switch``, a planned switchover first: how long it took, and the
    longest stretch without an answer around it.
    """
    from actorfw.services.primary_backup import switchover

    workers = [group.async_client(timeout=0.5, deadline=60.0) for _ in range(clients)]
    await asyncio.gather(*(w.call(["put", f"f{j}", 0]) for j, w in enumerate(workers)))
    killed_at: list[float] = []
    first: list[float] = []
    answered: list[float] = []
    stop = asyncio.Event()
    leader = [workers[0].leader]

    async def work(j: int, client: Any) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            await client.call(["put", f"f{j}", i])
            answered.append(time.perf_counter())
            if killed_at and client.leader != leader[0] and not first:
                first.append(time.perf_counter())
                stop.set()

    tasks = [asyncio.ensure_future(work(j, w)) for j, w in enumerate(workers)]
    await asyncio.sleep(0.3)
    took = gap = None
    if switch:
        to = next(n for n in group.nodes if n != leader[0])
        began = time.perf_counter()
        view = await switchover(group.name, group.nodes, to)
        took = time.perf_counter() - began
        await asyncio.sleep(0.3)
        window = sorted(t for t in answered if began - 0.3 <= t <= began + took + 0.3)
        gap = max((b - a for a, b in itertools.pairwise(window)), default=None)
        leader[0] = view["primary"]
        await asyncio.sleep(0.2)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, system.crash, leader[0])  # SIGKILL; waits for the exit
    killed_at.append(time.perf_counter())
    try:
        await asyncio.wait_for(stop.wait(), 60.0)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return first[0] - killed_at[0], took, gap


def measure(
    scheme: str, scale: str = "full", progress: Callable[[str], None] | None = None
) -> ReplicationResult:
    """One round of one scheme: throughput and latency on one cluster, failover on another."""
    from actorfw.node import ActorSystem

    if scheme not in SCHEMES:
        raise ValueError(f"scheme is one of {', '.join(SCHEMES)}, not {scheme!r}")
    settings = SCALES[scale]

    def note(text: str) -> None:
        if progress is not None:
            progress(f"{scheme}: {text}")

    note("throughput")
    with ActorSystem(NODES, apps=APPS, storage="sqlite") as system:
        group = _start(system, scheme)
        pids = [system.pid(node) for node in system.nodes]
        clients_cpu: list[float] = []

        def cpu() -> float | None:
            # the driving process's CPU beside the nodes', at the same two moments
            clients_cpu.append(time.process_time())
            return _cpu_seconds(pids)

        commands, seconds, cpu_used, _ = system.run(
            _throughput(group, settings["clients"], settings["warmup"], settings["seconds"], cpu),
            timeout=settings["warmup"] + settings["seconds"] + 120.0,
        )
        client_cpu = clients_cpu[-1] - clients_cpu[0] if len(clients_cpu) == 2 else None
        note("latency, one client")
        times: list[float] = system.run(
            _latencies(group, settings["latency_warmup"], settings["latency"]),
            timeout=120.0 + settings["latency"] * 0.05,
        )
    note("failover")
    with ActorSystem(NODES, apps=APPS, storage="sqlite") as system:
        group = _start(system, scheme)
        failover, switch_s, switch_gap = system.run(
            _failover(group, system, settings["failover_clients"], scheme != "paxos"),
            timeout=120,
        )
    return ReplicationResult(
        scheme=scheme,
        mode=_mode(scheme),
        clients=settings["clients"],
        commands=commands,
        seconds=seconds,
        p50_us=_percentile(times, 0.5) * 1e6,
        p99_us=_percentile(times, 0.99) * 1e6,
        failover_s=failover,
        node_cpu_seconds=cpu_used,
        client_cpu_seconds=client_cpu,
        switchover_s=switch_s,
        switchover_gap_s=switch_gap,
    )


def run_replication(
    scale: str = "full",
    rounds: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ReplicationResult]:
    """``rounds`` rounds (default: the scale's), each scheme in turn; every figure measured."""
    if scale not in SCALES:
        raise ValueError(f"scale is one of {', '.join(SCALES)}, not {scale!r}")
    count = SCALES[scale]["rounds"] if rounds is None else rounds
    if count < 1:
        raise ValueError(f"rounds must be at least 1, not {count}")
    results = []
    for n in range(count):
        for scheme in SCHEMES:
            results.append(
                measure(scheme, scale, None if progress is None else _prefix(progress, n))
            )
    return results


def _prefix(progress: Callable[[str], None], n: int) -> Callable[[str], None]:
    return lambda text: progress(f"round {n + 1}, {text}")


def render(results: Sequence[ReplicationResult]) -> str:
    """Every round's figures, then the ratios of the medians and the targets."""
    rows = [
        [
            "scheme",
            "mode",
            "clients",
            "commands/s",
            "node CPU / cmd",
            "client CPU / cmd",
            "p50",
            "p99",
            "failover",
            "switchover (pause)",
        ]
    ]
    for r in results:
        per_command = r.node_cpu_us_per_command
        client = r.client_cpu_us_per_command
        rows.append(
            [
                r.scheme,
                r.mode,
                str(r.clients),
                f"{r.commands_per_second:,.0f}",
                "-" if per_command is None else f"{per_command:,.0f} µs",
                "-" if client is None else f"{client:,.0f} µs",
                f"{r.p50_us:,.0f} µs",
                f"{r.p99_us:,.0f} µs",
                "-" if r.failover_s is None else f"{r.failover_s:.2f} s",
                "-"
                if r.switchover_s is None
                else f"{r.switchover_s * 1e3:.0f} ms ({(r.switchover_gap_s or 0) * 1e3:.0f} ms)",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    c = compare(results)
    cpu_ratio = "-" if c.cpu_ratio is None else f"{c.cpu_ratio:.2f}"
    lines += [
        "",
        f"primary-backup (sync) over Multi-Paxos, medians of {c.rounds} round(s): "
        f"commands/s {c.rate_ratio:.2f} (target >= 1.3: "
        f"{'met' if c.rate_ratio >= 1.3 else 'NOT met'}), one client's p50 "
        f"{c.p50_ratio:.2f} (target <= 0.7: {'met' if c.p50_ratio <= 0.7 else 'NOT met'}), "
        f"node CPU per command {cpu_ratio}",
    ]
    if c.async_rate_ratio is not None and c.async_p50_ratio is not None:
        lines.append(
            f"primary-backup (async) over Multi-Paxos: commands/s {c.async_rate_ratio:.2f}, "
            f"one client's p50 {c.async_p50_ratio:.2f}"
        )
    return "\n".join(lines)
