"""Recording a concurrent history of client operations, and its JSON-lines form.

A *history* is what clients saw: for each operation, who invoked it, what it
asked for, when it was invoked, and how it ended. It is the input of the
linearizability checker (:func:`actorfw.check.check`) and of any other
checker that reads the JSON-lines format below.

Theory of operation
-------------------

1. An operation is *invoked* at a time and then ends in one of three ways:

   - ``ok``: it completed at a known time with a known output;
   - ``fail``: it is known NOT to have taken effect (the store said so before
     doing anything); a checker drops it;
   - ``info``: its outcome is unknown (a timeout, a crashed client). It may
     have taken effect at any time after its invocation, or never: its
     completion time is +infinity. An operation that was invoked and never
     completed is ``info`` too.

2. Times are floats supplied by the caller (virtual seconds from a simulator
   or real seconds from a clock the caller chose). This module never reads a
   clock. Operation ``a`` *precedes* ``b`` in real time iff
   ``a.complete < b.invoke``; equal times count as overlapping, so a shared
   virtual instant never produces a false alarm. A history recorded without
   times takes the order of the calls instead: the n-th event (invocation
   or completion) is at time n. One history does not mix the two: the
   caller's clock and the call count are not one clock.

3. Recording is cheap and needs no global order: ``invoke`` hands out the
   next operation id, and completions may arrive in any order, from many
   clients, tasks or threads (a lock makes each call atomic). With times
   given, only the times order the operations.

4. The JSON-lines format: one JSON object per line, one line per operation,
   in operation-id order, each with exactly these fields:

   ==========  ============================================================
   field       meaning
   ==========  ============================================================
   client      who invoked it: a string or an integer
   operation   the operation's name (``f``): ``"get"``, ``"put"``, ...
   key         the key it is about: a string, an integer or ``null``
   value       its input: any JSON value (``null`` when it takes none)
   invoke      when it was invoked: a number
   complete    when it completed: a number, or ``null`` for ``info``
   output      what it returned (``ok``), otherwise ``null``
   status      ``"ok"``, ``"fail"`` or ``"info"``
   ==========  ============================================================

   ``ok`` and ``fail`` lines need ``complete >= invoke``; ``info`` lines have
   ``complete: null`` and ``output: null``; ``fail`` lines have
   ``output: null``. Blank lines are skipped. Anything else is rejected with
   a :class:`ValueError` that names the line.
"""

from __future__ import annotations

import enum
import json
import math
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, TypeAlias

__all__ = ["FIELDS", "Client", "History", "Key", "Operation", "Status"]

Client: TypeAlias = str | int
"""Who invoked an operation: any string or integer that names a client."""

Key: TypeAlias = str | int | None
"""The key an operation is about (``None`` for a history of one object)."""

FIELDS = ("client", "operation", "key", "value", "invoke", "complete", "output", "status")
"""The fields of one JSON line, in the order they are written."""


class Status(enum.StrEnum):
    """How an operation ended: ``ok``, ``fail`` (no effect) or ``info`` (unknown)."""

    OK = "ok"
    """Completed at a known time with a known output."""
    FAIL = "fail"
    """Known not to have taken effect."""
    INFO = "info"
    """Outcome unknown: took effect at some time after invocation, or never."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a history, as recorded (immutable).

    Attributes:
        id: its index in the history, from 0, in order of invocation calls.
        client: who invoked it.
        f: the operation's name (``"get"``, ``"put"``, ``"cas"``, ...).
        key: the key it is about.
        value: its input (``None`` when it takes none).
        invoke: when it was invoked.
        complete: when it completed; ``None`` for ``info`` (read as +infinity).
        output: what it returned; ``None`` unless ``ok``.
        status: how it ended.
    """

    id: int
    client: Client
    f: str
    key: Key
    value: Any
    invoke: float
    complete: float | None
    output: Any
    status: Status

    def to_json(self) -> dict[str, Any]:
        """The operation as one JSON-lines object (fields in :data:`FIELDS` order)."""
        return {
            "client": self.client,
            "operation": self.f,
            "key": self.key,
            "value": self.value,
            "invoke": self.invoke,
            "complete": self.complete,
            "output": self.output,
            "status": self.status.value,
        }

    def describe(self) -> str:
        """A short human form: ``put('x', 1)``, ``get('x') -> 2``, ``cas('x', [1, 2]) -> ?``."""
        args = repr(self.key) if self.value is None else f"{self.key!r}, {self.value!r}"
        call = f"{self.f}({args})"
        if self.status is Status.OK:
            return call if self.output is None else f"{call} -> {self.output!r}"
        if self.status is Status.INFO:
            return f"{call} -> ?"
        return f"{call} failed"

    def __str__(self) -> str:
        end = "inf" if self.complete is None else f"{self.complete:g}"
        return f"#{self.id} {self.client}: {self.describe()} [{self.invoke:g}, {end}]"


