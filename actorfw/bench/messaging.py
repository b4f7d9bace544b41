"""Messaging benchmarks: actors on node processes beside raw pyzmq, in the same run.

Cases, each on IPC and on TCP (loopback, CURVE on both sides):

- ``tell``: one-way small messages between actors on two node processes,
  against DEALER to ROUTER sending the same orjson bytes one message per send;
- ``fan-in``: two sender nodes into one actor, against two DEALER processes
  into one ROUTER;
- ``ask``: sequential asks between actors on two nodes (round trip p50 and
  p99), against a DEALER/ROUTER ping-pong;
- ``payload``: numpy arrays of 1 KB, 1 MB and 64 MB between actors, in bytes
  per second, against zero-copy sends of the same buffer;
- ``tell 100 B bytes``: tells carrying 100 bytes of ``bytes``, against the
  same tells carrying a 100-character ``str`` (its baseline);
- ``tell 100 B``: those tells of a 100-character ``str``, against bare
  pyzmq: DEALER to ROUTER sending a ready-made 100-byte ``bytes`` per send,
  nothing encoded or decoded (the floor of one message per send), in the
  same rounds as the two above;
- ``tell to N actors``: the ``tell`` case spread round-robin over 100 and
  10,000 actors of the receiving node, against the same tells to 1 actor
  there (its baseline), in the same rounds;
- ``driver tell``: ``system.tell`` in a plain loop from the calling thread
  (what a new user writes first) to an actor on a node process, against the
  same tells made inside ``system.run``, on the client's own loop (its
  baseline is that, not raw pyzmq);
- ``driver ask``: sequential ``system.ask`` from the calling thread (round
  trip p50), against the DEALER/ROUTER ping-pong.

Every ratio is actorfw over raw (above 1 is faster than raw, except for
round trips where it is how many times slower).

Each case runs in ``rounds`` rounds, each an actorfw measurement and a raw
one back to back (actorfw first in even rounds, raw first in odd ones), on
one cluster kept for the case. A throughput figure is the median of its
rounds; a round-trip figure is the percentile of every round's times
together. On a shared machine the load changes from second to second:
interleaving gives both sides the same moments, and the median drops a
round that another process spoiled, on either side.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from actorfw.bench import raw
from actorfw.bench.actors import (
    Blast,
    Expect,
    Herd,
    HerdRefs,
    Ping,
    Pinger,
    PingRun,
    Ponger,
    SendArrays,
    SendBlobs,
    Sink,
    Source,
    Spread,
    Tick,
)

__all__ = ["SCALES", "MessagingResult", "run_messaging"]

SCALES: dict[str, dict[str, Any]] = {
    # messages per throughput case, asks per latency case, payload (size, count) pairs
    "full": {
        "rounds": 3,
        "tells": 150_000,
        "asks": 1_000,
        "payloads": [(1 << 10, 10_000), (1 << 20, 400), (64 << 20, 6)],
        "driver_tells": 50_000,
        "herds": [1, 100, 10_000],
    },
    "quick": {
        "rounds": 1,
        "tells": 2_000,
        "asks": 50,
        "payloads": [(1 << 10, 100), (1 << 20, 4)],
        "driver_tells": 2_000,
        "herds": [1, 100],
    },
}
"""How much work each case does: ``full`` for figures, ``quick`` to check it runs.

