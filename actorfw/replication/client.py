"""Exactly-once clients of a replicated state machine, async and sync.

A client has an id and numbers its commands 1, 2, 3, ...; the replicated
state keeps, per client, the number and result of its last command, so a
command retried after a timeout or a leader change runs once and its retry
gets the first answer. A client therefore keeps one command outstanding at
a time (the async client serializes its calls).

The client finds the leader by itself: it asks any replica, replicas pass
commands on to the leader's replica, and every answer names the leader, so
the next command goes straight there.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Sequence
from typing import Any, Protocol

from actorfw.core.errors import ActorfwError, ActorNotFound, AskTimeout, NodeDown
from actorfw.core.refs import ActorRef
from actorfw.paxos.actors import Answered, Submit, role_name
from actorfw.paxos.messages import Command, Read, Role

__all__ = ["AsyncClient", "Client", "Runtime", "Unavailable", "new_client_id"]


class Unavailable(ActorfwError):
    """No replica answered a command in time: the group may have lost its quorum.

    The command may or may not have run; a later command of the same client
    starts a new sequence number, so do not assume either way.
    """


def new_client_id() -> str:
    """A client id unique across hosts and processes."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


class AsyncClient:
    """A client of one replicated group, for ``async`` code (actors, or a runtime's ``run``).

    Args:
        group: the group's name (as given to :func:`~actorfw.replication.replicate`).
        nodes: the group's nodes.
        client_id: this client's id, unique among the group's clients
            (default: a fresh random one); give one to replay a simulation.
        timeout: seconds to wait for one replica before trying another.
        deadline: seconds a command may take in all before :class:`Unavailable`.
    """

    def __init__(
        self,
        group: str,
        nodes: Sequence[str],
        client_id: str | None = None,
        timeout: float = 1.0,
        deadline: float = 10.0,
    ) -> None:
        if not nodes:
            raise ValueError("a client needs the group's nodes")
        self.group = group
        self.nodes = list(nodes)
        self.client_id = client_id or new_client_id()
        self.timeout = timeout
        self.deadline = deadline
        self.seq = 0
        self.leader: str | None = None
        self._lock = asyncio.Lock()
        self._next = 0

    def _candidates(self) -> list[str]:
        # The known leader first, then the others in turn.
        start = self._next % len(self.nodes)
        order = self.nodes[start:] + self.nodes[:start]
        if self.leader in order:
            order.remove(self.leader)
            order.insert(0, self.leader)
        return order

    async def call(self, op: Any) -> Any:
        """Run ``op`` on the replicated state machine, exactly once; return its result.

        Raises:
            Unavailable: no replica answered within ``deadline`` seconds.
            MessageRefused: ``op`` is not a message value.
        """
        return await self._run(op, Submit)

    async def read(self, op: Any) -> Any:
        """Run a read-only ``op``; served by the leader's lease when leases are on.

        With ``LeaderOptions.lease_duration`` set and a state machine that
        can query (``is_read_only`` and ``query``; the KV store can), the
        leader's node answers from its state without a round of consensus;
        otherwise (or if ``op`` is not read-only) it goes through the log
        like :meth:`call`. Either way the answer is linearizable, leases
        under their clock-drift bound (see ``docs/replication.md``).
        """
        return await self._run(op, Read)

    async def _run(self, op: Any, kind: type[Submit] | type[Read]) -> Any:
        async with self._lock:
            self.seq += 1
            command = Command(self.client_id, self.seq, op)
            message = kind(command)
            loop = asyncio.get_running_loop()
            give_up = loop.time() + self.deadline
            attempts = 0
            pause = 0.02
            while True:
                missing: set[str] = set()  # nodes that run no replica of the group
                for node in self._candidates():
                    remaining = give_up - loop.time()
                    if remaining <= 0:
                        raise Unavailable(
                            f"no replica of group {self.group!r} answered command {self.seq} of "
                            f"client {self.client_id} within {self.deadline:g}s ({attempts} "
                            f"attempts on {', '.join(self.nodes)}); the group may have lost "
                            "its quorum"
                        )
                    replica = ActorRef(node, role_name(self.group, Role.REPLICA))
                    attempts += 1
                    try:
                        answer = await replica.ask(message, min(self.timeout, remaining))
                    except (AskTimeout, NodeDown, ActorNotFound) as error:
                        if isinstance(error, ActorNotFound):
                            missing.add(node)
                        self._next += 1
                        if self.leader == node:
                            self.leader = None
                        continue
                    if type(answer) is not Answered:
                        raise TypeError(f"replica {replica.path} answered {answer!r}, not Answered")
                    self.leader = answer.leader or node
                    return answer.result
                if missing == set(self.nodes):
                    raise Unavailable(
                        f"no node runs a replica of group {self.group!r} (asked "
                        f"{', '.join(self.nodes)}): is the group's name right?"
                    )
                # A round without an answer: back off a little before the next.
                await asyncio.sleep(min(pause, max(0.0, give_up - loop.time())))
                pause = min(2 * pause, 0.5)


class Runtime(Protocol):
    """What a sync client drives: a Simulation, an ActorSystem or a node Client."""

    def run(self, main: Any, on: str | None = None, timeout: float = 60.0) -> Any:
        """Run a coroutine to completion and return its result."""


class Client:
    """A blocking client of one replicated group (see :class:`AsyncClient` for the rules).

    Args:
        runtime: what runs the calls: a :class:`~actorfw.Simulation`, an
            :class:`~actorfw.node.ActorSystem` or a :class:`~actorfw.node.Client`.
        group, nodes, client_id, timeout, deadline: as for :class:`AsyncClient`.
        on: the node a simulated client sends from (simulator only).
    """

    def __init__(
        self,
        runtime: Runtime,
        group: str,
        nodes: Sequence[str],
        client_id: str | None = None,
        timeout: float = 1.0,
        deadline: float = 10.0,
        on: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.on = on
        self.inner = AsyncClient(group, nodes, client_id, timeout, deadline)

    @property
    def client_id(self) -> str:
        """This client's id."""
        return self.inner.client_id

    @property
    def leader(self) -> str | None:
        """The node the last answer named as leader."""
        return self.inner.leader

    def call(self, op: Any) -> Any:
        """Run ``op`` exactly once and return its result (raises :class:`Unavailable`)."""
        return self.runtime.run(self.inner.call(op), on=self.on, timeout=self.inner.deadline + 5.0)

    def read(self, op: Any) -> Any:
        """Run a read-only ``op``, by the leader's lease when on (see :meth:`AsyncClient.read`)."""
        return self.runtime.run(self.inner.read(op), on=self.on, timeout=self.inner.deadline + 5.0)
