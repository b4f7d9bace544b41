"""Multi-Paxos protocol cores in the shape of "Paxos Made Moderately Complex".

Three sans-IO roles, each a class that takes an input (a message, or a tick
with the current time) and returns an :class:`Effects`: the records to
persist, then (once they are durable) the messages to send and the client
responses to deliver.

- :class:`Acceptor` — promises and accepted pvalues; ``restore`` after a crash.
- :class:`Leader` — phase 1 when it must, batched and pipelined phase 2,
  liveness by pings and randomized back-off.
- :class:`Replica` — proposes client commands in batches, applies decisions
  in slot order to a :class:`StateMachine`, answers its clients, catches up
  from peers (by snapshot when they truncated their logs), and serves reads
  by the leader's lease when asked.

See ``docs/paxos.md`` for the protocol as implemented.
"""

from __future__ import annotations

from actorfw.protocols.paxos.acceptor import Acceptor
from actorfw.protocols.paxos.invariants import Invariants, InvariantViolation, format_ballot
from actorfw.protocols.paxos.leader import Leader, LeaderMode
from actorfw.protocols.paxos.messages import (
    HANDLED_BY,
    Applied,
    Batch,
    CatchUp,
    CatchUpReply,
    Collect,
    Command,
    Decision,
    InstallSnapshot,
    LeaderIs,
    LeaseGrant,
    LeaseRequest,
    P1a,
    P1b,
    P2a,
    P2b,
    Ping,
    Pong,
    Progress,
    Propose,
    Read,
    ReadIndex,
    ReadIndexReply,
    Request,
    Response,
    Role,
    SessionExpired,
    Sessions,
    Slots,
)
from actorfw.protocols.paxos.records import (
    Accepted,
    Collected,
    Decided,
    LeaderBallot,
    LeaseGranted,
    Promised,
    Record,
    Snapshotted,
    Truncated,
    pack_value,
    records_from_storage,
    storage_ops,
    unpack_value,
)
from actorfw.protocols.paxos.replica import Replica
from actorfw.protocols.paxos.types import (
    FIRST_SLOT,
    Config,
    Effects,
    LeaderOptions,
    Querying,
    ReplicaOptions,
    Snapshotting,
    StateMachine,
)

__all__ = [
    "FIRST_SLOT",
    "HANDLED_BY",
    "Accepted",
    "Acceptor",
    "Applied",
    "Batch",
    "CatchUp",
    "CatchUpReply",
    "Collect",
    "Collected",
    "Command",
    "Config",
    "Decided",
    "Decision",
    "Effects",
    "InstallSnapshot",
    "InvariantViolation",
    "Invariants",
    "Leader",
    "LeaderBallot",
    "LeaderIs",
    "LeaderMode",
    "LeaderOptions",
    "LeaseGrant",
    "LeaseGranted",
    "LeaseRequest",
    "P1a",
    "P1b",
    "P2a",
    "P2b",
    "Ping",
    "Pong",
    "Progress",
    "Promised",
    "Propose",
    "Querying",
    "Read",
    "ReadIndex",
    "ReadIndexReply",
    "Record",
    "Replica",
    "ReplicaOptions",
    "Request",
    "Response",
    "Role",
    "SessionExpired",
    "Sessions",
    "Slots",
    "Snapshotted",
    "Snapshotting",
    "StateMachine",
    "Truncated",
    "format_ballot",
    "pack_value",
    "records_from_storage",
    "storage_ops",
    "unpack_value",
]