``rounds`` of each case; per round, ``tells`` messages per throughput case,
``asks`` round trips per latency case, ``payloads`` as (size, count), and
``driver_tells`` tells from the calling thread, and ``herds``, the numbers
of actors a spread of tells goes over (the first is the baseline).
"""

APP = "actorfw.bench.actors"


@dataclasses.dataclass(frozen=True)
class MessagingResult:
    """One figure beside its baseline (raw pyzmq unless ``baseline`` says), in the same run."""

    case: str
    transport: str
    unit: str
    actorfw: float
    raw: float
    baseline: str = "raw pyzmq"

    @property
    def ratio(self) -> float:
        """actorfw / baseline."""
        return self.actorfw / self.raw if self.raw else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**dataclasses.asdict(self), "ratio": self.ratio}


def _percentile(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _timed(function: Callable[[], Any]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


T = TypeVar("T")


def _interleaved(
    rounds: int, ours: Callable[[], T], theirs: Callable[[], T]
) -> tuple[list[T], list[T]]:
    """``rounds`` of both measurements back to back, alternating which goes first."""
    mine, base = _rotating(rounds, [ours, theirs])
    return mine, base


def _rotating(rounds: int, measures: list[Callable[[], T]]) -> list[list[T]]:
    """``rounds`` of every measurement back to back, the first of a round rotating.

    Round ``n`` starts with measurement ``n % len(measures)``. Returns each
    measurement's results, in the order of ``measures``.
    """
    results: list[list[T]] = [[] for _ in measures]
    count = len(measures)
    for n in range(rounds):
        for i in range(count):
            which = (n + i) % count
            results[which].append(measures[which]())
    return results


def _tells(
    transport: str,
    count: int,
    senders: int,
    rounds: int,
    baseline: Callable[[], float],
    event_loop: str = "asyncio",
) -> tuple[list[float], list[float]]:
    from actorfw.node import ActorSystem

    with ActorSystem(
        nodes=senders + 1, apps=[APP], transport=transport, event_loop=event_loop
    ) as system:
        sink_node = system.nodes[-1]
        sink = system.spawn(sink_node, Sink, name="sink")
        sources = [system.spawn(node, Source, name="source") for node in system.nodes[:-1]]
        share = count // senders
        done = [0]  # what the sink has had in all, over the rounds so far

        def run() -> None:
            done[0] += share * senders
            for source in sources:
                system.tell(source, Blast(sink, share))
            system.ask(sink, Expect(done[0]), timeout=600.0)

        return _interleaved(rounds, lambda: share * senders / _timed(run), baseline)


def _asks(
    transport: str,
    count: int,
    rounds: int,
    baseline: Callable[[], list[float]],
    event_loop: str = "asyncio",
) -> tuple[list[float], list[float]]:
    from actorfw.node import ActorSystem

    with ActorSystem(nodes=2, apps=[APP], transport=transport, event_loop=event_loop) as system:
        ponger = system.spawn("n2", Ponger, name="ponger")
        pinger = system.spawn("n1", Pinger, name="pinger")
        system.ask(pinger, PingRun(ponger, 20), timeout=60.0)  # connections warm

        def run() -> list[float]:
            times: list[float] = system.ask(pinger, PingRun(ponger, count), timeout=600.0)
            return times

        mine, base = _interleaved(rounds, run, baseline)
        return [t for times in mine for t in times], [t for times in base for t in times]


def _payload(
    transport: str,
    size: int,
    count: int,
    rounds: int,
    baseline: Callable[[], float],
    event_loop: str = "asyncio",
) -> tuple[list[float], list[float]]:
    from actorfw.node import ActorSystem

    with ActorSystem(
        nodes=2,
        apps=[APP],
        transport=transport,
        max_message_size=size + (1 << 20),
        event_loop=event_loop,
    ) as system:
        sink = system.spawn("n2", Sink, name="sink")
        source = system.spawn("n1", Source, name="source")

        done = [0]  # arrays the sink has had in all, over the rounds so far

        def run() -> None:
            done[0] += count
            system.tell(source, SendArrays(sink, size, count))
            system.ask(sink, Expect(done[0], size * done[0]), timeout=600.0)

        return _interleaved(rounds, lambda: size * count / _timed(run), baseline)


def _driver(
    transport: str,
    tells: int,
    asks: int,
    rounds: int,
    ask_baseline: Callable[[], list[float]],
    event_loop: str = "asyncio",
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Driver tells in a plain loop against tells inside ``run``; driver asks against raw."""
    from actorfw.node import ActorSystem

    with ActorSystem(nodes=2, apps=[APP], transport=transport, event_loop=event_loop) as system:
        sink = system.spawn("n2", Sink, name="sink")
        ponger = system.spawn("n2", Ponger, name="ponger")
        system.ask(ponger, Ping(0))  # connections warm
        done = [0]  # what the sink has had in all, over the rounds so far

        def loop() -> None:
            done[0] += tells
            for n in range(tells):
                system.tell(sink, Tick(n))
            system.ask(sink, Expect(done[0]), timeout=600.0)

        def inside() -> None:
            done[0] += tells

            async def main() -> None:
                for n in range(tells):
                    sink.tell(Tick(n))

            system.run(main, timeout=600.0)
            system.ask(sink, Expect(done[0]), timeout=600.0)

        def round_trips() -> list[float]:
            times = []
            clock = time.perf_counter
            for n in range(asks):
                start = clock()
                system.ask(ponger, Ping(n))
                times.append(clock() - start)
            return times

        mine, base = _interleaved(
            rounds, lambda: tells / _timed(loop), lambda: tells / _timed(inside)
        )
        asked, raw_times = _interleaved(rounds, round_trips, ask_baseline)
        return (
            mine,
            base,
            [t for times in asked for t in times],
            [t for times in raw_times for t in times],
        )


