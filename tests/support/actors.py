"""Actors and messages the behaviour tests share, on every runtime.

They live at module level so that any node can spawn them by path. Tests
observe them only through asks, so the same test runs on the simulator and
on node processes.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

from actorfw import (
    Actor,
    ActorRef,
    Directive,
    ReplyTo,
    SupervisorStrategy,
    Terminated,
    handler,
    message,
    remote_exception,
)
from actorfw.core.supervision import always

# -- messages --------------------------------------------------------------------------


@message(name="test.Get")
@dataclass(frozen=True)
class Get:
    """Ask for an actor's observable state."""


@message(name="test.Put")
@dataclass(frozen=True)
class Put:
    value: Any


@message(name="test.Fail")
@dataclass(frozen=True)
class Fail:
    """Raise ``error`` (a builtin exception name) with ``text``."""

    error: str = "RuntimeError"
    text: str = "told to fail"


@message(name="test.Send")
@dataclass(frozen=True)
class Send:
    """Tell ``target`` ``payload``."""

    target: ActorRef
    payload: Any


@message(name="test.SendAll")
@dataclass(frozen=True)
class SendAll:
    """Tell each of ``targets`` ``payload`` with one ``tell_all``."""

    targets: tuple[ActorRef, ...]
    payload: Any


@message(name="test.GcInfo")
@dataclass(frozen=True)
class GcInfo:
    """Ask for the process's garbage-collector thresholds and frozen object count."""


@message(name="test.LoopInfo")
@dataclass(frozen=True)
class LoopInfo:
    """Ask a :class:`Recorder` which package its node's event loop comes from, and how many
    distinct values 200 readings of ``context.now()`` in a row give (a fine clock: nearly 200;
    one that counts whole milliseconds: one or two)."""


@message(name="test.Watch")
@dataclass(frozen=True)
class Watch:
    target: ActorRef


@message(name="test.Unwatch")
@dataclass(frozen=True)
class Unwatch:
    target: ActorRef


@message(name="test.Spawn")
@dataclass(frozen=True)
class SpawnChild:
    name: str
    kind: str = "Recorder"
    directive: str = "restart"


@message(name="test.Timer")
@dataclass(frozen=True)
class StartTimer:
    key: str
    delay: float
    repeat: bool = False


@message(name="test.CancelTimer")
@dataclass(frozen=True)
class CancelTimer:
    key: str


@message(name="test.Tick")
@dataclass(frozen=True)
class Tick:
    key: str


@message(name="test.Sleep")
@dataclass(frozen=True)
class Sleep:
    seconds: float


@message(name="test.Block")
@dataclass(frozen=True)
class Block:
    """Hold the node's event loop for ``seconds`` (a handler that blocks, as one should not)."""

    seconds: float


@message(name="test.Stop")
@dataclass(frozen=True)
class StopSelf:
    pass


@message(name="test.Sync")
@dataclass(frozen=True)
class Sync:
    """Make every write so far durable, then answer."""


# -- actors ----------------------------------------------------------------------------

_instances = itertools.count(1)


class Echo(Actor):
    """Answers every message with itself; records who sent it."""

    def on_start(self) -> None:
        self.senders: list[Any] = []

    def receive(self, msg: Any) -> Any:
        sender = self.context.sender
        self.senders.append(sender.path if sender else None)
        return msg

    @handler
    def get(self, msg: Get) -> Any:
        return self.senders


class Recorder(Actor):
    """Keeps what it is told (with the sender's path); fails on demand; forwards on demand."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.items: list[Any] = []
        self.instance = next(_instances)  # tells a restarted instance from the old one

    def on_start(self) -> None:
        self.starts = getattr(self, "starts", 0) + 1

    @handler
    def put(self, msg: Put) -> int:
        sender = self.context.sender
        self.items.append([msg.value, sender.path if sender else None])
        return len(self.items)

    @handler
    def get(self, msg: Get) -> dict[str, Any]:
        return {"label": self.label, "items": self.items, "instance": self.instance}

    @handler
    def fail(self, msg: Fail) -> None:
        import builtins

        raise getattr(builtins, msg.error)(msg.text)

    @handler
    def send(self, msg: Send) -> None:
        msg.target.tell(msg.payload)

    @handler
    def gc_info(self, msg: GcInfo) -> list[int]:
        import gc

        return [*gc.get_threshold(), gc.get_freeze_count()]

    @handler
    def loop_info(self, msg: LoopInfo) -> list[Any]:
        now = self.context.now
        distinct = len({now() for _ in range(200)})
        return [type(asyncio.get_running_loop()).__module__.split(".")[0], distinct]

    @handler
    def send_all(self, msg: SendAll) -> None:
        self.context.tell_all(msg.targets, msg.payload)

    @handler
    def stop_self(self, msg: StopSelf) -> None:
        self.context.stop()

    @handler
    def block(self, msg: Block) -> None:
        import time

        time.sleep(msg.seconds)

    @handler
    async def sleep(self, msg: Sleep) -> str:
        await asyncio.sleep(msg.seconds)
        self.items.append(["slept", None])
        return "slept"


class Cramped(Recorder):
    """A :class:`Recorder` with a mailbox of one: while it is busy, its senders' credit waits."""

    mailbox_limit = 1


