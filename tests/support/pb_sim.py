"""A primary-backup group in the simulator under faults, with clients recording a checkable history.

``run(seed, nodes)`` builds a simulated cluster from the seed and starts
the KV store replicated by primary-backup (``sync`` mode) on every node,
its view service (a Multi-Paxos group) on the same nodes. Clients and the
nemesis of :mod:`tests.support.paxos_sim` (crashes and restarts of a
minority, the acting primary often among them; partitions of every shape,
one isolating the primary with or without the clients; a lossy,
duplicating, reordering network) run, then the faults stop and every
client finishes. It returns the history (for linearizability), what the
invariant observer saw, and whether the clients finished.

The observer checks, after every step of every member, that every member
applied the same entry at every position it holds durably (a committed
entry is never different, never lost; what a member applied in memory
and lost in a crash before it was durable was never visible: answers and
reads leave only once durable, and backups apply only what the primary
holds durably), and that no two members, nor two incarnations of
one member (before and after a restart), acted as the primary of one
epoch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
from collections import Counter
from typing import Any

from actorfw import ActorRef, AskTimeout, NodeDown, Simulation
from actorfw.check import History, Status
from actorfw.protocols.paxos import Command, Read, SessionExpired
from actorfw.protocols.primary_backup import Entry, Snapshotted, Written
from actorfw.protocols.primary_backup.member import MemberOptions, Response
from actorfw.protocols.primary_backup.primary import PrimaryOptions
from actorfw.services.paxos import Answered, Submit
from actorfw.services.primary_backup import SwitchoverRefused, member_name, switchover
from actorfw.services.replication import AsyncGroupClient, replicate
from actorfw.services.replication.client import Redirect
from actorfw.values.errors import ActorfwError, ActorNotFound, Overloaded
from tests.support.paxos_sim import (
    CALM,
    CLIENT_NODE,
    FAULTY,
    KEYS,
    ReadableKV,
    _nemesis,
    _operation,
)

GROUP = "kv"
OPTIONS = MemberOptions(
    PrimaryOptions(lag_time=0.3, heartbeat=0.05, drift=0.05), snapshot_interval=4, log_tail=1
)
"""Tiny snapshot intervals: every run snapshots, compacts and installs snapshots often."""
ASYNC_OPTIONS = dataclasses.replace(
    OPTIONS, primary=dataclasses.replace(OPTIONS.primary, mode="async", lag_bound=20)
)
"""The same for an ``async`` group, whose backups may lag at most 20 entries."""
LEASE = 1.0


class Observer:
    """Checks every member's step (see the module documentation)."""

    def __init__(self, lossy: bool = False) -> None:
        self.lossy = lossy  # async: a position's entry may change with the epoch (rule 11)
        self.replaced = 0  # positions whose applied entry a later epoch's replaced
        self.acked: dict[tuple[str, int], tuple[int, float]] = {}  # command -> (epoch, when)
        self.started: dict[int, float] = {}  # epoch -> when its primary first appended
        self.now: Any = None  # the simulated clock (a callable), for the times above
        self.applied: dict[int, Entry] = {}  # the entry every member applied at each position
        self.checked: dict[str, int] = {}  # how far each member's applies were compared
        self.primaries: dict[int, tuple[str, int]] = {}  # epoch -> (node, incarnation) acting
        self.incarnation: dict[str, int] = {}  # restarts of each node's member
        self.violations: list[str] = []
        self.counts: Counter[str] = Counter()
        self.hook: Any = None  # called with (node, core, effects) after the checks

    def __call__(self, label: Any, node: str, core: Any, effects: Any) -> None:
        applied, log = min(core.applied, core.durability.end), core.backup.log
        for record in effects.persist:
            if type(record) is Snapshotted:
                if record.base == record.position:  # installed, or emptied (async)
                    self.counts["installs" if record.position else "rebuilds"] += 1
                    # Its state restarts there: what it applies next is compared again.
                    self.checked[node] = record.position
                else:
                    self.counts["snapshots"] += 1
        # What a snapshot covers is compared no more (the linearizability check covers it).
        for position in range(max(self.checked.get(node, 0), log.base) + 1, applied + 1):
            entry = log.entry(position)
            first = self.applied.setdefault(position, entry)
            if first != entry:
                if self.lossy and first.epoch != entry.epoch:
                    # Async: a failover lost the older epoch's entry here (rule 11). Within
                    # one epoch, positions still never differ.
                    self.replaced += 1
                    if entry.epoch > first.epoch:
                        self.applied[position] = entry
                    continue
                self.violations.append(
                    f"{node} applied {entry} at {position}, another member {first}"
                )
        self.checked[node] = max(applied, self.checked.get(node, 0))
        # An incarnation has acted once it appended (its no-op): one that crashed before
        # its epoch was durable may be named again and act then, having shipped nothing.
        epoch = core.acting if core.opened else 0
        if epoch and self.now is not None:
            self.started.setdefault(epoch, self.now())
            for output in effects.outputs:
                if type(output) is Response:
                    self.acked.setdefault((output.client, output.seq), (epoch, self.now()))
        if epoch:
            me = (node, self.incarnation.get(node, 0))
            first = self.primaries.setdefault(epoch, me)
            if first != me:
                self.violations.append(
                    f"{first[0]} (incarnation {first[1]}) and {me[0]} (incarnation {me[1]}) "
                    f"both acted as primary of {epoch}"
                )
        self.counts["steps"] += 1
        if self.hook is not None:
            self.hook(node, core, effects)

    def restarted(self, label: Any, node: str, core: Any) -> None:
        """A restarted member applies from the start again."""
        self.checked[node] = 0
        self.incarnation[node] = self.incarnation.get(node, 0) + 1
        self.counts["restarts"] += 1


