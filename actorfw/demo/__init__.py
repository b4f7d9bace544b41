"""``actorfw demo``: a replicated KV store survives the SIGKILL of its leader, and proves it.

The demo starts ``nodes`` node processes with the replicated key-value
store (Multi-Paxos, or primary-backup with ``replication="primary-backup"``,
in ``sync`` or ``async`` mode; SQLite storage synced before anything is
acknowledged) in a temporary directory, and runs concurrent
exactly-once clients against it for ``duration`` seconds while a progress
line shows what happens:

1. at ``kill_at`` of the run it kills the leader's (or primary's) process
   with SIGKILL and measures the failover: the time from the kill to the
   first command committed under a new leader (primary);
2. at ``restart_at`` it restarts the killed node on its data directory and
   measures the catch-up: the time until that node has applied every slot
   (log position) the leader (primary) had applied when the node came back;
3. at the end it checks the whole recorded history for linearizability
   with :mod:`actorfw.check` (in ``async`` mode, it first reads every key
   and counts the acknowledged appends that are missing: writes the
   failover lost; a history with some lost cannot be linearizable and is
   not required to be), stops every process, removes the directory, and
   verifies that no process and no file is left.

Its summary is a table (or JSON); the process exits 1 if anything is wrong:
a history that is not linearizable (or could not be decided), a failover or
catch-up that did not happen, a process or file left behind.

The workload: each client loops over random keys. Half the keys hold
numbers (``get``, ``put`` of a fresh number, ``cas`` from the last number
the client saw to a fresh one); the other half hold strings (``get``,
``append`` of a short token, and now and then ``put`` of an empty string,
which keeps the strings short). A command that does not complete before
the client's deadline is recorded as indeterminate (``info``): it may or
may not have happened, and the checker allows both.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from actorfw.check import History, KeyValue, Status, Verdict, check
from actorfw.kv import KVStateMachine
from actorfw.protocols.paxos.messages import Role
from actorfw.protocols.primary_backup import MemberOptions, PrimaryOptions
from actorfw.services.paxos import ReplicaStatus, role_name
from actorfw.services.primary_backup import MemberStatus
from actorfw.services.replication import (
    AsyncGroupClient,
    SessionExpiredError,
    Unavailable,
    replicate,
)
from actorfw.services.replication.group import REPLICATION
from actorfw.values.refs import ActorRef

__all__ = ["DemoOptions", "DemoReport", "render", "run_demo"]

GROUP = "kv"
_APPS = ["actorfw.kv.machine", "actorfw.services.paxos"]


@dataclasses.dataclass(frozen=True)
class DemoOptions:
    """What the demo runs (the ``actorfw demo`` options).

    Attributes:
        nodes: node processes (at least 3: the group must survive one kill).
        duration: seconds of client workload.
        clients: concurrent exactly-once clients.
        keys: keys the workload touches.
        seed: the workload's random seed (None: a fresh one).
        kill_at, restart_at: when to kill the leader and restart it, as
            fractions of ``duration``.
        timeout: seconds a client waits for one replica before trying another.
        replication: ``"paxos"`` or ``"primary-backup"``.
        mode: primary-backup's mode, ``"sync"`` or ``"async"``. In ``async``
            mode every write is an ``append`` of a unique token, and the
            demo reads every key at the end: an acknowledged token missing
            is an acknowledged write the failover lost, counted in the
            summary.
    """

    nodes: int = 3
    duration: float = 15.0
    clients: int = 16
    keys: int = 16
    seed: int | None = None
    kill_at: float = 0.3
    restart_at: float = 0.6
    timeout: float = 0.5
    replication: str = "paxos"
    mode: str = "sync"

    def __post_init__(self) -> None:
        if self.replication not in REPLICATION:
            raise ValueError(
                f"replication is one of {', '.join(REPLICATION)}, not {self.replication!r}"
            )
        if self.mode not in ("sync", "async"):
            raise ValueError(f"mode is 'sync' or 'async', not {self.mode!r}")
        if self.mode == "async" and self.replication != "primary-backup":
            raise ValueError("the async mode is primary-backup's: add --replication primary-backup")
        if self.nodes < 3:
            raise ValueError("the demo needs at least 3 nodes: the group must survive a kill")
        if not self.duration >= 3.0:
            raise ValueError("the demo needs a duration of at least 3 seconds")
        if self.clients < 1 or self.keys < 2:
            raise ValueError("the demo needs at least 1 client and 2 keys")
        if not 0.0 < self.kill_at < self.restart_at < 1.0:
            raise ValueError("need 0 < kill_at < restart_at < 1")


@dataclasses.dataclass
class DemoReport:
    """What the demo measured; :meth:`problems` lists what went wrong (empty: all good)."""

    nodes: int
    clients: int
    duration: float
    seed: int
    replication: str = "paxos"
    mode: str = "sync"
    operations: int = 0
    ok: int = 0
    indeterminate: int = 0
    throughput: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    leaders: list[str] = dataclasses.field(default_factory=list)
    killed: str | None = None
    failover_s: float | None = None
    restarted: str | None = None
    catchup_s: float | None = None
    catchup_slots: int | None = None
    verdict: str = "not checked"
    verdict_detail: str = ""
    check_s: float = 0.0
    processes_left: int | None = None
    files_left: bool | None = None
    appends_acknowledged: int = 0
    lost_acknowledged: int | None = None
    discarded: int | None = None
    sessions_expired: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def leader_changes(self) -> int:
        """How many times the leadership moved during the run."""
        return max(0, len(self.leaders) - 1)

    def problems(self) -> list[str]:
        """Everything that makes the run a failure."""
        out = list(self.errors)
        if self.mode == "async" and self.lost_acknowledged is None:
            out.append("the acknowledged writes lost were not counted (no final read)")
        if self.verdict != "linearizable" and not self.lost_acknowledged:
            # With writes lost (async mode, counted above), the history cannot be.
            out.append(f"history {self.verdict}: {self.verdict_detail}")
        if self.ok == 0:
            out.append("no operation completed")
        if self.killed is None:
            out.append("the leader was never killed")
        elif self.failover_s is None:
            out.append(f"no command committed under a new leader after {self.killed} was killed")
        if self.restarted is not None and self.catchup_s is None:
            out.append(f"{self.restarted} did not catch up after its restart")
        if self.processes_left:
            out.append(f"{self.processes_left} node process(es) left running")
        if self.files_left:
            out.append("the temporary directory was left behind")
        return out

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        out = dataclasses.asdict(self)
        out["leader_changes"] = self.leader_changes
        out["problems"] = self.problems()
        out["passed"] = not out["problems"]
        return out


class _Workload:
    """The clients, run on the driver's event loop; the main thread reads its counters."""

    def __init__(self, options: DemoOptions, seed: int, nodes: list[str]) -> None:
        self.options = options
        self.seed = seed
        self.nodes = nodes
        self.history = History()
        self.latencies: list[float] = []
        self.completed = 0
        self.indeterminate = 0
        self.stopping = False
        self.leader: str | None = None
        self.leaders: list[str] = []
        self.t0 = 0.0
        self.kill: tuple[str, float] | None = None  # (node, monotonic time)
        self.failover_end: float | None = None
        self.failures: list[str] = []
        self.appended: list[tuple[str, str]] = []  # (key, token) acknowledged
        self.sessions_expired = 0

    async def run(self) -> None:
        self.t0 = time.monotonic()
        await asyncio.gather(*(self._client(index) for index in range(self.options.clients)))

    def _seen_leader(self, leader: str | None, now: float) -> None:
        if leader is None or leader == self.leader:
            return
        self.leader = leader
        self.leaders.append(leader)
        if self.kill is not None and self.failover_end is None and leader != self.kill[0]:
            if now > self.kill[1]:
                self.failover_end = now

    async def _client(self, index: int) -> None:
        options = self.options
        rng = random.Random(f"{self.seed}-{index}")
        client = AsyncGroupClient(
            GROUP, self.nodes, f"demo-{self.seed}-{index}", options.timeout, deadline=10.0
        )
        name = f"c{index}"
        seen: dict[str, Any] = {}
        counter = 0
        while not self.stopping:
            key_index = rng.randrange(options.keys)
            key = f"k{key_index}"
            roll = rng.random()
            counter += 1
            fresh = index * 1_000_000 + counter
            value: Any = None
            if options.mode == "async":  # appends only: a lost one shows at the end
                f = "get" if roll < 0.4 else "append"
                value = f"{index}.{counter};" if f == "append" else None
            elif key_index % 2 == 0:  # numbers
                if roll < 0.4:
                    f = "get"
                elif roll < 0.75:
                    f, value = "put", fresh
                else:
                    f, value = "cas", [seen.get(key), fresh]
            elif roll < 0.4:
                f = "get"
            elif roll < 0.9:
                f, value = "append", f"{index}.{counter};"
            else:
                f, value = "put", ""
            op = [f, key, value]
            start = time.monotonic()
            record = self.history.invoke(name, f, key, value, time=start - self.t0)
            try:
                result = await client.call(op)
            except Unavailable:
                self.history.info(record)
                self.indeterminate += 1
                continue
            except SessionExpiredError:
                # Async: a failover lost this client's last commands and its session with
                # them; this one did not run. The client goes on under a new session.
                self.history.fail(record, time=time.monotonic() - self.t0)
                self.sessions_expired += 1
                continue
            except Exception as error:  # anything else is a bug the summary must show
                self.history.info(record)
                self.failures.append(f"client {name}: {type(error).__name__}: {error}")
                self.stopping = True
                return
            end = time.monotonic()
            if isinstance(result, list) and result[:1] == ["error"]:
                self.history.fail(record, time=end - self.t0)
                self.failures.append(f"client {name}: the store refused {op!r}: {result[1]}")
                continue
            self.history.ok(record, result, time=end - self.t0)
            self.latencies.append(end - start)
            self.completed += 1
            if f == "append":
                self.appended.append((key, value))
            if f == "get" and key_index % 2 == 0:
                seen[key] = result
            elif f in ("put", "cas") and key_index % 2 == 0 and (f == "put" or result):
                seen[key] = fresh
            self._seen_leader(client.leader, end)


