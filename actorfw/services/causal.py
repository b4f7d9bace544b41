"""Causal broadcast groups: the member core of :mod:`actorfw.protocols.causal`, on the driver.

Each member of a group ``chat`` is an actor named ``chat-causal`` on its
node; the group's members are its nodes (a static configuration: change it
by restarting the group with another list). An application broadcasts by
asking its node's member a :class:`Broadcast`; every member delivers every
broadcast once, in causal order, however the network drops, duplicates or
reorders messages and whichever members crash and restart (the rules are
the core's, :mod:`actorfw.protocols.causal.delivery`).

What the application sees:

- The answer to a :class:`Broadcast` is a :class:`Broadcasted` (the
  message's sequence number and clock), once the message is durable here:
  from then on it reaches every member, even if this one crashes.
- Each delivery, in causal order, is told to the member's ``subscriber``
  (an actor, if one was given) as a
  :class:`~actorfw.protocols.causal.Delivery`, once it is durable; and the
  last ``keep`` deliveries can be read with a :class:`Deliveries` ask (for
  clients that are not actors, and for tests), by their *index*: their
  place in what this member reported since it (re)started.
- Within a member's run, every message is reported once. A restarted member
  first reports again every message it still keeps (those some member may
  not have yet), since a crash can leave a delivery durable that was
  never reported: across restarts, delivery is at least once, and
  ``(sender, seq)`` names a message, so an application that keeps what it
  saw drops the repeats.
- :class:`MemberStatus` answers where the member stands.

Bad input from the network (a message from a non-member, a clock that
does not name its sender, a message far beyond what its sender's earlier
ones allow) is refused by the core, counted, and logged; the member lives
on.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from actorfw.core.cluster import Cluster
from actorfw.protocols.causal import CausalMember, CausalOptions, Delivery
from actorfw.protocols.causal.records import CODEC
from actorfw.services.driver import CoreActor
from actorfw.values.codec import check, message
from actorfw.values.errors import MessageRefused
from actorfw.values.refs import ActorRef, ReplyTo

__all__ = [
    "Broadcast",
    "Broadcasted",
    "CausalGroup",
    "CausalMemberActor",
    "Deliveries",
    "DeliveryPage",
    "MemberState",
    "MemberStatus",
    "causal_group",
    "member_name",
]

log = logging.getLogger(__name__)


def member_name(group: str) -> str:
    """The actor name of ``group``'s member on every node."""
    return f"{group}-causal"


@message(name="causal.Broadcast")
class Broadcast:
    """Asked of a member: broadcast ``payload`` to the group (a tell broadcasts too, unanswered)."""

    payload: Any


@message(name="causal.Broadcasted")
class Broadcasted:
    """The answer to a :class:`Broadcast`: the message is durable; its number and stamp."""

    seq: int
    clock: Any


@message(name="causal.Deliveries")
class Deliveries:
    """Asked of a member: its deliveries from index ``since`` on (at most ``limit``)."""

    since: int = 0
    limit: int = 1000


@message(name="causal.DeliveryPage")
class DeliveryPage:
    """Deliveries in causal order, the first at index ``first``; ``next`` is where to go on.

    ``first`` above the ``since`` asked means the deliveries in between are
    no longer kept here (the member keeps its last ``keep``).
    """

    first: int
    deliveries: tuple[Delivery, ...]
    next: int


@message(name="causal.MemberStatus")
class MemberStatus:
    """Asked of a member: where it stands; answered with :class:`MemberState`."""


@message(name="causal.MemberState")
class MemberState:
    """A member's progress and counters.

    Attributes:
        member: its node.
        delivered: its delivered clock (per member, how many of its broadcasts).
        reported: of those, the ones durable here, so reported to the application.
        held_back: messages waiting for what happened before them.
        logged: messages kept for peers that may lack them.
        duplicates: messages that arrived again and were dropped.
        dropped: held-back messages given up for room (they come back by anti-entropy).
        refused: bad messages refused.
    """

    member: str
    delivered: Any
    reported: Any
    held_back: int
    logged: int
    duplicates: int
    dropped: int
    refused: int