@dataclasses.dataclass
class Outcome:
    """What one run produced."""

    seed: int
    history: History
    violations: list[str]
    finished: bool
    faults: list[str]
    counts: Counter[str]
    trace_digest: str


def _crash_new_primary(sim: Simulation) -> Any:
    done: list[str] = []

    def hook(node: str, core: Any, effects: Any) -> None:
        if done or core.acting < 2 or not core.opened:
            return
        if not any(type(r) is Written for r in effects.persist):
            return
        done.append(node)

        def restart() -> None:
            if not sim.nodes[node].running:  # the nemesis may have restarted it meanwhile
                sim.restart(node)

        def crash() -> None:
            if sim.nodes[node].running:
                sim.crash(node)
                sim.loop.call_later(0.3, restart)

        sim.loop.call_later(0.0003, crash)

    return hook


async def _switchovers(
    sim: Simulation, nodes: list[str], rng: random.Random, until: float, log: list[str]
) -> None:
    """Planned switchovers to random members at random times while the faults last."""
    while sim.now < until:
        await asyncio.sleep(rng.uniform(0.2, 1.0))
        to = rng.choice(nodes)
        try:
            view = await switchover(GROUP, nodes, to, timeout=1.0)
        except (SwitchoverRefused, ActorfwError) as error:
            log.append(f"{sim.now:.3f} switchover to {to}: {type(error).__name__}")
        else:
            log.append(f"{sim.now:.3f} switchover to {to}: epoch {view['epoch']}")


def acting_primary(sim: Simulation, nodes: list[str]) -> str | None:
    """The running node whose member acts as primary of the highest epoch, if any."""
    best: tuple[int, str] | None = None
    for node in nodes:
        if not sim.nodes[node].running:
            continue
        cell = sim.node(node).cells.get(member_name(GROUP))
        core = getattr(cell.instance, "core", None) if cell is not None else None
        if core is not None and core.acting and (best is None or core.acting > best[0]):
            best = (core.acting, node)
    return best[1] if best else None


