"""Is a peer's message well formed? One check per message type, for the leader and the replica.

A message from a peer is decoded data of the right class, but its fields
may hold anything a buggy or hostile peer put there. Before a handler reads
a field, the core's step asks :func:`well_formed`; a message that fails is
counted as ``malformed`` in the core's ``stats`` and dropped, and the core
carries on (the errors rule of :mod:`actorfw.protocols.paxos.leader` and
:mod:`~actorfw.protocols.paxos.replica`).

The checks are about shape and about who may send what: a :class:`P2b`
must come from an acceptor of the configuration, a :class:`Progress` from
a replica other than the receiver. What a well-formed message *means* (a
stale ballot, a slot already decided) is the handlers' business.

The leader passes batches on without opening them, so a :class:`Propose`'s
or a :class:`P1b`'s batches are checked for shape only; the replica runs
commands, so a :class:`Decision`'s commands are checked one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actorfw.protocols.dispatch import Dispatch
from actorfw.protocols.paxos.messages import (
    Applied,
    CatchUp,
    CatchUpReply,
    Command,
    Decision,
    InstallSnapshot,
    LeaderIs,
    LeaseGrant,
    P1b,
    P2b,
    Ping,
    Pong,
    Progress,
    Propose,
    Read,
    ReadIndex,
    ReadIndexReply,
    Request,
    is_slots,
)
from actorfw.protocols.paxos.types import FIRST_SLOT, Config

__all__ = ["handle_checked", "well_formed"]


def well_formed(message: Any, config: Config, me: str) -> bool:
    """Whether ``message``, received by the core at ``me``, may be handled.

    A message type with no check here (the acceptor's, which checks its
    own) is well formed.
    """
    check = _CHECKS.get(type(message))
    return check is None or check(message, config, me)


def handle_checked(table: Dispatch[Any], core: Any, message: Any) -> None:
    """Hand ``message`` to ``core``'s handler in ``table`` if it is well formed.

    A leader's or replica's step: a message of another role is a ``TypeError``
    (from ``table``); a malformed one is counted in ``core.stats["malformed"]``
    and dropped.
    """
    handler = table.handler(core.me, message)
    if well_formed(message, core.config, core.me):
        handler(core, message)
    else:
        core.stats["malformed"] += 1


def _shaped_batches(batches: object, count: int) -> bool:
    """A tuple of ``count`` tuples (the commands inside unopened: the leader passes them on)."""
    if type(batches) is not tuple or len(batches) != count:
        return False
    return all(type(batch) is tuple for batch in batches)


def _command(command: object) -> bool:
    return type(command) is Command and type(command.client) is str and type(command.seq) is int


def _batches(batches: object, count: int) -> bool:
    """A tuple of ``count`` tuples of :class:`Command` (what a replica will run)."""
    if type(batches) is not tuple or len(batches) != count:
        return False
    for batch in batches:
        if type(batch) is not tuple:
            return False
        for command in batch:
            if type(command) is not Command:
                return False
    return True


def _sessions(sessions: object) -> bool:
    if type(sessions) is not dict:
        return False
    for client, session in sessions.items():
        if not (
            type(client) is str
            and type(session) is tuple
            and len(session) == 2
            and type(session[0]) is int
        ):
            return False
    return True


def _peer(replica: object, config: Config, me: str) -> bool:
    """Another replica of the configuration (not the receiver itself)."""
    return replica != me and config.is_replica(replica)


# -- to the leader -----------------------------------------------------------------------


def _propose(msg: Propose, config: Config, me: str) -> bool:
    return (
        config.is_replica(msg.replica)
        and type(msg.slot_out) is int
        and is_slots(msg.slots)
        and _shaped_batches(msg.batches, len(msg.slots))
    )


def _applied(msg: Applied, config: Config, me: str) -> bool:
    return config.is_replica(msg.replica) and type(msg.slot_out) is int


def _p1b(msg: P1b, config: Config, me: str) -> bool:
    return (
        config.is_acceptor(msg.acceptor)
        and type(msg.ballot) is int
        and type(msg.floor) is int
        and type(msg.request) is int
        and is_slots(msg.slots)
        and is_slots(msg.ballots)
        and len(msg.ballots) == len(msg.slots)
        and _shaped_batches(msg.batches, len(msg.slots))
    )


def _p2b(msg: P2b, config: Config, me: str) -> bool:
    return (
        config.is_acceptor(msg.acceptor)
        and type(msg.ballot) is int
        and is_slots(msg.slots)
        and is_slots(msg.collected)
    )


def _lease_grant(msg: LeaseGrant, config: Config, me: str) -> bool:
    return config.is_acceptor(msg.acceptor) and type(msg.ballot) is int and type(msg.round) is int


def _read_index(msg: ReadIndex, config: Config, me: str) -> bool:
    return config.is_replica(msg.replica) and type(msg.id) is int


def _ping(msg: Ping, config: Config, me: str) -> bool:
    return config.is_leader(msg.leader) and type(msg.ballot) is int


def _pong(msg: Pong, config: Config, me: str) -> bool:
    return config.is_leader(msg.leader) and type(msg.ballot) is int and type(msg.active) is bool


# -- to the replica ----------------------------------------------------------------------


def _request(msg: Request | Read, config: Config, me: str) -> bool:
    return _command(msg.command)


def _leader_is(msg: LeaderIs, config: Config, me: str) -> bool:
    node = msg.node
    return type(node) is str and (not node or config.is_leader(node))


def _read_index_reply(msg: ReadIndexReply, config: Config, me: str) -> bool:
    return (
        config.is_leader(msg.leader)
        and type(msg.id) is int
        and type(msg.granted) is bool
        and type(msg.index) is int
    )


def _decision(msg: Decision, config: Config, me: str) -> bool:
    return is_slots(msg.slots) and _batches(msg.batches, len(msg.slots))


def _progress(msg: Progress, config: Config, me: str) -> bool:
    return _peer(msg.replica, config, me) and type(msg.slot_out) is int


def _catchup(msg: CatchUp, config: Config, me: str) -> bool:
    return _peer(msg.replica, config, me) and type(msg.from_slot) is int


def _catchup_reply(msg: CatchUpReply, config: Config, me: str) -> bool:
    return (
        _peer(msg.replica, config, me)
        and type(msg.slot_out) is int
        and is_slots(msg.slots)
        and _batches(msg.batches, len(msg.slots))
    )


def _install_snapshot(msg: InstallSnapshot, config: Config, me: str) -> bool:
    return (
        _peer(msg.replica, config, me)
        and type(msg.slot_out) is int
        and type(msg.slot) is int
        and msg.slot >= FIRST_SLOT
        and _sessions(msg.sessions)
    )


_CHECKS: dict[type, Callable[[Any, Config, str], bool]] = {
    Propose: _propose,
    Applied: _applied,
    P1b: _p1b,
    P2b: _p2b,
    LeaseGrant: _lease_grant,
    ReadIndex: _read_index,
    Ping: _ping,
    Pong: _pong,
    Request: _request,
    Read: _request,
    LeaderIs: _leader_is,
    ReadIndexReply: _read_index_reply,
    Decision: _decision,
    Progress: _progress,
    CatchUp: _catchup,
    CatchUpReply: _catchup_reply,
    InstallSnapshot: _install_snapshot,
}
"""Message type -> its check: every message a leader or a replica takes from a peer."""