@remote_exception(name="test.Overdrawn")
class Overdrawn(Exception):
    """A user's error with structured arguments, registered: it travels as itself."""

    def __init__(self, account: str, missing: int) -> None:
        super().__init__(account, missing)
        self.account = account
        self.missing = missing


@message(name="test.Overdraw")
@dataclass(frozen=True)
class Overdraw:
    """Raise :class:`Overdrawn` for ``account``, ``missing`` short."""

    account: str
    missing: int


@message(name="test.TryOverdraw")
@dataclass(frozen=True)
class TryOverdraw:
    """Ask ``target`` an :class:`Overdraw` and report what was caught."""

    target: ActorRef
    account: str
    missing: int


class Bank(Actor):
    """Refuses every withdrawal with a registered exception."""

    @handler
    def overdraw(self, msg: Overdraw) -> None:
        raise Overdrawn(msg.account, msg.missing)


class Teller(Actor):
    """Asks the bank and catches its registered exception by its own type."""

    @handler
    async def try_overdraw(self, msg: TryOverdraw) -> list[Any]:
        try:
            await msg.target.ask(Overdraw(msg.account, msg.missing), timeout=2.0)
        except Overdrawn as error:
            return ["caught", error.account, error.missing, error.actor]  # type: ignore[attr-defined]
        return ["not raised"]


class Parent(Actor):
    """Spawns children on demand and supervises them with the given strategy."""

    def __init__(
        self, directive: str = "restart", all_for_one: bool = False, max_restarts: int = 10
    ) -> None:
        self.supervisor_strategy = SupervisorStrategy(
            decider=always(Directive(directive)),
            all_for_one=all_for_one,
            max_restarts=max_restarts,
            within=60.0,
            min_backoff=0.01,
        )

    @handler
    def spawn_child(self, msg: SpawnChild) -> ActorRef:
        if msg.kind == "Parent":
            return self.context.spawn(Parent, msg.directive, name=msg.name)
        return self.context.spawn(Recorder, msg.name, name=msg.name)

    @handler
    def get(self, msg: Get) -> list[str]:
        return [c.name for c in self.context.children]

    @handler
    def fail(self, msg: Fail) -> None:
        raise RuntimeError(msg.text)


class Watcher(Actor):
    """Watches on demand; reports the ``Terminated`` messages it got."""

    def on_start(self) -> None:
        self.events: list[list[str]] = []

    @handler
    def watch(self, msg: Watch) -> None:
        self.context.watch(msg.target)

    @handler
    def unwatch(self, msg: Unwatch) -> None:
        self.context.unwatch(msg.target)

    @handler
    def send(self, msg: Send) -> None:
        msg.target.tell(msg.payload)

    @handler
    def terminated(self, msg: Terminated) -> None:
        self.events.append([msg.actor.path, msg.reason])

    @handler
    def get(self, msg: Get) -> list[list[str]]:
        return self.events


class Timed(Actor):
    """Starts and cancels timers on demand; reports when each tick arrived."""

    def on_start(self) -> None:
        self.ticks: list[list[Any]] = []

    @handler
    def start(self, msg: StartTimer) -> None:
        self.context.start_timer(msg.key, Tick(msg.key), msg.delay, repeat=msg.repeat)

    @handler
    def cancel(self, msg: CancelTimer) -> None:
        self.context.cancel_timer(msg.key)

    @handler
    def tick(self, msg: Tick) -> None:
        self.ticks.append([msg.key, self.context.now()])

    @handler
    def get(self, msg: Get) -> list[list[Any]]:
        return self.ticks


class Deferred(Actor):
    """Holds asks (``Get``) and answers them all when told ``Put``."""

    def on_start(self) -> None:
        self.waiting: list[ReplyTo] = []

    @handler
    def get(self, msg: Get) -> None:
        self.waiting.append(self.context.reply_later())

    @handler
    def put(self, msg: Put) -> int:
        for reply in self.waiting:
            reply.send(msg.value)
        count = len(self.waiting)
        self.waiting = []
        return count

    @handler
    def fail(self, msg: Fail) -> int:
        for reply in self.waiting:
            reply.fail(ValueError(msg.text))
        count = len(self.waiting)
        self.waiting = []
        return count


class Asker(Actor):
    """Asks another actor from inside an async handler and returns what it got."""

    @handler
    async def send(self, msg: Send) -> Any:
        return await msg.target.ask(msg.payload, timeout=2.0)


@message(name="test.SpawnOn")
@dataclass(frozen=True)
class SpawnOn:
    node: str
    name: str


@message(name="test.Lookup")
@dataclass(frozen=True)
class Lookup:
    name: str
    node: str | None = None


class Spawner(Actor):
    """Spawns Recorders on other nodes and looks actors up by name, on demand."""

    @handler
    async def spawn_on(self, msg: SpawnOn) -> ActorRef:
        return await self.context.spawn_on(msg.node, Recorder, msg.name, name=msg.name)

    @handler
    async def lookup(self, msg: Lookup) -> ActorRef | None:
        return await self.context.lookup(msg.name, msg.node, timeout=2.0)


