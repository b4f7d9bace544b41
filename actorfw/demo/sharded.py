"""``actorfw demo --sharded``: shards move between groups under load, through a SIGKILL.

The demo starts four node processes (SQLite storage, synced before
anything is acknowledged) in a temporary directory, with a shard manager
on three of them and four replica groups of the sharded KV store, each on
three of the four nodes. Groups ``g1``, ``g2`` and ``g3`` are joined from
the start; clients run exactly-once operations on keys of every shard for
``duration`` seconds while a progress line shows what happens:

1. at ``join_at`` of the run, ``g4`` joins: a quarter of the shards move
   to it; the node that hosts the shard manager's first replica and three
   of the groups (``g4`` among them) is SIGKILLed at once, during the
   move, and restarted on its data directory at ``restart_at``;
2. at ``leave_at``, ``g2`` leaves: its shards move to the others;
3. at the end the demo waits for every group to take the latest
   configuration with every moved shard deleted where it came from, checks
   every key's history for linearizability with :mod:`actorfw.check`,
   stops every process, removes the directory and verifies that no process
   and no file is left.

For each move it reports the shards moved, the time until every group
held what it owned, and the time the move left the moved shards' keys
unavailable: the longest an operation on one of them waited for its
answer, among those invoked while the move was under way. The process
exits 1 if anything is wrong.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from actorfw.check import History, KeyValue, Status, Verdict, check
from actorfw.demo import _alive, _percentile, _Progress
from actorfw.kv.sharded import ShardedKV
from actorfw.protocols.sharding import Configuration, shard_of
from actorfw.services.replication import SessionExpiredError, Unavailable
from actorfw.services.sharding import AsyncShardedClient, ShardedCluster

__all__ = ["ShardedDemoOptions", "ShardedDemoReport", "render", "run_sharded_demo", "to_json"]

SHARDS = 16
_APPS = ["actorfw.kv.sharded", "actorfw.services.sharding", "actorfw.services.paxos"]


@dataclasses.dataclass(frozen=True)
class ShardedDemoOptions:
    """What the sharded demo runs (the ``actorfw demo --sharded`` options).

    Attributes:
        duration: seconds of client workload.
        clients: concurrent exactly-once clients.
        keys: keys the workload touches (spread over the shards).
        seed: the workload's random seed (None: a fresh one).
        join_at, restart_at, leave_at: when ``g4`` joins (and a node is
            killed), when it is restarted and when ``g2`` leaves, as
            fractions of ``duration``.
    """

    duration: float = 20.0
    clients: int = 16
    keys: int = 48
    seed: int | None = None
    join_at: float = 0.2
    restart_at: float = 0.4
    leave_at: float = 0.6

    def __post_init__(self) -> None:
        if not self.duration >= 5.0:
            raise ValueError("the sharded demo needs a duration of at least 5 seconds")
        if self.clients < 1 or self.keys < SHARDS:
            raise ValueError(f"the sharded demo needs at least 1 client and {SHARDS} keys")
        if not 0.0 < self.join_at < self.restart_at < self.leave_at < 1.0:
            raise ValueError("need 0 < join_at < restart_at < leave_at < 1")


@dataclasses.dataclass
class Move:
    """One configuration change and what it cost."""

    change: str
    configuration: int
    shards: list[int]
    settled_s: float | None = None
    unavailable_max_s: float | None = None
    unavailable_median_s: float | None = None


@dataclasses.dataclass
class ShardedDemoReport:
    """What the sharded demo measured; :meth:`problems` lists what went wrong."""

    clients: int
    duration: float
    seed: int
    operations: int = 0
    ok: int = 0
    indeterminate: int = 0
    throughput: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    redirects: int = 0
    moves: list[Move] = dataclasses.field(default_factory=list)
    killed: str | None = None
    restarted: bool = False
    settled: bool = False
    verdict: str = "not checked"
    verdict_detail: str = ""
    check_s: float = 0.0
    processes_left: int | None = None
    files_left: bool | None = None
    errors: list[str] = dataclasses.field(default_factory=list)

    def problems(self) -> list[str]:
        """Everything that makes the run a failure."""
        out = list(self.errors)
        if self.verdict != "linearizable":
            out.append(f"history {self.verdict}: {self.verdict_detail}")
        if self.ok == 0:
            out.append("no operation completed")
        if len(self.moves) < 2:
            out.append("the two rebalances did not both happen")
        if any(move.settled_s is None for move in self.moves):
            out.append("a move did not finish")
        if self.killed is None or not self.restarted:
            out.append("the node was not killed and restarted during the move")
        if not self.settled:
            out.append("the groups did not settle on the last configuration")
        if self.processes_left:
            out.append(f"{self.processes_left} node process(es) left running")
        if self.files_left:
            out.append("the temporary directory was left behind")
        return out

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        out = dataclasses.asdict(self)
        out["problems"] = self.problems()
        out["passed"] = not out["problems"]
        return out


class _Workload:
    """Sharded clients on the driver's loop; the main thread reads the counters."""

    def __init__(self, options: ShardedDemoOptions, seed: int, manager: list[str]) -> None:
        self.options = options
        self.seed = seed
        self.manager = manager
        self.history = History()
        self.samples: list[tuple[int, float, float]] = []  # (shard, invoked, answered)
        self.completed = 0
        self.redirects = 0
        self.stopping = False
        self.t0 = time.monotonic()
        self.failures: list[str] = []

    async def run(self) -> None:
        await asyncio.gather(*(self._client(index) for index in range(self.options.clients)))

    async def _client(self, index: int) -> None:
        rng = random.Random(f"{self.seed}-{index}")
        client = AsyncShardedClient(
            "shards", self.manager, f"demo-{self.seed}-{index}", timeout=0.5, deadline=10.0
        )
        name = f"c{index}"
        counter = 0
        try:
            while not self.stopping:
                key = f"k{rng.randrange(self.options.keys)}"
                counter += 1
                roll = rng.random()
                value: Any = None
                if roll < 0.4:
                    f = "get"
                elif roll < 0.85:
                    f, value = "append", f"{index}.{counter};"
                else:
                    f, value = "put", ""  # keeps the strings short
                start = time.monotonic()
                record = self.history.invoke(name, f, key, value, time=start - self.t0)
                try:
                    result = await client.call([f, key, value])
                except (Unavailable, SessionExpiredError):
                    self.history.info(record)
                    continue
                end = time.monotonic()
                self.history.ok(record, result, time=end - self.t0)
                self.samples.append((shard_of(key, SHARDS), start, end))
                self.completed += 1
        except Exception as error:  # anything else is a bug the summary must show
            self.failures.append(f"client {name}: {type(error).__name__}: {error}")
            self.stopping = True
        finally:
            self.redirects += client.redirects


