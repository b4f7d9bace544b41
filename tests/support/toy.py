"""A toy service on the driver: a durable tally per node that tells its peers its count.

It is the example of ``docs/development.md`` ("Adding a service"): a core of
a few lines, its records, and its actor on :class:`CoreActor`. Each node's
``tally`` actor adds what it is asked to add, answers each add once the new
count is durable, and every second tells its peers its count; ``Heard``
asks what it heard from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actorfw import message
from actorfw.protocols.effects import Effects
from actorfw.services.driver import CoreActor
from actorfw.values.refs import ActorRef, ReplyTo


# -- the messages ---------------------------------------------------------------------------
@message(name="toy.Add")
class Add:
    """Asked of a tally: add ``amount``; answered with the new count, once it is durable."""

    amount: int


@message(name="toy.Told")
class Told:
    """From a tally to its peers, every second: ``node``'s count is ``count``."""

    node: str
    count: int


@message(name="toy.Heard")
class Heard:
    """Asked of a tally: the highest count it heard from each peer (answered at once)."""


@dataclass(frozen=True)
class Adding:
    """What the core sees of an ``Add``: the amount, and who waits for the answer."""

    amount: int
    reply: ReplyTo


# -- the core: no sockets, no clock, no disk --------------------------------------------------
class TallyCore:
    """A count, and what the peers last said of theirs; they hear it every ``interval`` seconds."""

    def __init__(self, me: str, peers: tuple[str, ...], count: int, interval: float = 1.0):
        self.me, self.peers, self.count, self.interval = me, peers, count, interval
        self.heard: dict[str, int] = {}
        self.due = 0.0  # when to tell the peers next

    def handle_all(self, messages: list[Any], now: float) -> Effects:
        effects = Effects()
        for msg in messages:
            if type(msg) is Adding:
                self.count += msg.amount
                effects.outputs.append((msg.reply, self.count))  # answered once durable
            elif type(msg) is Told and msg.node in self.peers:
                self.heard[msg.node] = max(self.heard.get(msg.node, 0), msg.count)
        if effects.outputs:
            effects.persist.append(self.count)
        return effects

    def tick(self, now: float) -> Effects:
        self.due = now + self.interval
        return Effects(send=[(peer, Told(self.me, self.count)) for peer in self.peers])

    def next_deadline(self) -> float:
        return self.due


# -- its records: one key ---------------------------------------------------------------------
class TallyRecords:
    """A tally's record is its count, under one key."""

    def ops(self, record: int) -> list[tuple[bytes, bytes | None]]:
        return [(b"count", str(record).encode())]

    def load(self, items: Any) -> list[int]:
        return [int(value) for key, value in items if key == b"count"]


# -- the actor: what the driver cannot know ---------------------------------------------------
class TallyActor(CoreActor):
    """The ``tally`` of this node; ``peers`` are the other nodes that run one."""

    codec = TallyRecords()

    def __init__(self, peers: list[str]) -> None:
        super().__init__()
        self.peers = tuple(peer for peer in peers if peer != self.context.node)

    def restore(self, records: list[Any]) -> TallyCore:
        return TallyCore(self.me, self.peers, records[-1] if records else 0)

    def resolve(self, address: str, msg: Any) -> ActorRef:
        return ActorRef(address, "tally")

    def admit(self, msg: Any, reply: ReplyTo | None, sender: ActorRef | None) -> Any:
        if type(msg) is Add and reply is not None:
            if type(msg.amount) is not int:
                reply.fail(TypeError(f"an amount is an int, not {msg.amount!r}"))
                return None
            return Adding(msg.amount, reply)
        if type(msg) is Heard and reply is not None:
            reply.send(dict(self.core.heard))
            return None
        return super().admit(msg, reply, sender)

    def output(self, outputs: list[Any]) -> None:
        for reply, count in outputs:
            reply.send(count)
