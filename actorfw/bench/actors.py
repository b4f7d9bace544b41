"""Actors the benchmarks run on node processes (their module is the nodes' app).

The messaging benchmarks use the sources, sinks and ping-pong actors; the
replicated KV benchmark uses the quorum-write actors as its runtime floor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from actorfw.core.actor import Actor, handler
from actorfw.protocols.causal import Delivery
from actorfw.services.causal import Broadcast
from actorfw.values.codec import message
from actorfw.values.refs import ActorRef, ReplyTo

__all__ = [
    "Blast",
    "Blob",
    "Expect",
    "FanOut",
    "Flood",
    "Herd",
    "HerdRefs",
    "Monitor",
    "Ping",
    "PingRun",
    "Pinger",
    "Ponger",
    "Post",
    "QuorumFollower",
    "QuorumLeader",
    "QuorumSetup",
    "QuorumWrite",
    "SendArrays",
    "SendBlobs",
    "Sink",
    "Sleeper",
    "Source",
    "Spread",
    "Tick",
]

CHUNK = 1000
"""Tells a source sends per turn of its loop."""


@message(name="bench.Tick")
class Tick:
    """One small message: the payload of the throughput benchmarks."""

    n: int


@message(name="bench.Blob")
class Blob:
    """A small message carrying ``bytes`` (or, for its baseline, the same length of ``str``)."""

    data: bytes | str


@message(name="bench.SendBlobs")
class SendBlobs:
    """Send ``count`` :class:`Blob` of ``size`` bytes to ``target`` (``text``: a str as long)."""

    target: ActorRef
    count: int
    size: int
    text: bool = False
    start: int = 0


@message(name="bench.Spread")
class Spread:
    """Send ``count`` ticks round-robin over ``targets`` (kept from the first), from ``start``."""

    count: int
    targets: tuple[ActorRef, ...] = ()
    start: int = 0


@message(name="bench.HerdRefs")
class HerdRefs:
    """Ask a :class:`Herd` for the refs of its members."""


@message(name="bench.Blast")
class Blast:
    """Send ``count`` ticks to ``target``, starting at ``start``."""

    target: ActorRef
    count: int
    start: int = 0


@message(name="bench.SendArrays")
class SendArrays:
    """Send ``count`` arrays of ``size`` bytes to ``target``."""

    target: ActorRef
    size: int
    count: int


@message(name="bench.Expect")
class Expect:
    """Answer once ``count`` messages (or ``nbytes`` array bytes) have arrived in all."""

    count: int
    nbytes: int = 0


@message(name="bench.FanOut")
class FanOut:
    """Send ``count`` ticks to every one of ``targets`` (one ``tell_all`` each), from ``start``."""

    targets: tuple[ActorRef, ...]
    count: int
    start: int = 0


@message(name="bench.Post")
class Post:
    """Broadcast ``count`` ticks through the causal group member ``member``, from ``start``."""

    member: ActorRef
    count: int
    start: int = 0


@message(name="bench.Flood")
class Flood:
    """Send ticks to ``target`` as fast as it takes them for ``seconds`` (until ``end``)."""

    target: ActorRef
    seconds: float
    end: float = 0.0


@message(name="bench.Progress")
class Progress:
    """What a :class:`Sleeper` has done: messages handled, and seconds spent handling them."""

    count: int
    busy: float


@message(name="bench.Report")
class Report:
    """Ask a :class:`Monitor` for the last progress it was told."""


@message(name="bench.Ping")
class Ping:
    n: int


@message(name="bench.PingRun")
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
    def fan_out(self, msg: FanOut) -> None:
        end = min(msg.count, msg.start + CHUNK)
        tell_all = self.context.tell_all
        for i in range(msg.start, end):
            tell_all(msg.targets, Tick(i))
        if end < msg.count:
            self.context.start_timer("fan", FanOut(msg.targets, msg.count, end), 0.0)

    @handler
    def post(self, msg: Post) -> None:
        end = min(msg.count, msg.start + CHUNK)
        tell = msg.member.tell
        for i in range(msg.start, end):
            tell(Broadcast(Tick(i)))
        if end < msg.count:
            self.context.start_timer("post", Post(msg.member, msg.count, end), 0.0)

    @handler
    def flood(self, msg: Flood) -> None:
        now = self.context.now()
        end = msg.end or now + msg.seconds
        tell = msg.target.tell
        for i in range(CHUNK):
            tell(Tick(i))
        if now < end:
            self.context.start_timer("flood", Flood(msg.target, msg.seconds, end), 0.0)

    @handler
    def spread(self, msg: Spread) -> None:
        if msg.targets:
            self.targets = msg.targets
        targets = self.targets
        n = len(targets)
        end = min(msg.count, msg.start + CHUNK)
        for i in range(msg.start, end):
            targets[i % n].tell(Tick(i))
        if end < msg.count:
            self.context.start_timer("spread", Spread(msg.count, (), end), 0.0)

    @handler
    def blobs(self, msg: SendBlobs) -> None:
        end = min(msg.count, msg.start + CHUNK)
        tell = msg.target.tell
        blob = Blob("x" * msg.size if msg.text else b"x" * msg.size)
        for _ in range(msg.start, end):
            tell(blob)
        if end < msg.count:
            later = SendBlobs(msg.target, msg.count, msg.size, msg.text, end)
            self.context.start_timer("blobs", later, 0.0)

    @handler
    def arrays(self, msg: SendArrays) -> None:
        payload = np.zeros(msg.size, dtype=np.uint8)
        for _ in range(msg.count):
            msg.target.tell(payload)


class Herd(Actor):
    """``size`` child actors that count the ticks they get together; answers ``Expect`` on that.

    The members share one count (they run on one node, one at a time), so
    that a spread over thousands of actors is waited for with one ask.
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def on_start(self) -> None:
        self.tally = _Tally()
        self.members = tuple(
            self.context.spawn(_Member, self.tally, name=f"m{i}") for i in range(self.size)
        )

    @handler
    def refs(self, msg: HerdRefs) -> tuple[ActorRef, ...]:
        return self.members

    @handler
    def expect(self, msg: Expect) -> None:
        self.tally.waiting.append((msg.count, self.context.reply_later()))
        self.tally.settle()


