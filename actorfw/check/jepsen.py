"""Reading the operation log a Jepsen register test prints, as a :class:`History`.

Jepsen's clients log every operation they invoke and how it ended, one line
each, in the order they happened::

    INFO  jepsen.util - 3	:invoke	:cas	[3 0]
    INFO  jepsen.util - 3	:ok	:cas	[3 0]
    INFO  jepsen.util - 4	:info	:write	:timed-out

The fields after ``-`` are separated by tabs (or spaces, in copies that
lost them): the process (an integer), the type (``:invoke``, ``:ok``,
``:fail`` or ``:info``), the function (``:read``, ``:write``, ``:cas``)
and the value (``nil``, an integer, or ``[expected new]`` for a cas).
Lines without that shape (other log output) are skipped.
:func:`read_jepsen_log` turns such a log into a history of one register
(key ``None``) for :class:`~actorfw.check.models.Register`:

===================  ==========================================================
line                 in the history
===================  ==========================================================
``:invoke``          an operation of that process: ``read`` (value None),
                     ``write`` (the integer), ``cas`` (``[expected, new]``)
``:ok :read v``      completed; its output is ``v`` (None for ``nil``)
``:ok :write``       completed
``:ok :cas``         completed; output ``True`` (the swap happened)
``:fail :cas [a b]`` completed; output ``False``: the register did not hold
                     the expected value, which the check holds it to (as
                     the etcd test's own checker model does)
``:fail`` otherwise  known not to have taken effect (``fail``), a cas
                     failed without its values (``:timed-out``) included
``:info``            outcome unknown (``info``); so is an invocation the log
                     never completes
===================  ==========================================================

Times are the lines' positions, so two operations overlap unless one's
completion line comes before the other's invocation line (a line is
written after what it reports completed and before what it invokes, so
this only adds overlap). A process has one operation in flight at a time;
after ``:info`` its number is free again (Jepsen gives such a process a
new number anyway). A line that breaks that, a completion with no
invocation or of another function, an ``:ok`` write or cas with values
other than its invocation's, or an ``:ok`` read of anything but ``nil`` or
an integer, is refused with a ``ValueError`` naming the line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import IO, Any

from actorfw.check.history import History

__all__ = ["read_jepsen_log"]

_LINE = re.compile(r"jepsen\.util - (\d+)\s+:(invoke|ok|fail|info)\s+:([a-z-]+)\s+(.*)")
_INT = re.compile(r"-?\d+")
_PAIR = re.compile(r"\[(-?\d+) (-?\d+)\]")
_FUNCTIONS = ("read", "write", "cas")


def _value(text: str, where: str) -> Any:
    """A logged value: ``nil``, an integer, ``[a b]``, or a keyword (``:timed-out``)."""
    if text == "nil" or text.startswith(":"):
        return None
    if _INT.fullmatch(text):
        return int(text)
    pair = _PAIR.fullmatch(text)
    if pair:
        return [int(pair.group(1)), int(pair.group(2))]
    raise ValueError(f"{where}: a value that is not nil, an integer or [a b]: {text!r}")


def read_jepsen_log(source: str | os.PathLike[str] | IO[str] | Iterable[str]) -> History:
    """The history a Jepsen register test's log records (see the module documentation).

    Args:
        source: a path, an open text file, or the lines.

    Raises:
        ValueError: a line of the log's shape that breaks its rules (named).
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8") as file:
            return _read(file, str(source))
    return _read(source, "the log")


def _read(lines: Iterable[str], name: str) -> History:
    history = History()
    open_ops: dict[int, tuple[int, str, Any]] = {}  # process -> (operation, function, value)
    for number, line in enumerate(lines, 1):
        match = _LINE.search(line)
        if match is None:
            continue
        where = f"{name}, line {number}"
        process, kind, f = int(match.group(1)), match.group(2), match.group(3)
        text = match.group(4).strip()
        if f not in _FUNCTIONS:
            raise ValueError(f"{where}: the register log has no function {f!r}")
        value = _value(text, where)
        time = float(number)
        if kind == "invoke":
            if process in open_ops:
                raise ValueError(f"{where}: process {process} invokes with an operation in flight")
            if f == "write" and type(value) is not int:
                raise ValueError(f"{where}: a write of {text!r}, not an integer")
            if f == "cas" and type(value) is not list:
                raise ValueError(f"{where}: a cas of {text!r}, not [expected new]")
            op = history.invoke(process, f, None, value if f != "read" else None, time)
            open_ops[process] = (op, f, value)
            continue
        if process not in open_ops:
            raise ValueError(f"{where}: process {process} completes an operation it never invoked")
        op, invoked, asked = open_ops.pop(process)
        if invoked != f:
            raise ValueError(f"{where}: process {process} invoked {invoked!r} but completes {f!r}")
        reported = kind == "ok" or (kind == "fail" and value is not None)
        if f != "read" and reported and value != asked:  # a write's or cas's own values
            raise ValueError(f"{where}: process {process} completes {f} {text}, invoked {asked}")
        if kind == "info":
            history.info(op)
        elif kind == "fail":
            if f == "cas" and value is not None:  # the compare failed: an observation
                history.ok(op, False, time)
            else:
                history.fail(op, time)
        elif f == "read":
            if text != "nil" and type(value) is not int:
                raise ValueError(f"{where}: a read that returned {text!r}, not nil or an integer")
            history.ok(op, value, time)
        elif f == "cas":
            history.ok(op, True, time)
        else:
            history.ok(op, None, time)
    for op, _, _ in open_ops.values():
        history.info(op)
    return history
