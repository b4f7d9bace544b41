"""One driver for every sans-IO core: an actor that persists, then sends, in step order.

A service of actorfw is a core of :mod:`actorfw.protocols` (messages and
time in, :class:`~actorfw.protocols.effects.Effects` out) run by an actor
that subclasses :class:`CoreActor`. The actor carries out the rules of
:mod:`actorfw.protocols.effects` the same way for every core:

- Records are written in one batch per step, at once; syncs are
  *group-committed*: while one is in flight, further steps write and
  queue, and the next sync covers them all (many steps, one fsync). A sync
  starts only when something waits for it, or when a step asks for it
  (``Effects.sync``); a write nothing waits for is made durable by the
  next sync something needs.
- ``send`` and ``outputs`` leave in step order, each step's once
  everything written before its end is durable; a step that wrote nothing
  still waits for earlier writes it may depend on.
- ``responses`` and ``send_now`` leave at the end of their step.
- One timer, for the core's ``next_deadline()``; its firing is a ``tick``.
- Messages that wait in the mailbox are handed to the core together, in
  one step (at most :attr:`CoreActor.BURST`): one write and one sync for
  all of them.
- On start (the first one, or a restart by the supervisor after a crash of
  the actor or of its node) the core is rebuilt from the records in
  storage, and those are synced before anything the core sends or outputs
  leaves: an actor restarted in a living process reads back what its
  previous instance wrote, durable or not. ``made_durable(0)`` tells the
  core when they are. A failed sync fails the actor, so that its
  supervisor restarts it from what is durable; a sync that a previous
  instance started reports to nobody (its completion names that instance).

A subclass says only what is particular to its service:

- :meth:`CoreActor.restore`: build the core from its records;
- :attr:`CoreActor.codec`: how records map to storage keys and back;
- :meth:`CoreActor.resolve`: the actor a message for an address goes to;
- :meth:`CoreActor.admit`: what the core sees of an incoming message, and
  who waits for an answer (asks);
- :meth:`CoreActor.takes`: whether the core takes a message at all (one it
  does not is refused as unhandled, counted and logged, never handed to
  the core: any peer can send any registered message);
- :meth:`CoreActor.answer` and :meth:`CoreActor.output`: what to do with
  ``responses`` and ``outputs``.

``docs/development.md`` walks through a whole service built this way.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from typing import Any, ClassVar

from actorfw.core.actor import Actor, handler
from actorfw.protocols.effects import Core, Effects, RecordCodec
from actorfw.values.codec import message
from actorfw.values.refs import ActorRef, ReplyTo

__all__ = ["CoreActor", "StepObserver"]

log = logging.getLogger(__name__)


@message(name="actorfw.driver.Tick")
class Tick:
    """Time for the core to look at its deadlines."""


EARLY = 1e-6
"""How early a tick may come and still count as at its deadline: asyncio runs a timer
up to its clock's resolution (1e-9 s) early when other work is ready."""


@message(name="actorfw.driver.Synced")
class Synced:
    """Everything written up to ``generation`` by actor instance ``instance`` is durable."""

    generation: int
    instance: int = 0


@message(name="actorfw.driver.SyncFailed")
class SyncFailed:
    """A sync failed: the actor fails, and its supervisor restarts it from storage."""

    reason: str
    instance: int = 0


_INSTANCES = itertools.count(1)
"""Numbers the driver's actor instances in this process: a sync's completion names its own."""


class StepObserver:
    """Hooks called by a :class:`CoreActor` (invariant checks in tests); all optional.

    Subclass it, or pass any object with some of these methods. ``label``
    is the actor's :attr:`CoreActor.label`, ``node`` its node.
    """

    def __call__(self, label: Any, node: str, core: Any, effects: Effects) -> None:
        """After every step of the core, before any of its effects is carried out."""

    def restarted(self, label: Any, node: str, core: Any) -> None:
        """After the core was rebuilt from storage (the first start included)."""

    def delivered(self, label: Any, node: str, sends: list[tuple[str, Any]]) -> None:
        """When ``(address, message)`` pairs of a step are sent, their rule met."""