def _check_time(name: str, time: object) -> float:
    if isinstance(time, bool) or not isinstance(time, int | float):
        raise TypeError(f"{name} must be a number of seconds (float), not {type(time).__name__}")
    value = float(time)
    if not math.isfinite(value):
        raise ValueError(
            f"{name} must be finite, not {value}; an operation whose outcome is unknown "
            "has no completion time: record it with History.info(op)"
        )
    return value


def _check_client(client: object) -> Client:
    if isinstance(client, bool) or not isinstance(client, str | int):
        raise TypeError(f"client must be a str or an int, not {type(client).__name__}")
    return client


def _check_key(key: object) -> Key:
    if key is not None and (isinstance(key, bool) or not isinstance(key, str | int)):
        raise TypeError(
            f"key must be a str, an int or None, not {type(key).__name__} ({key!r}); "
            "it is written as a JSON value and partitions the history"
        )
    return key


class History:
    """A concurrent history: operations recorded as clients invoke and complete them.

    Example::

        history = History()
        op = history.invoke("c1", "put", "x", 1, time=0.0)
        history.ok(op, None, time=0.5)
        op = history.invoke("c2", "get", "x", None, time=0.2)
        history.ok(op, 1, time=0.7)
        lost = history.invoke("c3", "put", "x", 2, time=0.3)
        history.info(lost)   # timed out: may or may not have happened

    An operation invoked and never completed counts as ``info``. Recording
    is safe from many asyncio tasks or threads; see the module docstring
    for the rules and the JSON-lines format.

    Without a ``time``, the order of the calls is the real-time order: the
    n-th event (invocation or completion) is at time n, which is right when
    each event is recorded as it happens. A history gives every event a
    time or none (mixing raises ``ValueError``): the caller's clock and the
    count of calls are not one clock. (Before this rule an event without a
    time was at 0, so a history recorded in order was all concurrent and
    said nothing.)
    """

    __slots__ = ("_latest", "_lock", "_open", "_ops", "_timed")

    def __init__(self) -> None:
        self._ops: list[Operation] = []
        self._open: set[int] = set()  # invoked, neither completed nor marked info
        self._lock = threading.Lock()
        self._latest = -1.0  # without times: the time of the latest event
        self._timed: bool | None = None  # whether events have times (None: none yet)

    def _stamp(self, time: float | None) -> float:
        """``time``, or the next event's number (the caller holds the lock).

        Raises:
            ValueError: the history's events so far had times and this one
                has none, or the other way round.
        """
        timed = time is not None
        if self._timed is not None and timed != self._timed:
            raise ValueError(
                "this history's events so far "
                + (
                    "have times: give this one a time too"
                    if self._timed
                    else "were recorded without times (in call order): record this one "
                    "without a time too"
                )
                + "; a history gives every event a time or none"
            )
        self._timed = timed
        if time is not None:
            return time
        self._latest += 1.0
        return self._latest

    # -- recording ---------------------------------------------------------------

    def invoke(
        self, client: Client, f: str, key: Key, value: Any = None, time: float | None = None
    ) -> int:
        """Record that ``client`` invoked ``f`` on ``key`` with ``value`` at ``time``.

        Without ``time``: the order of the calls (see the class docstring).

        Returns:
            The operation id, to pass to :meth:`ok`, :meth:`fail` or :meth:`info`.

        Raises:
            TypeError: ``client``, ``key``, ``f`` or ``time`` has the wrong type.
            ValueError: ``f`` is empty, ``time`` is not finite, or the history's
                other events do (or do not) have times where this one does not (or does).
        """
        client = _check_client(client)
        key = _check_key(key)
        if not isinstance(f, str) or not f:
            raise (TypeError if not isinstance(f, str) else ValueError)(
                f"the operation name f must be a non-empty str such as 'get' or 'put', not {f!r}"
            )
        given = None if time is None else _check_time("invoke time", time)
        with self._lock:
            start = self._stamp(given)
            op_id = len(self._ops)
            self._ops.append(
                Operation(op_id, client, f, key, value, start, None, None, Status.INFO)
            )
            self._open.add(op_id)
        return op_id

    def ok(self, op: int, output: Any = None, time: float | None = None) -> None:
        """Record that operation ``op`` completed at ``time`` and returned ``output``.

        Without ``time``: the order of the calls (see the class docstring).

        Raises:
            KeyError: ``op`` is not an id this history handed out.
            ValueError: ``op`` already ended, ``time`` is before its invocation, or
                the history's other events do (or do not) have times where this one
                does not (or does).
        """
        self._complete(op, Status.OK, output, time)

    def fail(self, op: int, time: float | None = None) -> None:
        """Record that operation ``op`` is known NOT to have taken effect (at ``time``).

        Without ``time``: the order of the calls (see the class docstring).

        A checker drops failed operations. Use :meth:`info` instead when the
        operation may have taken effect (a timeout, a lost connection).

        Raises:
            KeyError: ``op`` is not an id this history handed out.
            ValueError: ``op`` already ended, ``time`` is before its invocation, or
                the history's other events do (or do not) have times where this one
                does not (or does).
        """
        self._complete(op, Status.FAIL, None, time)

    def info(self, op: int) -> None:
        """Record that the outcome of operation ``op`` is unknown, for good.

        It may have taken effect at any time after its invocation, or never.
        Leaving an operation open has the same meaning; this call also
        guards against completing it later by mistake.

        Raises:
            KeyError: ``op`` is not an id this history handed out.
            ValueError: ``op`` already ended.
        """
        with self._lock:
            self._check_open(op)
            self._open.discard(op)

    def _check_open(self, op: int) -> Operation:
        if isinstance(op, bool) or not isinstance(op, int) or not 0 <= op < len(self._ops):
            held = f"ids 0..{len(self._ops) - 1}" if self._ops else "none invoked yet"
            raise KeyError(
                f"no operation {op!r} in this history ({held}); "
                "pass the id that History.invoke returned"
            )
        record = self._ops[op]
        if op not in self._open:
            ended = "marked info" if record.status is Status.INFO else f"completed {record.status}"
            raise ValueError(f"operation {op} ({record.describe()}) already {ended}; it ends once")
        return record

    def _complete(self, op: int, status: Status, output: Any, time: float | None) -> None:
        given = None if time is None else _check_time("completion time", time)
        with self._lock:
            record = self._check_open(op)
            end = self._stamp(given)
            if end < record.invoke:
                raise ValueError(
                    f"operation {op} ({record.describe()}) completes at {end:g}, before its "
                    f"invocation at {record.invoke:g}; times must come from one clock"
                )
            self._open.discard(op)
            self._ops[op] = Operation(
                record.id,
                record.client,
                record.f,
                record.key,
                record.value,
                record.invoke,
                end,
                output,
                status,
            )

    # -- reading -----------------------------------------------------------------

    @property
    def operations(self) -> tuple[Operation, ...]:
        """Every operation so far, by id (open ones as ``info``)."""
        with self._lock:
            return tuple(self._ops)

    @property
    def pending(self) -> tuple[int, ...]:
        """Ids of operations invoked and not yet completed nor marked ``info``."""
        with self._lock:
            return tuple(sorted(self._open))

    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations)

    def __getitem__(self, op: int) -> Operation:
        return self._ops[op]

    def __repr__(self) -> str:
        return f"<History of {len(self._ops)} operations>"

    @classmethod
    def from_operations(cls, operations: Iterable[Operation]) -> History:
        """A new history of ``operations`` (in the given order, renumbered from 0).

        Useful to edit a history: take ``history.operations``, replace or drop
        some with :func:`dataclasses.replace`, and build a new one.

        Raises:
            TypeError, ValueError: as :meth:`invoke` and :meth:`ok` would.
        """
        history = cls()
        for op in operations:
            history._append(op, where=f"operation {op.id}")
        return history

    def _append(self, op: Operation, where: str) -> None:
        try:
            op_id = self.invoke(op.client, op.f, op.key, op.value, op.invoke)
            if op.status is Status.OK:
                self.ok(op_id, op.output, _require_complete(op))
            elif op.status is Status.FAIL:
                self.fail(op_id, _require_complete(op))
            else:
                self.info(op_id)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}: {exc}") from None

    # -- JSON lines --------------------------------------------------------------

    def to_jsonl(self, target: str | os.PathLike[str] | IO[str]) -> None:
        """Write the history as JSON lines (see the module docstring) to a path or text file.

        Raises:
            ValueError: a value or output is not JSON-serializable.
        """
        if isinstance(target, str | os.PathLike):
            with open(target, "w", encoding="utf-8") as file:
                self._write(file)
        else:
            self._write(target)

    def _write(self, file: IO[str]) -> None:
        for op in self.operations:
            try:
                line = json.dumps(
                    op.to_json(), ensure_ascii=False, allow_nan=False, separators=(",", ":")
                )
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"operation {op.id} ({op.describe()}) cannot be written as JSON: {exc}; "
                    "values and outputs must be JSON data (str, int, float, bool, None, "
                    "lists and dicts of them)"
                ) from None
            file.write(line)
            file.write("\n")

    @classmethod
    def from_jsonl(cls, source: str | os.PathLike[str] | IO[str] | Iterable[str]) -> History:
        """Read a history written in the JSON-lines format from a path, a text file or lines.

        Raises:
            ValueError: a line is malformed; the message names the source and
                the line number (from 1) and says what is wrong.
        """
        if isinstance(source, str | os.PathLike):
            with open(source, encoding="utf-8") as file:
                return cls._read(file, os.fspath(source))
        return cls._read(source, getattr(source, "name", "<jsonl>"))

    @classmethod
    def _read(cls, lines: Iterable[str], name: object) -> History:
        history = cls()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{name}, line {number}"
            op = _parse_line(line, where)
            history._append(op, where)
        return history