async def _slot_out(node: str, replication: str, timeout: float = 1.0) -> int | None:
    """How far ``node`` has applied: a replica's next slot, a member's committed position."""
    ref = ActorRef(node, role_name(GROUP, Role.REPLICA))  # a member has the replica's name
    try:
        if replication == "primary-backup":
            return int((await ref.ask(MemberStatus(), timeout))["committed"])
        status = await ref.ask(ReplicaStatus(), timeout)
    except Exception:
        return None
    return int(status.slot_out)


def _role(replication: str) -> str:
    """Who orders the writes, in the scheme's words."""
    return "primary" if replication == "primary-backup" else "leader"


class _Progress:
    """The live progress line and the event log above it."""

    def __init__(self, out: TextIO, duration: float) -> None:
        self.out = out
        self.duration = duration
        self.tty = out.isatty()
        self.last_plain = -1.0

    def event(self, elapsed: float, text: str) -> None:
        prefix = "\r\033[K" if self.tty else ""
        print(f"{prefix}  {elapsed:5.1f} s  {text}", file=self.out, flush=True)

    def update(
        self, elapsed: float, ops: int, rate: float, leader: str | None, label: str = "leader"
    ) -> None:
        width = 30
        done = min(1.0, elapsed / self.duration)
        bar = "#" * int(done * width) + "." * (width - int(done * width))
        line = (
            f"[{bar}] {elapsed:5.1f}/{self.duration:g} s  {ops:>8,} ops  "
            f"{rate:>7,.0f} ops/s  {label} {leader or '?'}"
        )
        if self.tty:
            print(f"\r\033[K{line}", end="", file=self.out, flush=True)
        elif elapsed - self.last_plain >= 5.0:
            self.last_plain = elapsed
            print(line, file=self.out, flush=True)

    def done(self) -> None:
        if self.tty:
            print("\r\033[K", end="", file=self.out, flush=True)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; it only waits to be reaped.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def run_demo(
    options: DemoOptions,
    out: TextIO = sys.stdout,
    history_file: str | None = None,
) -> DemoReport:
    """Run the demo, printing progress to ``out``; returns what it measured.

    ``history_file``: where to write the recorded history as JSON lines
    (:meth:`actorfw.check.History.to_jsonl`).
    """
    from actorfw.node import ActorSystem

    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1 << 31)
    report = DemoReport(
        options.nodes, options.clients, options.duration, seed, options.replication, options.mode
    )
    scheme = "Multi-Paxos" if options.replication == "paxos" else f"primary-backup, {options.mode}"
    apps = _APPS + (["actorfw.services.primary_backup"] if options.replication != "paxos" else [])
    progress = _Progress(out, options.duration)
    base_dir = Path(tempfile.mkdtemp(prefix="actorfw-demo-"))
    pids: set[int] = set()
    workload: _Workload | None = None
    print(
        f"actorfw demo: {options.nodes} node processes, a replicated KV store ({scheme}) on "
        f"SQLite (synced before acknowledging) in {base_dir}, {options.clients} clients for "
        f"{options.duration:g} s (seed {seed})",
        file=out,
        flush=True,
    )
    try:
        # The nodes log errors only: the demo reports the failures it causes itself.
        with ActorSystem(
            options.nodes, apps=apps, base_dir=base_dir, log_level=logging.ERROR
        ) as system:
            nodes = list(system.nodes)
            pids.update(pid for pid in map(system.pid, nodes) if pid is not None)
            if options.replication == "paxos":
                replicate(system, KVStateMachine, name=GROUP)
            else:
                member = MemberOptions(PrimaryOptions(mode=options.mode))
                replicate(
                    system,
                    KVStateMachine,
                    name=GROUP,
                    replication=options.replication,
                    member_options=member,
                )
            workload = _Workload(options, seed, nodes)
            _drive(system, workload, options, report, progress, pids)
            progress.done()
            if options.mode == "async":
                _count_lost(system, workload, report)
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


