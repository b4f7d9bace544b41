"""``actorfw bench peers``: the same work on the actor frameworks a user has installed.

Each peer that is installed (``pip install thespian ray pykka`` installs
them all; in the source tree, ``pip install -e '.[peers]'``) runs the same
definitions as actorfw, in interleaved rounds of the same run (actorfw
first in even rounds, the peer first in odd ones), and each figure is
reported beside actorfw's as how many times faster actorfw is. A peer
that is not installed is skipped, with the reason.

Cases:

- ``tell across processes`` (msgs/s): an actor in one process sends small
  messages to an actor in another, one send each, until the receiver has
  had them all. actorfw: two node processes (``Source`` to ``Sink``).
  Thespian: ``multiprocQueueBase`` (each actor a process of its own;
  ``multiprocTCPBase`` ran at about 400 msgs/s here, so the queue base is
  the fairer peer). Ray: two actors (each a worker process), the sender
  calling the receiver's method without waiting, then once more, waiting,
  which Ray runs after the others (calls from one caller keep their order).
- ``driver ask p50`` (µs): sequential round trips from the driver (the
  calling thread, outside any actor) to an actor in another process.
  actorfw: ``system.ask``; Thespian: ``ActorSystem.ask``; Ray:
  ``ray.get(actor.ping.remote(n))``.
- ``tell within a process`` and ``ask within a process p50``: Pykka's
  actors are threads of one process, so its peer figures are beside actorfw
  actors on one node process (``Source`` to ``Sink``; ``Pinger`` to
  ``Ponger``, timed by the asking actor; Pykka's asks are from the calling
  thread).
- ``replicated puts in memory`` (commands/s): a replicated key-value
  store on three node processes, nothing fsynced, twice: ``, 1,024
  outstanding`` on both sides, and ``, peer's all at once``, PySyncObj's
  commands all issued at once (it batches without bound; actorfw's figure
  is the same 1,024 clients'). actorfw: the
  replicated KV store (Multi-Paxos, ``storage="memory"``, batches of up to
  64 commands) driven by many concurrent exactly-once clients in the
  driving process, each with one put outstanding, counted over a window
  after a warm-up (as ``actorfw bench paxos`` does). PySyncObj: three Raft
  nodes, the puts issued in the leader's own process (each answered put
  issuing the next while a window bounds them), after a warm-up, and the
  round over when the leader applied them all
  (:mod:`actorfw.bench.peer_pysyncobj` says how, and which settings differ
  from PySyncObj's defaults). The clients of actorfw's store cross a
  process boundary, and have their commands de-duplicated by session;
  PySyncObj's do neither.

An etcd cluster is compared in ``docs/benchmarks.md`` by hand; no case
starts one yet.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import statistics
import time
from collections.abc import Callable
from typing import Any

from actorfw.bench.actors import Blast, Expect, Pinger, PingRun, Ponger, Sink, Source
from actorfw.bench.messaging import _interleaved as _rounds
from actorfw.bench.messaging import _rotating

__all__ = ["PEERS", "SCALES", "PeerResult", "render", "run_peers"]

PEERS = ("thespian", "ray", "pykka", "pysyncobj")
"""The peers this command knows, by the name of their Python package."""

SCALES: dict[str, dict[str, Any]] = {
    "full": {
        "rounds": 3,
        "tells": 150_000,
        "peer_tells": 5_000,
        "asks": 500,
        "clients": 1024,
        "warmup": 0.5,
        "seconds": 3.0,
        "commands": 50_000,
    },
    "quick": {
        "rounds": 1,
        "tells": 2_000,
        "peer_tells": 200,
        "asks": 20,
        "clients": 4,
        "warmup": 0.05,
        "seconds": 0.2,
        "commands": 40,
    },
}
"""Per round: actorfw's tells, a peer's tells (peers are slower: a round of
each lasts about a second), and asks per latency case; for the replicated
store, actorfw's concurrent ``clients``, its ``warmup`` and measured
``seconds``, and the ``commands`` PySyncObj's leader issues."""

APP = "actorfw.bench.actors"


@dataclasses.dataclass(frozen=True)
class PeerResult:
    """One case on one peer beside actorfw, measured in the same rounds."""

    case: str
    peer: str
    unit: str
    actorfw: float
    other: float

    @property
    def faster(self) -> float:
        """How many times faster actorfw is: actorfw/peer for a rate, peer/actorfw for a time."""
        if self.unit == "µs":
            return self.other / self.actorfw if self.actorfw else float("nan")
        return self.actorfw / self.other if self.other else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**dataclasses.asdict(self), "actorfw_faster": self.faster}


def installed(peer: str) -> bool:
    """Whether the peer's package can be imported here."""
    return importlib.util.find_spec(peer) is not None


def _p50_us(times: list[list[float]]) -> float:
    return statistics.median(t for run in times for t in run) * 1e6