def _blobs(
    transport: str, size: int, count: int, rounds: int, event_loop: str = "asyncio"
) -> list[list[float]]:
    """Tells of ``size`` bytes of ``bytes``, of a ``str`` as long, and bare pyzmq's rate."""
    from actorfw.node import ActorSystem

    with ActorSystem(nodes=2, apps=[APP], transport=transport, event_loop=event_loop) as system:
        sink = system.spawn("n2", Sink, name="sink")
        source = system.spawn("n1", Source, name="source")
        done = [0]

        def run(text: bool) -> float:
            done[0] += count
            start = time.perf_counter()
            system.tell(source, SendBlobs(sink, count, size, text))
            system.ask(sink, Expect(done[0]), timeout=600.0)
            return count / (time.perf_counter() - start)

        return _rotating(
            rounds,
            [
                lambda: run(False),
                lambda: run(True),
                partial(raw.raw_bare_tell, transport, count, size),
            ],
        )


def _spread(
    transport: str, herds: list[int], count: int, rounds: int, event_loop: str = "asyncio"
) -> dict[int, list[float]]:
    """Tells spread round-robin over 1, 100, ... actors of one node; per size, its rates."""
    from actorfw.node import ActorSystem

    with ActorSystem(nodes=2, apps=[APP], transport=transport, event_loop=event_loop) as system:
        source = system.spawn("n1", Source, name="source")
        members = {}
        done = dict.fromkeys(herds, 0)
        for size in herds:
            herd = system.spawn("n2", Herd, size, name=f"herd{size}")
            members[size] = (herd, system.ask(herd, HerdRefs(), timeout=120.0))

        def run(size: int) -> float:
            herd, refs = members[size]
            done[size] += count
            start = time.perf_counter()
            system.tell(source, Spread(count, refs))
            system.ask(herd, Expect(done[size]), timeout=600.0)
            return count / (time.perf_counter() - start)

        # Every size in every round, in turn, the order rotating.
        rates = _rotating(rounds, [partial(run, size) for size in herds])
    return dict(zip(herds, rates, strict=True))


def _size_name(size: int) -> str:
    if size >= 1 << 20:
        return f"{size >> 20} MB"
    return f"{size >> 10} KB"


