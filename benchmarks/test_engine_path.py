"""The engine's per-message path in one process: receiving and sending a tell.

Receiving: batches of 64 tells of ``bench.Tick``, as a peer's batch frame
arrives, decoded and handed to the engine (``Inbound.receive_batch``), then
one round of turns (``Engine.pump``) in which counting actors handle them:
tells to one actor, and spread round-robin over 100 and 10,000. The
baseline, in the same run: decoding the same frames and every message in
them, and nothing else (what a receiver pays before any actor work).

Sending: ``ref.tell`` of a ``Tick`` to an actor on another node from an
actor's turn, the transport a no-op; the baseline is building and
encoding the message and its envelope, and nothing else.

Ratios are the engine's time per message over the baseline's. Run with
``pytest benchmarks/test_engine_path.py --benchmark-enable -s``; see
"The per-message path" in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from actorfw.bench.actors import Sink, Source, Tick
from actorfw.core.engine import Engine, NodeConfig
from actorfw.core.envelopes import TELL, Envelope
from actorfw.core.storage import MemoryBackend
from actorfw.node.wire import decode_batch, encode_batch
from actorfw.values import codec
from actorfw.values.refs import ActorRef, _current

BATCHES = 200
BATCH = 64
SENDS = 20_000


class _Nowhere:
    """A transport that drops what it is given: only the engine's own work is timed."""

    def send(self, destination: str, envelope: Envelope) -> None:
        pass

    def attach(self, inbound: Any) -> None:
        pass


def _engine(loop: asyncio.AbstractEventLoop, config: NodeConfig | None = None) -> Engine:
    storage = MemoryBackend(lambda _delay, flush: flush(), lambda: 0.0, loop.create_future)
    engine = Engine(
        "n2", loop, _Nowhere(), storage, peers=("n1",), config=config, clock=time.monotonic
    )
    engine.start()
    return engine


def _frames(actors: int) -> list[list[Any]]:
    out = []
    for b in range(BATCHES):
        envelopes = []
        for i in range(BATCH):
            body, buffers, plain = codec.encode(Tick(i))
            target = f"sink-{(b * BATCH + i) % actors}"
            envelopes.append(Envelope(TELL, "n1", target, "source", 0, body, buffers, plain))
        out.append(encode_batch(envelopes))
    return out


def _receiving(actors: int) -> tuple[Callable[[], None], Callable[[], None]]:
    loop = asyncio.new_event_loop()
    engine = _engine(loop)
    for i in range(actors):
        engine.spawn(Sink, name=f"sink-{i}")
    loop.run_until_complete(asyncio.sleep(0))  # the actors start
    frames = _frames(actors)
    inbound = engine.inbound

    def run() -> None:
        for batch in frames:
            envelopes, _ = decode_batch("n1", batch, 1 << 26)
            inbound.heard_from("n1")
            inbound.receive_batch("n1", envelopes)
            inbound.after_input()

    return run, loop.close


def _decoding() -> tuple[Callable[[], None], Callable[[], None]]:
    frames = _frames(1)
    decode = codec.decode

    def run() -> None:
        for batch in frames:
            envelopes, _ = decode_batch("n1", batch, 1 << 26)
            for envelope in envelopes:
                decode(envelope.body, envelope.buffers, envelope.plain)

    return run, lambda: None


def _sending() -> tuple[Callable[[], None], Callable[[], None]]:
    loop = asyncio.new_event_loop()
    engine = _engine(loop, NodeConfig(flow_window=None))  # no credit to run out of
    engine.spawn(Source, name="source")
    loop.run_until_complete(asyncio.sleep(0))
    context = engine.cells["source"].context
    target = ActorRef("n1", "sink")

    def run() -> None:
        token = _current.set(context)  # as in the actor's turn
        try:
            for i in range(SENDS):
                target.tell(Tick(i))
        finally:
            _current.reset(token)

    return run, loop.close


def _encoding() -> tuple[Callable[[], None], Callable[[], None]]:
    def run() -> None:
        for i in range(SENDS):
            body, buffers, plain = codec.encode(Tick(i))
            Envelope(TELL, "n2", "sink", "source", 0, body, buffers, plain)

    return run, lambda: None


CASES: dict[str, tuple[Callable[..., Any], tuple[Any, ...], int, str | None]] = {
    "receive, 1 actor": (_receiving, (1,), BATCHES * BATCH, "decode only"),
    "receive, 100 actors": (_receiving, (100,), BATCHES * BATCH, "decode only"),
    "receive, 10,000 actors": (_receiving, (10_000,), BATCHES * BATCH, "decode only"),
    "decode only": (_decoding, (), BATCHES * BATCH, None),
    "send": (_sending, (), SENDS, "encode only"),
    "encode only": (_encoding, (), SENDS, None),
}
RESULTS: dict[str, float] = {}


@pytest.mark.parametrize("case", list(CASES))
def test_engine_path(benchmark, case: str) -> None:  # type: ignore[no-untyped-def]
    make, args, count, baseline = CASES[case]
    run, close = make(*args)
    try:
        benchmark.group = "engine path: " + ("receive" if count == BATCHES * BATCH else "send")
        benchmark.extra_info["messages"] = count
        benchmark.extra_info["baseline"] = baseline
        benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
        if benchmark.stats is not None:
            RESULTS[case] = benchmark.stats.stats.min / count
    finally:
        close()


def teardown_module() -> None:
    if not RESULTS:
        return
    lines = ["", "engine path (µs per message, best of 7 rounds):"]
    for case, (_, _, _, baseline) in CASES.items():
        if case in RESULTS and baseline in RESULTS:
            ratio = RESULTS[case] / RESULTS[baseline]
            lines.append(
                f"  {case:24} {RESULTS[case] * 1e6:6.3f} µs   "
                f"{baseline} {RESULTS[baseline] * 1e6:6.3f} µs   ratio {ratio:.2f}"
            )
    print("\n".join(lines))