def _drive(
    system: Any,
    workload: _Workload,
    options: DemoOptions,
    report: DemoReport,
    progress: _Progress,
    pids: set[int],
) -> None:
    role = _role(options.replication)
    unit = "slots" if options.replication == "paxos" else "log positions"
    # The group elects its first leader before the clock starts.
    warm = AsyncGroupClient(GROUP, workload.nodes, f"demo-{workload.seed}-warm")
    system.run(warm.call(["get", "k0"]), timeout=30.0)
    future = system.start(workload.run())
    start = time.monotonic()
    kill_time = start + options.kill_at * options.duration
    restart_time = start + options.restart_at * options.duration
    end_time = start + options.duration
    restarter: concurrent.futures.Future[None] | None = None
    catchup: concurrent.futures.Future[tuple[float, int] | None] | None = None
    restarted_at = 0.0
    rate_mark = (start, 0)
    rate = 0.0
    announced_failover = False
    while not future.done():
        now = time.monotonic()
        elapsed = now - start
        if now >= end_time or workload.stopping:
            workload.stopping = True
        if report.killed is None and now >= kill_time and workload.leader is not None:
            victim = workload.leader
            pid = system.pid(victim)
            system.crash(victim)
            workload.kill = (victim, time.monotonic())
            report.killed = victim
            progress.event(elapsed, f"SIGKILL {victim} (the {role}, pid {pid})")
        if workload.failover_end is not None and not announced_failover and workload.kill:
            announced_failover = True
            report.failover_s = workload.failover_end - workload.kill[1]
            progress.event(
                workload.failover_end - start,
                f"{workload.leader} is the {role}: {report.failover_s:.2f} s without one",
            )
        if report.killed and report.restarted is None and now >= restart_time:
            report.restarted = report.killed
            restarter = concurrent.futures.Future()
            threading.Thread(
                target=_restart, args=(system, report.killed, restarter), daemon=True
            ).start()
        if restarter is not None and restarter.done():
            error = restarter.exception()
            restarter = None
            if error is not None:
                report.errors.append(f"restarting {report.killed}: {error}")
            elif report.killed is not None:
                pid = system.pid(report.killed)
                if pid is not None:
                    pids.add(pid)
                restarted_at = time.monotonic()
                progress.event(restarted_at - start, f"restarted {report.killed} (pid {pid})")
                catchup = system.start(_catch_up(system, report.killed, workload))
        if catchup is not None and catchup.done():
            result = catchup.result()
            catchup = None
            if result is not None:
                report.catchup_s, report.catchup_slots = result[0] - restarted_at, result[1]
                progress.event(
                    result[0] - start,
                    f"{report.killed} caught up: {report.catchup_slots:,} {unit} behind, "
                    f"{report.catchup_s:.2f} s after its restart",
                )
        if now - rate_mark[0] >= 1.0:
            rate = (workload.completed - rate_mark[1]) / (now - rate_mark[0])
            rate_mark = (now, workload.completed)
        progress.update(
            min(elapsed, options.duration), workload.completed, rate, workload.leader, role
        )
        try:
            future.result(timeout=0.1)
        except concurrent.futures.TimeoutError:
            pass
    future.result()
    report.duration = time.monotonic() - start
    if catchup is not None:  # the run ended first: give it a last chance
        result = catchup.result(timeout=15.0)
        if result is not None:
            report.catchup_s, report.catchup_slots = result[0] - restarted_at, result[1]


