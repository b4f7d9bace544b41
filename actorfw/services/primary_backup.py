"""Primary-backup groups as actors: a member on the driver, and a keeper for the view.

Every node of a primary-backup group runs two actors:

- ``<group>-replica``, a :class:`MemberActor`: the
  :class:`~actorfw.protocols.primary_backup.Member` core on the service
  driver (records written and synced before what depends on them leaves;
  rebuilt from its records on every start). Clients ask it a command as
  they ask a Paxos replica (:class:`~actorfw.services.paxos.Submit` or
  :class:`~actorfw.protocols.paxos.Read`, answered with
  :class:`~actorfw.services.paxos.Answered`), so the same clients serve
  both; a member that is not the primary answers
  :class:`~actorfw.services.replication.Redirect` to the primary it knows.
- ``<group>-keeper``, a :class:`ViewKeeper`: it talks to the configuration
  service, a :class:`~actorfw.protocols.primary_backup.ViewMachine`
  replicated by Multi-Paxos as ``<group>-views``. Every ``interval`` (and
  when its member asks) it reads the view, reports its log's end, tells
  its member the view; beside the acting primary it renews the lease and
  proposes the in-sync set the member wants; elsewhere it proposes an
  election once the view has stood still, with no renewal, for a lease and
  the drift bound on its own clock (the rule of the lease: see
  :mod:`actorfw.protocols.primary_backup.view`).

See ``docs/primary-backup.md``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from actorfw.core.actor import Actor, handler
from actorfw.protocols.paxos.messages import Command, Read, Request, Role
from actorfw.protocols.primary_backup.member import Member
from actorfw.protocols.primary_backup.messages import (
    Acked,
    Append,
    InstallSnapshot,
    Mismatch,
    Stale,
)
from actorfw.protocols.primary_backup.notes import (
    KEEPER,
    Busy,
    Handover,
    LeaseGranted,
    MemberOptions,
    Moved,
    Response,
    ViewIs,
    Wake,
)
from actorfw.protocols.primary_backup.records import CODEC
from actorfw.services.driver import CoreActor
from actorfw.services.paxos import (
    Answered,
    ReplicaState,
    ReplicaStatus,
    Submit,
    resolve_machine,
    role_name,
)
from actorfw.services.replication.client import AsyncGroupClient, Redirect
from actorfw.values.codec import message
from actorfw.values.errors import ActorfwError, Overloaded
from actorfw.values.refs import ActorRef, ReplyTo

__all__ = [
    "VIEW_MACHINE",
    "MemberActor",
    "MemberStatus",
    "Switchover",
    "SwitchoverRefused",
    "ViewKeeper",
    "keeper_name",
    "member_name",
    "switchover",
    "views_name",
]

VIEW_MACHINE = "actorfw.protocols.primary_backup.view:ViewMachine"
"""The configuration service's state machine, by path (as node processes name it)."""

WAITING_LIMIT = 65_536
"""Askers a member keeps waiting for answers at most; past it, the oldest is forgotten
(its ask times out, and the client retries, exactly once)."""


def member_name(group: str) -> str:
    """The member actor of ``group`` on each node (the name clients ask, as for Paxos)."""
    return role_name(group, Role.REPLICA)


def keeper_name(group: str) -> str:
    """The view keeper of ``group`` on each node."""
    return f"{group}-keeper"


def views_name(group: str) -> str:
    """The Multi-Paxos group that holds ``group``'s view."""
    return f"{group}-views"


@message(name="pb.MemberStatus")
class MemberStatus:
    """Asked of a member: its log's end, its role, what it wants of the view (a dict)."""


@message(name="pb.KeeperPass")
class KeeperPass:
    """Time for a keeper's next pass."""


@message(name="pb.Switchover")
class Switchover:
    """Asked of the keeper beside the primary: hand the primary's role to ``to``.

    Answered with the configuration service's answer: ``["view", view]``
    once ``to`` is the primary of a new epoch, ``["refused", why, view]``
    if it could not be (the primary goes on).
    """

    to: str


class SwitchoverRefused(ActorfwError):
    """A planned switchover did not happen: no primary, or the target is not in sync."""


