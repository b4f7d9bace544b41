"""The Multi-Paxos roles as actors: the cores of this package, driven by the actor runtime.

Each node of a Paxos group runs three actors, named ``<group>-acceptor``,
``<group>-leader`` and ``<group>-replica``; they find each other by those
names on the nodes of the configuration. They run unchanged in the
simulator and on node processes.

Theory of operation
-------------------

Each role is a :class:`~actorfw.services.driver.CoreActor`: the driver
writes every step's records in one batch, group-commits syncs, sends the
step's ``send`` in step order once durable, keeps one timer for the core's
next deadline, and rebuilds the core from storage on every start (see
:mod:`actorfw.protocols.effects` for the rules, stated once for every
service). What is particular to Paxos:

1. Addresses: a message for an address goes to the role of that node that
   :data:`~actorfw.protocols.paxos.messages.HANDLED_BY` names.
2. What leaves at once: a replica's :class:`~actorfw.protocols.paxos.Propose`
   (it carries the progress already durable, replica rule 13) and a
   leader's :class:`LeaderIs` to the replica of its node.
3. Answers: client requests are asks to a replica; the replica answers a
   request as soon as the core produces its response, without waiting for
   its own write of the applied batch: the command was chosen, so it is
   durable on a majority of acceptors already, and a replica that crashes
   before its write relearns the decision and applies it again, to the
   same result (what it *reports* to leaders and peers, which lets
   acceptors forget, still waits for its storage). So an answered write is
   durable on a quorum and applied.
4. A restarted acceptor that ever granted leases counts its lease wait
   from its start (see :mod:`actorfw.protocols.paxos.acceptor`, rule 7).
5. Reads: a :class:`~actorfw.protocols.paxos.Read` asked of a replica on another node
   than the leader's is passed on once to the leader's replica
   (:class:`ForwardRead`), like a :class:`Submit`. There the core serves it
   by lease or sends it through the log (see
   :mod:`actorfw.protocols.paxos.replica`, rule 11); either way the asker gets an
   :class:`Answered`.
6. Answers go back the way the request came: a replica that passed a
   command on keeps its asker, and the leader's replica answers that
   replica (:class:`Relayed`), never the client itself, so a client that
   reaches any live member gets its answer, whatever it can reach of the
   rest. A replica holds at most :data:`RELAY_LIMIT` passed-on commands,
   each for :data:`RELAY_TIMEOUT` seconds; past either, the oldest is
   forgotten and its asker's ask times out (the client retries, exactly
   once).

Sizes: a snapshot travels in one message
(:class:`~actorfw.protocols.paxos.InstallSnapshot`). On node processes a message over
``NodeConfig.max_message_size`` (64 MiB by default) is refused by the
receiver, so a state machine whose snapshot encodes larger needs a larger
limit on every node of the group.
"""

from __future__ import annotations

import functools
import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from actorfw.protocols.paxos.acceptor import Acceptor
from actorfw.protocols.paxos.leader import Leader
from actorfw.protocols.paxos.messages import (
    HANDLED_BY,
    Command,
    LeaderIs,
    Read,
    Request,
    Role,
)
from actorfw.protocols.paxos.records import CODEC
from actorfw.protocols.paxos.replica import Replica
from actorfw.protocols.paxos.types import (
    Config,
    Effects,
    LeaderOptions,
    ReplicaOptions,
    StateMachine,
)
from actorfw.services.driver import CoreActor
from actorfw.values.codec import message
from actorfw.values.refs import ActorRef, ReplyTo

__all__ = [
    "RELAY_LIMIT",
    "RELAY_TIMEOUT",
    "AcceptorActor",
    "Answered",
    "Forward",
    "ForwardRead",
    "LeaderActor",
    "LeaderIs",
    "Observer",
    "Relayed",
    "ReplicaActor",
    "ReplicaState",
    "ReplicaStatus",
    "Submit",
    "role_name",
]

Observer = Callable[[Role, str, Any, Effects], None]
"""Called after every core step with (role, node, core, effects): a hook for invariant checks.

An observer may also have ``restarted(role, node, core)`` (called when a
role rebuilt its core from storage) and ``delivered(role, node, sends)``
(called with the ``(address, message)`` pairs of a step when they are sent,
their records being durable).
"""

