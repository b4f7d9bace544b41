"""What a replica knows of its clients: sessions, waiting requests, answers owed (rules 5, 6, 12).

Every replica applies every command; only the replica that took a
client's request answers it. :class:`Clients` keeps, for one replica, the
client sessions (the highest ``seq`` each client ran and its result: a
retried command is answered from there, never run twice), the requests
waiting for a slot, which commands it took and owes an answer for, and the
answers of the current step.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from actorfw.protocols.paxos.messages import Batch, Command, Response, SessionExpired, Sessions

__all__ = ["Clients"]


class Clients:
    """The sessions, the waiting requests and the answers owed of one replica.

    Args:
        max_sessions: the bound of the session table (None: unbounded); when
            full, a new client's first command drops the session of the
            client that ran a command longest ago (rule 12).
        stats: the replica's counters (``duplicate_request``, ``requeued``, ...).
    """

    __slots__ = ("_limit", "_mine", "_waiting", "requests", "responses", "sessions", "stats")

    def __init__(self, max_sessions: int | None, stats: Counter[str]) -> None:
        self._limit = max_sessions
        self.stats = stats
        self.sessions: dict[str, tuple[int, Any]] = {}
        """Client -> ``(highest seq run, its result)``, least recently active first."""
        self.requests: deque[Command] = deque()
        """Commands waiting for a slot, in order."""
        self.responses: list[Response] = []
        """This step's answers."""
        self._waiting: set[tuple[str, int]] = set()  # (client, seq) queued or proposed
        # (client, seq) taken here, to answer: a dict, so that answering them in a loop
        # goes in the order they came, not in an order that str hashes change per process.
        self._mine: dict[tuple[str, int], None] = {}

    def ran(self, command: Command) -> bool:
        """Has ``command`` run (by the sessions)?"""
        session = self.sessions.get(command.client)
        return session is not None and command.seq <= session[0]

    def take(self, command: Command) -> None:
        """A client's command arrived here: queue it, or answer it if it already ran."""
        key = (command.client, command.seq)
        session = self.sessions.get(command.client)
        if session is not None and command.seq <= session[0]:
            if command.seq == session[0]:
                self.stats["answered_from_session"] += 1
                self.responses.append(Response(command.client, command.seq, session[1]))
            else:
                self.stats["stale_request"] += 1
            return
        self._mine[key] = None
        if key in self._waiting:
            self.stats["duplicate_request"] += 1
            return
        self._waiting.add(key)
        self.requests.append(command)

    def answered(self, command: Command) -> None:
        """``command`` was answered another way (by lease): a copy through the log stays silent."""
        self._mine.pop((command.client, command.seq), None)

    def requeue(self, commands: list[Command]) -> None:
        """Put ``commands`` back at the front of the queue, in order (rule 4)."""
        if commands:
            self.stats["requeued"] += len(commands)
            self.requests.extendleft(reversed(commands))

    def next_batch(self, max_batch: int) -> list[Command]:
        """Up to ``max_batch`` queued commands to propose, skipping those that ran meanwhile."""
        requests, sessions = self.requests, self.sessions
        batch: list[Command] = []
        while requests and len(batch) < max_batch:
            command = requests.popleft()
            session = sessions.get(command.client)
            if session is not None and command.seq <= session[0]:
                self._waiting.discard((command.client, command.seq))
                continue  # executed meanwhile (another replica proposed it)
            batch.append(command)
        return batch

    def apply(self, batch: Batch, apply: Callable[[Any], Any]) -> None:
        """Run ``batch``'s commands through ``apply``, once each; answer those owed."""
        sessions, mine, waiting = self.sessions, self._mine, self._waiting
        responses = self.responses
        limit = self._limit
        for command in batch:
            client, seq = command.client, command.seq
            key = (client, seq)
            session = sessions.get(client)
            if session is not None and seq <= session[0]:
                # Already executed (decided twice: re-proposed elsewhere): answer, do not run.
                waiting.discard(key)
                if key in mine:
                    del mine[key]
                    if seq == session[0]:
                        responses.append(Response(client, seq, session[1]))
                continue
            if session is None and seq != 1:
                # Rule 12: its session was dropped, and it may have run already.
                self.stats["session_expired"] += 1
                waiting.discard(key)
                if key in mine:
                    del mine[key]
                    responses.append(Response(client, seq, SessionExpired(client, seq)))
                continue
            result = apply(command.op)
            if session is not None:
                del sessions[client]  # to the end: its client is the most recently active
            elif limit is not None and len(sessions) >= limit:
                del sessions[next(iter(sessions))]  # the least recently active client
                self.stats["sessions_dropped"] += 1
            sessions[client] = (seq, result)
            waiting.discard(key)
            if key in mine:
                del mine[key]
                responses.append(Response(client, seq, result))

    def installed(self, sessions: Sessions) -> None:
        """A snapshot's sessions replace these; the commands owed that ran there are answered."""
        self.sessions = dict(sessions)
        for key in [k for k in self._mine if self._ran_key(k)]:
            del self._mine[key]
            self._waiting.discard(key)
            session = self.sessions[key[0]]
            if session[0] == key[1]:
                self.responses.append(Response(key[0], key[1], session[1]))

    def _ran_key(self, key: tuple[str, int]) -> bool:
        session = self.sessions.get(key[0])
        return session is not None and key[1] <= session[0]

    def owed(self) -> list[tuple[str, int]]:
        """The ``(client, seq)`` taken here and not answered yet, in the order they came."""
        return list(self._mine)

    def drop_pending(self) -> list[tuple[str, int]]:
        """Forget the queue and what is owed (a primary deposed); returns what was owed.

        The sessions stay. A command dropped here may still be in a log: it
        runs once if it commits, and its client's retry is answered from
        the session.
        """
        owed = list(self._mine)
        self._mine.clear()
        self._waiting.clear()
        self.requests.clear()
        self.responses = []
        return owed

    def forget_owed(self) -> None:
        """Owe nothing (after replaying the log at a restart: those clients are gone)."""
        self._mine.clear()
        self.responses = []


def restore_snapshot(owner: str, machine: Any, clients: Clients, state: Any, sessions: Any) -> None:
    """Put a stored snapshot's ``state`` and ``sessions`` into a fresh ``machine`` and ``clients``.

    Raises:
        TypeError: ``machine`` cannot restore a snapshot (it has no
            ``snapshot()``/``restore()``), though ``owner`` stored one.
    """
    from actorfw.protocols.paxos.types import Snapshotting

    if not isinstance(machine, Snapshotting):
        raise TypeError(
            f"{owner} stored a snapshot but its state machine {type(machine).__name__} has no "
            "snapshot()/restore()"
        )
    machine.restore(state)
    clients.sessions = dict(sessions)
