"""Starting a state machine replicated on N nodes: :func:`replicate`.

::

    from actorfw import Simulation
    from actorfw.services.replication import replicate

    class Counter:                        # deterministic: same commands, same results
        def __init__(self): self.n = 0
        def apply(self, op): self.n += op; return self.n
        def snapshot(self): return self.n
        def restore(self, snapshot): self.n = snapshot

    with Simulation(nodes=3) as sim:
        group = replicate(sim, Counter, name="counter")
        client = group.client()
        assert client.call(5) == 5

Each node runs the group's three Multi-Paxos roles (acceptor, leader,
replica; see :mod:`actorfw.services.paxos`); with ``2f+1`` nodes the group
survives ``f`` failed nodes. With ``replication="primary-backup"`` each
node runs a primary-backup member and its view keeper instead, and the
group's view lives in a small Multi-Paxos group of its own (see
:mod:`actorfw.services.primary_backup`); the clients are the same. On node
processes the state machine class is named by its import path and must be
imported on every node (its module among the nodes' apps).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actorfw.core.cluster import Cluster
from actorfw.protocols.paxos.messages import Role
from actorfw.protocols.paxos.types import LeaderOptions, ReplicaOptions, Snapshotting
from actorfw.protocols.primary_backup.notes import MemberOptions
from actorfw.protocols.primary_backup.view import ViewMachine
from actorfw.services.paxos import (
    AcceptorActor,
    LeaderActor,
    ReplicaActor,
    resolve_machine,
    role_name,
)
from actorfw.services.primary_backup import (
    VIEW_MACHINE,
    MemberActor,
    ViewKeeper,
    keeper_name,
    member_name,
    switchover,
    views_name,
)
from actorfw.services.replication.client import AsyncGroupClient, GroupClient
from actorfw.values.refs import ActorRef

__all__ = ["REPLICATION", "ReplicatedGroup", "group_roles", "primary_backup_roles", "replicate"]


def _machine_path(machine: Any) -> Any:
    if isinstance(machine, list | tuple) and len(machine) == 2 and isinstance(machine[1], dict):
        return [_machine_path(machine[0]), dict(machine[1])]  # with keyword arguments
    if isinstance(machine, str):
        return machine
    if isinstance(machine, type):
        if "<locals>" in machine.__qualname__:
            raise TypeError(
                f"{machine.__qualname__} is defined inside a function: define state machines at "
                "module level so that every node can find them by path"
            )
        return f"{machine.__module__}:{machine.__qualname__}"
    raise TypeError(f"a state machine is given by its class or 'module:QualName', not {machine!r}")


class ReplicatedGroup:
    """A running replicated state machine: its name and nodes, and clients for it."""

    def __init__(
        self, runtime: Cluster, name: str, nodes: Sequence[str], replication: str = "paxos"
    ) -> None:
        self.runtime = runtime
        self.name = name
        self.nodes = list(nodes)
        self.replication = replication

    def switchover(self, to: str, timeout: float = 10.0) -> dict[str, Any]:
        """Hand a primary-backup group's primary role to its in-sync backup ``to``.

        Returns the new view (``epoch``, ``primary``, ``in_sync``, ``grants``).
        No acknowledged write is lost; commands wait (or are redirected)
        while the role moves.

        Raises:
            TypeError: the group is replicated by Multi-Paxos.
            SwitchoverRefused: as :func:`~actorfw.services.primary_backup.switchover`.
        """
        if self.replication != "primary-backup":
            raise TypeError(f"group {self.name} is replicated by {self.replication}: no primary")
        coroutine = switchover(self.name, self.nodes, to, timeout)
        result: dict[str, Any] = self.runtime.run(coroutine, timeout=timeout + 5.0)
        return result

    def client(
        self,
        client_id: str | None = None,
        timeout: float = 1.0,
        deadline: float = 10.0,
        on: str | None = None,
    ) -> GroupClient:
        """A blocking exactly-once client (a :class:`~actorfw.services.replication.GroupClient`)."""
        return GroupClient(self.runtime, self.name, self.nodes, client_id, timeout, deadline, on)

    def async_client(
        self, client_id: str | None = None, timeout: float = 1.0, deadline: float = 10.0
    ) -> AsyncGroupClient:
        """An exactly-once client for ``async`` code: actors, or a runtime's ``run``."""
        return AsyncGroupClient(self.name, self.nodes, client_id, timeout, deadline)

    def refs(self, role: Role) -> list[ActorRef]:
        """The refs of one role of the group, a node each."""
        return [ActorRef(node, role_name(self.name, role)) for node in self.nodes]


REPLICATION = ("paxos", "primary-backup")
"""The replication schemes :func:`replicate` offers."""