_ROLE_SUFFIX = {Role.ACCEPTOR: "acceptor", Role.LEADER: "leader", Role.REPLICA: "replica"}

RELAY_LIMIT = 65_536
"""Commands a replica holds after passing them on, waiting for :class:`Relayed` (rule 6)."""

RELAY_TIMEOUT = 60.0
"""Seconds a passed-on command waits for :class:`Relayed` before it is forgotten."""


def role_name(group: str, role: Role) -> str:
    """The actor name of a Paxos role of ``group`` on every node."""
    return f"{group}-{_ROLE_SUFFIX[role]}"


@message(name="paxos.Submit")
class Submit:
    """A client's command, asked of any replica; answered with :class:`Answered`.

    A replica on another node than the leader's passes it on to the
    leader's replica (once), which proposes it: replicas then do not race
    each other for slots.
    """

    command: Command


@message(name="paxos.Forward")
class Forward:
    """A :class:`Submit` passed on to the leader's replica by the replica that took it.

    The leader's replica answers the sender with :class:`Relayed` (rule 6).
    """

    command: Command


@message(name="paxos.ForwardRead")
class ForwardRead:
    """A :class:`~actorfw.protocols.paxos.Read` passed on to the leader's replica, as a Forward."""

    command: Command


@message(name="paxos.Relayed")
class Relayed:
    """The answer to a :class:`Forward` or :class:`ForwardRead`, for the replica that sent it.

    That replica answers its asker with :class:`Answered` (rule 6).
    """

    client: str
    seq: int
    result: Any
    leader: str


@message(name="paxos.Answered")
class Answered:
    """The result of a submitted command, and the node that leads (a hint for the client)."""

    result: Any
    leader: str


@message(name="paxos.ReplicaStatus")
class ReplicaStatus:
    """Asked of a replica: where it is; answered at once with :class:`ReplicaState`."""


@message(name="paxos.ReplicaState")
class ReplicaState:
    """A replica's progress, as it stands in memory (its storage may lag by one sync).

    Attributes:
        node: the replica's node.
        slot_out: every slot below it is applied.
        log_base: the first slot its log still holds (below: in the snapshot).
        snapshot_slot: the slot its latest snapshot was taken at.
        leader: the node it believes leads ("" if unknown).
    """

    node: str
    slot_out: int
    log_base: int
    snapshot_slot: int
    leader: str


_BARE, _ANSWERED, _RELAY = 0, 1, 2
"""How a waiter of a replica is answered: the bare result, :class:`Answered`, :class:`Relayed`."""

_ROUTES: dict[type, tuple[type | None, type]] = {
    Submit: (Forward, Request),
    Forward: (None, Request),
    Read: (ForwardRead, Read),
    ForwardRead: (None, Read),
}
"""What a replica does with a client's command, by message type: the message to pass
it on to the leader's replica in (None: it was passed on already), and the message
its core takes."""


def _config(nodes: Any) -> Config:
    if isinstance(nodes, Config):
        return nodes
    return Config.colocated(tuple(nodes))


class _PaxosActor(CoreActor):
    """A Paxos role on the driver: its records, and where its messages go."""

    codec = CODEC

    def __init__(self, group: str, nodes: Any, observer: Observer | None = None) -> None:
        super().__init__(observer)
        self.group = group
        self.config = _config(nodes)
        self._refs: dict[tuple[str, Role], ActorRef] = {}

    def takes(self, msg: Any) -> bool:
        """Is ``msg`` one of this role's messages (:data:`HANDLED_BY`)?"""
        return HANDLED_BY.get(type(msg)) is self.label

    def resolve(self, address: str, msg: Any) -> ActorRef:
        """The role at ``address`` that takes ``msg`` (:data:`HANDLED_BY`)."""
        role = HANDLED_BY[type(msg)]
        ref = self._refs.get((address, role))
        if ref is None:
            ref = self._refs[(address, role)] = ActorRef(address, role_name(self.group, role))
        return ref


