"""The one interface every way of driving a cluster from outside offers.

A :class:`~actorfw.Simulation`, an :class:`~actorfw.node.ActorSystem` and the
client :func:`~actorfw.node.connect` returns all implement :class:`Cluster`:
code written against it (a test, :func:`~actorfw.services.replication.replicate`,
a service's starter) runs on any of them. Those that can also crash and
restart nodes implement :class:`FaultyCluster`.

The two ways of waiting that every runtime offers are written here once:
:func:`poll_until` and :func:`find_actor`, run by each runtime's ``run``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from actorfw.core.messages import LookupRequest
from actorfw.core.node_protocol import NODE_TARGET
from actorfw.values.errors import ActorNotFound, AskTimeout, NodeDown, Overloaded
from actorfw.values.refs import ActorRef

if TYPE_CHECKING:
    from actorfw.core.actor import Actor

__all__ = ["Cluster", "FaultyCluster", "find_actor", "poll_until"]


@runtime_checkable
class Cluster(Protocol):
    """A running cluster, driven from outside its actors (see the module documentation)."""

    @property
    def nodes(self) -> Collection[str]:
        """The cluster's node ids (iterating gives them in order)."""
        ...

    @property
    def in_process(self) -> bool:
        """Do actors spawned here run in this process (True in the simulator)?

        If so, a class may be passed where a ``"module:QualName"`` path is
        otherwise needed (a state machine, say).
        """
        ...

    def spawn(
        self,
        node: str,
        actor_class: type[Actor],
        *args: Any,
        name: str | None = None,
        **kwargs: Any,
    ) -> ActorRef:
        """Start a top-level actor on ``node``; its ref."""
        ...

    def tell(self, target: ActorRef, message: Any, on: str | None = None) -> None:
        """Tell ``target`` ``message``; returns at once."""
        ...

    def ask(
        self, target: ActorRef, message: Any, timeout: float = ..., on: str | None = None
    ) -> Any:
        """Ask ``target`` and return the reply."""
        ...

    def poll(
        self,
        target: ActorRef,
        message: Any,
        until: Callable[[Any], bool],
        timeout: float = 30.0,
        interval: float = 0.05,
        on: str | None = None,
    ) -> Any:
        """Ask ``target`` every ``interval`` seconds until ``until(reply)``; that reply."""
        ...

    def run(
        self,
        main: Callable[[], Awaitable[Any]] | Coroutine[Any, Any, Any],
        on: str | None = None,
        timeout: float = 60.0,
    ) -> Any:
        """Run driver code (``ref.tell``, ``ref.ask``) to completion; its result."""
        ...

    def lookup(self, name: str, node: str | None = None, on: str | None = None) -> ActorRef | None:
        """A living actor called ``name`` (on ``node``, or any node), or None.

        Raises:
            NodeDown, AskTimeout: ``node`` is given and is down or does not answer.
        """
        ...


@runtime_checkable
class FaultyCluster(Cluster, Protocol):
    """A cluster whose nodes can be crashed and restarted (the simulator, an ActorSystem)."""

    def crash(self, node: str) -> None:
        """Crash ``node`` at once: nothing is flushed, no hook runs."""
        ...

    def restart(self, node: str) -> None:
        """Start a crashed ``node`` again, on what its storage kept."""
        ...


async def poll_until(
    target: ActorRef,
    message: Any,
    until: Callable[[Any], bool],
    timeout: float,
    interval: float,
    fail: Callable[[str], BaseException],
) -> Any:
    """Ask ``target`` every ``interval`` seconds until ``until(reply)``; return that reply.

    Runs inside a runtime's ``run`` (its clock is the loop's). A failed ask (a
    timeout, a node down, an actor not there yet or too busy to take it)
    counts as "not yet".

    Raises:
        what ``fail(text)`` makes: ``timeout`` passed first (the text says the last answer).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        try:
            last = await target.ask(message, min(interval * 20, 5.0))
            if until(last):
                return last
        except (AskTimeout, NodeDown, ActorNotFound, Overloaded) as error:
            last = error
        if loop.time() + interval > deadline:
            raise fail(
                f"{target.path} never answered {type(message).__name__} as wanted within "
                f"{timeout:g}s; last answer: {last!r}"
            )
        await asyncio.sleep(interval)


async def find_actor(
    name: str, candidates: Iterable[str], timeout: float, *, only: bool = False
) -> ActorRef | None:
    """Ask each candidate node, in turn, whether a living actor ``name`` runs there.

    Runs inside a runtime's ``run``. A node that does not answer within
    ``timeout`` (or is down) is passed over, unless it is the ``only`` one
    the caller named: then its error is raised, for "that node cannot say"
    is not "no such actor".

    Raises:
        NodeDown, AskTimeout: ``only``, and the node is down or silent.
    """
    for node in candidates:
        try:
            found = await ActorRef(node, NODE_TARGET).ask(LookupRequest(name), timeout)
        except (AskTimeout, NodeDown):
            if only:
                raise
            continue
        if found is True:
            return ActorRef(node, name)
    return None