async def _client(
    sim: Simulation,
    name: str,
    nodes: list[str],
    history: History,
    rng: random.Random,
    until: float,
    after: int,
    tries: Counter[str],
    appends: bool = False,
) -> None:
    """Operations one at a time while the faults last, then ``after`` more; each retried.

    ``appends``: every operation appends a unique token to a key (an
    ``async`` run: a lost acknowledged write is then a token missing at the end).
    """
    target = rng.choice(nodes)
    n = seq = calm_ops = 0
    session = name
    while calm_ops < after:
        n += 1
        seq += 1
        if sim.now >= until:
            calm_ops += 1
        f, key, value = _operation(rng, name, n)
        if appends:
            f, value = "append", f"{session}#{seq},"  # names the command that wrote it
        command = Command(session, seq, [f, key, value])
        op = history.invoke(name, f, key, value, time=sim.now)
        ask: Submit | Read = Read(command) if f == "get" and seq > 1 else Submit(command)
        while True:
            try:
                answer = await ActorRef(target, member_name(GROUP)).ask(ask, timeout=1.5)
            except AskTimeout:
                tries["timeouts"] += 1
                target = rng.choice(nodes)  # the same (client, seq) runs once
                continue
            except (NodeDown, ActorNotFound, Overloaded):
                tries["refused"] += 1
                target = rng.choice(nodes)
                await asyncio.sleep(rng.uniform(0.05, 0.2))
                continue
            if type(answer) is Redirect:
                tries["redirected"] += 1
                target = answer.leader if answer.leader in nodes else rng.choice(nodes)
                await asyncio.sleep(rng.uniform(0.005, 0.02))
                continue
            assert type(answer) is Answered, answer
            if type(answer.result) is SessionExpired:
                # Async: a failover lost this session's last commands, and the session
                # with them; this command did not run. Go on under a new session.
                history.fail(op, time=sim.now)
                tries["session_expired"] += 1
                session, seq = f"{name}.{seq}", 0
                break
            history.ok(op, answer.result, time=sim.now)
            break
        await asyncio.sleep(rng.uniform(0.0, 0.05))


def run(
    seed: int,
    nodes: int = 3,
    clients: int = 4,
    operations: int = 5,
    fault_time: float = 6.0,
    settle_time: float = 60.0,
    crash_new_primary: bool = False,
    switchovers: bool = False,
    mode: str = "sync",
) -> Outcome:
    """One seeded run (see the module documentation).

    ``mode="async"``: the group acknowledges on the primary's write alone;
    the clients only append unique tokens, and at the end every key is read:
    an acknowledged token missing is a lost acknowledged write
    (``counts["lost_acknowledged"]``). Each must be explained by a failover:
    acknowledged by the primary of an epoch that a later one followed, before
    that later one's primary first appended (no primary acknowledges once
    another could have started; the time is the step that answered, before
    its fsync), and no more than ``lag_bound`` of one epoch. Anything else is
    a violation. In both modes, once calm every running member must reach
    the primary's applied position, state and sessions.

    ``crash_new_primary``: also crash the first primary of a later epoch than
    the first one a fraction of a millisecond after it ships its first
    writes (before its records can be durable), and restart it 0.3 s later.
    ``switchovers``: while the faults last, also ask for planned switchovers
    to a random member at random times (refused or unanswered ones too).
    """
    names = [f"n{i + 1}" for i in range(nodes)]
    rng = random.Random(seed)
    history = History()
    lossy = mode == "async"
    observer = Observer(lossy)
    final: dict[str, Any] = {}
    faults: list[str] = []
    tries: Counter[str] = Counter()
    with Simulation(
        [*names, CLIENT_NODE], seed=seed, network=FAULTY, lose_unsynced="prefix"
    ) as sim:
        replicate(
            sim,
            ReadableKV,
            names,
            name=GROUP,
            replication="primary-backup",
            member_options=ASYNC_OPTIONS if lossy else OPTIONS,
            lease=LEASE,
            observer=observer,
        )
        observer.now = lambda: sim.now
        until = sim.now + fault_time
        if crash_new_primary:
            observer.hook = _crash_new_primary(sim)

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
                        tries,
                        appends=lossy,
                    )
                )
                for i in range(clients)
            ]
            if switchovers:  # its own random stream, drawn only then: other runs stay the same
                switching = random.Random(rng.getrandbits(64))
                workers.append(
                    asyncio.ensure_future(_switchovers(sim, names, switching, until, faults))
                )
            await _nemesis(
                sim,
                names,
                random.Random(rng.getrandbits(64)),
                until,
                faults,
                leader_of=acting_primary,
            )
            sim.network.configure(CALM)
            calm_from = sim.now
            _, pending = await asyncio.wait(workers, timeout=settle_time)
            for task in pending:
                task.cancel()
            faults.append(f"{sim.now:.3f} clients done after {sim.now - calm_from:.3f}s of calm")
            if lossy and not pending:
                reader = AsyncGroupClient(GROUP, names, "final-reader", timeout=0.5, deadline=20.0)
                for key in KEYS:
                    final[key] = await reader.call(["get", key, None])
            if not pending:
                await _converge(sim, names, observer)
            return not pending

        finished = sim.run(main, on=CLIENT_NODE, timeout=fault_time + settle_time + 30.0)
        observer.counts.update(tries)
        if lossy and finished:
            _explain_losses(history, final, observer)
        return Outcome(
            seed,
            history,
            observer.violations,
            finished,
            faults,
            observer.counts,
            hashlib.sha256(sim.trace_text().encode()).hexdigest(),
        )