_COPYING = {
    Append: "primary",
    InstallSnapshot: "primary",
    Acked: "backup",
    Mismatch: "backup",
    Stale: "backup",
}
"""The copying messages, and the field that names their sender (checked against it)."""


class MemberActor(CoreActor):
    """A primary-backup group's member on this node (see the module documentation).

    Args:
        group: the group's name.
        members: its nodes.
        machine: the state machine, as for :func:`~actorfw.services.replication.replicate`.
        options: the member's tuning (the mode is the group's).
        observer: called after every step (checks in tests).
    """

    codec = CODEC
    label = "pb-member"

    def __init__(
        self,
        group: str,
        members: Sequence[str],
        machine: Any,
        options: MemberOptions | None = None,
        observer: Any = None,
    ) -> None:
        super().__init__(observer)
        self.group = group
        self.members = list(members)
        self.machine = resolve_machine(machine)
        self.options = options or MemberOptions()
        self._peers = {node: ActorRef(node, member_name(group)) for node in self.members}
        self._keeper = ActorRef(self.me, keeper_name(group))
        # (client, seq) -> its askers, oldest first (bounded: WAITING_LIMIT)
        self._waiting: OrderedDict[tuple[str, int], list[ReplyTo]] = OrderedDict()

    def restore(self, records: list[Any]) -> Member:
        """The member its records leave (a backup: see rule 1 of the core)."""
        return Member.restore(self.me, self.members, self.machine(), records, self.options)

    def resolve(self, address: str, msg: Any) -> ActorRef:
        """A peer's member, or this node's keeper."""
        return self._keeper if address == KEEPER else self._peers[address]

    def takes(self, msg: Any) -> bool:
        """The core's alphabet: copying messages, commands and the keeper's notes."""
        kind = type(msg)
        return kind in _COPYING or kind in (Request, Read, ViewIs, LeaseGranted, Handover)

    def admit(self, msg: Any, reply: ReplyTo | None, sender: ActorRef | None) -> Any:
        """Check who sent ``msg``, keep who waits for an answer; what the core sees."""
        kind = type(msg)
        if kind is MemberStatus:
            if reply is not None:
                reply.send(self.core.status())
            return None
        if kind is ReplicaStatus:  # as a Paxos replica answers it: tools serve both
            if reply is not None:
                core = self.core
                reply.send(ReplicaState(self.me, core.applied + 1, 1, 0, core.view.primary))
            return None
        if kind is Submit or kind is Read:
            command = msg.command
            if reply is not None and _keyed(command):
                self._wait((command.client, command.seq), reply)
            return Request(command) if kind is Submit else msg
        field = _COPYING.get(kind)
        if field is not None:
            if sender is None or sender.node != getattr(msg, field, None):
                self.refused([f"a {kind.__name__} from {sender} that names another sender"])
                return None
            return msg
        if kind is ViewIs or kind is LeaseGranted or kind is Handover:
            if sender != self._keeper:
                self.refused([f"a {kind.__name__} from {sender}, not this node's keeper"])
                return None
            return msg
        return super().admit(msg, reply, sender)

    def _wait(self, key: tuple[str, int], reply: ReplyTo) -> None:
        waiting = self._waiting
        held = waiting.get(key)
        if held is not None:
            held.append(reply)
            return
        while len(waiting) >= WAITING_LIMIT:
            waiting.popitem(last=False)  # its asker times out, and the client retries
        waiting[key] = [reply]

    def answer(self, responses: list[Any]) -> None:
        """Commands this member does not take: not the primary (Redirect), or full (Overloaded)."""
        for response in responses:
            askers = self._waiting.pop((response.client, response.seq), ())
            if type(response) is Moved:
                for reply in askers:
                    reply.send(Redirect(response.primary))
            elif type(response) is Busy:
                for reply in askers:
                    reply.fail(Overloaded(f"the primary of {self.group} has a full queue"))

    def output(self, outputs: list[Any]) -> None:
        """Answer the commands that ran (their records durable here)."""
        primary = self.core.view.primary
        for output in outputs:
            if type(output) is Response:
                answer = Answered(output.result, primary)
                for reply in self._waiting.pop((output.client, output.seq), ()):
                    reply.send(answer)


