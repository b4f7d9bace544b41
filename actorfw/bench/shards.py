"""Sharding benchmarks: groups side by side on the same nodes, and what a shard move costs.

Two measurements, each on fresh node processes on one machine
(:class:`~actorfw.node.ActorSystem` over IPC, SQLite storage synced before
anything is acknowledged):

- **groups**: the sharded KV store with 1, 2 and 3 replica groups, every
  group on the same 3 nodes (and the shard manager too), beside the
  unsharded replicated KV store on 3 nodes, each a fresh cluster, in the
  same run. Figures as ``actorfw bench paxos`` measures them (the same
  code): commands per second of many concurrent clients, the CPU time the
  node processes used per command, and one client's sequential p50/p99.
  On 2 cores the rate cannot grow with the groups (they share the cores);
  what must hold is the cost: node CPU per command with N groups over that
  with 1 group (the issue's target: at most 1.15).
- **moves**: a shard holding ``size`` bytes (values of 64 KiB) moves from
  one group to another while a client reads one of its keys in a loop.
  Figures: seconds from the move's configuration to the new owner holding
  the shard (``held_s``), the longest the client's reads waited during the
  move (``unavailable_s``), and beside them the seconds raw pyzmq takes to
  send the same bytes between two processes over IPC in the same run
  (``raw_s``). A shard moves in one message, so it must fit the nodes'
  message limit: a size above it is reported as not movable, not measured.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from actorfw.bench import raw
from actorfw.bench.paxos import _cpu_seconds, _latencies, _percentile, _throughput

__all__ = [
    "APPS",
    "SCALES",
    "GroupsResult",
    "MoveResult",
    "measure_groups",
    "measure_move",
    "render",
    "run_shards",
]

APPS = [
    "actorfw.kv.machine",
    "actorfw.kv.sharded",
    "actorfw.services.sharding",
    "actorfw.services.paxos",
]
"""The modules every node imports."""

SCALES: dict[str, dict[str, Any]] = {
    "full": {"clients": 512, "warmup": 1.0, "seconds": 5.0, "latency_warmup": 50, "latency": 500},
    "quick": {"clients": 4, "warmup": 0.05, "seconds": 0.2, "latency_warmup": 3, "latency": 20},
}
"""How much work each measurement does (as for ``actorfw bench paxos``)."""

SHARDS = 64
VALUE_SIZE = 64 * 1024
MOVE_SIZES = (1 << 20, 10 << 20, 100 << 20)
"""The sizes of a moved shard: 1, 10 and 100 MiB."""


@dataclasses.dataclass(frozen=True)
class GroupsResult:
    """One cluster's figures: ``groups`` 0 is the unsharded store."""

    groups: int
    clients: int
    commands: int
    seconds: float
    node_cpu_seconds: float | None
    p50_us: float
    p99_us: float
    slots: int | None = None
    """Log slots the groups applied during the throughput figure, together (at one node)."""

    @property
    def commands_per_slot(self) -> float | None:
        """How many commands a slot's batch carried on average (None if unknown)."""
        return self.commands / self.slots if self.slots else None

    @property
    def rate(self) -> float:
        """Commands per second."""
        return self.commands / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_command(self) -> float | None:
        """Node CPU microseconds per command (None if unknown)."""
        if self.node_cpu_seconds is None or not self.commands:
            return None
        return self.node_cpu_seconds / self.commands * 1e6

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready values."""
        out = dataclasses.asdict(self)
        out["rate"] = self.rate
        out["cpu_us_per_command"] = self.cpu_us_per_command
        out["commands_per_slot"] = self.commands_per_slot
        return out


async def _slots(node: str, groups: Sequence[str]) -> int:
    """The slots the replicas of ``groups`` on ``node`` applied so far, together."""
    from actorfw.protocols.paxos.messages import Role
    from actorfw.services.paxos import ReplicaStatus, role_name
    from actorfw.values.refs import ActorRef

    total = 0
    for group in groups:
        state = await ActorRef(node, role_name(group, Role.REPLICA)).ask(ReplicaStatus(), 5.0)
        total += int(state.slot_out)
    return total


@dataclasses.dataclass(frozen=True)
class MoveResult:
    """One shard move's figures (None: not measured, with ``note`` saying why)."""

    size: int
    held_s: float | None
    unavailable_s: float | None
    raw_s: float
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready values."""
        out = dataclasses.asdict(self)
        out["held_over_raw"] = None if self.held_s is None else self.held_s / self.raw_s
        return out


def _sharded(system: Any, groups: int) -> Any:
    from actorfw.kv.sharded import ShardedKV
    from actorfw.services.sharding import ShardedCluster

    nodes = list(system.nodes)
    cluster = ShardedCluster.start(system, ShardedKV, shards=SHARDS, client_id="bench-admin")
    for i in range(groups):
        cluster.start_group(f"g{i + 1}", nodes)
    cluster.join({f"g{i + 1}": nodes for i in range(groups)})
    return cluster


def measure_groups(
    groups: int, scale: str = "full", progress: Callable[[str], None] | None = None
) -> GroupsResult:
    """Throughput, node CPU per command and latency with ``groups`` groups (0: unsharded)."""
    from actorfw.kv import KVStateMachine
    from actorfw.node import ActorSystem
    from actorfw.services.replication import replicate

    settings = SCALES[scale]
    label = f"{groups} groups" if groups else "unsharded"
    if progress is not None:
        progress(label)
    with ActorSystem(3, apps=APPS) as system:
        target = replicate(system, KVStateMachine, name="kv") if not groups else None
        if target is None:
            target = _sharded(system, groups)
            deadline = time.monotonic() + 30
            while not target.settled():  # every group took its first configuration
                if time.monotonic() > deadline:
                    raise RuntimeError("the groups did not take their first configuration")
                time.sleep(0.02)
        pids = [system.pid(node) for node in system.nodes]
        names = [f"g{i + 1}" for i in range(groups)] if groups else ["kv"]
        first = system.nodes[0]

        async def measured() -> tuple[int, float, float | None, int]:
            # The slots decided from the end of the warm-up on, as the commands are.
            at_start: list[int] = []

            async def mark() -> None:
                await asyncio.sleep(settings["warmup"])
                at_start.append(await _slots(first, names))

            marker = asyncio.ensure_future(mark())
            commands, seconds, cpu, _ = await _throughput(
                target,
                settings["clients"],
                settings["warmup"],
                settings["seconds"],
                lambda: _cpu_seconds(pids),
            )
            await marker
            return commands, seconds, cpu, await _slots(first, names) - at_start[0]

        commands, seconds, cpu, slots = system.run(
            measured(), timeout=settings["warmup"] + settings["seconds"] + 120.0
        )
        times = system.run(
            _latencies(target, settings["latency_warmup"], settings["latency"]), timeout=120.0
        )
    return GroupsResult(
        groups,
        settings["clients"],
        commands,
        seconds,
        cpu,
        _percentile(times, 0.5) * 1e6,
        _percentile(times, 0.99) * 1e6,
        slots,
    )


def _key_in(shard: int, prefix: str, start: int = 0) -> tuple[str, int]:
    from actorfw.protocols.sharding import shard_of

    i = start
    while shard_of(f"{prefix}{i}", SHARDS) != shard:
        i += 1
    return f"{prefix}{i}", i + 1


async def _move(cluster: Any, shard: int, size: int) -> tuple[float, float]:
    """Fill ``shard`` (of g1) with ``size`` bytes, move it to g2: (held seconds, longest wait)."""
    writer = cluster.async_client("bench-writer", timeout=5.0, deadline=60.0)
    value = "x" * VALUE_SIZE
    next_key = 0
    for _ in range(max(1, size // VALUE_SIZE)):
        key, next_key = _key_in(shard, "fill-", next_key)
        await writer.call(["put", key, value])
    probe_key, _ = _key_in(shard, "probe-")
    await writer.call(["put", probe_key, 0])
    reader = cluster.async_client("bench-reader", timeout=5.0, deadline=60.0)
    await reader.call(["get", probe_key])
    loop = asyncio.get_running_loop()
    waits: list[float] = []
    stop = False

    async def probe() -> None:
        while not stop:
            began = loop.time()
            await reader.call(["get", probe_key])
            waits.append(loop.time() - began)

    prober = asyncio.ensure_future(probe())
    admin = cluster.manager.async_client("bench-mover", timeout=5.0, deadline=60.0)
    began = loop.time()
    await admin.call(["move", shard, "g2"])
    status = cluster.groups["g2"].async_client("bench-status", timeout=5.0, deadline=60.0)
    while shard not in (await status.read(["status"]))[1]["held"]:
        await asyncio.sleep(0.005)
    held = loop.time() - began
    await asyncio.sleep(0.1)  # a few reads served by the new owner
    stop = True
    await prober
    return held, max(waits)


def measure_move(
    size: int, scale: str = "full", progress: Callable[[str], None] | None = None
) -> MoveResult:
    """One shard of ``size`` bytes moved between two groups, beside raw pyzmq (see above)."""
    from actorfw.node import ActorSystem, NodeSettings

    if scale == "quick":
        size = min(size, 4 * VALUE_SIZE)
    if progress is not None:
        progress(f"a move of {size / (1 << 20):g} MiB")
    raw_rate = raw.raw_payload("ipc", size, 1)
    raw_s = size / raw_rate
    limit = NodeSettings.max_message_size  # the default of every node
    if size + (1 << 20) > limit:
        return MoveResult(
            size,
            None,
            None,
            raw_s,
            f"not movable: a shard moves in one message, and the nodes' limit is "
            f"{limit / (1 << 20):g} MiB (max_message_size)",
        )
    with ActorSystem(3, apps=APPS) as system:
        cluster = _sharded(system, 1)
        cluster.start_group("g2", list(system.nodes))
        cluster.join({"g2": list(system.nodes)})
        deadline = time.monotonic() + 30
        while not cluster.settled():
            if time.monotonic() > deadline:
                raise RuntimeError("the groups did not settle before the move")
            time.sleep(0.02)
        shard = cluster.configuration().shards.index("g1")
        held, waited = system.run(_move(cluster, shard, size), timeout=600.0)
    return MoveResult(size, held, waited, raw_s)


def run_shards(
    scale: str = "full",
    groups: Sequence[int] = (0, 1, 2, 3),
    sizes: Sequence[int] = MOVE_SIZES,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[GroupsResult], list[MoveResult]]:
    """Every group count (0: unsharded), then every move size; returns the figures."""
    if scale not in SCALES:
        raise ValueError(f"scale is one of {', '.join(SCALES)}, not {scale!r}")
    return (
        [measure_groups(g, scale, progress) for g in groups],
        [measure_move(s, scale, progress) for s in sizes],
    )


def render(groups: Sequence[GroupsResult], moves: Sequence[MoveResult]) -> str:
    """The figures as two tables."""
    lines = [
        "groups on 3 nodes   clients   commands/s   node CPU/command   vs 1 group   "
        "commands/slot   p50      p99",
    ]
    one = next((g for g in groups if g.groups == 1), None)
    for g in groups:
        cpu = g.cpu_us_per_command
        base = one.cpu_us_per_command if one is not None else None
        ratio = f"{cpu / base:.2f}" if cpu is not None and base else "-"
        cpu_text = f"{cpu:.0f} µs" if cpu is not None else "-"
        name = f"{g.groups}" if g.groups else "unsharded"
        per_slot = f"{g.commands_per_slot:.1f}" if g.commands_per_slot else "-"
        lines.append(
            f"{name:<19} {g.clients:>7}   {g.rate:>10,.0f}   {cpu_text:>16}   {ratio:>10}   "
            f"{per_slot:>13}   {g.p50_us / 1e3:.2f} ms  {g.p99_us / 1e3:.2f} ms"
        )
    lines += ["", "shard moved   new owner holds it   longest read wait   raw pyzmq, same bytes"]
    for m in moves:
        size = f"{m.size / (1 << 20):g} MiB"
        if m.held_s is None:
            lines.append(f"{size:<13} {m.note}")
            continue
        lines.append(
            f"{size:<13} {m.held_s:>16.3f} s   {m.unavailable_s or 0:>15.3f} s   "
            f"{m.raw_s * 1e3:.1f} ms ({m.held_s / m.raw_s:,.0f}x)"
        )
    return "\n".join(lines)