def _require_complete(op: Operation) -> float:
    if op.complete is None:
        raise ValueError(f"an operation with status {op.status} needs a completion time, not None")
    return op.complete


_JSON_NAMES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _kind(value: object) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _parse_line(line: str, where: str) -> Operation:
    """One JSON line as an Operation (id 0: the history renumbers it)."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object with fields {', '.join(FIELDS)}")
    missing = [name for name in FIELDS if name not in obj]
    unknown = sorted(set(obj) - set(FIELDS))
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing field(s) {', '.join(map(repr, missing))}")
        if unknown:
            problems.append(f"unknown field(s) {', '.join(map(repr, unknown))}")
        raise ValueError(
            f"{where}: {'; '.join(problems)}; each line has exactly {', '.join(FIELDS)}"
        )

    def bad(field: str, expected: str) -> ValueError:
        return ValueError(f"{where}: {field} must be {expected}, not {_kind(obj[field])}")

    client, f, key, status_name = obj["client"], obj["operation"], obj["key"], obj["status"]
    invoke, complete, output = obj["invoke"], obj["complete"], obj["output"]
    if isinstance(client, bool) or not isinstance(client, str | int):
        raise bad("client", "a string or an integer")
    if not isinstance(f, str) or not f:
        raise bad("operation", "a non-empty string")
    if key is not None and (isinstance(key, bool) or not isinstance(key, str | int)):
        raise bad("key", "a string, an integer or null")
    if isinstance(invoke, bool) or not isinstance(invoke, int | float):
        raise bad("invoke", "a number")
    try:
        status = Status(status_name)
    except ValueError:
        raise ValueError(
            f'{where}: status must be "ok", "fail" or "info", not {status_name!r}'
        ) from None
    if status is Status.INFO:
        if complete is not None:
            raise ValueError(
                f"{where}: an info operation has complete: null (its outcome is unknown, "
                f"so it may take effect at any later time), not {complete!r}"
            )
    elif isinstance(complete, bool) or not isinstance(complete, int | float):
        raise bad("complete", f"a number for an operation with status {status}")
    if status is not Status.OK and output is not None:
        raise ValueError(
            f"{where}: an operation with status {status} has output: null, not {output!r}"
        )
    return Operation(
        0,
        client,
        f,
        key,
        obj["value"],
        float(invoke),
        None if complete is None else float(complete),
        output,
        status,
    )
