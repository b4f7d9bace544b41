"""Watches: an actor told :class:`~actorfw.Terminated` when another stops or its node is lost.

A watch of a local actor is a mark in its cell (``watchers``); a watch of a
remote one is a :class:`~actorfw.core.messages.WatchRequest` to that node's
protocol, remembered here by peer, so that losing the peer ends every watch
of its actors (``node-down`` or ``node-restarted``). The watcher's side is
``watching``: a :class:`~actorfw.Terminated` is delivered only to a watcher
that still watches, and once.

The actors of a peer that watch ours are forgotten when that peer
restarted (they are gone), but not when it is only declared down: down is
a suspicion, which the peer may not share (it was cut off one way, or it
stood still and forgave itself, see :mod:`actorfw.core.liveness`). Its
watchers keep their watch, and a :class:`~actorfw.Terminated` still reaches
one that still watches; one that stopped watching (its node declared this
one down too) ignores it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actorfw.core.cell import STOPPING, Cell
from actorfw.core.messages import (
    Terminated,
    TerminatedNotice,
    UnwatchRequest,
    WatchRequest,
)
from actorfw.values.refs import ActorRef

if TYPE_CHECKING:
    from actorfw.core.engine import Engine

__all__ = ["Watches"]


class Watches:
    """Who watches whom, across nodes, for one engine (see the module documentation)."""

    __slots__ = ("_engine", "_remote")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # peer node -> watched ref on it -> watcher cell names here
        self._remote: dict[str, dict[ActorRef, dict[str, None]]] = {}

    def watch(self, cell: Cell, target: ActorRef) -> None:
        """``cell`` watches ``target``."""
        if type(target) is not ActorRef:
            raise TypeError(f"watch needs an ActorRef, not {type(target).__name__}")
        engine = self._engine
        if not engine.alive or target in cell.watching:
            return
        cell.watching[target] = None
        if target.node == engine.id:
            other = engine.cells.get(target.name)
            if other is None or other.state >= STOPPING:
                self.deliver(cell.name, target, "not-found")
            else:
                other.watchers[cell.ref] = None
            return
        if engine.liveness.is_down(target.node):
            self.deliver(cell.name, target, "node-down")
            return
        self._remote.setdefault(target.node, {}).setdefault(target, {})[cell.name] = None
        engine.send(engine.protocol_of(target.node), WatchRequest(target.name, cell.ref), None)

    def unwatch(self, cell: Cell, target: ActorRef) -> None:
        """``cell`` stops watching ``target``."""
        if cell.watching.pop(target, False) is False:
            return
        engine = self._engine
        if target.node == engine.id:
            other = engine.cells.get(target.name)
            if other is not None:
                other.watchers.pop(cell.ref, None)
            return
        watched = self._remote.get(target.node, {}).get(target)
        if watched is not None:
            watched.pop(cell.name, None)
        engine.send(engine.protocol_of(target.node), UnwatchRequest(target.name, cell.ref), None)

    def stopped(self, cell: Cell) -> None:
        """``cell`` stopped: tell its watchers, and end its own watches."""
        for watcher in cell.watchers:
            self.notify(watcher, cell.ref, cell.stop_reason)
        cell.watchers.clear()
        for target in list(cell.watching):
            self.unwatch(cell, target)

    def notify(self, watcher: ActorRef, actor: ActorRef, reason: str) -> None:
        """Tell ``watcher`` (here or on its node) that ``actor`` terminated."""
        engine = self._engine
        if watcher.node == engine.id:
            self.deliver(watcher.name, actor, reason)
        else:
            engine.send(
                engine.protocol_of(watcher.node), TerminatedNotice(actor, watcher, reason), None
            )

    def deliver(self, watcher_name: str, actor: ActorRef, reason: str) -> None:
        """Deliver :class:`~actorfw.Terminated` to the local watcher, if it still watches."""
        engine = self._engine
        cell = engine.cells.get(watcher_name)
        if cell is None or actor not in cell.watching:
            return
        del cell.watching[actor]
        if actor.node != engine.id:
            watched = self._remote.get(actor.node, {}).get(actor)
            if watched is not None:
                watched.pop(watcher_name, None)
        engine.enqueue(watcher_name, (Terminated(actor, reason), actor, None, None))

    # -- the node protocol's side -----------------------------------------------------------

    def requested(self, request: WatchRequest) -> None:
        """A remote actor asks to watch one of ours."""
        engine = self._engine
        cell = engine.cells.get(request.target)
        if cell is None or cell.state >= STOPPING:
            self.notify(request.watcher, ActorRef(engine.id, request.target), "not-found")
        else:
            cell.watchers[request.watcher] = None

    def unrequested(self, request: UnwatchRequest) -> None:
        """A remote actor no longer watches one of ours."""
        cell = self._engine.cells.get(request.target)
        if cell is not None:
            cell.watchers.pop(request.watcher, None)

    def node_lost(self, peer: str, reason: str) -> None:
        """``peer`` is down or restarted: end the watches of its actors; if it restarted,
        forget its actors' watches of ours (see the module documentation)."""
        watched = self._remote.pop(peer, {})
        for actor, watchers in watched.items():
            for watcher_name in list(watchers):
                self.deliver(watcher_name, actor, reason)
        if reason != "node-restarted":
            return
        # Actors of the restarted node that watched ours are gone: forget them.
        for cell in self._engine.cells.values():
            if cell.watchers:
                for watcher in [w for w in cell.watchers if w.node == peer]:
                    del cell.watchers[watcher]