def _count_lost(system: Any, workload: _Workload, report: DemoReport) -> None:
    """Async mode: read every key; an acknowledged append missing from it was lost."""
    options = workload.options
    reader = AsyncGroupClient(
        GROUP, workload.nodes, f"demo-{workload.seed}-final", options.timeout, deadline=30.0
    )

    async def final() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        values = {f"k{i}": await reader.call(["get", f"k{i}"]) for i in range(options.keys)}
        statuses = []
        for node in workload.nodes:
            member = ActorRef(node, role_name(GROUP, Role.REPLICA))
            statuses.append(await member.ask(MemberStatus(), 5.0))
        return values, statuses

    values, statuses = system.run(final(), timeout=120.0)
    for key, value in values.items():
        tokens = [t for t in (value or "").split(";") if t]
        if len(tokens) != len(set(tokens)):
            report.errors.append(f"{key}: an append ran twice (exactly-once broken)")
    present = {key: set((value or "").split(";")) for key, value in values.items()}
    report.appends_acknowledged = len(workload.appended)
    report.lost_acknowledged = sum(
        token.rstrip(";") not in present.get(key, ()) for key, token in workload.appended
    )
    report.discarded = sum(int(status["discarded"]) for status in statuses)


def _restart(system: Any, node: str, done: concurrent.futures.Future[None]) -> None:
    try:
        system.restart(node)
    except BaseException as error:
        done.set_exception(error)
    else:
        done.set_result(None)


