"""Actors the messaging benchmarks run on node processes (their module is the nodes' app)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from actorfw.core.actor import Actor, handler
from actorfw.core.codec import message
from actorfw.core.refs import ActorRef, ReplyTo

__all__ = [
    "Blast",
    "Expect",
    "Ping",
    "PingRun",
    "Pinger",
    "Ponger",
    "SendArrays",
    "Sink",
    "Source",
    "Tick",
]

CHUNK = 1000
"""Tells a source sends per turn of its loop."""


@message(name="bench.Tick")
@dataclass(frozen=True)
class Tick:
    """One small message: the payload of the throughput benchmarks."""

    n: int


@message(name="bench.Blast")
@dataclass(frozen=True)
class Blast:
    """Send ``count`` ticks to ``target``, starting at ``start``."""

    target: ActorRef
    count: int
    start: int = 0


@message(name="bench.SendArrays")
@dataclass(frozen=True)
class SendArrays:
    """Send ``count`` arrays of ``size`` bytes to ``target``."""

    target: ActorRef
    size: int
    count: int


@message(name="bench.Expect")
@dataclass(frozen=True)
class Expect:
    """Answer once ``count`` messages (or ``nbytes`` array bytes) have arrived in all."""

    count: int
    nbytes: int = 0


@message(name="bench.Ping")
@dataclass(frozen=True)
class Ping:
    n: int


@message(name="bench.PingRun")
@dataclass(frozen=True)
class PingRun:
    """Ask ``target`` ``count`` times in sequence; answer the round trips in seconds."""

    target: ActorRef
    count: int


class Source(Actor):
    """Sends ticks or arrays on demand, a chunk per loop turn (a zero-delay timer in between)."""

    @handler
    def blast(self, msg: Blast) -> None:
        end = min(msg.count, msg.start + CHUNK)
        tell = msg.target.tell
        for i in range(msg.start, end):
            tell(Tick(i))
        if end < msg.count:
            self.context.start_timer("blast", Blast(msg.target, msg.count, end), 0.0)

    @handler
    def arrays(self, msg: SendArrays) -> None:
        payload = np.zeros(msg.size, dtype=np.uint8)
        for _ in range(msg.count):
            msg.target.tell(payload)


class Sink(Actor):
    """Counts what arrives; answers an ``Expect`` when the count is reached."""

    def on_start(self) -> None:
        self.count = 0
        self.nbytes = 0
        self.waiting: list[tuple[int, int, ReplyTo]] = []

    @handler
    def tick(self, msg: Tick) -> None:
        self.count += 1
        if self.waiting:
            self._settle()

    @handler(np.ndarray)  # type: ignore[arg-type]
    def array(self, msg: Any) -> None:
        self.count += 1
        self.nbytes += msg.nbytes
        if self.waiting:
            self._settle()

    @handler
    def expect(self, msg: Expect) -> None:
        self.waiting.append((msg.count, msg.nbytes, self.context.reply_later()))
        self._settle()

    def _settle(self) -> None:
        still = []
        for count, nbytes, reply in self.waiting:
            if self.count >= count and self.nbytes >= nbytes:
                reply.send(self.count)
            else:
                still.append((count, nbytes, reply))
        self.waiting = still


class Ponger(Actor):
    """Answers a ping with its number."""

    @handler
    def ping(self, msg: Ping) -> int:
        return msg.n


class Pinger(Actor):
    """Times sequential asks to a ponger, on its node's clock."""

    @handler
    async def run(self, msg: PingRun) -> list[float]:
        now = self.context.now
        times = []
        for i in range(msg.count):
            start = now()
            await msg.target.ask(Ping(i))
            times.append(now() - start)
        return times
