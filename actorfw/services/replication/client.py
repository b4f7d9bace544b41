"""Exactly-once clients of a replicated state machine, async and sync.

A client has an id and numbers its commands 1, 2, 3, ...; the replicated
state keeps, per client, the number and result of its last command, so a
command retried after a timeout or a leader change runs once and its retry
gets the first answer. A client therefore keeps one command outstanding at
a time (the async client serializes its calls).

A command that did not complete (no answer in time, a cancelled call) may
still run later. The client then continues under a new id (its first id
with a ``~<n>`` suffix, starting again at 1), so that the replicas never
see one id go on past a command they may not have run: a command of an id
without a session, other than its first, can only mean that the replicas
dropped that id's session (they keep ``ReplicaOptions.max_sessions``, the
most recently active). Such a command does not run, and the client raises
:class:`SessionExpiredError` and continues under a new id too. And since a
read served by a leader's lease leaves the sessions alone, an id's first
command always goes through the log, a read too: it opens the session.

The client finds the leader by itself: it asks any replica, replicas pass
commands on to the leader's replica (and relay its answer back), and every
answer names the leader, so the next command goes straight there; unless
this client could not reach the leader, in which case it keeps asking the
replica that relayed the answer. A replica may instead answer
:class:`Redirect` (a primary-backup group's backups do): the command did
not run there, and the client asks the node it names next.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Sequence
from typing import Any

from actorfw.core.cluster import Cluster
from actorfw.protocols.paxos.messages import Command, Read, Role, SessionExpired
from actorfw.services.paxos import Answered, Submit, role_name
from actorfw.values.codec import message
from actorfw.values.errors import ActorfwError, ActorNotFound, AskTimeout, NodeDown, Overloaded
from actorfw.values.refs import ActorRef

__all__ = [
    "AsyncGroupClient",
    "GroupClient",
    "Redirect",
    "Runtime",
    "SessionExpiredError",
    "Unavailable",
    "new_client_id",
]


class Unavailable(ActorfwError):
    """No replica answered a command in time: the group may have lost its quorum.

    The command may or may not have run; a later command of the same client
    starts a new sequence number, so do not assume either way.
    """


class SessionExpiredError(ActorfwError):
    """The replicas had dropped this client's session: the command may or may not have run.

    Replicas keep ``ReplicaOptions.max_sessions`` client sessions at most
    (a primary-backup group's members: ``MemberOptions.max_sessions``),
    dropping the least recently active client's first; a command of a
    client whose session was dropped does not run (its retry could
    otherwise run twice). In a primary-backup group in ``async`` mode, a
    failover that lost a client's last commands loses its session with
    them, with the same answer. The client continues under a new id (its first
    id with a ``~<n>`` suffix), so its next command runs normally.
    """


@message(name="replication.Redirect")
class Redirect:
    """A replica's answer: the command did not run here; ask ``leader`` ("" if unknown)."""

    leader: str


def new_client_id() -> str:
    """A client id unique across hosts and processes."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


class AsyncGroupClient:
    """A client of one replicated group, for ``async`` code (actors, or a runtime's ``run``).

    Args:
        group: the group's name (as given to :func:`~actorfw.services.replication.replicate`).
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
        # One ref per node, made once: every attempt of every command uses one.
        self._replicas = {node: ActorRef(node, role_name(group, Role.REPLICA)) for node in nodes}
        self.client_id = client_id or new_client_id()
        self._base_id = self.client_id
        self._generation = 0
        self._sent = False  # the command in hand may have reached a replica
        self.timeout = timeout
        self.deadline = deadline
        self.seq = 0
        self.leader: str | None = None
        self._lock = asyncio.Lock()
        self._next = 0
        # Nodes whose replica did not answer the last time this client asked it: an
        # answer relayed by another replica that names one of them as leader does not
        # send the next command there (the link from here may be what fails).
        self._unreached: set[str] = set()

    def _candidates(self, spread: bool = False) -> list[str]:
        # The known leader first, then the others in turn (all in turn for a read
        # that a backup may answer: the next one each time).
        start = self._next % len(self.nodes)
        order = self.nodes[start:] + self.nodes[:start]
        if spread:
            self._next += 1
            return order
        if self.leader in order:
            order.remove(self.leader)
            order.insert(0, self.leader)
        return order

    async def call(self, op: Any) -> Any:
        """Run ``op`` on the replicated state machine, exactly once; return its result.

        Raises:
            Unavailable: no replica answered within ``deadline`` seconds
                (the client continues under a new id).
            SessionExpiredError: the replicas had dropped this client's
                session (the client continues under a new id).
            MessageRefused: ``op`` is not a message value.
        """
        return await self._run(op, Submit)

    async def read(self, op: Any, max_staleness: float = 0.0) -> Any:
        """Run a read-only ``op``; served by the leader's lease when leases are on.

        With ``LeaderOptions.lease_duration`` set and a state machine that
        can query (``is_read_only`` and ``query``; the KV store can), the
        leader's node answers from its state without a round of consensus;
        otherwise (or if ``op`` is not read-only) it goes through the log
        like :meth:`call`, and so does the first command of a client id
        (it opens the client's session). Either way the answer is
        linearizable, leases under their clock-drift bound (see
        ``docs/replication.md``).

        ``max_staleness`` (seconds): a primary-backup group's backups may
        answer from their own state, missing at most the writes
        acknowledged in about that many last seconds (see
        ``docs/primary-backup.md``); the client then asks the nodes in turn,
        not the primary first. A Multi-Paxos group answers linearizably.
        """
        if not (isinstance(max_staleness, int | float) and max_staleness >= 0):
            raise ValueError(f"max_staleness is seconds >= 0, not {max_staleness!r}")
        return await self._run(op, Read, float(max_staleness))

    async def _run(
        self, op: Any, kind: type[Submit] | type[Read], max_staleness: float = 0.0
    ) -> Any:
        async with self._lock:
            if self.seq == 0:
                # An id's first command goes through the log, a read too: it opens
                # the id's session, which a read served by lease would not.
                kind = Submit
            self.seq += 1
            command = Command(self.client_id, self.seq, op)
            try:
                message = Read(command, max_staleness) if kind is Read else Submit(command)
                return await self._attempts(message)
            except BaseException:
                if self._sent:
                    # The command may still run later: the replicas must never see
                    # this id again with a higher seq and no session (rule 12 of
                    # actorfw.protocols.paxos.replica), so the client starts over.
                    self._renew()
                else:
                    self.seq -= 1  # nothing left: the number is free again
                raise
            finally:
                self._sent = False

    async def _attempts(self, message: Submit | Read) -> Any:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.deadline
        attempts = 0
        pause = 0.02
        seq = message.command.seq
        while True:
            missing: set[str] = set()  # nodes that run no replica of the group
            order = self._candidates(type(message) is Read and message.max_staleness > 0)
            asked_here: set[str] = set()
            while order:
                node = order.pop(0)
                asked_here.add(node)
                remaining = give_up - loop.time()
                if remaining <= 0:
                    raise Unavailable(
                        f"no replica of group {self.group!r} answered command {seq} of "
                        f"client {self.client_id} within {self.deadline:g}s ({attempts} "
                        f"attempts on {', '.join(self.nodes)}); the group may have lost "
                        "its quorum"
                    )
                replica = self._replicas[node]
                attempts += 1
                asked = replica.ask(message, min(self.timeout, remaining))
                self._sent = True
                try:
                    answer = await asked
                except Overloaded:
                    continue  # refused unrun (the replica is behind): safe to ask again later
                except (AskTimeout, NodeDown, ActorNotFound) as error:
                    if isinstance(error, ActorNotFound):
                        missing.add(node)
                    self._unreached.add(node)
                    self._next += 1
                    if self.leader == node:
                        self.leader = None
                    continue
                if type(answer) is Redirect:
                    # Not run there: ask the node it names next, once a round.
                    self._unreached.discard(node)
                    hint = answer.leader
                    if type(hint) is str and hint in self._replicas and hint not in asked_here:
                        self.leader = hint
                        if hint in order:
                            order.remove(hint)
                        order.insert(0, hint)
                    elif self.leader == node:
                        self.leader = None
                    continue
                if type(answer) is not Answered:
                    raise TypeError(f"replica {replica.path} answered {answer!r}, not Answered")
                # Go to the leader next time, unless this client could not reach it:
                # then to the replica that passed the command on and relayed the answer.
                self._unreached.discard(node)
                leader = answer.leader
                self.leader = leader if leader and leader not in self._unreached else node
                if type(answer.result) is SessionExpired:
                    raise SessionExpiredError(
                        f"the replicas of group {self.group!r} had dropped the session of "
                        f"client {self.client_id} (they keep the most recently active "
                        "clients' sessions: ReplicaOptions.max_sessions, or a primary-backup "
                        "group's MemberOptions.max_sessions; or an async primary-backup "
                        f"group's failover lost it): command {seq} did not run now and may "
                        "or may not have run before; the client continues under a new id"
                    )
                return answer.result
            if missing == set(self.nodes):
                raise Unavailable(
                    f"no node runs a replica of group {self.group!r} (asked "
                    f"{', '.join(self.nodes)}): is the group's name right?"
                )
            # A round without an answer: back off a little before the next.
            await asyncio.sleep(min(pause, max(0.0, give_up - loop.time())))
            pause = min(2 * pause, 0.5)

    def _renew(self) -> None:
        """Continue under a new id (derived from the first, so a simulation replays)."""
        self._generation += 1
        self.client_id = f"{self._base_id}~{self._generation}"
        self.seq = 0


Runtime = Cluster
"""What a sync client drives: any :class:`~actorfw.core.cluster.Cluster` (it uses ``run``)."""


class GroupClient:
    """A blocking client of one replicated group (see :class:`AsyncGroupClient` for the rules).

    Args:
        runtime: what runs the calls: a :class:`~actorfw.Simulation`, an
            :class:`~actorfw.node.ActorSystem` or a :class:`~actorfw.node.Connection`.
        group, nodes, client_id, timeout, deadline: as for :class:`AsyncGroupClient`.
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
        self.inner = AsyncGroupClient(group, nodes, client_id, timeout, deadline)

    @property
    def client_id(self) -> str:
        """This client's id."""
        return self.inner.client_id

    @property
    def leader(self) -> str | None:
        """The node the last answer named as leader."""
        return self.inner.leader

    def call(self, op: Any) -> Any:
        """Run ``op`` exactly once and return its result.

        Raises :class:`Unavailable` or :class:`SessionExpiredError`, as
        :meth:`AsyncGroupClient.call` does.
        """
        return self.runtime.run(self.inner.call(op), on=self.on, timeout=self.inner.deadline + 5.0)

    def read(self, op: Any, max_staleness: float = 0.0) -> Any:
        """Run a read-only ``op`` (by lease when on), as :meth:`AsyncGroupClient.read` does."""
        return self.runtime.run(
            self.inner.read(op, max_staleness), on=self.on, timeout=self.inner.deadline + 5.0
        )