class AcceptorActor(_PaxosActor):
    """The acceptor of ``group`` on this node (see :class:`~actorfw.protocols.paxos.Acceptor`).

    Args:
        group: the Paxos group's name (actors of the group share it).
        nodes: the group's nodes (each runs all three roles) or a :class:`Config`.
        observer: called after every step (invariant checks in tests).
    """

    label = Role.ACCEPTOR

    def restore(self, records: list[Any]) -> Acceptor:
        """The acceptor as its records left it (see rule 4 for its leases)."""
        return Acceptor.restore(self.config, self.me, records, now=self.context.now())


class LeaderActor(_PaxosActor):
    """The leader of ``group`` on this node (see :class:`~actorfw.protocols.paxos.Leader`).

    Args:
        group, nodes, observer: as for :class:`AcceptorActor`.
        options: the leader's tuning.
    """

    label = Role.LEADER

    def __init__(
        self,
        group: str,
        nodes: Any,
        observer: Observer | None = None,
        options: LeaderOptions | None = None,
    ) -> None:
        super().__init__(group, nodes, observer)
        self.options = options or LeaderOptions()

    def restore(self, records: list[Any]) -> Leader:
        """The leader as its records left it; it starts by following or scouting."""
        return Leader.restore(self.config, self.me, records, self.context.random, self.options)

    def leader_node(self) -> str:
        """The node whose leader leads, as far as this one knows ("" if it does not)."""
        return str(self.core.leader_node())


def resolve_machine(machine: Any) -> Callable[[], StateMachine]:
    """A factory of fresh state machines from a class, a factory, or ``"module:QualName"``.

    A path names a class of a module already imported in this process (a
    node's apps): nothing is imported on behalf of a message. Any of these
    in a pair with a dict, ``(machine, {name: value})``, makes machines
    with those keyword arguments (a sharded group's name, say).

    Raises:
        LookupError: the module is not loaded here, or has no such name.
        TypeError: what was given makes no state machines.
    """
    if isinstance(machine, list | tuple):
        if len(machine) != 2 or not isinstance(machine[1], dict):
            raise TypeError(
                f"a state machine with arguments is (machine, {{name: value}}), not {machine!r}"
            )
        return functools.partial(resolve_machine(machine[0]), **machine[1])
    if isinstance(machine, str):
        module_name, _, name = machine.partition(":")
        module = sys.modules.get(module_name)
        if module is None or not name:
            raise LookupError(
                f"state machine {machine} is not loaded on this node: import its module there "
                "(e.g. with the node's --app option)"
            )
        target: Any = module
        try:
            for part in name.split("."):
                target = getattr(target, part)
        except AttributeError:
            raise LookupError(f"module {module_name} has no {name}") from None
        machine = target
    if not callable(machine):
        raise TypeError(f"a state machine is given by its class or factory, not {machine!r}")
    factory: Callable[[], StateMachine] = machine
    return factory


