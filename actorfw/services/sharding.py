"""Sharded services: groups that move shards between them, and clients that route by key.

A sharded cluster is one shard manager (a
:class:`~actorfw.protocols.sharding.ShardManagerMachine` replicated by
Multi-Paxos) and replica groups, each a
:class:`~actorfw.protocols.sharding.ShardedMachine` replicated on its own
nodes. On every node of a group runs a :class:`ShardMover`: it takes the
manager's configurations into the group's log one at a time, pulls the
shards that come in from the groups that held them, and tells those groups
to delete what the group installed (the rules are
:mod:`actorfw.protocols.sharding.group`'s). Clients
(:class:`AsyncShardedClient`, :class:`ShardedClient`) cache the latest
configuration, send each operation to the group owning its key's shard,
and follow the configuration when a group answers that it is not the
owner.

::

    from actorfw import Simulation
    from actorfw.services.sharding import ShardedCluster

    from actorfw.kv import KV
    from actorfw.kv.sharded import ShardedKV

    with Simulation(nodes=3) as sim:
        cluster = ShardedCluster.start(sim, ShardedKV, shards=16)
        cluster.add_group("g1", ["n1", "n2", "n3"])
        kv = KV(cluster.client())
        kv.put("x", 1)

See ``docs/sharding.md``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from actorfw.core.actor import Actor, handler
from actorfw.core.cluster import Cluster
from actorfw.protocols.paxos.messages import Role
from actorfw.protocols.sharding.group import next_actions
from actorfw.protocols.sharding.keys import shard_of
from actorfw.protocols.sharding.manager import Configuration, ShardManagerMachine
from actorfw.services.paxos import ReplicaStatus, role_name
from actorfw.services.replication.client import (
    AsyncGroupClient,
    SessionExpiredError,
    Unavailable,
    new_client_id,
)
from actorfw.services.replication.group import ReplicatedGroup, replicate
from actorfw.values.codec import message
from actorfw.values.errors import ActorfwError
from actorfw.values.refs import ActorRef

__all__ = [
    "AsyncShardedClient",
    "ShardMover",
    "ShardedClient",
    "ShardedCluster",
    "ShardingRefused",
    "mover_name",
]


MANAGER_MACHINE = "actorfw.protocols.sharding.manager:ShardManagerMachine"
"""The shard manager's state machine, by path (as node processes name it)."""


class ShardingRefused(ActorfwError):
    """The shard manager or a group refused an operation (malformed, or not allowed)."""


def mover_name(group: str) -> str:
    """The name of the :class:`ShardMover` of ``group`` on each of its nodes."""
    return f"{group}-mover"


@message(name="actorfw.sharding.MovePass")
class MovePass:
    """Time for a :class:`ShardMover` to look at its group's configuration and shards."""