def run_messaging(
    scale: str = "full",
    transports: tuple[str, ...] = ("ipc", "tcp"),
    progress: Callable[[str], None] | None = None,
    event_loop: str = "asyncio",
) -> list[MessagingResult]:
    """Run every messaging case with its baseline; returns the figures.

    ``event_loop``: the nodes' and the client's (``"asyncio"`` or ``"uvloop"``).
    """
    settings = SCALES[scale]
    rounds: int = settings["rounds"]
    tells: int = settings["tells"]
    asks: int = settings["asks"]
    results = []
    median = statistics.median

    def note(text: str) -> None:
        if progress is not None:
            progress(text)

    for transport in transports:
        note(f"tell throughput ({transport})")
        ours, theirs = _tells(
            transport, tells, 1, rounds, partial(raw.raw_tell, transport, tells), event_loop
        )
        results.append(MessagingResult("tell", transport, "msgs/s", median(ours), median(theirs)))

        note(f"fan-in throughput ({transport})")
        ours, theirs = _tells(
            transport, tells, 2, rounds, partial(raw.raw_fan_in, transport, tells, 2), event_loop
        )
        results.append(
            MessagingResult("fan-in 2:1", transport, "msgs/s", median(ours), median(theirs))
        )

        note(f"ask round trips ({transport})")
        mine, base = _asks(
            transport, asks, rounds, partial(raw.raw_round_trips, transport, asks), event_loop
        )
        for label, q in (("ask p50", 0.5), ("ask p99", 0.99)):
            results.append(
                MessagingResult(
                    label, transport, "µs", _percentile(mine, q) * 1e6, _percentile(base, q) * 1e6
                )
            )
        results.append(
            MessagingResult(
                "ask mean",
                transport,
                "µs",
                statistics.fmean(mine) * 1e6,
                statistics.fmean(base) * 1e6,
            )
        )

        for size, count in settings["payloads"]:
            note(f"numpy {_size_name(size)} ({transport})")
            ours, theirs = _payload(
                transport,
                size,
                count,
                rounds,
                partial(raw.raw_payload, transport, size, count),
                event_loop,
            )
            results.append(
                MessagingResult(
                    f"numpy {_size_name(size)}",
                    transport,
                    "MB/s",
                    median(ours) / 1e6,
                    median(theirs) / 1e6,
                )
            )

        note(f"100 B tells: bytes, str and bare pyzmq ({transport})")
        blobs, texts, bare = _blobs(transport, 100, tells, rounds, event_loop)
        results.append(
            MessagingResult(
                "tell 100 B bytes",
                transport,
                "msgs/s",
                median(blobs),
                median(texts),
                "100-char str",
            )
        )
        results.append(
            MessagingResult(
                "tell 100 B", transport, "msgs/s", median(texts), median(bare), "bare pyzmq"
            )
        )

        note(f"tells spread over {', '.join(map(str, settings['herds']))} actors ({transport})")
        rates = _spread(transport, settings["herds"], tells, rounds, event_loop)
        one = median(rates[settings["herds"][0]])
        for size in settings["herds"][1:]:
            results.append(
                MessagingResult(
                    f"tell to {size:,} actors",
                    transport,
                    "msgs/s",
                    median(rates[size]),
                    one,
                    "tell to 1 actor",
                )
            )

        note(f"driver tells and asks ({transport})")
        ours, theirs, mine, base = _driver(
            transport,
            settings["driver_tells"],
            asks,
            rounds,
            partial(raw.raw_round_trips, transport, asks),
            event_loop,
        )
        results.append(
            MessagingResult(
                "driver tell", transport, "msgs/s", median(ours), median(theirs), "tell in run"
            )
        )
        results.append(
            MessagingResult(
                "driver ask p50",
                transport,
                "µs",
                _percentile(mine, 0.5) * 1e6,
                _percentile(base, 0.5) * 1e6,
            )
        )
    return results


def render(results: list[MessagingResult]) -> str:
    """The figures as a plain-text table."""
    rows = [
        ["case", "transport", "actorfw", "baseline", "unit", "actorfw / baseline", "baseline is"]
    ]
    for r in results:
        rows.append(
            [
                r.case,
                r.transport,
                f"{r.actorfw:,.1f}",
                f"{r.raw:,.1f}",
                r.unit,
                f"{r.ratio:.2f}",
                r.baseline,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(widths[i]) if i in (0, 1, 4, 6) else c.rjust(widths[i])
            for i, c in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