def run_sharded_demo(
    options: ShardedDemoOptions, out: TextIO = sys.stdout, history_file: str | None = None
) -> ShardedDemoReport:
    """Run the sharded demo, printing progress to ``out``; returns what it measured."""
    from actorfw.node import ActorSystem

    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1 << 31)
    report = ShardedDemoReport(options.clients, options.duration, seed)
    progress = _Progress(out, options.duration)
    base_dir = Path(tempfile.mkdtemp(prefix="actorfw-demo-"))
    pids: set[int] = set()
    workload: _Workload | None = None
    print(
        f"actorfw demo --sharded: 4 node processes, a shard manager and 4 groups of the sharded "
        f"KV store ({SHARDS} shards) on SQLite in {base_dir}, {options.clients} clients for "
        f"{options.duration:g} s (seed {seed})",
        file=out,
        flush=True,
    )
    try:
        with ActorSystem(4, apps=_APPS, base_dir=base_dir, log_level=logging.ERROR) as system:
            nodes = list(system.nodes)
            pids.update(pid for pid in map(system.pid, nodes) if pid is not None)
            groups = {f"g{i + 1}": [nodes[(i + j) % 4] for j in range(3)] for i in range(4)}
            manager = nodes[:3]
            cluster = ShardedCluster.start(
                system, ShardedKV, shards=SHARDS, manager_nodes=manager, client_id=f"demo-{seed}"
            )
            for group, members in groups.items():
                cluster.start_group(group, members)
            first = cluster.join({g: groups[g] for g in ("g1", "g2", "g3")})
            progress.event(0.0, f"configuration {first.num}: g1, g2, g3 joined")
            workload = _Workload(options, seed, manager)
            _drive(system, cluster, groups, workload, options, report, progress, pids)
            progress.done()
    except Exception as error:
        progress.done()
        report.errors.append(f"{type(error).__name__}: {error}")
    finally:
        report.processes_left = sum(1 for pid in pids if _alive(pid))
        shutil.rmtree(base_dir, ignore_errors=True)
        report.files_left = base_dir.exists()
    if workload is not None:
        _summarize(workload, report, history_file)
    return report


def _moved(before: Configuration, after: Configuration) -> list[int]:
    return [s for s, (a, b) in enumerate(zip(before.shards, after.shards, strict=True)) if a != b]


