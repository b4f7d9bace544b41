"""The Multi-Paxos wire messages, and which role handles each.

Every message is a frozen dataclass registered with
:func:`actorfw.values.codec.message` under ``paxos.<Name>``, so it travels
between nodes as a message value. Batched slot and ballot lists are numpy
``int64`` arrays: the wire sends them as raw buffers (zero copy) and the
ballot kernels take them as they are. A *batch* is a tuple of
:class:`Command`; the empty tuple is the no-op batch a new leader uses to
fill a gap. ``slots[i]`` goes with ``batches[i]`` wherever both appear.

Messages that hold arrays compare by identity (``eq=False``): comparing two
arrays element-wise has no single truth value, so compare their fields.
Received arrays are read-only; no role ever writes into a message's array.

Routing: a role core's ``Effects.send`` lists ``(address, message)`` pairs.
An address names a node (or a client, for :class:`Response`), and
:data:`HANDLED_BY` says which role at that address takes the message, so a
driver that hosts several roles on one node dispatches by message type.
"""

from __future__ import annotations

import enum
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from actorfw.values.codec import message

__all__ = [
    "HANDLED_BY",
    "Applied",
    "Batch",
    "CatchUp",
    "CatchUpReply",
    "Collect",
    "Command",
    "Decision",
    "InstallSnapshot",
    "LeaderIs",
    "LeaseGrant",
    "LeaseRequest",
    "P1a",
    "P1b",
    "P2a",
    "P2b",
    "Ping",
    "Pong",
    "Progress",
    "Propose",
    "Read",
    "ReadIndex",
    "ReadIndexReply",
    "Request",
    "Response",
    "Role",
    "Sessions",
    "Slots",
    "handled_where",
]

Slots: TypeAlias = npt.NDArray[np.int64]
"""A one-dimensional numpy ``int64`` array of slots (or of ballots)."""


def is_slots(value: object) -> bool:
    """Whether a peer's ``value`` is a :data:`Slots` array (contiguous, as the kernels need)."""
    return (
        isinstance(value, np.ndarray)
        and value.dtype == np.int64
        and value.ndim == 1
        and value.flags.c_contiguous
    )


@message(name="paxos.Command")
class Command:
    """A client command: its identity ``(client, seq)`` and an opaque operation.

    A client numbers its commands 1, 2, 3, ... and has at most one
    outstanding at a time; replicas execute each ``(client, seq)`` once
    and skip a command whose ``seq`` is not above the client's last
    executed one.

    Attributes:
        client: the client's id.
        seq: the command's sequence number for that client (from 1).
        op: the operation, a message value handed to the state machine's
            ``apply``. It is compared with ``==`` (to tell whether a slot
            decided a replica's own batch), so use values whose ``==`` is a
            plain bool (not numpy arrays).
    """

    client: str
    seq: int
    op: Any


Batch: TypeAlias = tuple[Command, ...]
"""What one slot decides: a tuple of commands (empty for a no-op)."""


class Role(enum.Enum):
    """The role that handles a message at its destination address."""

    ACCEPTOR = "acceptor"
    LEADER = "leader"
    REPLICA = "replica"
    CLIENT = "client"


# -- client <-> replica ---------------------------------------------------------------


@message(name="paxos.Request")
class Request:
    """A client asks a replica to execute ``command`` (client -> replica)."""

    command: Command


@message(name="paxos.Response")
class Response:
    """The result of a client's command (replica -> client, addressed by client id).

    ``by_lease``: the command was a :class:`Read` served from the leader's
    replica under a lease, outside the log (its result reflects the state
    when it was served; a retry may see a newer one).
    """

    client: str
    seq: int
    result: Any
    by_lease: bool = False


@message(name="paxos.SessionExpired")
class SessionExpired:
    """The result of a command whose client has no session and whose ``seq`` is not 1.

    A client's first command (``seq`` 1) opens its session, and a client
    that abandons a command (no answer in time) continues under a new id
    (see :mod:`actorfw.services.replication.client`). So a later command of a client
    without a session means the replicas dropped its session (they keep
    at most ``ReplicaOptions.max_sessions``): they can no longer tell
    whether that command already ran, so it does not run now, and every
    replica answers it with this value in place of a result. The client
    must continue under a new id; the command may or may not have run
    before.
    """

    client: str
    seq: int


@message(name="paxos.Read")
class Read:
    """A client asks a replica for a read-only ``command`` (client -> replica).

    With leases on (``LeaderOptions.lease_duration``) and a
    :class:`~actorfw.protocols.paxos.Querying` state machine, the replica of the node
    whose leader holds a lease answers it from its state once it has
    applied every slot its leader knew decided when asked (the *read
    index*), without the log. Anywhere else, or when the operation is not
    read-only, it is a plain :class:`Request` of ``command`` through the
    log. The command carries the client's next ``(client, seq)`` like any
    other, so that falling back to the log keeps exactly-once (a read served
    by lease leaves the client's session untouched; seq gaps are fine).

    ``max_staleness`` (seconds, 0: none) lets a primary-backup backup answer
    from its own state when it is that fresh (see
    :mod:`actorfw.protocols.primary_backup.member`, rule 5); a Multi-Paxos
    replica answers linearizably, which satisfies any bound.
    """

    command: Command
    max_staleness: float = 0.0


