"""The engine's record of one actor (:class:`Cell`), and the small records it holds.

A cell is the engine's side of an actor: its instance, mailbox, timers,
watches and children, and where it is in its life. The engine's
collaborators (:mod:`actorfw.core.lifecycle`, :mod:`actorfw.core.timers`,
:mod:`actorfw.core.watches`) read and write cells; actors see only their
:class:`~actorfw.core.context.Context`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import sys
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actorfw.core.context import Context
from actorfw.core.storage import Storage
from actorfw.values.refs import ActorRef, ReplyTo

if TYPE_CHECKING:
    from actorfw.core.actor import Actor
    from actorfw.core.engine import Engine
    from actorfw.core.flow import Incoming

__all__ = [
    "RUNNING",
    "STARTING",
    "STOPPED",
    "STOPPING",
    "SUSPENDED",
    "ActorLog",
    "Cell",
    "Entry",
    "Timer",
    "bound_handler",
    "derive_seed",
]

log = logging.getLogger("actorfw")

# The life of a cell, ordered: plain ints, compared on every message.
STARTING, RUNNING, SUSPENDED, STOPPING, STOPPED = range(5)

Entry = tuple[Any, ActorRef | None, ReplyTo | None, tuple[Any, int] | None]
"""A mailbox entry: ``(message, sender, reply, timer)``; ``timer`` is ``(key, generation)``
for a timer's message, None otherwise. A plain tuple: one is built for every message."""


class Timer:
    """A pending timer of a cell: its loop handle, and what it delivers when."""

    __slots__ = ("delay", "generation", "handle", "message", "repeat")

    def __init__(
        self,
        handle: asyncio.TimerHandle,
        generation: int,
        repeat: bool,
        delay: float,
        message: Any,
    ) -> None:
        self.handle = handle
        self.generation = generation
        self.repeat = repeat
        self.delay = delay
        self.message = message


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from ``parts``, the same in every process (unlike ``hash``)."""
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


class ActorLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger an actor gets: each line says the actor (and the time, in the simulator)."""

    def __init__(self, engine: Engine, path: str) -> None:
        super().__init__(log, {})
        self._engine = engine
        self._path = path

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log a line; with causal tracing on, a line at INFO or above is recorded with the clock.

        Recorded whatever level the logger lets through: the trace is its own sink.
        """
        causal = self._engine.causal
        if causal is not None and level >= logging.INFO:
            try:
                text = str(msg) % args if args else str(msg)
            except (TypeError, ValueError):
                text = str(msg)
            causal.logged(self._path, text)
        super().log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        """Prefix the line with the actor's path (and the engine's time if it logs time)."""
        if self._engine.log_time:
            return f"[t={self._engine.now():.6f} {self._path}] {msg}", kwargs
        return f"[{self._path}] {msg}", kwargs


def bound_handler(cell: Cell, kind: type) -> Callable[[Any], Any]:
    """The method of ``cell``'s actor that handles messages of type ``kind``."""
    instance = cell.instance
    assert instance is not None
    name = type(instance).handler_for(kind)
    bound: Callable[[Any], Any] = instance.receive if name is None else getattr(instance, name)
    return bound


class Cell:
    """The engine's record of one actor: instance, mailbox, timers, watches, children."""

    __slots__ = (
        "actor_class",
        "args",
        "busy",
        "children",
        "context",
        "drop",
        "escalated",
        "handlers",
        "held",
        "instance",
        "kwargs",
        "limit",
        "log",
        "mailbox",
        "name",
        "owed",
        "parent",
        "ref",
        "restarts",
        "rng",
        "scheduled",
        "state",
        "stop_reason",
        "stopping_children",
        "storage",
        "task",
        "timer_gen",
        "timers",
        "waiters",
        "watchers",
        "watching",
    )

    def __init__(
        self,
        engine: Engine,
        name: str,
        actor_class: type[Actor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        parent: Cell | None,
    ) -> None:
        self.name = name
        self.ref = ActorRef(engine.id, name)
        self.actor_class = actor_class
        self.args = args
        self.kwargs = kwargs
        self.parent = parent
        self.children: dict[str, Cell] = {}
        self.instance: Actor | None = None
        self.handlers: dict[type, Callable[[Any], Any]] = {}  # message type -> bound handler
        self.context = Context(engine, self)
        self.mailbox: deque[Entry] = deque()
        limit = actor_class.mailbox_limit
        self.limit = sys.maxsize if limit is None else limit
        """Messages that may wait in the mailbox before its policy applies (see core.flow)."""
        self.drop = actor_class.mailbox_policy == "drop"
        self.held = False
        """Is the actor held back until a mailbox it told, or the backlog to a node, has room?"""
        self.owed: dict[Incoming, int] | None = None  # credit owed to peers, given back on room
        self.waiters: list[Cell] | None = None  # local senders held back by this full mailbox
        self.state = STARTING
        self.scheduled = False
        self.busy = False
        self.task: asyncio.Task[Any] | None = None
        self.timers: dict[Any, Timer] = {}
        self.timer_gen = 0
        self.watchers: dict[ActorRef, None] = {}
        self.watching: dict[ActorRef, None] = {}
        self.restarts: list[float] = []
        self.escalated = False
        self.stopping_children = 0
        self.stop_reason = "stopped"
        self.rng: random.Random | None = None  # made at its first use: see random_source
        self.storage: Storage = engine.storage_backend.namespace(name)
        self.log = ActorLog(engine, self.ref.path)

    def random_source(self, engine: Engine) -> random.Random:
        """The actor's random source (``Context.random``), made at its first use.

        Its state is 2.5 KiB, half of what an actor cost when every cell had
        one, and most actors never draw from it. The seed comes from the
        engine's seed, node, incarnation and the actor's name, whenever it
        is made: the same draws on every run of a simulation.
        """
        if self.rng is None:
            seed = derive_seed(engine.seed, engine.id, engine.incarnation, self.name)
            self.rng = random.Random(seed)
        return self.rng
