"""The deterministic simulator: a whole cluster in one process, on virtual time, from one seed.

A :class:`Simulation` runs any number of nodes, each a real
:class:`~actorfw.core.engine.Engine` (the same code as on node
processes), on one :class:`~actorfw.sim.loop.VirtualTimeLoop`, connected by a
:class:`~actorfw.sim.network.SimNetwork` that can delay, drop, duplicate and
reorder messages and partition nodes, with in-memory storage that loses
unsynced writes when a node crashes. Every random choice — the network's,
each actor's ``context.random``, supervision back-off, storage latency —
comes from the one seed, so the same seed and the same program replay the
same run, delivery by delivery: :attr:`Simulation.trace` records them, and
:meth:`Simulation.trace_text` prints them.

Example::

    with Simulation(nodes=3, seed=7) as sim:
        ref = sim.spawn("n1", Greeter, name="greeter")
        assert sim.ask(ref, Greet("ada")) == "hello ada"
        sim.crash("n1")
        sim.restart("n1")          # its top-level actors are rebuilt
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from typing import Any

from actorfw.core.actor import Actor
from actorfw.core.arguments import check_actor_class, check_target, no_such_node
from actorfw.core.cluster import find_actor, poll_until
from actorfw.core.engine import Engine, NodeConfig, start_engine
from actorfw.core.spawn import SpawnSpec, root_specs
from actorfw.core.storage import MemoryBackend
from actorfw.core.supervision import Directive
from actorfw.sim.loop import VirtualTimeLoop
from actorfw.sim.network import NetworkConfig, SimNetwork
from actorfw.values.codec import message_name
from actorfw.values.refs import DEFAULT_ASK_TIMEOUT, ActorRef

__all__ = ["SimNode", "Simulation", "SimulationTimeout", "TraceEvent"]


class SimulationTimeout(AssertionError):
    """Virtual time ran out before the awaited result or condition."""


@dataclasses.dataclass(frozen=True, slots=True)
class TraceEvent:
    """One line of a simulation's trace.

    Attributes:
        time: virtual seconds.
        kind: ``deliver`` (a handler runs), ``recv`` (a message reached a
            node), ``drop``, ``dup``, ``timer``, ``fail``, ``crash``,
            ``restart``, ``partition``, ``heal``, ``network``.
        node: where it happened (``-`` for the whole cluster).
        detail: what, in words and checksums, never memory addresses.
    """

    time: float
    kind: str
    node: str
    detail: str

    def __str__(self) -> str:
        return f"{self.time:.9f} {self.kind} {self.node} {self.detail}"


def _consume(task: asyncio.Task[Any]) -> None:
    # The driver's outcome is read by run(); when run() is abandoned by an error
    # elsewhere, this keeps asyncio from reporting it as never retrieved.
    if not task.cancelled():
        task.exception()


def _type_name(message: Any) -> str:
    kind = type(message)
    return message_name(kind) or kind.__qualname__


class _Tracer:
    __slots__ = ("_sim",)

    def __init__(self, sim: Simulation) -> None:
        self._sim = sim

    def delivered(self, node: str, actor: str, sender: ActorRef | None, message: Any) -> None:
        self._sim._deliveries += 1
        self._sim._record(
            "deliver", node, f"{actor} <- {sender.path if sender else '-'} {_type_name(message)}"
        )

    def timer(self, node: str, actor: str, key: Any) -> None:
        self._sim._record("timer", node, f"{actor} {key!r}")

    def failed(self, node: str, actor: str, error: BaseException, directive: Directive) -> None:
        self._sim._record("fail", node, f"{actor} {type(error).__name__} -> {directive.value}")


class SimNode:
    """One simulated node: its engine (while running), its storage, what it rebuilds on restart."""

    def __init__(self, sim: Simulation, node_id: str) -> None:
        self._sim = sim
        self.id = node_id
        self.incarnation = 0
        self.running = False
        self.storage = MemoryBackend(
            schedule=lambda delay, callback: sim.loop.call_later(delay, callback),
            latency=lambda: sim.disk_latency(sim._rng_disk),
            make_future=sim.loop.create_future,
        )
        self._engine: Engine | None = None
        self._specs: list[SpawnSpec] = []

    @property
    def engine(self) -> Engine:
        """The running engine (raises if the node is crashed)."""
        if self._engine is None or not self.running:
            raise RuntimeError(f"node {self.id} is not running (crashed, and not restarted)")
        return self._engine

    def _boot(self) -> None:
        sim = self._sim
        engine = start_engine(
            self.id,
            sim.loop,
            sim.network.port(self.id),
            self.storage,
            peers=[n for n in sim.nodes if n != self.id],
            seed=sim.seed,
            incarnation=self.incarnation,
            config=sim.node_config,
            tracer=sim._tracer if sim.tracing else None,
            log_time=True,
        )
        self._engine = engine
        self.running = True
        for spec in list(self._specs):
            try:
                spec.start(engine)
            except Exception as error:
                sim._record(
                    "fail", self.id, f"{spec.name} could not be rebuilt: {type(error).__name__}"
                )
                self._specs.remove(spec)

    def _remember_roots(self) -> None:
        if self._engine is not None:
            self._specs = root_specs(self._engine)


_causal_traces: list[list[Any]] = []  # [directory, simulations made], innermost last


@contextlib.contextmanager
def causal_traces(directory: str) -> Iterator[list[Simulation]]:
    """Record the causal trace of every simulation made inside, under ``directory``.

    Each :class:`Simulation` created in the block whose ``node_config`` has
    no ``trace_dir`` of its own records into ``directory/sim1``, ``sim2``, ...
    (see :mod:`actorfw.core.tracing`); the block gets the list of them. At
    the end of the block each is closed, which writes out its trace. The
    test kit uses it to write a failing seed's trace; read one with
    ``actorfw trace``.
    """
    made: list[Simulation] = []
    _causal_traces.append([directory, made])
    try:
        yield made
    finally:
        _causal_traces.pop()
        for sim in made:
            sim.close()


class Simulation:
    """A simulated cluster (see the module documentation).

    Args:
        nodes: how many nodes (named ``n1``, ``n2``, ...) or their names.
        seed: the one seed every random choice derives from.
        network: the network's behaviour; change it later with
            ``sim.network.configure(...)``.
        disk_latency: ``(low, high)`` seconds one storage flush takes.
        lose_unsynced: at a crash, ``"all"`` unsynced writes are lost, or
            (``"prefix"``) a random prefix of them survives: the adversarial
            model (see :mod:`actorfw.core.storage`).
        node_config: engine tunables (heartbeats, failure detection, ...).
        trace: record the trace (turn off for speed in benchmarks).
        stuck_after: turns of the loop in a row at one instant before a blocking
            call raises :class:`~actorfw.sim.loop.SimulationStuck` (see
            :class:`~actorfw.sim.loop.VirtualTimeLoop`).
    """

    def __init__(
        self,
        nodes: int | Iterable[str] = 3,
        seed: int = 0,
        network: NetworkConfig | None = None,
        disk_latency: tuple[float, float] = (0.0005, 0.002),
        lose_unsynced: str = "all",
        node_config: NodeConfig | None = None,
        trace: bool = True,
        stuck_after: int = 100_000,
    ) -> None:
        names = [f"n{i + 1}" for i in range(nodes)] if isinstance(nodes, int) else list(nodes)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"a simulation needs distinct node names, not {names!r}")
        if lose_unsynced not in ("all", "prefix"):
            raise ValueError(f"lose_unsynced is 'all' or 'prefix', not {lose_unsynced!r}")
        if not isinstance(seed, int):
            raise TypeError(f"the seed is an int, not {type(seed).__name__}")
        self.seed = seed
        self.loop = VirtualTimeLoop(stuck_after=stuck_after)
        root = random.Random(seed)
        self._rng_net = random.Random(root.getrandbits(64))
        self._rng_disk = random.Random(root.getrandbits(64))
        self._rng_crash = random.Random(root.getrandbits(64))
        self._disk_latency = disk_latency
        self.lose_unsynced = lose_unsynced
        self.node_config = node_config or NodeConfig()
        if _causal_traces and self.node_config.trace_dir is None:
            directory, made = _causal_traces[-1]
            made.append(self)
            where = os.path.join(directory, f"sim{len(made)}")
            self.node_config = dataclasses.replace(self.node_config, trace_dir=where)
        self.tracing = trace
        self.trace: list[TraceEvent] = []
        self._deliveries = 0
        self._tracer = _Tracer(self)
        self.network = SimNetwork(
            names, self.loop, network or NetworkConfig(), self._rng_net, self._record
        )
        self.nodes: dict[str, SimNode] = {name: SimNode(self, name) for name in names}
        self._closed = False
        for node in self.nodes.values():
            node._boot()

    # -- context manager -----------------------------------------------------------------

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Crash every node, let cancelled work unwind, and close the loop."""
        if self._closed:
            return
        self._closed = True
        for name, node in self.nodes.items():
            if node.running and node._engine is not None:
                node._engine.crash()
                self.network.detach(name)
                node.running = False
        loop = self.loop
        for _ in range(10):
            if not loop._ready:  # type: ignore[attr-defined]
                break
            loop.run_until(lambda: False, loop.time())
        loop.close()

    # -- time ----------------------------------------------------------------------------

    in_process = True
    """Actors run in this process: a class may be passed where a path is otherwise needed."""

    @property
    def now(self) -> float:
        """The virtual time, in seconds since the simulation began."""
        return self.loop.time()

    def disk_latency(self, rng: random.Random) -> float:
        """One storage flush's duration."""
        low, high = self._disk_latency
        return low if low == high else rng.uniform(low, high)

    def run_for(self, seconds: float) -> None:
        """Run the cluster for ``seconds`` of virtual time."""
        deadline = self.now + seconds
        self.loop.run_until(lambda: False, deadline)
        self.loop._now = max(self.loop._now, deadline)

    def run_until(self, predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
        """Run until ``predicate()`` holds; False if ``timeout`` virtual seconds pass first."""
        return self.loop.run_until(predicate, self.now + timeout)

    # -- actors --------------------------------------------------------------------------

    def node(self, node_id: str) -> Engine:
        """The running engine of ``node_id`` (for inspection: stats, cells, storage)."""
        return self._sim_node(node_id).engine

    def _sim_node(self, node_id: str) -> SimNode:
        node = self.nodes.get(node_id)
        if node is None:
            raise ValueError(f"no node {node_id!r} in this simulation (nodes: {list(self.nodes)})")
        return node

    def spawn(
        self,
        node: str,
        actor_class: type[Actor],
        *args: Any,
        name: str | None = None,
        **kwargs: Any,
    ) -> ActorRef:
        """Start a top-level actor on ``node``; restarts of the node rebuild it from these."""
        check_actor_class(actor_class)
        return self._sim_node(node).engine.spawn(actor_class, *args, name=name, **kwargs)

    def run(
        self,
        main: Callable[[], Awaitable[Any]] | Coroutine[Any, Any, Any],
        on: str | None = None,
        timeout: float = 60.0,
    ) -> Any:
        """Run driver code to completion on virtual time and return its result.

        ``main`` (an ``async`` function or a coroutine) runs as a client of
        node ``on`` (default: the first running node): ``ref.tell`` and
        ``ref.ask`` inside it send from there.

        Raises:
            SimulationTimeout: it did not finish within ``timeout`` virtual seconds.
        """
        coroutine = main() if callable(main) else main
        client = self._sim_node(on or self._first_running()).engine.client
        task: asyncio.Task[Any] = self.loop.create_task(
            coroutine,  # type: ignore[arg-type]
            context=client.bind(),
        )
        task.add_done_callback(_consume)
        try:
            finished = self.loop.run_until(task.done, self.now + timeout)
        finally:
            if not task.done():
                task.cancel()
        if not finished:
            raise SimulationTimeout(
                f"the driver did not finish within {timeout:g} virtual seconds (t={self.now:.3f})"
            )
        return task.result()

    def ask(
        self,
        target: ActorRef,
        message: Any,
        timeout: float = DEFAULT_ASK_TIMEOUT,
        on: str | None = None,
    ) -> Any:
        """Ask ``target`` from a client on ``on`` (default: the target's node); return the reply."""
        check_target(target, "ask")

        async def main() -> Any:
            return await target.ask(message, timeout)

        return self.run(main, on=on or self._near(target), timeout=timeout + 1.0)

    def poll(
        self,
        target: ActorRef,
        message: Any,
        until: Callable[[Any], bool],
        timeout: float = 30.0,
        interval: float = 0.05,
        on: str | None = None,
    ) -> Any:
        """Ask ``target`` every ``interval`` seconds until ``until(reply)``; return that reply.

        Failed asks (timeouts, a node down) count as "not yet".

        Raises:
            SimulationTimeout: ``timeout`` virtual seconds passed first; says the last reply.
        """
        return self.run(
            lambda: poll_until(target, message, until, timeout, interval, SimulationTimeout),
            on=on or self._near(target),
            timeout=timeout + 10.0,
        )

    def lookup(self, name: str, node: str | None = None, on: str | None = None) -> ActorRef | None:
        """Find a living actor by name (on ``node``, or any running node), asking from ``on``.

        Raises:
            NodeDown, AskTimeout: ``node`` is given and is down or does not answer.
        """
        origin = on or self._first_running()
        candidates = [node] if node is not None else [n for n, s in self.nodes.items() if s.running]
        found: ActorRef | None = self.run(
            lambda: find_actor(name, candidates, DEFAULT_ASK_TIMEOUT, only=node is not None),
            on=origin,
            timeout=4 * DEFAULT_ASK_TIMEOUT * len(self.nodes),
        )
        return found

    def tell(self, target: ActorRef, message: Any, on: str | None = None) -> None:
        """Tell ``target`` from a client on ``on`` (default: the target's node); returns at once.

        Raises:
            ActorNotFound: ``target`` is on a node that is not in the simulation
                (as :meth:`actorfw.node.ActorSystem.tell` raises).
        """
        check_target(target, "tell")
        if target.node not in self.nodes:
            raise no_such_node(target, self.nodes, "tell")
        client = self._sim_node(on or self._near(target)).engine.client
        client.send(target, message)

    def backlog(self, node: str, on: str | None = None) -> int:
        """Tells the client on ``on`` (default: the first running node) keeps for ``node``.

        The same as :meth:`actorfw.node.ActorSystem.backlog`: messages waiting
        for ``node`` to give credit for more.
        """
        return self._sim_node(on or self._first_running()).engine.flow.backlog(node)

    def _first_running(self) -> str:
        for name, node in self.nodes.items():
            if node.running:
                return name
        raise RuntimeError("every node of the simulation is crashed")

    def _near(self, target: ActorRef) -> str:
        # A client beside the target if its node runs, else on the first running node.
        node = self.nodes.get(target.node)
        if node is not None and node.running:
            return target.node
        return self._first_running()

    # -- faults --------------------------------------------------------------------------

    def crash(self, node_id: str) -> None:
        """Crash a node: its actors vanish mid-whatever, its unsynced writes are lost."""
        node = self._sim_node(node_id)
        if not node.running:
            raise RuntimeError(f"node {node_id} is already crashed")
        node._remember_roots()
        node.engine.crash()
        self.network.detach(node_id)
        node.running = False
        rng = self._rng_crash if self.lose_unsynced == "prefix" else None
        survived = node.storage.crash(rng)
        self._record("crash", node_id, f"unsynced batches kept: {survived}")

    def restart(self, node_id: str) -> None:
        """Restart a crashed node as a new incarnation; its top-level actors are rebuilt."""
        node = self._sim_node(node_id)
        if node.running:
            raise RuntimeError(f"node {node_id} is running; crash it first")
        node.incarnation += 1
        self._record("restart", node_id, f"incarnation {node.incarnation}")
        node._boot()

    def partition(self, *groups: Iterable[str]) -> None:
        """Split the nodes into groups that cannot reach each other (``SimNetwork.partition``)."""
        self.network.partition(*groups)

    def heal(self) -> None:
        """End the partition."""
        self.network.heal()

    # -- the trace -----------------------------------------------------------------------

    def _record(self, kind: str, node: str, detail: str) -> None:
        if self.tracing:
            self.trace.append(TraceEvent(self.loop.time(), kind, node, detail))

    def trace_text(self, kinds: Iterable[str] | None = None) -> str:
        """The trace as text, one event a line (only ``kinds`` if given)."""
        wanted = set(kinds) if kinds is not None else None
        return "\n".join(str(e) for e in self.trace if wanted is None or e.kind in wanted)

    def save_trace(self, path: str | os.PathLike[str]) -> None:
        """Write the trace to ``path`` as text, one event a line."""
        with open(path, "w", encoding="utf-8") as out:
            out.write(self.trace_text())
            out.write("\n")

    def deliveries(self) -> int:
        """How many times a handler ran on a message, on all nodes (counted while tracing)."""
        return self._deliveries