class ShardMover(Actor):
    """Moves one group's shards along the shard manager's configurations, from one node.

    Every node of a group runs one; the one beside the group's leader acts
    (all of them while no leader is known). What they do goes through the
    group's log and is idempotent, so any of them keeps the group moving
    while the others are down. Every ``interval`` seconds it reads the group's status
    and carries out :func:`~actorfw.protocols.sharding.next_actions`: pull
    the shards that come in (export at the group that held them, install
    here), tell their old groups to delete them (then confirm here), and
    take the next configuration once nothing is left to pull.

    Args:
        group: the group's name; nodes: its nodes.
        manager: the shard manager's group name; manager_nodes: its nodes.
        interval: seconds between passes.
        timeout: seconds a call to a group may take before it is tried again
            on the next pass.
    """

    def __init__(
        self,
        group: str,
        nodes: Sequence[str],
        manager: str,
        manager_nodes: Sequence[str],
        interval: float = 0.1,
        timeout: float = 2.0,
    ) -> None:
        self.group = group
        self.interval = interval
        self.timeout = timeout
        self.me = self.context.node
        # Client ids never seen before, by this actor's (seeded) random source: a
        # client that numbered its commands from 1 again under an id a group has a
        # session for would be answered from that session (an old answer).
        self._incarnation = f"{self.context.random.getrandbits(48):012x}"
        self._made = 0
        self._replica = ActorRef(self.me, role_name(group, Role.REPLICA))
        self.own = self._client(group, nodes)
        self.manager = self._client(manager, manager_nodes)
        self.others: dict[str, AsyncGroupClient] = {}
        self.passes = 0
        self.failures = 0

    def _client(self, group: str, nodes: Sequence[str]) -> AsyncGroupClient:
        self._made += 1
        return AsyncGroupClient(
            group,
            list(nodes),
            client_id=f"{self.group}-mover@{self.me}/{group}/{self._incarnation}.{self._made}",
            timeout=min(0.5, self.timeout),
            deadline=self.timeout,
        )

    def on_start(self) -> None:
        """Start passing."""
        self.context.start_timer("pass", MovePass(), self.interval)

    @handler
    async def on_pass(self, _: MovePass) -> None:
        """One pass: read the status, carry out what it calls for."""
        try:
            await self._pass()
        except ActorfwError as error:  # out of reach, or not started yet: next pass
            self.failures += 1
            self.context.log.debug("shard mover of %s: %s", self.group, error)
        finally:
            self.context.start_timer("pass", MovePass(), self.interval)

    async def _pass(self) -> None:
        # Only the mover beside the group's leader acts, while this node knows one:
        # the others would only repeat its commands. Without a known leader every
        # mover acts (their commands are idempotent).
        local = await self._replica.ask(ReplicaStatus(), self.timeout)
        if local.leader and local.leader != self.me:
            return
        self.passes += 1
        status = await self.own.read(["status"])
        if not (isinstance(status, list) and status[:1] == ["status"]):
            raise ShardingRefused(f"group {self.group} answered status with {status!r}")
        actions = next_actions(status[1])
        latest: dict[str, Any] | None = None
        if any(action[0] != "next" for action in actions):
            # A group's nodes as the latest configuration has them, if it is still
            # there: the status has them as they were when the shard was given away.
            answer = await self.manager.read(["query", -1])
            latest = answer["groups"] if isinstance(answer, dict) else None
        for action in actions:
            kind = action[0]
            if kind == "pull":
                _, group, nodes, num, shard = action
                other = self._other(group, (latest or {}).get(group) or nodes)
                exported = await other.read(["export", num, shard])
                if exported[0] == "shard":
                    await self.own.call(["install", num, shard, exported[1]])
            elif kind == "delete":
                _, group, nodes, num, shard = action
                other = self._other(group, (latest or {}).get(group) or nodes)
                deleted = await other.call(["delete", num, shard])
                if deleted[0] == "deleted":
                    await self.own.call(["confirmed", num, shard])
            else:
                await self._next(action[1])

    async def _next(self, num: int) -> None:
        config = await self.manager.read(["query", num])
        if isinstance(config, dict):
            await self.own.call(["config", config])
        elif num > 1 and "forgotten" in str(config):
            self.context.log.warning(
                "group %s cannot catch up: it is at configuration %d, and the shard manager "
                "has forgotten %d (see docs/sharding.md, Limits)",
                self.group,
                num - 1,
                num,
            )
        elif num == 1 and "forgotten" in str(config):
            # Started after the manager forgot configuration 1: start from the oldest
            # it keeps (the group refuses it if that gives the group a shard already).
            oldest = await self.manager.read(["oldest"])
            taken = await self.own.call(["adopt", oldest])
            if taken[0] != "taken":
                self.context.log.warning(
                    "group %s cannot catch up: the shard manager keeps configurations from "
                    "%s, which already gives it shards, and it has none",
                    self.group,
                    oldest.get("num") if isinstance(oldest, dict) else oldest,
                )

    def _other(self, group: str, nodes: Sequence[str]) -> AsyncGroupClient:
        client = self.others.get(group)
        if client is None or client.nodes != list(nodes):
            client = self.others[group] = self._client(group, nodes)
        return client