def _drive(
    system: Any,
    cluster: ShardedCluster,
    groups: dict[str, list[str]],
    workload: _Workload,
    options: ShardedDemoOptions,
    report: ShardedDemoReport,
    progress: _Progress,
    pids: set[int],
) -> None:
    future = system.start(workload.run())
    start = time.monotonic()
    join_time = start + options.join_at * options.duration
    restart_time = start + options.restart_at * options.duration
    leave_time = start + options.leave_at * options.duration
    end_time = start + options.duration
    pending: list[tuple[Move, float]] = []  # moves not settled yet, with their start
    windows: list[tuple[Move, float, float]] = []
    victim = groups["g4"][1]  # hosts g4, g1 and g3 and a shard manager replica
    rate_mark, rate = (start, 0), 0.0
    while not future.done():
        now = time.monotonic()
        elapsed = now - start
        if now >= end_time or workload.stopping:
            workload.stopping = True
        if not report.moves and now >= join_time:
            before = cluster.configuration()
            after = cluster.join({"g4": groups["g4"]})
            move = Move("join g4", after.num, _moved(before, after))
            report.moves.append(move)
            pending.append((move, time.monotonic()))
            progress.event(
                elapsed, f"g4 joins: {len(move.shards)} shards move (config {after.num})"
            )
            system.crash(victim)
            report.killed = victim
            progress.event(time.monotonic() - start, f"SIGKILL {victim} during the move")
        if report.killed and not report.restarted and now >= restart_time:
            system.restart(victim)
            report.restarted = True
            pid = system.pid(victim)
            if pid is not None:
                pids.add(pid)
            progress.event(time.monotonic() - start, f"restarted {victim} (pid {pid})")
        if len(report.moves) == 1 and now >= leave_time:
            before = cluster.configuration()
            after = cluster.leave(["g2"])
            move = Move("leave g2", after.num, _moved(before, after))
            report.moves.append(move)
            pending.append((move, time.monotonic()))
            progress.event(
                elapsed, f"g2 leaves: {len(move.shards)} shards move (config {after.num})"
            )
        if pending and cluster.settled():
            for move, began in pending:
                move.settled_s = time.monotonic() - began
                windows.append((move, began, time.monotonic()))
                progress.event(
                    time.monotonic() - start,
                    f"{move.change}: every group holds its shards, {move.settled_s:.2f} s after",
                )
            pending = []
        if now - rate_mark[0] >= 1.0:
            rate = (workload.completed - rate_mark[1]) / (now - rate_mark[0])
            rate_mark = (now, workload.completed)
        latest = str(report.moves[-1].configuration if report.moves else 1)
        progress.update(min(elapsed, options.duration), workload.completed, rate, latest, "config")
        try:
            future.result(timeout=0.1)
        except TimeoutError:
            pass
    future.result()
    report.duration = time.monotonic() - start
    give_up = time.monotonic() + 30.0
    while not cluster.settled() and time.monotonic() < give_up:
        time.sleep(0.05)
    report.settled = cluster.settled()
    for move, began in pending:
        if report.settled:
            move.settled_s = time.monotonic() - began
            windows.append((move, began, time.monotonic()))
    for move, began, ended in windows:
        moved = set(move.shards)
        waits = sorted(
            answered - invoked
            for shard, invoked, answered in workload.samples
            if shard in moved and began <= invoked <= ended
        )
        if waits:
            move.unavailable_max_s = waits[-1]
            move.unavailable_median_s = waits[len(waits) // 2]


def _summarize(workload: _Workload, report: ShardedDemoReport, history_file: str | None) -> None:
    history = workload.history
    for op in history.pending:
        history.info(op)
    report.errors.extend(workload.failures[:5])
    report.operations = len(history)
    report.ok = workload.completed
    report.indeterminate = sum(1 for op in history if op.status is Status.INFO)
    report.redirects = workload.redirects
    report.throughput = workload.completed / report.duration if report.duration else 0.0
    latencies = [answered - invoked for _, invoked, answered in workload.samples]
    if latencies:
        report.latency_p50_ms = 1e3 * _percentile(latencies, 0.50)
        report.latency_p99_ms = 1e3 * _percentile(latencies, 0.99)
    if history_file is not None:
        try:
            history.to_jsonl(history_file)
        except OSError as error:
            report.errors.append(f"the history could not be written to {history_file}: {error}")
    result = check(history, KeyValue(), timeout=60.0)
    report.verdict = {
        Verdict.OK: "linearizable",
        Verdict.VIOLATION: "NOT linearizable",
        Verdict.UNKNOWN: "undecided",
    }[result.verdict]
    report.verdict_detail = str(result)
    report.check_s = result.elapsed


def render(report: ShardedDemoReport) -> str:
    """The summary table."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} ms"

    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    rows = [
        (
            "operations",
            f"{report.operations:,} ({report.ok:,} ok, {report.indeterminate:,} indeterminate)",
        ),
        ("throughput", f"{report.throughput:,.0f} ops/s over {report.duration:.1f} s"),
        ("latency p50 / p99", f"{ms(report.latency_p50_ms)} / {ms(report.latency_p99_ms)}"),
        ("redirects", f"{report.redirects:,} (operations sent again after a move)"),
    ]
    for move in report.moves:
        rows.append(
            (
                move.change,
                f"config {move.configuration}: {len(move.shards)} shards moved, all held after "
                f"{s(move.settled_s)}; their keys unavailable at most {s(move.unavailable_max_s)}"
                f" (median wait {s(move.unavailable_median_s)})",
            )
        )
    rows += [
        ("node killed", f"{report.killed or '-'} during the first move, restarted"),
        ("history", f"{report.verdict} (checked in {report.check_s:.2f} s)"),
        ("processes left", "-" if report.processes_left is None else str(report.processes_left)),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name:<{width}}  {value}" for name, value in rows]
    problems = report.problems()
    lines.append("")
    if problems:
        lines.extend(f"  PROBLEM: {problem}" for problem in problems)
    else:
        lines.append("  passed: every key linearizable across two rebalances and a node's SIGKILL")
    return "\n".join(lines)


def to_json(report: ShardedDemoReport) -> str:
    """The summary as JSON."""
    return json.dumps(report.as_dict(), indent=2)