async def _catch_up(system: Any, node: str, workload: _Workload) -> tuple[float, int] | None:
    """When ``node``'s replica reaches the slot the leader's had at the start, and the gap."""
    give_up = time.monotonic() + 15.0
    target = mine = None
    while time.monotonic() < give_up:
        if target is None and workload.leader is not None:
            target = await _slot_out(workload.leader, workload.options.replication)
        if mine is None:
            mine = await _slot_out(node, workload.options.replication)
        if target is not None and mine is not None:
            break
        await asyncio.sleep(0.02)
    if target is None or mine is None:
        return None
    while time.monotonic() < give_up:
        now = await _slot_out(node, workload.options.replication)
        if now is not None and now >= target:
            return time.monotonic(), max(0, target - mine)
        await asyncio.sleep(0.02)
    return None


def _summarize(workload: _Workload, report: DemoReport, history_file: str | None) -> None:
    history = workload.history
    for op in history.pending:
        history.info(op)
    report.errors.extend(workload.failures[:5])
    report.sessions_expired = workload.sessions_expired
    report.operations = len(history)
    report.ok = workload.completed
    report.indeterminate = sum(1 for op in history if op.status is Status.INFO)
    report.throughput = workload.completed / report.duration if report.duration else 0.0
    if workload.latencies:
        report.latency_p50_ms = 1e3 * _percentile(workload.latencies, 0.50)
        report.latency_p99_ms = 1e3 * _percentile(workload.latencies, 0.99)
    report.leaders = list(workload.leaders)
    if report.killed and report.failover_s is None and workload.failover_end and workload.kill:
        report.failover_s = workload.failover_end - workload.kill[1]
    if history_file is not None:
        try:
            history.to_jsonl(history_file)
        except OSError as error:
            report.errors.append(f"the history could not be written to {history_file}: {error}")
    result = check(history, KeyValue(), timeout=60.0)
    report.verdict = _VERDICTS[result.verdict]
    report.verdict_detail = str(result)
    report.check_s = result.elapsed