class AsyncShardedClient:
    """A client of a sharded state machine, for ``async`` code: routes each operation by key.

    Operations are those of the groups' application (for the KV store,
    ``[f, key, value]``); each runs exactly once, across retries and across
    shard moves (rule 5 of :mod:`actorfw.protocols.sharding.group`). One
    operation at a time, as for a group's client.

    Args:
        manager: the shard manager's group name; manager_nodes: its nodes.
        client_id: unique among the clients (default: a fresh random one).
        timeout: seconds to wait for one replica before trying another.
        deadline: seconds an operation may take in all before :class:`Unavailable`.
        key_of: the key of an operation: the groups' machine's
            :meth:`~actorfw.protocols.sharding.ShardedMachine.key_of` (default:
            its second item, as for the KV store). A group refuses an
            operation routed by another shard than its key's there.
    """

    def __init__(
        self,
        manager: str,
        manager_nodes: Sequence[str],
        client_id: str | None = None,
        timeout: float = 1.0,
        deadline: float = 10.0,
        key_of: Callable[[Any], Any] | None = None,
    ) -> None:
        self.key_of = key_of or _second_item
        self.client_id = client_id or new_client_id()
        self._base_id = self.client_id
        self._generation = 0
        self.timeout = timeout
        self.deadline = deadline
        self.manager = AsyncGroupClient(
            manager, manager_nodes, f"{self.client_id}/manager", timeout, deadline
        )
        self.config: Configuration | None = None
        """The configuration this client routes by (the latest it fetched)."""
        self.seqs: dict[int, int] = {}
        self._groups: dict[str, AsyncGroupClient] = {}
        self._made = 0
        self._lock = asyncio.Lock()
        self.redirects = 0
        """Operations sent again after a group said it did not own their shard (or not yet)."""

    async def refresh(self) -> Configuration:
        """Fetch the latest configuration from the shard manager."""
        value = await self.manager.read(["query", -1])
        if not isinstance(value, dict):
            raise ShardingRefused(f"the shard manager answered a query with {value!r}")
        config = Configuration.from_value(value)
        if self.config is None or config.num >= self.config.num:
            self.config = config
        return self.config

    async def call(self, op: Any) -> Any:
        """Run ``op`` on its key's shard, exactly once; its result.

        Raises:
            Unavailable: no answer within ``deadline`` (the operation may have
                run; the client continues under a new id).
            SessionExpiredError: the shard had dropped this client's session.
            ShardingRefused: ``op`` has no key, or a group refused it.
        """
        async with self._lock:
            config = self.config or await self.refresh()
            try:
                shard = shard_of(self.key_of(op), len(config.shards))
            except (TypeError, ValueError, IndexError, KeyError) as error:
                raise ShardingRefused(f"no key in operation {op!r}: {error}") from None
            seq = self.seqs.get(shard, 0) + 1
            self.seqs[shard] = seq
            try:
                return await self._attempts(shard, seq, op)
            except BaseException:
                self._renew()  # it may have run: never reuse this id's numbers
                raise

    read = call
    """Reads go through the groups' logs like any operation (the same as :meth:`call`)."""

    async def _attempts(self, shard: int, seq: int, op: Any) -> Any:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.deadline
        pause = 0.02
        while True:
            config = self.config
            assert config is not None
            group = config.group_of(shard)
            answer: Any = None
            if group is not None:
                try:
                    answer = await self._group(group, config.groups[group]).call(
                        ["op", self.client_id, shard, seq, op]
                    )
                except (Unavailable, SessionExpiredError):
                    answer = None  # the group's own retries gave up: look again
            if isinstance(answer, list) and answer:
                kind = answer[0]
                if kind == "ok":
                    return answer[1]
                if kind == "expired":
                    raise SessionExpiredError(
                        f"shard {shard} had dropped the session of client {self.client_id}: "
                        f"operation {seq} did not run now and may or may not have run before"
                    )
                if kind == "error":
                    raise ShardingRefused(f"group {group} refused {op!r}: {answer[1]}")
                self.redirects += 1
            if loop.time() >= give_up:
                raise Unavailable(
                    f"operation {seq} of client {self.client_id} on shard {shard} found no "
                    f"group serving it within {self.deadline:g}s (last: group {group}, "
                    f"configuration {config.num}, answer {answer!r})"
                )
            try:
                await self.refresh()
            except (Unavailable, SessionExpiredError):
                pass  # the manager is out of reach: try the configuration in hand again
            if self.config is not None and self.config.num > config.num:
                pause = 0.02  # a newer configuration: straight to the shard's group there
            else:
                # Nothing newer: the owner has not taken the configuration yet, waits
                # for the shard, or is out of reach. Back off, or many clients would
                # turn into a stream of commands to it and to the manager.
                await asyncio.sleep(min(pause, max(0.0, give_up - loop.time())))
                pause = min(2 * pause, 0.25)

    def _group(self, group: str, nodes: Sequence[str]) -> AsyncGroupClient:
        client = self._groups.get(group)
        if client is None or client.nodes != list(nodes):
            # A new id each time: under an id the group has a session for, a client
            # numbering from 1 again would be answered from that session.
            self._made += 1
            client = self._groups[group] = AsyncGroupClient(
                group, nodes, f"{self.client_id}/{group}.{self._made}", self.timeout, self.deadline
            )
        return client

    def _renew(self) -> None:
        self._generation += 1
        self.client_id = f"{self._base_id}~{self._generation}"
        self.seqs.clear()
        self._groups.clear()