class _Ours:
    """actorfw's side of every case: one cluster of two node processes, kept for the run."""

    def __init__(self, system: Any) -> None:
        self.system = system
        self.sink = system.spawn("n2", Sink, name="sink")
        self.source = system.spawn("n1", Source, name="source")
        self.local_sink = system.spawn("n1", Sink, name="local-sink")
        self.ponger = system.spawn("n2", Ponger, name="ponger")
        self.local_ponger = system.spawn("n1", Ponger, name="local-ponger")
        self.pinger = system.spawn("n1", Pinger, name="pinger")
        self.done = {"sink": 0, "local-sink": 0}
        system.ask(self.pinger, PingRun(self.ponger, 20), timeout=60.0)  # connections warm

    def tells(self, count: int, local: bool = False) -> float:
        sink = self.local_sink if local else self.sink
        key = "local-sink" if local else "sink"
        self.done[key] += count
        start = time.perf_counter()
        self.system.tell(self.source, Blast(sink, count))
        self.system.ask(sink, Expect(self.done[key]), timeout=600.0)
        return count / (time.perf_counter() - start)

    def driver_asks(self, count: int) -> list[float]:
        from actorfw.bench.actors import Ping

        times = []
        for n in range(count):
            start = time.perf_counter()
            self.system.ask(self.ponger, Ping(n))
            times.append(time.perf_counter() - start)
        return times

    def local_asks(self, count: int) -> list[float]:
        times: list[float] = self.system.ask(
            self.pinger, PingRun(self.local_ponger, count), timeout=600.0
        )
        return times


def _thespian(ours: _Ours, settings: dict[str, Any]) -> list[PeerResult]:
    from thespian.actors import ActorSystem

    from actorfw.bench.peer_thespian import Receiver, Sender

    # Spawned, not forked: a forked child would hold the node processes' parent-death
    # pipes open, and they would outlive a bench that was killed.
    system = ActorSystem("multiprocQueueBase", capabilities={"Process Startup Method": "spawn"})
    try:
        receiver = system.createActor(Receiver)
        sender = system.createActor(Sender)
        done = [0]

        def tells() -> float:
            count: int = settings["peer_tells"]
            done[0] += count
            start = time.perf_counter()
            system.tell(sender, ("blast", receiver, count))
            system.ask(receiver, ("expect", done[0]), 600)
            return count / (time.perf_counter() - start)

        def asks() -> list[float]:
            times = []
            for n in range(settings["asks"]):
                start = time.perf_counter()
                system.ask(receiver, ("ping", n), 10)
                times.append(time.perf_counter() - start)
            return times

        return _cross_process("thespian", ours, settings, tells, asks)
    finally:
        system.shutdown()


def _ray(ours: _Ours, settings: dict[str, Any]) -> list[PeerResult]:
    ray: Any = importlib.import_module("ray")

    class Receiver:
        def __init__(self) -> None:
            self.count = 0

        def tick(self, n: int) -> None:
            self.count += 1

        def total(self) -> int:
            return self.count

        def ping(self, n: int) -> int:
            return n

    class Sender:
        def blast(self, receiver: Any, count: int) -> int:
            for n in range(count):
                receiver.tick.remote(n)
            total: int = ray.get(receiver.total.remote())
            return total

    ray.init(
        address="local",  # a private instance, even where RAY_ADDRESS names a cluster
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        logging_level=40,  # logging.ERROR
    )
    try:
        receiver: Any = ray.remote(Receiver).remote()
        sender: Any = ray.remote(Sender).remote()
        ray.get(sender.blast.remote(receiver, 10))  # both workers up

        def tells() -> float:
            count: int = settings["peer_tells"]
            start = time.perf_counter()
            ray.get(sender.blast.remote(receiver, count))
            return count / (time.perf_counter() - start)

        def asks() -> list[float]:
            times = []
            for n in range(settings["asks"]):
                start = time.perf_counter()
                ray.get(receiver.ping.remote(n))
                times.append(time.perf_counter() - start)
            return times

        return _cross_process("ray", ours, settings, tells, asks)
    finally:
        ray.shutdown()


def _cross_process(
    peer: str,
    ours: _Ours,
    settings: dict[str, Any],
    tells: Callable[[], float],
    asks: Callable[[], list[float]],
) -> list[PeerResult]:
    rounds = settings["rounds"]
    mine, theirs = _rounds(rounds, lambda: ours.tells(settings["tells"]), tells)
    asked, answered = _rounds(rounds, lambda: ours.driver_asks(settings["asks"]), asks)
    return [
        PeerResult(
            "tell across processes",
            peer,
            "msgs/s",
            statistics.median(mine),
            statistics.median(theirs),
        ),
        PeerResult("driver ask p50", peer, "µs", _p50_us(asked), _p50_us(answered)),
    ]