def replicate(
    runtime: Cluster,
    machine: Any,
    nodes: Sequence[str] | None = None,
    name: str = "rsm",
    leader_options: LeaderOptions | None = None,
    replica_options: ReplicaOptions | None = None,
    replication: str = "paxos",
    member_options: MemberOptions | None = None,
    lease: float = 1.0,
    view_nodes: Sequence[str] | None = None,
    observer: Any = None,
) -> ReplicatedGroup:
    """Start ``machine`` replicated on ``nodes`` of ``runtime``; returns the group.

    Args:
        runtime: the cluster (a :class:`~actorfw.core.cluster.Cluster`: a
            :class:`~actorfw.Simulation`, an :class:`~actorfw.node.ActorSystem`
            or a connected client).
        machine: the state machine class (or ``"module:QualName"``): a
            deterministic class with ``apply(op) -> result``, ideally with
            ``snapshot()`` and ``restore(snapshot)`` (see ``docs/replication.md``);
            or ``(machine, {name: value})`` to make it with keyword arguments.
        nodes: where to run it (default: every node of the runtime).
        name: the group's name, unique in the cluster; it prefixes its actors.
        leader_options, replica_options: Multi-Paxos tuning (of the view
            service's group, for ``primary-backup``).
        replication: ``"paxos"`` (Multi-Paxos) or ``"primary-backup"``.
        member_options: a primary-backup member's tuning (its mode, lag
            bounds, drift bound; ``sync`` by default).
        lease: the primary's lease in seconds (``primary-backup``).
        view_nodes: where the view service runs (``primary-backup``;
            default: the group's nodes).
        observer: called after every step of a primary-backup member (a
            :class:`~actorfw.services.driver.StepObserver`: invariant checks
            in tests; simulator only).
    """
    members = list(nodes) if nodes is not None else list(runtime.nodes)
    if not members:
        raise ValueError("a replicated group needs at least one node")
    if replication not in REPLICATION:
        raise ValueError(f"replication is one of {', '.join(REPLICATION)}, not {replication!r}")
    path = _machine_path(machine)
    machine_arg: Any = machine if not isinstance(machine, str) and runtime.in_process else path
    if replication == "primary-backup":
        view_machine: Any = ViewMachine if runtime.in_process else VIEW_MACHINE
        for node, cls, args, actor in primary_backup_roles(
            name,
            members,
            machine_arg,
            member_options,
            lease,
            view_nodes,
            leader_options,
            replica_options,
            view_machine,
            observer,
        ):
            runtime.spawn(node, cls, *args, name=actor)
        return ReplicatedGroup(runtime, name, members, replication)
    # Role by role across the members: every acceptor exists before the first
    # leader scouts, so the first election needs no retry.
    roles = group_roles(name, members, machine_arg, leader_options, replica_options)
    for cls, args, actor in roles:
        for node in members:
            runtime.spawn(node, cls, *args, name=actor)
    return ReplicatedGroup(runtime, name, members)


def primary_backup_roles(
    group: str,
    members: list[str],
    machine: Any,
    options: MemberOptions | None = None,
    lease: float = 1.0,
    view_nodes: Sequence[str] | None = None,
    leader_options: LeaderOptions | None = None,
    replica_options: ReplicaOptions | None = None,
    view_machine: Any = VIEW_MACHINE,
    observer: Any = None,
) -> list[tuple[str, type[Any], tuple[Any, ...], str]]:
    """The actors of primary-backup ``group``: ``(node, class, arguments, name)`` in start order.

    What :func:`replicate` spawns with ``replication="primary-backup"``, and
    a node's ``[[replicated]]`` section starts (its own node's): the view
    service's Multi-Paxos roles on ``view_nodes`` (default: the members),
    role by role across them, then each member's member actor, then each
    one's view keeper.
    """
    member = options or MemberOptions()
    if not (isinstance(lease, int | float) and not isinstance(lease, bool) and lease > 0):
        raise ValueError(f"lease must be a positive number of seconds, not {lease!r}")
    if member.primary.drift >= lease:
        raise ValueError(
            f"the drift bound ({member.primary.drift:g} s) must be below the lease "
            f"({lease:g} s): the primary acknowledges only until the lease's end less it"
        )
    if member.primary.mode == "async" and not isinstance(resolve_machine(machine)(), Snapshotting):
        raise ValueError(
            "an 'async' group needs a state machine with snapshot() and restore(): a member "
            "that applied writes a failover lost starts again from the empty state"
        )
    views = list(view_nodes) if view_nodes is not None else list(members)
    roles: list[tuple[str, type[Any], tuple[Any, ...], str]] = []
    view_arg: Any = (view_machine, {"members": list(members)})
    if isinstance(view_machine, str):
        view_arg = [view_machine, {"members": list(members)}]  # a message value
    for cls, args, actor in group_roles(
        views_name(group), views, view_arg, leader_options, replica_options
    ):
        roles.extend((node, cls, args, actor) for node in views)
    roles.extend(
        (node, MemberActor, (group, list(members), machine, member, observer), member_name(group))
        for node in members
    )
    roles.extend(
        (
            node,
            ViewKeeper,
            (group, list(members), views, lease, member.primary.drift),
            keeper_name(group),
        )
        for node in members
    )
    return roles


def group_roles(
    group: str,
    members: list[str],
    machine: Any,
    leader_options: LeaderOptions | None = None,
    replica_options: ReplicaOptions | None = None,
) -> list[tuple[type[Any], tuple[Any, ...], str]]:
    """The (actor class, constructor arguments, actor name) of each role of ``group`` on a node.

    What :func:`replicate` spawns on every member, and a node's ``[[replicated]]``
    configuration section starts, in the order to start them: the replica
    before the leader, which tells its local replica who leads as it starts.
    """
    return [
        (AcceptorActor, (group, members), role_name(group, Role.ACCEPTOR)),
        (
            ReplicaActor,
            (group, members, machine, None, replica_options),
            role_name(group, Role.REPLICA),
        ),
        (LeaderActor, (group, members, None, leader_options), role_name(group, Role.LEADER)),
    ]