def _second_item(operation: Any) -> Any:
    """An operation's key by default: ``[f, key, ...]``, as the KV store's."""
    return operation[1]


class ShardedClient:
    """A blocking :class:`AsyncShardedClient`, driven by a runtime's ``run``.

    Args:
        runtime: a :class:`~actorfw.Simulation`, an :class:`~actorfw.node.ActorSystem`
            or a :class:`~actorfw.node.Connection`.
        on: the node a simulated client sends from (simulator only).
        the rest: as for :class:`AsyncShardedClient`.
    """

    def __init__(
        self,
        runtime: Cluster,
        manager: str,
        manager_nodes: Sequence[str],
        client_id: str | None = None,
        timeout: float = 1.0,
        deadline: float = 10.0,
        on: str | None = None,
        key_of: Callable[[Any], Any] | None = None,
    ) -> None:
        self.runtime = runtime
        self.on = on
        self.inner = AsyncShardedClient(
            manager, manager_nodes, client_id, timeout, deadline, key_of
        )

    def call(self, op: Any) -> Any:
        """Run ``op`` exactly once on its key's shard (see :meth:`AsyncShardedClient.call`)."""
        return self.runtime.run(self.inner.call(op), on=self.on, timeout=self.inner.deadline + 5.0)

    read = call
    """The same as :meth:`call`."""

    def configuration(self) -> Configuration:
        """The latest configuration, fetched from the shard manager."""
        config: Configuration = self.runtime.run(
            self.inner.refresh(), on=self.on, timeout=self.inner.deadline + 5.0
        )
        return config