@message(name="paxos.actor.LeaderIs")
class LeaderIs:
    """Who leads now, as the leader of a replica's node believes ("" if unknown).

    From a leader (its actor) to the replica of its node. The replica then
    sends its proposals to that leader only, and its pending ones to a new
    leader at once (see :class:`~actorfw.protocols.paxos.Replica`, rule 3).
    """

    node: str


# -- replica -> leader ----------------------------------------------------------------


@message(name="paxos.Propose", eq=False)
class Propose:
    """A replica proposes ``batches[i]`` for ``slots[i]`` (replica -> every leader).

    ``slot_out`` is the proposer's next slot to apply: every slot below it
    is decided, which lets a leader forget what it no longer needs.
    """

    replica: str
    slot_out: int
    slots: Slots
    batches: tuple[Batch, ...]


@message(name="paxos.Applied", routine=True)
class Applied:
    """A replica's periodic report of its ``slot_out`` (replica -> every leader)."""

    replica: str
    slot_out: int


# -- leader <-> acceptor --------------------------------------------------------------


@message(name="paxos.P1a")
class P1a:
    """Phase 1a: prepare ``ballot`` (leader -> every acceptor).

    The answer goes to the leader the ballot names
    (``config.leaders[ballot_leader(ballot)]``). The acceptor reports its
    accepted pvalues for slots at or above ``from_slot`` only: the leader
    knows every slot below it is decided.
    """

    ballot: int
    from_slot: int


@message(name="paxos.P1b", eq=False)
class P1b:
    """Phase 1b: an acceptor's promise (acceptor -> leader).

    ``ballot`` is the acceptor's promise after the p1a: equal to the p1a's
    ballot if adopted; higher if not (then the pvalue arrays are empty), or
    lower if the acceptor refused because another leader's lease is running
    there (the scout asks again later).
    ``floor``: slots below it were garbage-collected at this acceptor (they
    are decided). ``slots``/``ballots``/``batches`` are the accepted
    pvalues at or above ``max(from_slot, floor)``, the highest ballot per
    slot, sorted by slot. ``request`` is the ballot of the p1a it answers:
    an answer adopts that ballot only if ``ballot == request``. (A late p1a
    of an older ballot is answered with the acceptor's promise, which may by
    then be the leader's current ballot: without ``request`` that empty
    answer would pass for an adoption of the current one, hiding the
    acceptor's accepted pvalues.)
    """

    acceptor: str
    ballot: int
    floor: int
    slots: Slots
    ballots: Slots
    batches: tuple[Batch, ...]
    request: int


@message(name="paxos.P2a", eq=False)
class P2a:
    """Phase 2a: accept ``batches[i]`` for ``slots[i]`` under ``ballot`` (leader -> acceptors).

    One message carries many slots; the answer goes to the leader the
    ballot names.
    """

    ballot: int
    slots: Slots
    batches: tuple[Batch, ...]


@message(name="paxos.P2b", eq=False)
class P2b:
    """Phase 2b: what an acceptor did with one p2a (acceptor -> leader).

    ``ballot`` is the acceptor's promise after the p2a: the p2a's ballot if
    it accepted, higher if it refused (preemption). ``slots``: the slots it
    accepted. ``collected``: the slots it refused because they are below its
    garbage-collection floor (decided long ago).
    """

    acceptor: str
    ballot: int
    slots: Slots
    collected: Slots


@message(name="paxos.Collect")
class Collect:
    """Garbage-collect pvalues below ``below`` (active leader -> every acceptor).

    Send only once a majority of replicas (``f+1`` of ``2f+1``) has applied
    (durably, in its log or a snapshot) every slot below ``below``: a
    replica behind it then catches up from a peer, by snapshot if need be.
    """

    below: int


@message(name="paxos.LeaseRequest")
class LeaseRequest:
    """The active leader asks for a lease of ``duration`` seconds (leader -> every acceptor).

    An acceptor that grants it promises, for ``duration`` seconds of its own
    clock from when it got this, not to adopt a higher ballot of any other
    leader. ``round`` numbers the leader's requests; the grant echoes it,
    so the leader knows when it sent the request a quorum granted.
    """

    ballot: int
    round: int
    duration: float