async def switchover(
    group: str, members: Sequence[str], to: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Hand the primary's role of ``group`` to its in-sync backup ``to``; the new view.

    Raises:
        SwitchoverRefused: no member acts as primary, ``to`` is not in sync,
            or the configuration service did not answer (then the old
            primary acknowledges nothing more, and the group moves on by
            the switch or by an election once its lease has run out).
    """
    acting: tuple[int, str] | None = None
    for node in members:
        try:
            status = await ActorRef(node, member_name(group)).ask(MemberStatus(), 1.0)
        except ActorfwError:
            continue
        if status["acting"] and (acting is None or status["acting"] > acting[0]):
            acting = (status["acting"], node)
    if acting is None:
        raise SwitchoverRefused(f"no member of {group} acts as its primary now")
    answer = await ActorRef(acting[1], keeper_name(group)).ask(Switchover(to), timeout)
    if answer[0] != "view":
        raise SwitchoverRefused(f"switchover of {group} to {to}: {answer[1]}")
    view: dict[str, Any] = answer[1]
    return view


def _keyed(command: Any) -> bool:
    return type(command) is Command and type(command.client) is str and type(command.seq) is int


class ViewKeeper(Actor):
    """Keeps one node of a primary-backup group in step with the configuration service.

    See the module documentation for what a pass does.

    Args:
        group: the group's name; members: its nodes.
        view_nodes: the nodes of the configuration service (``<group>-views``).
        lease: the primary's lease, in seconds.
        drift: the clock-drift bound, in seconds (the member's primary uses the same).
        interval: seconds between passes (default: a fifth of the lease).
        report_interval: seconds between reports of the log's end while it
            moves (it is reported at once when its epoch changes, and before
            every election).
    """

    def __init__(
        self,
        group: str,
        members: Sequence[str],
        view_nodes: Sequence[str],
        lease: float = 1.0,
        drift: float = 0.1,
        interval: float | None = None,
        report_interval: float = 1.0,
    ) -> None:
        self.group = group
        self.me = self.context.node
        self.lease = lease
        self.drift = drift
        self.interval = interval if interval is not None else lease / 5
        self.report_interval = report_interval
        incarnation = f"{self.context.random.getrandbits(48):012x}"
        self.views = AsyncGroupClient(
            views_name(group),
            list(view_nodes),
            client_id=f"{group}-keeper@{self.me}/{incarnation}",
            timeout=min(0.5, lease / 2),
            deadline=lease,
        )
        self.member = ActorRef(self.me, member_name(group))
        self.view: dict[str, Any] | None = None
        self.seen: tuple[int, int] | None = None  # the (epoch, grants) last seen...
        self.seen_at = 0.0  # ...first seen at
        self.renewed_at = float("-inf")
        self.reported: tuple[int, int] | None = None
        self.reported_at = float("-inf")
        self.passes = 0
        self.failures = 0

    def on_start(self) -> None:
        """Start passing."""
        self.context.start_timer("pass", KeeperPass(), 0.0)

    @handler
    async def on_pass(self, _: KeeperPass) -> None:
        """One pass, then the next in ``interval``."""
        try:
            await self._pass()
        finally:
            self.context.start_timer("pass", KeeperPass(), self.interval)

    @handler
    async def on_wake(self, _: Wake) -> None:
        """The member wants something of the view: a pass now."""
        await self._pass()

    @handler
    async def on_switchover(self, msg: Switchover) -> list[Any]:
        """Hand the primary's role to ``msg.to`` (rule 9 of the member; rule 5 of the view).

        The member stops acknowledging first; once ``to`` holds its whole
        log (or after a fifth of a lease), the switch is proposed. Refused,
        the member acknowledges again. Unanswered, the switch may still
        commit later: the member stays held and this keeper stops renewing
        its lease, so that either the switch or, once the lease has run
        out, an election moves the group on.
        """
        status = await self.member.ask(MemberStatus(), min(1.0, self.lease))
        view = self.view
        to = msg.to
        if view is None or view["primary"] != self.me or status["acting"] != view["epoch"]:
            return ["refused", f"{self.me} is not the acting primary", view]
        if to == self.me:
            return ["refused", f"{to!r} is the primary of {self.group} already", view]
        if to not in view["in_sync"]:
            return ["refused", f"{to!r} is not an in-sync backup of {self.group}", view]
        epoch = view["epoch"]
        self.context.tell(self.member, Handover(epoch, to))
        until = self.context.now() + self.lease / 5
        while not status["handover"] and self.context.now() < until:
            await asyncio.sleep(0.002)  # the target's acknowledgements take time to come
            status = await self.member.ask(MemberStatus(), min(1.0, self.lease))
        try:
            answer = await self._call(["switch", epoch, self.me, view["grants"], to])
        except ActorfwError as error:
            return ["unknown", f"the configuration service did not answer: {error}", view]
        if answer[0] == "refused":
            self.context.tell(self.member, Handover(epoch, ""))  # it goes on
        elif answer[0] == "view":
            # The new primary's keeper would learn the view at its next pass: now.
            self.context.tell(ActorRef(to, keeper_name(self.group)), Wake())
        return answer

    async def _pass(self) -> None:
        try:
            await self._step()
        except ActorfwError as error:  # out of reach, or not started yet: next pass
            self.failures += 1
            self.context.log.debug("view keeper of %s: %s", self.group, error)

    async def _call(self, operation: list[Any]) -> list[Any]:
        answer: list[Any] = await self.views.call(operation)
        if answer[0] == "error":
            raise ValueError(f"the view service refused {operation!r}: {answer[1]}")
        self._learn(answer[-1])
        return answer

    def _learn(self, view: dict[str, Any]) -> None:
        """Keep ``view`` if it is newer, tell the member, and note when it changed."""
        key = (view["epoch"], view["grants"])
        if self.view is not None and key < (self.view["epoch"], self.view["grants"]):
            return
        self.view = view
        if key != self.seen:
            self.seen, self.seen_at = key, self.context.now()
        in_sync = tuple(view["in_sync"])
        self.context.tell(
            self.member, ViewIs(view["epoch"], view["primary"], in_sync, view["grants"])
        )

    async def _step(self) -> None:
        self.passes += 1
        status = await self.member.ask(MemberStatus(), min(1.0, self.lease))
        now = self.context.now()
        end = (status["last_epoch"], status["position"])
        if end != self.reported and (
            self.reported is None
            or end[0] != self.reported[0]
            or now >= self.reported_at + self.report_interval
        ):
            await self._report(end)
        else:
            answer = await self.views.read(["view"])
            self._learn(answer[-1])
        view = self.view
        if view is None:
            return
        if view["primary"] == self.me and status["acting"] == view["epoch"]:
            await self._lead(view, status)
        elif view["primary"] == self.me and status["epoch"] < view["epoch"]:
            return  # the member starts as primary on the view just told
        else:
            await self._watch(end)

    async def _report(self, end: tuple[int, int]) -> None:
        self.reported_at = self.context.now()
        await self._call(["report", self.me, end[0], end[1]])
        self.reported = end

    async def _lead(self, view: dict[str, Any], status: dict[str, Any]) -> None:
        """Beside the acting primary: renew the lease, propose the in-sync set."""
        epoch = view["epoch"]
        if status["holding"]:
            return  # a switchover is under way: the switch, or the lease's end, moves on
        sent = self.context.now()
        if sent >= self.renewed_at + self.lease / 3:
            answer = await self._call(["renew", epoch, self.me])
            if answer[0] == "view":
                self.renewed_at = sent
                self.context.tell(self.member, LeaseGranted(epoch, sent + self.lease))
        view = self.view or view
        wanted = sorted(status["wanted"])
        if view["epoch"] == epoch and view["primary"] == self.me and wanted != view["in_sync"]:
            await self._call(["sync", epoch, self.me, view["grants"], wanted])

    async def _watch(self, end: tuple[int, int]) -> None:
        """Elsewhere: elect once the view stood still for a lease and the drift bound."""
        view = self.view
        if view is None or self.seen is None:
            return
        if view["epoch"] and self.context.now() < self.seen_at + self.lease + self.drift:
            return
        seen = self.seen
        if end != self.reported:
            await self._report(end)  # elections compare the latest ends
            if self.seen != seen:
                return  # the view moved meanwhile: its wait starts again
        await self._call(["elect", self.me, seen[0], seen[1]])