class CausalMemberActor(CoreActor):
    """The member of causal broadcast group ``group`` on this node.

    Args:
        group: the group's name (its members share it).
        members: the group's nodes, this one among them.
        subscriber: told every delivery, in causal order (None: nobody).
        options: the core's tuning.
        keep: deliveries kept for :class:`Deliveries` asks (the oldest go first).
        observer: called after every step (checks in tests).

    Raises:
        ValueError: this node is not a member, or ``keep`` is not positive.
    """

    codec = CODEC
    label = "causal"

    def __init__(
        self,
        group: str,
        members: Sequence[str],
        subscriber: ActorRef | None = None,
        options: CausalOptions | None = None,
        keep: int = 10_000,
        observer: Any = None,
    ) -> None:
        super().__init__(observer)
        if type(keep) is not int or keep < 1:
            raise ValueError(f"keep must be a positive int, not {keep!r}")
        self.group = group
        self.members = tuple(members)
        self.subscriber = subscriber
        self.options = options
        self._refs = {m: ActorRef(m, member_name(group)) for m in self.members}
        self._waiting: dict[int, ReplyTo] = {}  # own broadcasts not yet durable
        self._recent: deque[Delivery] = deque(maxlen=keep)
        self._next_index = 0
        self._refused = 0
        self._posts: list[tuple[Any, ReplyTo | None]] = []  # broadcasts of the burst in hand

    def restore(self, records: list[Any]) -> CausalMember:
        """The member as its records left it (it then reports again what it keeps)."""
        return CausalMember.restore(self.me, self.members, records, self.options)

    def resolve(self, address: str, msg: Any) -> ActorRef:
        """The member at ``address``."""
        return self._refs[address]

    def admit(self, msg: Any, reply: ReplyTo | None, sender: ActorRef | None) -> Any:
        """Peers' messages go to the core with the node they came from; asks are answered."""
        kind = type(msg)
        if kind is Broadcast:
            self._broadcast(msg.payload, reply)
            return None
        if reply is None:  # a peer's message: the core takes it, or refuses it by name
            if sender is None:
                self.refused([f"a {kind.__name__} from a client, not from a member"])
                return None
            return (sender.node, msg)
        if kind is Deliveries:
            reply.send(self._page(msg))
        elif kind is MemberStatus:
            reply.send(self._state())
        else:
            super().admit(msg, reply, sender)
        return None

    def receive(self, msg: Any) -> None:
        """One step for the broadcasts of the burst, then one for the peers' messages."""
        self._posts = []
        messages = self._burst(self.admit(msg, self._reply_handle(), self.context.sender))
        posts, self._posts = self._posts, []
        if posts:
            effects = self.core.broadcast_all([payload for payload, _ in posts])
            for (_, reply), delivery in zip(posts, effects.outputs, strict=True):
                if reply is not None:
                    self._waiting[delivery.seq] = reply
            self.step(effects)
        if messages:
            self.step(self.core.handle_all(messages, self.context.now()))

    def _broadcast(self, payload: Any, reply: ReplyTo | None) -> None:
        try:
            check(payload)  # a payload that cannot be stored cannot be broadcast
        except MessageRefused as error:
            if reply is not None:
                reply.fail(error)
            else:
                log.warning("%s: a broadcast refused: %s", member_name(self.group), error)
            return
        self._posts.append((payload, reply))

    def output(self, outputs: list[Any]) -> None:
        """Deliveries, durable now: answer own broadcasts, keep them, tell the subscriber."""
        me = self.me
        for delivery in outputs:
            self._recent.append(delivery)
            self._next_index += 1
            if delivery.sender == me:
                reply = self._waiting.pop(delivery.seq, None)
                if reply is not None:
                    reply.send(Broadcasted(delivery.seq, delivery.clock))
            if self.subscriber is not None:
                # Its values were checked (a broadcast) or decoded (a peer's, a record).
                self.context.tell_checked(self.subscriber, delivery)

    def refused(self, refusals: list[Any]) -> None:
        """Count bad input; log the first, then every thousandth."""
        for refusal in refusals:
            self._refused += 1
            if self._refused == 1 or self._refused % 1000 == 0:
                log.warning(
                    "%s on %s refused a message (%d so far): %s",
                    member_name(self.group),
                    self.me,
                    self._refused,
                    refusal,
                )

    def _page(self, ask: Deliveries) -> DeliveryPage:
        if type(ask.since) is not int or type(ask.limit) is not int or ask.limit < 1:
            raise ValueError(
                f"Deliveries takes an int since and a positive int limit, "
                f"not since={ask.since!r}, limit={ask.limit!r}"
            )
        first = self._next_index - len(self._recent)
        start = max(ask.since, first)
        skip = start - first
        kept = list(self._recent)[skip : skip + ask.limit] if skip < len(self._recent) else []
        return DeliveryPage(start, tuple(kept), start + len(kept))

    def _state(self) -> MemberState:
        core = self.core
        return MemberState(
            self.me,
            core.delivered.copy(),
            core.reported.copy(),
            len(core.holdback),
            sum(len(entries) for entries in core.log.values()),
            core.duplicates,
            core.dropped,
            self._refused,
        )


class CausalGroup:
    """A causal broadcast group started by :func:`causal_group`; its members by node."""

    def __init__(self, cluster: Cluster, name: str, members: Sequence[str]) -> None:
        self.cluster = cluster
        self.name = name
        self.members = tuple(members)

    def member(self, node: str) -> ActorRef:
        """The member on ``node``."""
        if node not in self.members:
            raise ValueError(f"{node!r} is not a member of {self.name} ({list(self.members)})")
        return ActorRef(node, member_name(self.name))

    def broadcast(self, node: str, payload: Any, timeout: float = 10.0) -> Broadcasted:
        """Broadcast ``payload`` from ``node``'s member; returns once it is durable there."""
        answer: Broadcasted = self.cluster.ask(self.member(node), Broadcast(payload), timeout)
        return answer

    def deliveries(self, node: str, since: int = 0) -> list[Delivery]:
        """Every delivery ``node``'s member still keeps, from index ``since`` on."""
        found: list[Delivery] = []
        while True:
            page: DeliveryPage = self.cluster.ask(self.member(node), Deliveries(since))
            found.extend(page.deliveries)
            if not page.deliveries:
                return found
            since = page.next

    def status(self, node: str) -> MemberState:
        """Where ``node``'s member stands."""
        state: MemberState = self.cluster.ask(self.member(node), MemberStatus())
        return state


def causal_group(
    cluster: Cluster,
    name: str,
    members: Iterable[str] | None = None,
    *,
    options: CausalOptions | None = None,
    keep: int = 10_000,
    subscribers: dict[str, ActorRef] | None = None,
) -> CausalGroup:
    """Start causal broadcast group ``name`` with a member on each of ``members``.

    ``cluster`` is any :class:`~actorfw.core.cluster.Cluster` (on node
    processes, the nodes import ``actorfw.services.causal``); ``members``
    defaults to all its nodes.
    ``subscribers`` names, per node, the actor told that member's deliveries.
    """
    nodes = list(cluster.nodes if members is None else members)
    subscribers = subscribers or {}
    for node in nodes:
        cluster.spawn(
            node,
            CausalMemberActor,
            name,
            nodes,
            subscribers.get(node),
            options,
            keep,
            name=member_name(name),
        )
    return CausalGroup(cluster, name, nodes)