class _Tally:
    def __init__(self) -> None:
        self.count = 0
        self.waiting: list[tuple[int, Any]] = []

    def settle(self) -> None:
        still = []
        for count, reply in self.waiting:
            if self.count >= count:
                reply.send(self.count)
            else:
                still.append((count, reply))
        self.waiting = still


class _Member(Actor):
    def __init__(self, tally: _Tally) -> None:
        self.tally = tally

    @handler
    def tick(self, msg: Tick) -> None:
        tally = self.tally
        tally.count += 1
        if tally.waiting:
            tally.settle()


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

    @handler
    def blob(self, msg: Blob) -> None:
        self.count += 1
        if self.waiting:
            self._settle()

    @handler
    def delivery(self, msg: Delivery) -> None:
        self.tick(msg.payload)  # a causal group's delivery of a tick

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


class Sleeper(Actor):
    """A slow receiver: each tick takes ``seconds`` (it blocks its node, as a slow handler
    does); tells a :class:`Monitor` its progress every 64 ticks (asks to a full mailbox
    are refused, so the progress goes out rather than being asked for)."""

    def __init__(self, monitor: ActorRef, seconds: float = 0.001) -> None:
        self.monitor = monitor
        self.seconds = seconds
        self.count = 0
        self.busy = 0.0

    @handler
    def tick(self, msg: Tick) -> None:
        import time

        start = time.perf_counter()
        time.sleep(self.seconds)
        self.busy += time.perf_counter() - start
        self.count += 1
        if not self.count & 63:
            self.monitor.tell(Progress(self.count, self.busy))