async def _converge(sim: Simulation, names: list[str], observer: Observer) -> None:
    """Once calm, every running member reaches the primary's state: the same applied
    position, state and sessions (within 10 s of simulated time); else a violation."""
    deadline = sim.now + 10.0
    while True:
        cores = []
        for node in names:
            cell = sim.node(node).cells.get(member_name(GROUP)) if sim.nodes[node].running else None
            core = getattr(cell.instance, "core", None) if cell is not None else None
            if core is not None:
                cores.append((node, core))
        seen = {
            (
                core.applied,
                repr(sorted(core.machine.snapshot().items())),
                repr(sorted(core.clients.sessions.items())),
            )
            for _, core in cores
        }
        if len(seen) == 1 and any(core.acting for _, core in cores):
            return
        if sim.now >= deadline:
            applied = {node: core.applied for node, core in cores}
            observer.violations.append(f"the members did not converge once calm: {applied}")
            return
        await asyncio.sleep(0.05)


def _explain_losses(history: History, final: dict[str, Any], observer: Observer) -> None:
    """Count the acknowledged appends missing from ``final``; each must follow a failover."""
    present: Counter[str] = Counter()
    for value in final.values():
        present.update(token for token in (value or "").split(",") if token)
    for token, times in present.items():
        if times > 1:
            observer.violations.append(f"{token} appended {times} times")
    starts = sorted(observer.started.items())
    lost = 0
    per_epoch: Counter[int] = Counter()
    for op in history:
        if op.status is not Status.OK or op.f != "append":
            continue
        token = str(op.value).rstrip(",")
        if token in present:
            continue
        lost += 1
        session, _, seq = token.rpartition("#")
        acked = observer.acked.get((session, int(seq)))
        if acked is None:
            observer.violations.append(f"{token} acknowledged, lost, and never seen acknowledged")
            continue
        epoch, when = acked
        per_epoch[epoch] += 1
        later = [(e, t) for e, t in starts if e > epoch]
        if not later:
            observer.violations.append(f"{token} of epoch {epoch} lost with no failover after it")
        elif when > later[0][1]:
            observer.violations.append(
                f"{token} acknowledged in epoch {epoch} at {when:.3f}, after epoch "
                f"{later[0][0]}'s primary began at {later[0][1]:.3f}"
            )
    bound = ASYNC_OPTIONS.primary.lag_bound
    for epoch, count in per_epoch.items():
        if count > bound:  # the in-sync backup elected next lagged at most that much
            observer.violations.append(f"{count} writes of epoch {epoch} lost, above {bound}")
    observer.counts["lost_acknowledged"] = lost
    observer.counts["replaced"] = observer.replaced


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description="Seeded primary-backup runs: one in detail, or a range summed up."
    )
    parser.add_argument("seed", type=int, help="the (first) seed")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--mode", choices=("sync", "async"), default="sync")
    parser.add_argument(
        "--count", type=int, default=1, help="seeds from SEED on; >1: one line each"
    )
    args = parser.parse_args()
    if args.count == 1:
        outcome = run(args.seed, nodes=args.nodes, clients=5, mode=args.mode)
        print(
            f"seed {args.seed}: {len(outcome.history.operations)} operations, "
            f"finished: {outcome.finished}, violations: {outcome.violations[:3]}"
        )
        print(dict(outcome.counts))
        print("faults:\n  " + "\n  ".join(outcome.faults))
    else:
        totals: Counter[str] = Counter()
        for seed in range(args.seed, args.seed + args.count):
            outcome = run(seed, nodes=args.nodes, clients=5, mode=args.mode)
            acknowledged = sum(op.status is Status.OK and op.f != "get" for op in outcome.history)
            lost = outcome.counts["lost_acknowledged"]
            totals.update(seeds=1, acknowledged=acknowledged, lost=lost, seeds_losing=lost > 0)
            totals.update(violations=len(outcome.violations), unfinished=not outcome.finished)
            print(f"seed {seed}: {acknowledged} writes acknowledged, {lost} lost", flush=True)
        print(dict(totals))
