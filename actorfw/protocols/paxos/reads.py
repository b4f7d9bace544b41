"""Reads served by the leader's lease instead of the log (replica rule 11).

A replica that shares its address with a leader (and whose machine is a
:class:`~actorfw.protocols.paxos.types.Querying`) gathers a step's read-only
commands, asks that leader for a read index (one :class:`ReadIndex` for
all of them), and once the index is granted answers each read from its
state as soon as its ``slot_out`` reaches the index. A refused or
unanswered ask sends its reads through the log. :class:`LeaseReads` keeps
the asks and the granted reads, and hands what goes through the log to the
replica's :class:`~actorfw.protocols.paxos.clients.Clients`.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from typing import Any

from actorfw.protocols.paxos.clients import Clients
from actorfw.protocols.paxos.messages import Command, ReadIndex, ReadIndexReply, Response
from actorfw.protocols.paxos.types import Querying

__all__ = ["LeaseReads"]


class LeaseReads:
    """The reads of one replica waiting for a read index, or for the replica to reach it.

    Args:
        me: the replica's address (its node's leader shares it).
        machine: the replica's machine, if it serves reads by lease (None:
            every read goes through the log).
        clients: the replica's clients: reads through the log go there, and
            reads served by lease are answered there.
        stats: the replica's counters (``read_by_lease``, ``read_refused``, ...).
    """

    __slots__ = (
        "_asks",
        "_batch",
        "_clients",
        "_granted",
        "_id",
        "_machine",
        "_me",
        "_order",
        "stats",
    )

    def __init__(
        self, me: str, machine: Querying | None, clients: Clients, stats: Counter[str]
    ) -> None:
        self._me = me
        self._machine = machine
        self._clients = clients
        self.stats = stats
        self._batch: list[Command] = []  # this step's reads, not asked yet
        self._asks: dict[int, tuple[float, list[Command]]] = {}  # id -> (asked at, reads)
        self._id = 0
        self._granted: list[tuple[int, int, Command]] = []  # heap of (index, order, command)
        self._order = 0

    @property
    def pending(self) -> int:
        """Reads waiting for an index or for the replica to reach it."""
        return len(self._granted) + sum(len(c) for _, c in self._asks.values())

    def take(self, command: Command) -> None:
        """A client's read: by lease (asked for at the end of the step), or through the log.

        Through the log when the replica serves no reads by lease, the
        client's session says the command already ran, or the machine does
        not say the operation is read-only.
        """
        clients = self._clients
        session = clients.sessions.get(command.client)
        if (
            self._machine is None
            or (session is not None and command.seq <= session[0])
            or not self._read_only(command.op)
        ):
            self.stats["read_through_log"] += 1
            clients.take(command)
            return
        self._batch.append(command)

    def _read_only(self, op: Any) -> bool:
        try:
            return self._machine.is_read_only(op) is True  # type: ignore[union-attr]
        except Exception:  # a machine's bug must not stop the replica: use the log
            self.stats["is_read_only_failed"] += 1
            return False

    def ask(self, now: float, send: list[tuple[str, Any]]) -> None:
        """End of a step: one :class:`ReadIndex` to the node's leader for the step's reads."""
        if self._batch:
            self._id += 1
            self._asks[self._id] = (now, self._batch)
            self._batch = []
            send.append((self._me, ReadIndex(self._me, self._id)))

    def answered(self, msg: ReadIndexReply, slot_out: int) -> None:
        """A well-formed reply: serve the reads (granted) or send them through the log."""
        ask = self._asks.pop(msg.id, None)
        if ask is None:
            self.stats["stale_read_index"] += 1
            return
        if not msg.granted:
            self.stats["read_refused"] += len(ask[1])
            for command in ask[1]:
                self._clients.take(command)
            return
        for command in ask[1]:
            self._order += 1
            heapq.heappush(self._granted, (msg.index, self._order, command))
        self.serve(slot_out)

    def serve(self, slot_out: int) -> None:
        """Answer the reads whose index the replica, at ``slot_out``, has reached."""
        granted = self._granted
        if not granted or granted[0][0] > slot_out:
            return
        query = self._machine.query  # type: ignore[union-attr]
        clients = self._clients
        while granted and granted[0][0] <= slot_out:
            command = heapq.heappop(granted)[2]
            clients.answered(command)  # answered now; a copy through the log stays silent
            self.stats["read_by_lease"] += 1
            result = query(command.op)
            clients.responses.append(Response(command.client, command.seq, result, by_lease=True))

    def unanswered(self, now: float, timeout: float) -> None:
        """Send the reads of asks unanswered for ``timeout`` through the log."""
        late = [i for i, (at, _) in self._asks.items() if at + timeout <= now]
        for ask in late:
            self.stats["read_index_unanswered"] += 1
            for command in self._asks.pop(ask)[1]:
                self._clients.take(command)

    def next_deadline(self, timeout: float) -> float:
        """When the oldest ask times out (``inf``: none waits)."""
        if not self._asks:
            return math.inf
        return min(at for at, _ in self._asks.values()) + timeout