class Monitor(Actor):
    """Keeps the last :class:`Progress` it was told, and answers a :class:`Report` with it."""

    def on_start(self) -> None:
        self.last = Progress(0, 0.0)

    @handler
    def progress(self, msg: Progress) -> None:
        self.last = msg

    @handler
    def report(self, msg: Report) -> Progress:
        return self.last


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


# -- the quorum write: the runtime's floor for a replicated command -------------------------

FLOOR_KEY = b"floor"
FLOOR_VALUE = b"v" * 200
"""What each node writes and syncs per quorum write: about one accepted slot's record."""


@message(name="bench.QuorumSetup")
class QuorumSetup:
    """Tell a :class:`QuorumLeader` its followers and how many writes make a quorum."""

    followers: tuple[ActorRef, ...]
    quorum: int


@message(name="bench.QuorumWrite")
class QuorumWrite:
    """Asked of a :class:`QuorumLeader`: answered once a quorum of nodes synced write ``n``."""

    n: int


@message(name="bench.QuorumAccept")
class QuorumAccept:
    """Leader to follower: write and sync ``n``, then tell ``leader``."""

    n: int
    leader: ActorRef


@message(name="bench.QuorumAccepted")
class QuorumAccepted:
    """Follower (or the leader's own storage) to leader: ``n`` is synced."""

    n: int


@message(name="bench.QuorumSynced")
class QuorumSynced:
    """An actor's own sync of ``n`` completed; ``leader`` is whom to tell (None: itself)."""

    n: int
    leader: ActorRef | None


def _write_then(actor: Actor, n: int, leader: ActorRef | None) -> None:
    """Write the floor's record, sync, then tell ``actor`` (on its loop) that it is durable."""
    ctx = actor.context
    ctx.storage.put(FLOOR_KEY, FLOOR_VALUE)
    tell, me = ctx.tell, ctx.ref
    ctx.storage.sync().add_done_callback(  # type: ignore[attr-defined]
        lambda _: tell(me, QuorumSynced(n, leader))
    )


class QuorumLeader(Actor):
    """The message pattern of a replicated command, with no protocol in it.

    A :class:`QuorumWrite` from a client goes to every follower, each
    writes a small record and syncs its storage before answering, the
    leader does the same with its own; the client is answered once a
    quorum (the leader included) has synced. What a replicated command
    costs beyond this is the protocol's; this much, any protocol on the
    same nodes and storage pays.
    """

    def on_start(self) -> None:
        self.followers: tuple[ActorRef, ...] = ()
        self.quorum = 1
        self.waiting: dict[int, tuple[int, ReplyTo]] = {}

    @handler
    def setup(self, msg: QuorumSetup) -> None:
        self.followers, self.quorum = msg.followers, msg.quorum

    @handler
    def write(self, msg: QuorumWrite) -> None:
        self.waiting[msg.n] = (0, self.context.reply_later())
        if self.followers:
            self.context.tell_all(list(self.followers), QuorumAccept(msg.n, self.context.ref))
        _write_then(self, msg.n, None)

    @handler
    def synced(self, msg: QuorumSynced) -> None:
        self._vote(msg.n)  # its own write

    @handler
    def accepted(self, msg: QuorumAccepted) -> None:
        self._vote(msg.n)

    def _vote(self, n: int) -> None:
        entry = self.waiting.get(n)
        if entry is None:
            return  # answered already: a vote beyond the quorum
        votes, reply = entry[0] + 1, entry[1]
        if votes >= self.quorum:
            del self.waiting[n]
            reply.send(n)
        else:
            self.waiting[n] = (votes, reply)


class QuorumFollower(Actor):
    """Writes and syncs what a :class:`QuorumLeader` sends, then says so."""

    @handler
    def accept(self, msg: QuorumAccept) -> None:
        _write_then(self, msg.n, msg.leader)

    @handler
    def synced(self, msg: QuorumSynced) -> None:
        if msg.leader is not None:
            msg.leader.tell(QuorumAccepted(msg.n))