@message(name="paxos.LeaseGrant")
class LeaseGrant:
    """An acceptor's answer to :class:`LeaseRequest` (acceptor -> leader of the ballot).

    ``ballot`` is the acceptor's promise after the request: the request's
    ballot if it granted the lease; higher if it refused because it
    promised a higher ballot (the leader is preempted); lower if it refused
    because it holds another leader's running lease.
    """

    acceptor: str
    ballot: int
    round: int


# -- leader -> replica ----------------------------------------------------------------


@message(name="paxos.Decision", eq=False)
class Decision:
    """``batches[i]`` is decided for ``slots[i]`` (leader -> replicas)."""

    slots: Slots
    batches: tuple[Batch, ...]


# -- leader <-> leader ----------------------------------------------------------------


@message(name="paxos.Ping", routine=True)
class Ping:
    """A passive leader checks that another is alive (leader -> leader).

    ``ballot``: the highest ballot the pinging leader knows of.
    """

    leader: str
    ballot: int


@message(name="paxos.Pong", routine=True)
class Pong:
    """The answer to :class:`Ping` (leader -> leader).

    ``active``: the answering leader is leading or trying to (scouting) with
    ``ballot``. When not active, ``ballot`` is the highest ballot it knows
    of (whose leader it follows), or ``NO_BALLOT``.
    """

    leader: str
    ballot: int
    active: bool


# -- replica <-> replica --------------------------------------------------------------


@message(name="paxos.Progress", routine=True)
class Progress:
    """A replica's periodic report of its ``slot_out`` (replica -> peer replicas)."""

    replica: str
    slot_out: int


@message(name="paxos.CatchUp")
class CatchUp:
    """A lagging replica asks a peer for decisions from ``from_slot`` on (replica -> replica)."""

    replica: str
    from_slot: int


@message(name="paxos.CatchUpReply", eq=False)
class CatchUpReply:
    """The decisions a peer holds from the asked slot on, a bounded run (replica -> replica).

    ``slot_out`` is the answering replica's: the asker keeps asking while
    it is behind it.
    """

    replica: str
    slot_out: int
    slots: Slots
    batches: tuple[Batch, ...]


@message(name="paxos.ReadIndex")
class ReadIndex:
    """A replica asks the leader of its node whether it may serve reads, and from where.

    (replica -> the leader at the replica's own address). ``id`` is the
    replica's number for the reads waiting on the answer.
    """

    replica: str
    id: int


@message(name="paxos.ReadIndexReply")
class ReadIndexReply:
    """The leader's answer to :class:`ReadIndex` (leader -> replica).

    ``granted``: the leader was active and held a valid lease when it
    answered; then ``index`` is the read index, one past the highest slot it
    knew decided, and the replica serves the reads once its ``slot_out``
    reaches it. Not granted: the reads go through the log.
    """

    leader: str
    id: int
    granted: bool
    index: int


Sessions: TypeAlias = dict[str, tuple[int, Any]]
"""Client id -> ``(highest executed seq, its result)``: the replicas' exactly-once table."""


@message(name="paxos.InstallSnapshot", eq=False)
class InstallSnapshot:
    """A peer's snapshot, for a replica behind its log (replica -> the asking replica).

    The answer to a :class:`CatchUp` for slots the peer no longer holds in
    its log. ``state`` (the state machine's
    :meth:`~actorfw.protocols.paxos.Snapshotting.snapshot`) and ``sessions`` are the
    state after applying every slot below ``slot``; ``slot_out`` is the
    peer's (the asker keeps asking while behind it). One message carries
    the whole state: it must fit the runtime's message limit (64 MiB by
    default on node processes).
    """

    replica: str
    slot_out: int
    slot: int
    state: Any
    sessions: Sessions


HANDLED_BY: dict[type, Role] = {
    Request: Role.REPLICA,
    LeaderIs: Role.REPLICA,
    Response: Role.CLIENT,
    Propose: Role.LEADER,
    Applied: Role.LEADER,
    P1a: Role.ACCEPTOR,
    P1b: Role.LEADER,
    P2a: Role.ACCEPTOR,
    P2b: Role.LEADER,
    Collect: Role.ACCEPTOR,
    Decision: Role.REPLICA,
    Ping: Role.LEADER,
    Pong: Role.LEADER,
    Progress: Role.REPLICA,
    CatchUp: Role.REPLICA,
    CatchUpReply: Role.REPLICA,
    InstallSnapshot: Role.REPLICA,
    LeaseRequest: Role.ACCEPTOR,
    LeaseGrant: Role.LEADER,
    Read: Role.REPLICA,
    ReadIndex: Role.LEADER,
    ReadIndexReply: Role.REPLICA,
}
"""Message type -> the role that handles it at the destination address."""


def handled_where(kind: type) -> str:
    """Which Paxos role takes messages of type ``kind``: "the leader", or "no Paxos role"."""
    role = HANDLED_BY.get(kind)
    return "no Paxos role" if role is None else f"the {role.value}"