class ShardedCluster:
    """A running sharded service: its shard manager, its groups, and clients for it.

    Made by :meth:`start`; groups join with :meth:`add_group` and leave
    with :meth:`leave`.
    """

    def __init__(
        self,
        runtime: Cluster,
        manager: ReplicatedGroup,
        shards: int,
        machine: Any,
        mover_interval: float = 0.1,
        client_id: str | None = None,
        replication: str = "paxos",
    ) -> None:
        self.runtime = runtime
        self.manager = manager
        self.shards = shards
        self.machine = machine
        self.mover_interval = mover_interval
        self.replication = replication
        self.groups: dict[str, ReplicatedGroup] = {}
        self.client_id = client_id or f"sharding-admin-{new_client_id()}"
        self._admin = manager.client(client_id=self.client_id)
        self._status_clients: dict[str, Any] = {}

    @classmethod
    def start(
        cls,
        runtime: Cluster,
        machine: Any,
        shards: int = 64,
        manager_nodes: Sequence[str] | None = None,
        name: str = "shards",
        mover_interval: float = 0.1,
        client_id: str | None = None,
        history: int = 1000,
        replication: str = "paxos",
    ) -> ShardedCluster:
        """Start the shard manager (replicated on ``manager_nodes``, default every node).

        Args:
            machine: the groups' :class:`~actorfw.protocols.sharding.ShardedMachine`
                subclass (or its ``"module:QualName"``), e.g. the sharded KV store's
                :class:`~actorfw.kv.sharded.ShardedKV`.
            shards: the number of shards, fixed from now on.
            manager_nodes: the shard manager's nodes (default: every node).
            name: the shard manager's group name.
            mover_interval: seconds between the passes of each group's movers.
            client_id: the id under which this object changes and reads the
                configuration (default: a fresh one; give one to replay a
                simulation). Two objects must not share one.
            history: configurations the shard manager keeps (see
                :class:`~actorfw.protocols.sharding.ShardManagerMachine`).
            replication: how the groups are replicated, ``"paxos"`` or
                ``"primary-backup"`` (``sync`` mode; the shard manager is a
                Multi-Paxos group either way).
        """
        manager = replicate(
            runtime,
            (ShardManagerMachine, {"shards": shards, "history": history}),
            manager_nodes,
            name=name,
        )
        return cls(runtime, manager, shards, machine, mover_interval, client_id, replication)

    def add_group(
        self, group: str, nodes: Sequence[str], weight: int | None = None
    ) -> Configuration:
        """Start group ``group`` on ``nodes`` and join it; the new configuration."""
        self.start_group(group, nodes)
        return self.join({group: list(nodes)}, None if weight is None else {group: weight})

    def start_group(self, group: str, nodes: Sequence[str]) -> ReplicatedGroup:
        """Start group ``group`` on ``nodes`` (its replicas and movers) without joining it.

        It serves nothing until a configuration gives it shards: join it
        later (``["join", {group: nodes}]`` to the shard manager).
        """
        if group in self.groups:
            raise ShardingRefused(f"group {group!r} runs already")
        machine = (self.machine, {"group": group, "shards": self.shards})
        self.groups[group] = replicate(
            self.runtime, machine, nodes, name=group, replication=self.replication
        )
        for node in nodes:
            self.runtime.spawn(
                node,
                ShardMover,
                group,
                list(nodes),
                self.manager.name,
                self.manager.nodes,
                self.mover_interval,
                name=mover_name(group),
            )
        return self.groups[group]

    def join(
        self, groups: dict[str, Sequence[str]], weights: dict[str, int] | None = None
    ) -> Configuration:
        """Join started groups (``{group: nodes}``; see :meth:`start_group`), with weights."""
        op: list[Any] = ["join", {g: list(nodes) for g, nodes in groups.items()}]
        return self._change(op if weights is None else [*op, weights])

    def leave(self, groups: Sequence[str]) -> Configuration:
        """Take ``groups`` out; their shards move to the others (their nodes keep running)."""
        return self._change(["leave", list(groups)])

    def move(self, shard: int, group: str) -> Configuration:
        """Move one shard to ``group``."""
        return self._change(["move", shard, group])

    def configuration(self, num: int = -1) -> Configuration:
        """Configuration ``num`` (default: the latest)."""
        return self._change(["query", num])

    def _change(self, op: list[Any]) -> Configuration:
        answer = self._admin.call(op)
        if isinstance(answer, list) and answer[:1] == ["error"]:
            raise ShardingRefused(answer[1])
        return Configuration.from_value(answer)

    def settled(self) -> bool:
        """Has every group taken the latest configuration, with nothing left to move?"""
        latest = self.configuration()
        for name in self.groups:
            status = self.status(name)
            if status["num"] != latest.num or status["pulling"] or status["confirming"]:
                return False
            # What a group keeps for others must be only what no group owns yet.
            if any(latest.shards[shard] is not None for _, shard in status["outgoing"]):
                return False
        return True

    def status(self, group: str) -> dict[str, Any]:
        """Group ``group``'s status: its configuration number, shards held, pulling, ..."""
        client = self._status_clients.get(group)
        if client is None:
            # One client per group, kept: a new client under the same id would number
            # its commands from 1 again and be answered from the old session.
            client = self._status_clients[group] = self.groups[group].client(
                client_id=f"{self.client_id}/{group}"
            )
        answer = client.read(["status"])
        if not (isinstance(answer, list) and answer[:1] == ["status"]):
            raise ShardingRefused(f"group {group} answered status with {answer!r}")
        status: dict[str, Any] = answer[1]
        return status

    def client(
        self,
        client_id: str | None = None,
        timeout: float = 1.0,
        deadline: float = 10.0,
        on: str | None = None,
    ) -> ShardedClient:
        """A blocking client that routes by key (a :class:`ShardedClient`)."""
        return ShardedClient(
            self.runtime,
            self.manager.name,
            self.manager.nodes,
            client_id,
            timeout,
            deadline,
            on,
            self._key_of(),
        )

    def async_client(
        self, client_id: str | None = None, timeout: float = 1.0, deadline: float = 10.0
    ) -> AsyncShardedClient:
        """A client for ``async`` code (a :class:`AsyncShardedClient`)."""
        return AsyncShardedClient(
            self.manager.name, self.manager.nodes, client_id, timeout, deadline, self._key_of()
        )

    def _key_of(self) -> Callable[[Any], Any] | None:
        """The groups' machine's ``key_of``, for clients (None: a path, the default)."""
        if not isinstance(self.machine, type):
            return None
        if not isinstance(inspect.getattr_static(self.machine, "key_of", None), staticmethod):
            raise TypeError(
                f"{self.machine.__qualname__}.key_of must be a @staticmethod: clients route "
                "operations by it too"
            )
        key_of: Callable[[Any], Any] = getattr(self.machine, "key_of")  # noqa: B009
        return key_of