def _pykka(ours: _Ours, settings: dict[str, Any]) -> list[PeerResult]:
    import threading

    import pykka

    class Receiver(pykka.ThreadingActor):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.count = 0
            self.waiting: list[tuple[int, threading.Event]] = []

        def on_receive(self, message: Any) -> Any:
            if type(message) is int:
                self.count += 1
                if self.waiting and self.count >= self.waiting[0][0]:
                    self.waiting.pop(0)[1].set()
                return None
            if message[0] == "expect":
                if self.count >= message[1]:
                    message[2].set()
                else:
                    self.waiting.append((message[1], message[2]))
                return None
            return message[1]  # ("ping", n)

    class Sender(pykka.ThreadingActor):  # type: ignore[misc]
        def on_receive(self, message: Any) -> None:
            target, count = message
            for n in range(count):
                target.tell(n)

    receiver = Receiver.start()
    sender = Sender.start()
    try:
        done = [0]

        def tells() -> float:
            count: int = settings["tells"]
            done[0] += count
            arrived = threading.Event()
            start = time.perf_counter()
            sender.tell((receiver, count))
            receiver.tell(("expect", done[0], arrived))
            arrived.wait(600.0)
            return count / (time.perf_counter() - start)

        def asks() -> list[float]:
            times = []
            for n in range(settings["asks"]):
                start = time.perf_counter()
                receiver.ask(("ping", n))
                times.append(time.perf_counter() - start)
            return times

        rounds = settings["rounds"]
        mine, theirs = _rounds(rounds, lambda: ours.tells(settings["tells"], local=True), tells)
        asked, answered = _rounds(rounds, lambda: ours.local_asks(settings["asks"]), asks)
        return [
            PeerResult(
                "tell within a process",
                "pykka",
                "msgs/s",
                statistics.median(mine),
                statistics.median(theirs),
            ),
            PeerResult(
                "ask within a process p50", "pykka", "µs", _p50_us(asked), _p50_us(answered)
            ),
        ]
    finally:
        pykka.ActorRegistry.stop_all()


def _pysyncobj(ours: _Ours, settings: dict[str, Any]) -> list[PeerResult]:
    from actorfw.bench.paxos import APPS, _throughput
    from actorfw.bench.peer_pysyncobj import PySyncObjCluster
    from actorfw.kv import KVStateMachine
    from actorfw.node import ActorSystem
    from actorfw.protocols.paxos.types import ReplicaOptions
    from actorfw.services.replication import replicate

    with (
        ActorSystem(3, apps=APPS, storage="memory") as system,
        PySyncObjCluster(3) as theirs,
    ):
        group = replicate(
            system, KVStateMachine, name="peers-kv", replica_options=ReplicaOptions(max_batch=64)
        )

        def replicated() -> float:
            commands, seconds, _, _ = system.run(
                _throughput(group, settings["clients"], settings["warmup"], settings["seconds"]),
                timeout=settings["warmup"] + settings["seconds"] + 120.0,
            )
            return float(commands / seconds)

        mine, windowed, unbounded = _rotating(
            settings["rounds"],
            [
                replicated,
                lambda: theirs.drive(settings["commands"], settings["clients"]),
                lambda: theirs.drive(settings["commands"], None),
            ],
        )
    rate = statistics.median(mine)
    return [
        PeerResult(
            "replicated puts in memory, 1,024 outstanding",
            "pysyncobj",
            "cmds/s",
            rate,
            statistics.median(windowed),
        ),
        PeerResult(
            "replicated puts in memory, peer's all at once",
            "pysyncobj",
            "cmds/s",
            rate,
            statistics.median(unbounded),
        ),
    ]


_RUNS: dict[str, Callable[[_Ours, dict[str, Any]], list[PeerResult]]] = {
    "thespian": _thespian,
    "ray": _ray,
    "pykka": _pykka,
    "pysyncobj": _pysyncobj,
}


def run_peers(
    scale: str = "full",
    peers: tuple[str, ...] = PEERS,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[PeerResult], dict[str, str]]:
    """Run every case on every installed peer of ``peers``; the figures, and the skipped peers.

    Returns:
        The results, and for each peer skipped, why: not installed, or the
        error it failed with (the other peers still run).
    """
    from actorfw.node import ActorSystem

    settings = SCALES[scale]
    peers = tuple(dict.fromkeys(peers))
    present = [peer for peer in peers if installed(peer)]
    skipped = {peer: f"not installed (pip install {peer})" for peer in peers if peer not in present}
    results: list[PeerResult] = []
    if not present:
        return results, skipped
    with ActorSystem(nodes=2, apps=[APP]) as system:
        ours = _Ours(system)
        for peer in present:
            if progress is not None:
                progress(f"{peer} beside actorfw")
            try:
                results.extend(_RUNS[peer](ours, settings))
            except Exception as error:  # a peer that fails costs the others nothing
                skipped[peer] = f"failed: {type(error).__name__}: {error}"
    return results, skipped


def render(results: list[PeerResult], skipped: dict[str, str]) -> str:
    """The figures as a plain-text table, then the peers skipped and why."""
    rows = [["case", "peer", "actorfw", "peer's", "unit", "actorfw faster"]]
    for r in results:
        rows.append(
            [r.case, r.peer, f"{r.actorfw:,.1f}", f"{r.other:,.1f}", r.unit, f"{r.faster:.1f}x"]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(widths[i]) if i in (0, 1, 4) else c.rjust(widths[i]) for i, c in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    for peer, why in skipped.items():
        lines.append(f"skipped {peer}: {why}")
    return "\n".join(lines)