class CoreActor(Actor):
    """An actor that runs a sans-IO core (see the module documentation).

    Subclasses implement :meth:`restore` and :meth:`resolve`, set
    :attr:`codec`, and override :meth:`admit`, :meth:`answer` and
    :meth:`output` where the service has asks, responses or outputs. The
    core is ``self.core`` once the actor started.

    Args:
        observer: called after every step, and on restarts and sends (see
            :class:`StepObserver`).
    """

    codec: ClassVar[RecordCodec]
    """How the core's records are stored (set by each service)."""

    label: Any = None
    """What the observer is told this actor is (a Paxos role, a service name)."""

    BURST = 1024
    """Messages handled together in one core step at most."""

    core: Any

    def __init__(self, observer: Any = None) -> None:
        self.me = self.context.node
        self.observer = observer
        self._written = 0  # steps that wrote records
        self._durable = 0  # of those, the ones known durable
        self._wanted = 0  # of those, the ones a step asked to have synced at once
        self._syncing = False
        # steps waiting for durability: (writes they wait for, sends, outputs)
        self._queue: deque[tuple[int, list[tuple[str, Any]], list[Any]]] = deque()
        self._armed: float | None = None  # the deadline the tick timer is set for
        self._made_durable: Any = None
        self._instance = next(_INSTANCES)
        self._base = 0  # 1 while what the core was restored from counts as a write of ours

    # -- what a service supplies -------------------------------------------------------------

    def restore(self, records: list[Any]) -> Core:
        """Build the core from the records read back from storage (none on a first start)."""
        raise NotImplementedError(f"{type(self).__name__} must say how its core is restored")

    def resolve(self, address: str, msg: Any) -> ActorRef:
        """The actor that takes ``msg`` sent by the core to ``address``."""
        raise NotImplementedError(f"{type(self).__name__} must say where its messages go")

    def admit(self, msg: Any, reply: ReplyTo | None, sender: ActorRef | None) -> Any:
        """What the core sees of ``msg`` (None: nothing).

        ``reply`` is set if ``msg`` is an ask, ``sender`` if it came from an
        actor (not from a client).

        The default passes tells on and refuses asks with a ``TypeError``: a
        service that answers asks overrides it, keeps ``reply`` and answers
        it in :meth:`answer` or :meth:`output`.
        """
        if reply is not None:
            reply.fail(TypeError(f"{type(msg).__name__} is not an ask to {self._who()}"))
        return msg

    def takes(self, msg: Any) -> bool:
        """Does the core take ``msg`` (what :meth:`admit` made of a message)?

        A core raises on a message outside its alphabet (a programming
        error in a step); a message from outside is checked here first. The
        default takes everything: a core that refuses foreign input itself.
        """
        return True

    def answer(self, responses: list[Any]) -> None:
        """Deliver a step's ``responses`` (at the end of the step)."""
        if responses:
            raise NotImplementedError(f"{type(self).__name__} got responses and has no answer()")

    def output(self, outputs: list[Any]) -> None:
        """Hand a step's ``outputs`` over (once its records are durable)."""
        if outputs:
            raise NotImplementedError(f"{type(self).__name__} got outputs and has no output()")

    def refused(self, refusals: list[Any]) -> None:
        """Log a step's refused inputs (override to count or report them)."""
        for refusal in refusals:
            log.warning("%s refused an input: %s", self._who(), refusal)

    def _who(self) -> str:
        return f"{self.context.ref.name} on {self.me}"

    # -- lifecycle ------------------------------------------------------------------------

    def on_start(self) -> None:
        """Rebuild the core from storage and take its first step (``start`` if it has one)."""
        self.core = self.restore(self.codec.load(self.context.storage.scan()))
        self._made_durable = getattr(self.core, "made_durable", None)
        if not self.context.storage.pending():  # what was read back is durable
            if self._made_durable is not None:
                self._made_durable(0)
        else:
            # A previous instance's writes, not yet durable: they count as one write of
            # ours, and nothing the core sends leaves before the sync that covers them.
            self._base = self._written = self._wanted = 1
            self._sync()
        observer = self.observer
        if observer is not None and hasattr(observer, "restarted"):
            observer.restarted(self.label, self.me, self.core)
        start = getattr(self.core, "start", None)
        if start is not None:
            self.step(start(self.context.now()))
        else:
            self._rearm()

    def receive(self, msg: Any) -> None:
        """Hand ``msg``, and whatever else waits in the mailbox, to the core in one step."""
        messages = self._burst(self.admit(msg, self._reply_handle(), self.context.sender))
        if messages:
            self.step(self.core.handle_all(messages, self.context.now()))

    # -- the step ---------------------------------------------------------------------------

    def step(self, effects: Effects) -> None:
        """Carry out one step's ``effects`` (call it with any step a subclass takes itself)."""
        if self.observer is not None:
            self.observer(self.label, self.me, self.core, effects)
        if effects.persist:
            ops = self.codec.ops
            with self.context.storage.batch() as batch:
                for record in effects.persist:
                    for key, value in ops(record):
                        if value is None:
                            batch.delete(key)
                        else:
                            batch.put(key, value)
            self._written += 1
            if effects.sync:
                self._wanted = self._written
        if effects.responses:
            self.answer(effects.responses)
        if effects.refused:
            self.refused(effects.refused)
        needs = self._written
        if effects.send or effects.outputs:
            if not self._queue and needs <= self._durable:
                self._deliver(effects.send, effects.outputs)
            else:
                self._queue.append((needs, effects.send, effects.outputs))
        self._sync()
        self._rearm()
        if effects.send_now:
            self._deliver(effects.send_now, [])

    def _sync(self) -> None:
        # Only what waits to leave needs a sync, or a step that asked for one: writes that
        # nothing waits for go with the next sync that something needs.
        if self._syncing or self._durable >= self._written:
            return
        if not self._queue and self._durable >= self._wanted:
            return
        self._syncing = True
        self.context.storage.sync().add_done_callback(  # type: ignore[attr-defined]
            self._sync_done(self._written)
        )

    def _sync_done(self, target: int) -> Any:
        """The callback of a sync covering the first ``target`` writes: a note to this instance."""
        tell, me, instance = self.context.tell, self.context.ref, self._instance

        def done(future: Any) -> None:
            if future.cancelled():
                return
            error = future.exception()
            if error is not None:
                tell(me, SyncFailed(f"{type(error).__name__}: {error}", instance))
            else:
                tell(me, Synced(target, instance))

        return done

    @handler
    def synced(self, msg: Synced) -> None:
        """A sync completed: send what waited for it."""
        if msg.instance != self._instance:
            return  # a previous instance's sync: it says nothing of this one's writes
        self._syncing = False
        self._durable = max(self._durable, msg.generation)
        if self._made_durable is not None:
            self._made_durable(self._durable - self._base)  # the core's steps, from its restore
        while self._queue and self._queue[0][0] <= self._durable:
            _, sends, outputs = self._queue.popleft()
            self._deliver(sends, outputs)
        self._sync()

    @handler
    def sync_failed(self, msg: SyncFailed) -> None:
        """A sync failed: fail, so that the supervisor restarts the actor from storage."""
        if msg.instance != self._instance:
            return  # a previous instance's sync
        raise OSError(f"{self._who()} could not sync its storage: {msg.reason}")

    def _deliver(self, sends: list[tuple[str, Any]], outputs: list[Any]) -> None:
        if sends:
            observer = self.observer
            if observer is not None and hasattr(observer, "delivered"):
                observer.delivered(self.label, self.me, sends)
            # Cores build their messages from values checked when they came in, and send
            # one message object to several peers in a row (a P2a to every acceptor):
            # each run of them is encoded once.
            tell_all = self.context.tell_all
            resolve = self.resolve
            run: list[ActorRef] = []
            last: Any = None
            for address, msg in sends:
                if msg is not last and run:
                    tell_all(run, last, True)
                    run = []
                last = msg
                run.append(resolve(address, msg))
            if run:
                tell_all(run, last, True)
        if outputs:
            self.output(outputs)

    def _burst(self, first: Any) -> list[Any]:
        """What the core should see of the message in hand and of those already waiting.

        The driver's own messages (``Synced``, ...) are handled on the way;
        :meth:`admit` says what each of the others becomes for the core.
        """
        messages = []
        if first is not None:
            if self.takes(first):
                messages.append(first)
            else:
                self.context.unhandled(first)
        for msg, sender, reply in self.context.take(self.BURST):
            kind = type(msg)
            if kind is Synced:
                self.synced(msg)  # ours: it concerns earlier steps only
            elif kind is SyncFailed:
                self.sync_failed(msg)
            elif kind is Tick:
                continue  # the step re-arms the timer for whatever is due
            else:
                core_msg = self.admit(msg, reply, sender)
                if core_msg is None:
                    continue
                if self.takes(core_msg):
                    messages.append(core_msg)
                else:
                    self.context.unhandled(core_msg)
        return messages

    def _reply_handle(self) -> ReplyTo | None:
        """The current message's reply handle if it is an ask (the service answers it)."""
        try:
            return self.context.reply_later()
        except RuntimeError:
            return None  # a tell: nobody waits for an answer

    # -- time -------------------------------------------------------------------------------

    def _rearm(self) -> None:
        deadline = self.core.next_deadline()
        if deadline == self._armed:
            return  # the timer already set is the right one (most steps)
        self._armed = deadline
        if deadline is None:
            self.context.cancel_timer("tick")
        else:
            self.context.start_timer("tick", Tick(), max(0.0, deadline - self.context.now()))

    @handler
    def tick(self, msg: Tick) -> None:
        """The core's deadline came: a step of ``tick``."""
        due, self._armed = self._armed, None  # it fired
        now = self.context.now()
        # The clock may read a hair before the deadline (EARLY). The core is told the
        # deadline, else it would find nothing due and ask for the same one again, at
        # once: with other work ready, the clock never moves on (in the simulator,
        # never at all). The deadline is the driver's own, never one a message says, and
        # a timer early by more (uvloop rounds to milliseconds) is left to come again.
        if due is not None and now < due <= now + EARLY:
            now = due
        self.step(self.core.tick(now))
