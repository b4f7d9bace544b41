"""The life of actors: spawning, hooks, supervision, restarts and stopping.

A cell goes ``STARTING`` → ``RUNNING`` (its ``on_start`` done) → on a
failure ``SUSPENDED`` while its supervisor decides (:mod:`actorfw.core.supervision`:
resume, restart after a back-off, stop, or escalate to the parent) →
``STOPPING`` (its children stopped first, newest first, then its
``on_stop``) → ``STOPPED``: its mailbox goes to dead letters and its
watchers are told. A hook may be a coroutine; the cell takes no message
until it is done.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actorfw.core.arguments import check_actor_class
from actorfw.core.cell import RUNNING, STARTING, STOPPED, STOPPING, SUSPENDED, Cell
from actorfw.core.supervision import Directive, SupervisorStrategy
from actorfw.values.errors import ActorNotFound, NodeDown, UnhandledMessage
from actorfw.values.refs import ActorRef, ReplyTo, _current

if TYPE_CHECKING:
    from actorfw.core.actor import Actor
    from actorfw.core.engine import Engine

__all__ = ["Lifecycle"]

DEFAULT_STRATEGY = SupervisorStrategy()


class Lifecycle:
    """Spawns, supervises and stops one engine's actors (see the module documentation)."""

    __slots__ = ("_auto", "_engine", "_stopped_waiters")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._auto = 0
        self._stopped_waiters: list[asyncio.Future[None]] = []

    # -- spawning ---------------------------------------------------------------------------

    def spawn(
        self,
        actor_cls: type[Actor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None,
        parent: Cell | None,
    ) -> ActorRef:
        """Start an actor (a child of ``parent``, or top-level); returns its ref.

        Raises:
            NodeDown: the engine is not running.
            TypeError: ``actor_cls`` is not an Actor subclass.
            ValueError: the name is malformed or taken.
        """
        engine = self._engine
        if not engine.alive:
            raise NodeDown(f"node {engine.id} is not running")
        check_actor_class(actor_cls)
        if name is None:
            self._auto += 1
            local = f"{actor_cls.__name__.lower()}-{self._auto}"
        else:
            if not isinstance(name, str) or not name or "/" in name or name.startswith("$"):
                raise ValueError(
                    f"an actor name must be a non-empty str without '/' and not starting "
                    f"with '$', not {name!r}"
                )
            local = name
        full = f"{parent.name}/{local}" if parent is not None else local
        if full in engine.cells:
            raise ValueError(f"an actor named {full!r} already runs on node {engine.id}")
        cell = Cell(engine, full, actor_cls, args, kwargs, parent)
        instance = actor_cls.__new__(actor_cls)
        instance.context = cell.context
        token = _current.set(cell.context)
        try:
            instance.__init__(*args, **kwargs)  # type: ignore[misc]
        finally:
            _current.reset(token)
        cell.instance = instance
        engine.cells[full] = cell
        if parent is not None:
            parent.children[full] = cell
        else:
            engine.roots[full] = cell
        self._run_hook(cell, instance.on_start, lambda error: self._started(cell, error))
        return cell.ref

    def _run_hook(
        self, cell: Cell, hook: Callable[[], Any], then: Callable[[BaseException | None], None]
    ) -> None:
        ctx = cell.context
        ctx.enter_hook()
        token = _current.set(ctx)
        try:
            result = hook()
        except Exception as error:
            then(error)
            return
        finally:
            _current.reset(token)
        if type(result) is types.CoroutineType:
            cell.busy = True
            run_ctx = contextvars.copy_context()
            run_ctx.run(_current.set, ctx)
            engine = self._engine
            task = engine.loop.create_task(result, context=run_ctx)
            cell.task = task

            def done(t: asyncio.Task[Any]) -> None:
                if cell.task is t:
                    cell.task = None
                    cell.busy = False
                if not engine.alive:
                    return
                then(None if t.cancelled() else t.exception())

            task.add_done_callback(done)
        else:
            then(None)

    def _started(self, cell: Cell, error: BaseException | None) -> None:
        if cell.state >= STOPPING:
            return
        if error is not None:
            self.failed(cell, error)
            return
        cell.state = RUNNING
        self._engine.schedule(cell)

    # -- what a handler's run came to --------------------------------------------------------

    def handler_done(self, cell: Cell, reply: ReplyTo | None, task: asyncio.Task[Any]) -> None:
        """An ``async`` handler of ``cell`` ended: answer its ask, or hand its error on."""
        engine = self._engine
        if cell.task is task:
            cell.task = None
            cell.busy = False
        if not engine.alive:
            return
        replied = cell.context.replied
        if task.cancelled():
            if reply is not None and not replied:
                engine.send_reply(
                    reply,
                    None,
                    ActorNotFound(f"actor {cell.ref.path} stopped before answering"),
                    cell.ref.path,
                )
        else:
            error = task.exception()
            if error is not None:
                if cell.state < STOPPING:
                    self.handler_failed(cell, reply, error)
                elif reply is not None and not replied:
                    engine.send_reply(reply, None, error, cell.ref.path)
            elif reply is not None and not replied:
                engine.send_reply(reply, task.result(), None, cell.ref.path)
        engine.schedule(cell)

    def handler_failed(self, cell: Cell, reply: ReplyTo | None, error: BaseException) -> None:
        """A handler of ``cell`` raised: the asker gets the error, the supervisor decides."""
        engine = self._engine
        if reply is not None and not cell.context.replied:
            engine.send_reply(reply, None, error, cell.ref.path)
        if isinstance(error, UnhandledMessage):
            # Not a failure: the actor is fine, the message was not for it.
            engine.stats.unhandled += 1
            engine.rate_limited(logging.INFO, "unhandled: %s", error)
            return
        self.failed(cell, error)

    # -- supervision ------------------------------------------------------------------------

    def _strategy(self, cell: Cell) -> SupervisorStrategy:
        parent = cell.parent
        if parent is None:
            return self._engine.config.root_strategy
        strategy = getattr(parent.instance, "supervisor_strategy", None)
        return strategy if isinstance(strategy, SupervisorStrategy) else DEFAULT_STRATEGY

    def failed(self, cell: Cell, error: BaseException) -> None:
        """``cell``'s handler or hook raised ``error``: its supervisor decides what follows."""
        engine = self._engine
        if not engine.alive or cell.state >= STOPPING:
            return
        engine.stats.failures += 1
        cell.state = SUSPENDED
        strategy = self._strategy(cell)
        directive, delay = strategy.decide(error, cell.restarts, engine.now(), engine.rng)
        if engine.tracer is not None:
            engine.tracer.failed(engine.id, cell.name, error, directive)
        cell.log.error(
            "failed with %s: %s; supervisor decides %s",
            type(error).__name__,
            error,
            directive.value,
            exc_info=(type(error), error, error.__traceback__),
        )
        parent = cell.parent
        group = [cell]
        if (
            strategy.all_for_one
            and parent is not None
            and directive in (Directive.RESTART, Directive.STOP)
        ):
            group = [c for c in parent.children.values() if c.state < STOPPING]
        if directive is Directive.RESUME:
            self._resume(cell)
        elif directive is Directive.RESTART:
            for member in group:
                member.state = SUSPENDED
                engine.loop.call_later(delay, self._restart, member, error)
        elif directive is Directive.STOP:
            for member in group:
                self.stop(member, "failed")
        elif parent is None:
            cell.log.error("escalated to the node: stopping it")
            self.stop(cell, "failed")
        else:
            cell.escalated = True
            self.failed(parent, error)

    def _resume(self, cell: Cell) -> None:
        cell.state = RUNNING
        for child in cell.children.values():
            if child.escalated and child.state is SUSPENDED:
                child.escalated = False
                self._resume(child)
        self._engine.schedule(cell)

    def _restart(self, cell: Cell, error: BaseException) -> None:
        engine = self._engine
        if not engine.alive or cell.state is not SUSPENDED:
            return
        cell.escalated = False
        engine.timers.cancel_all(cell)
        if cell.task is not None and not cell.task.done():
            cell.task.cancel()
        for child in reversed(list(cell.children.values())):
            self.stop(child, "stopped")
        old = cell.instance
        assert old is not None

        def replace(stop_error: BaseException | None) -> None:
            if stop_error is not None:
                cell.log.warning("on_stop raised before a restart: %r", stop_error)
            if not engine.alive or cell.state is not SUSPENDED:
                return
            engine.stats.restarts += 1
            instance = cell.actor_class.__new__(cell.actor_class)
            instance.context = cell.context
            token = _current.set(cell.context)
            try:
                instance.__init__(*cell.args, **cell.kwargs)  # type: ignore[misc]
            except Exception as init_error:
                self.failed(cell, init_error)
                return
            finally:
                _current.reset(token)
            cell.instance = instance
            cell.handlers = {}
            cell.state = STARTING
            self._run_hook(
                cell, lambda: instance.on_restart(error), lambda e: self._started(cell, e)
            )

        self._run_hook(cell, old.on_stop, replace)

    # -- stopping ---------------------------------------------------------------------------

    def stop_actor(self, target: ActorRef) -> None:
        """Stop a local actor (and its children); a no-op if it is already gone."""
        engine = self._engine
        if target.node != engine.id:
            raise ValueError(f"stop() stops actors of this node ({engine.id}), not {target.path}")
        cell = engine.cells.get(target.name)
        if cell is not None:
            self.stop(cell, "stopped")

    def stop(self, cell: Cell, reason: str) -> None:
        """Stop ``cell``: its children first, then its ``on_stop``; ``reason`` goes to watchers."""
        if cell.state >= STOPPING:
            return
        cell.state = STOPPING
        cell.stop_reason = reason
        self._engine.timers.cancel_all(cell)
        if cell.task is not None and not cell.task.done():
            cell.task.cancel()
        children = list(cell.children.values())
        cell.stopping_children = len(children)
        if children:
            for child in reversed(children):
                self.stop(child, "stopped")
        else:
            self._children_stopped(cell)

    def _children_stopped(self, cell: Cell) -> None:
        instance = cell.instance
        if instance is None:
            self._finish_stop(cell, None)
            return
        self._run_hook(cell, instance.on_stop, lambda error: self._finish_stop(cell, error))

    def _finish_stop(self, cell: Cell, error: BaseException | None) -> None:
        engine = self._engine
        if error is not None and not isinstance(error, asyncio.CancelledError):
            cell.log.warning("on_stop raised: %r", error)
        if cell.state is STOPPED or not engine.alive:
            return
        cell.state = STOPPED
        engine.cells.pop(cell.name, None)
        engine.roots.pop(cell.name, None)
        parent = cell.parent
        if parent is not None:
            parent.children.pop(cell.name, None)
        while cell.mailbox:
            engine.dead_letters(cell.name, cell.mailbox.popleft(), "stopped")
        engine.flow.room(cell)  # what it held up goes on: its senders, its owed credit
        engine.watches.stopped(cell)
        if parent is not None and parent.state is STOPPING:
            parent.stopping_children -= 1
            if parent.stopping_children == 0:
                self._children_stopped(parent)
        if not engine.cells:
            self.wake_stop_waiters()

    async def stop_all(self) -> None:
        """Stop every top-level actor, newest first, and wait until every actor stopped."""
        engine = self._engine
        for cell in reversed(list(engine.roots.values())):
            self.stop(cell, "stopped")
        if engine.cells:
            waiter = engine.loop.create_future()
            self._stopped_waiters.append(waiter)
            await waiter

    def crash(self) -> None:
        """End every actor at once: no hook runs, nothing is sent (the engine crashed).

        The engine then wakes the stop waiters (:meth:`wake_stop_waiters`).
        """
        engine = self._engine
        for cell in list(engine.cells.values()):
            engine.timers.cancel_all(cell)
            if cell.task is not None and not cell.task.done():
                cell.task.cancel()
            cell.state = STOPPED
            cell.mailbox.clear()
        engine.cells.clear()
        engine.roots.clear()

    def wake_stop_waiters(self) -> None:
        """Wake whoever waits in :meth:`stop_all` (every actor stopped, or the engine crashed)."""
        for waiter in self._stopped_waiters:
            if not waiter.done():
                waiter.set_result(None)
