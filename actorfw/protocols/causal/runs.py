"""What a causal member stores of its log: a step's deliveries made records, by runs (rule 4).

A step's deliveries of one sender, numbered one apart and stamped one apart,
are one :class:`LoggedRun` record (a lone one a :class:`Logged`), bounded by
count and by encoded bytes. :class:`StoredRuns` keeps which sequence numbers
each stored record holds, so that a floor (rule 6) deletes exactly the
records all of whose messages are stable.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from actorfw.protocols.causal.messages import Delivery, Logged, LoggedRun
from actorfw.values.codec import encode as _encode

__all__ = ["RUN_RECORD_BYTES", "RUN_RECORD_MAX", "StoredRuns", "stored_size"]

RUN_RECORD_MAX = 1024
"""Messages one :class:`LoggedRun` record holds at most (a longer run is several)."""

RUN_RECORD_BYTES = 1 << 20
"""Payload bytes one :class:`LoggedRun` holds at most, encoded (:func:`stored_size`).

A record is one stored value, and a store bounds a value's size (SQLite's
is 10**9 bytes): past this, a run goes on in another record, and a single
payload of any size a message may carry is a record of its own.
"""


def stored_size(value: Any) -> int:
    """The bytes a message value takes encoded (its body and buffers), as a record stores it.

    Measured by encoding it, so nothing in it is miscounted. Never raises:
    a value that does not encode counts as more than :data:`RUN_RECORD_BYTES`,
    so it is a record of its own, and storing that record reports the error.
    """
    try:
        body, buffers, _ = _encode(value)
    except Exception:
        return RUN_RECORD_BYTES + 1
    return len(body) + sum([memoryview(buffer).nbytes for buffer in buffers])


class StoredRuns:
    """Per sender, the first and last sequence numbers of each of its stored records, in order.

    Args:
        members: the group's members (a sender outside it gets its list when first seen).
    """

    __slots__ = ("_rows",)

    def __init__(self, members: Iterable[str]) -> None:
        self._rows: dict[str, deque[tuple[int, int]]] = {m: deque() for m in members}

    def restored(self, sender: str, first: int, last: int) -> None:
        """A record read back from storage (any order; :meth:`sort` follows)."""
        self._rows.setdefault(sender, deque()).append((first, last))

    def sort(self) -> None:
        """Put each sender's restored records in order."""
        for sender, rows in self._rows.items():
            self._rows[sender] = deque(sorted(rows))

    def forget(self, sender: str, seq: int) -> tuple[int, ...]:
        """The first numbers of the records a floor of ``seq`` deletes: all of theirs stable.

        A run only partly stable stays until its last message is.
        """
        rows = self._rows.setdefault(sender, deque())
        dropped = []
        while rows and rows[0][1] <= seq:
            dropped.append(rows.popleft()[0])
        return tuple(dropped)

    def records(self, persist: list[Any]) -> list[Any]:
        """A step's records, each sender's consecutive deliveries as one LoggedRun.

        ``persist`` holds the step's deliveries (as :class:`Delivery`) and
        its other records. Consecutive: of one sender, numbered one apart,
        each stamp its predecessor's with the sender's own entry raised by
        one (as a :class:`DataRun` unrolls, and as a step's own broadcasts
        are stamped), so the run's first stamp stands for all of them; other
        senders' deliveries may come between (delivery takes one message of
        each sender per pass). A step's records are written as one atomic
        batch, so their order in it does not matter.
        """
        open_runs: dict[str, list[Delivery]] = {}
        sizes: dict[str, int] = {}  # each open run's payload bytes (see stored_size)
        runs: list[list[Delivery]] = []
        others: list[Any] = []
        for record in persist:
            if type(record) is not Delivery:
                others.append(record)
                continue
            sender = record.sender
            size = stored_size(record.payload)
            run = open_runs.get(sender)
            if run is not None:
                last = run[-1]
                if (
                    record.seq == last.seq + 1
                    and len(run) < RUN_RECORD_MAX
                    and sizes[sender] + size <= RUN_RECORD_BYTES
                ):
                    follows = last.clock.copy()
                    follows.increment(sender)
                    if follows == record.clock:
                        run.append(record)
                        sizes[sender] += size
                        continue
                runs.append(run)
            open_runs[sender] = [record]
            sizes[sender] = size
        runs.extend(open_runs.values())
        return [self._stored(run) for run in runs] + others

    def _stored(self, run: list[Delivery]) -> Logged | LoggedRun:
        first = run[0]
        self._rows.setdefault(first.sender, deque()).append((first.seq, run[-1].seq))
        if len(run) == 1:
            return Logged(first.sender, first.seq, first.clock, first.payload)
        return LoggedRun(first.sender, first.seq, first.clock, tuple(m.payload for m in run))