_VERDICTS = {
    Verdict.OK: "linearizable",
    Verdict.VIOLATION: "NOT linearizable",
    Verdict.UNKNOWN: "undecided",
}


def render(report: DemoReport) -> str:
    """The summary table."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} ms"

    role = _role(report.replication)
    unit = "slots" if report.replication == "paxos" else "log positions"

    rows = [
        (
            "operations",
            f"{report.operations:,} ({report.ok:,} ok, {report.indeterminate:,} indeterminate)",
        ),
        ("throughput", f"{report.throughput:,.0f} ops/s over {report.duration:.1f} s"),
        ("latency p50 / p99", f"{ms(report.latency_p50_ms)} / {ms(report.latency_p99_ms)}"),
        (f"{role} changes", f"{report.leader_changes} ({' -> '.join(report.leaders) or '-'})"),
        (
            "failover",
            "-"
            if report.failover_s is None
            else f"{report.failover_s:.2f} s without a {role} after the SIGKILL of {report.killed}",
        ),
        (
            "catch-up",
            "-"
            if report.catchup_s is None
            else f"{report.restarted} restarted {report.catchup_slots:,} {unit} behind, "
            f"caught up in {report.catchup_s:.2f} s",
        ),
        ("history", f"{report.verdict} (checked in {report.check_s:.2f} s)"),
        *(
            [
                (
                    "lost (async)",
                    f"{report.lost_acknowledged if report.lost_acknowledged is not None else '?'}"
                    f" of {report.appends_acknowledged:,} acknowledged appends; "
                    f"{report.discarded if report.discarded is not None else '?'} entries "
                    f"discarded by members; {report.sessions_expired} commands refused, "
                    "their session lost",
                )
            ]
            if report.mode == "async"
            else []
        ),
        ("processes left", "-" if report.processes_left is None else str(report.processes_left)),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name:<{width}}  {value}" for name, value in rows]
    problems = report.problems()
    if problems:
        lines.append("")
        lines.extend(f"  PROBLEM: {problem}" for problem in problems)
    else:
        lines.append("")
        if report.mode == "async":
            lines.append(
                f"  passed: {report.lost_acknowledged} acknowledged writes lost at the {role}'s "
                "SIGKILL (async mode), counted by the clients"
            )
        else:
            lines.append(f"  passed: every acknowledged command survived the {role}'s SIGKILL")
    return "\n".join(lines)


def to_json(report: DemoReport) -> str:
    """The summary as JSON."""
    return json.dumps(report.as_dict(), indent=2)