@message(name="test.Blast")
@dataclass(frozen=True)
class Blast:
    """Tell ``target`` ``Put(i)`` for i in start..count-1, a chunk per turn of the loop."""

    target: ActorRef
    count: int
    start: int = 0


@message(name="test.Size")
@dataclass(frozen=True)
class Size:
    """How many items a Tally holds, and whether they came in order."""


class Tally(Actor):
    """Counts ``Put`` messages and checks they arrive numbered in order; also blasts them."""

    def on_start(self) -> None:
        self.count = 0
        self.in_order = True
        self.sent = 0

    @handler
    def put(self, msg: Put) -> None:
        if msg.value != self.count:
            self.in_order = False
        self.count += 1

    @handler
    def size(self, msg: Size) -> list[Any]:
        return [self.count, self.in_order, self.sent]

    @handler
    def blast(self, msg: Blast) -> int:
        # A chunk now, the rest on a zero-delay timer: the loop turns in
        # between (I/O, the transport's flush), as in a real producer.
        end = min(msg.count, msg.start + 1000)
        tell = msg.target.tell
        for i in range(msg.start, end):
            tell(Put(i))
        self.sent = end
        if end < msg.count:
            self.context.start_timer("blast", Blast(msg.target, msg.count, end), 0.0)
        return end


class Counter(Actor):
    """A durable counter: each ``Put`` adds; ``Sleep`` stands for "sync now"."""

    def on_start(self) -> None:
        raw = self.context.storage.get("count")
        self.count = int(raw) if raw is not None else 0

    @handler
    def put(self, msg: Put) -> int:
        self.count += int(msg.value)
        self.context.storage.put("count", str(self.count).encode())
        return self.count

    @handler
    async def sync(self, msg: Sync) -> int:
        await self.context.storage.sync()
        return self.count

    @handler
    def get(self, msg: Get) -> int:
        return self.count


class Collector(Actor):
    """Keeps every message it is told that has no handler here; ``Get`` answers them, in order."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    @handler
    def get(self, msg: Get) -> list[Any]:
        return list(self.items)

    def receive(self, msg: Any) -> None:
        self.items.append(msg)


# -- flow control ------------------------------------------------------------------------


@message(name="test.Work")
@dataclass(frozen=True)
class Work:
    n: int


@message(name="test.Produce")
@dataclass(frozen=True)
class Produce:
    """Tell ``target`` ``Work(n)`` for n from ``first`` up to ``count``, ``chunk`` a turn."""

    target: ActorRef
    count: int
    chunk: int = 100
    first: int = 0


class SlowSink(Actor):
    """Takes ``Work`` slowly (``delay`` seconds each), through a small mailbox; checks order."""

    mailbox_limit = 50

    def __init__(self, delay: float = 0.001) -> None:
        self.delay = delay
        self.count = 0
        self.last = -1
        self.in_order = True

    @handler
    async def work(self, msg: Work) -> int:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.in_order = self.in_order and msg.n > self.last
        self.last = msg.n
        self.count += 1
        return self.count

    @handler
    def get(self, msg: Get) -> dict[str, Any]:
        return {"count": self.count, "last": self.last, "in_order": self.in_order}


class SmallSlowSink(SlowSink):
    """A :class:`SlowSink` whose mailbox holds 5: full after a few slow tells, not fifty."""

    mailbox_limit = 5


class DroppingSink(SlowSink):
    """A :class:`SlowSink` that drops tells past its bound instead of holding senders back."""

    mailbox_policy = "drop"


class Producer(Actor):
    """Produces ``Work`` for a target a chunk per turn (so a hold shows between turns)."""

    def __init__(self) -> None:
        self.sent = 0
        self.done = False

    @handler
    def produce(self, msg: Produce) -> None:
        end = min(msg.first + msg.chunk, msg.count)
        for n in range(msg.first, end):
            msg.target.tell(Work(n))
        self.sent += end - msg.first
        if end < msg.count:
            self.context.ref.tell(Produce(msg.target, msg.count, msg.chunk, end))
        else:
            self.done = True

    @handler
    def get(self, msg: Get) -> dict[str, Any]:
        return {"sent": self.sent, "done": self.done}


class Relay(Actor):
    """Passes each ``Work(n)`` on to its partner as ``Work(n - 1)`` until 0; counts them."""

    mailbox_limit = 20

    def __init__(self) -> None:
        self.partner: ActorRef | None = None
        self.count = 0

    @handler
    def pair(self, msg: Put) -> None:
        self.partner = msg.value

    @handler
    async def work(self, msg: Work) -> None:
        await asyncio.sleep(0.0005)
        self.count += 1
        if msg.n > 0 and self.partner is not None:
            self.partner.tell(Work(msg.n - 1))

    @handler
    def get(self, msg: Get) -> int:
        return self.count


class PlainMachine:
    """A replicated state machine with no ``snapshot()``/``restore()``: it counts operations."""

    def __init__(self) -> None:
        self.count = 0

    def apply(self, operation: Any) -> Any:
        self.count += 1
        return self.count