class ReplicaActor(_PaxosActor):
    """The replica of ``group`` on this node (see :class:`~actorfw.protocols.paxos.Replica`).

    Clients ask it a :class:`Submit` (answered with :class:`Answered`, which
    names the leader) or a :class:`~actorfw.protocols.paxos.Request` (answered with the
    bare result), once the command is decided and applied (rule 3). A
    replica that knows another node leads passes a ``Submit`` on to that
    node's replica, so that replicas do not race each other for slots. A
    :class:`ReplicaStatus` ask is answered at once with its progress.
    A :class:`~actorfw.protocols.paxos.Read` (a read-only command) is answered with
    :class:`Answered` too, and passed on the same way (rule 5).

    Args:
        group, nodes, observer: as for :class:`AcceptorActor`.
        machine: the state machine: a class (or factory) making a fresh one,
            or its ``"module:QualName"``; it must be deterministic.
        options: the replica's tuning.
    """

    label = Role.REPLICA

    def __init__(
        self,
        group: str,
        nodes: Any,
        machine: Any,
        observer: Observer | None = None,
        options: ReplicaOptions | None = None,
    ) -> None:
        super().__init__(group, nodes, observer)
        self.machine = resolve_machine(machine)
        self.options = options or ReplicaOptions()
        # (client, seq) -> who waits, and how to answer: the bare result, Answered, or
        # Relayed to the replica that passed the command on (rule 6)
        self._waiting: dict[tuple[str, int], list[tuple[ReplyTo | ActorRef, int]]] = {}
        # (client, seq) -> (until when, the askers) of commands passed on to the leader's
        # replica; in the order they were passed on, so that the oldest goes first
        self._relays: OrderedDict[tuple[str, int], tuple[float, list[ReplyTo]]] = OrderedDict()
        self.leader = ""

    def restore(self, records: list[Any]) -> Replica:
        """The replica as its records left it: its snapshot, then its log replayed."""
        return Replica.restore(self.config, self.me, self.machine(), records, self.options)

    def admit(self, msg: Any, reply: ReplyTo | None, sender: ActorRef | None) -> Any:
        """Register who waits for ``msg``; returns what the core should see (None: nothing)."""
        kind = type(msg)
        if kind is LeaderIs:
            self.leader = msg.node
            return msg  # the core sends its proposals there
        if kind is ReplicaStatus:
            if reply is not None:
                core = self.core
                reply.send(
                    ReplicaState(
                        self.me, core.slot_out, core.log_base, core.snapshot_slot, self.leader
                    )
                )
            return None
        route = _ROUTES.get(kind)
        if route is not None:
            passed_on, to_core = route
            command = msg.command
            if type(command) is not Command:
                return to_core(command)  # the core counts it malformed
            key = (command.client, command.seq)
            if passed_on is None:  # passed on by another replica: answer it (rule 6)
                if sender is None or not self._is_peer(sender):
                    self.refused([f"a {kind.__name__} from {sender}, not a replica of the group"])
                    return None
                self._waiting.setdefault(key, []).append((sender, _RELAY))
                return to_core(command)
            if reply is not None and self.leader and self.leader != self.me:
                # Not the leader's node: pass it on once. Replicas then do not race for
                # slots, and a read can be served by the leader's lease (rule 5).
                self._hold(key, reply)
                target = ActorRef(self.leader, role_name(self.group, Role.REPLICA))
                self.context.tell(target, passed_on(command))
                return None
            if reply is not None:
                self._waiting.setdefault(key, []).append((reply, _ANSWERED))
            return to_core(command)
        if kind is Relayed:
            self._relayed(msg, sender)
            return None
        if reply is None:
            return msg
        if kind is Request:
            command = msg.command
            self._waiting.setdefault((command.client, command.seq), []).append((reply, _BARE))
            return msg
        return super().admit(msg, reply, sender)

    def _is_peer(self, sender: ActorRef) -> bool:
        """Is ``sender`` the replica of this group on another of its nodes?"""
        return (
            sender.node != self.me
            and self.config.is_replica(sender.node)
            and sender.name == role_name(self.group, Role.REPLICA)
        )

    def _hold(self, key: tuple[str, int], reply: ReplyTo) -> None:
        """Keep the asker of a command passed on, until :class:`Relayed` comes (rule 6)."""
        relays = self._relays
        now = self.context.now()
        while relays and (next(iter(relays.values()))[0] <= now or len(relays) >= RELAY_LIMIT):
            relays.popitem(last=False)  # its asker times out, and the client retries
        held = relays.get(key)
        if held is None:
            relays[key] = (now + RELAY_TIMEOUT, [reply])
        else:
            held[1].append(reply)

    def _relayed(self, msg: Relayed, sender: ActorRef | None) -> None:
        if not (
            sender is not None
            and self._is_peer(sender)
            and type(msg.client) is str
            and type(msg.seq) is int
        ):
            self.refused([f"a Relayed from {sender}, not a replica of the group, or malformed"])
            return
        held = self._relays.pop((msg.client, msg.seq), None)
        if held is not None:
            answer = Answered(msg.result, msg.leader if type(msg.leader) is str else "")
            for reply in held[1]:
                reply.send(answer)

    def answer(self, responses: list[Any]) -> None:
        """Answer whoever waits for each response (rules 3, 6)."""
        for response in responses:
            for target, how in self._waiting.pop((response.client, response.seq), ()):
                if isinstance(target, ActorRef):  # _RELAY
                    relayed = Relayed(response.client, response.seq, response.result, self.leader)
                    self.context.tell(target, relayed)
                elif how == _ANSWERED:
                    target.send(Answered(response.result, self.leader))
                else:
                    target.send(response.result)
