"""Checking a recorded history for linearizability, and shrinking a violation to a witness.

A history is *linearizable* against a sequential model when every operation
can be given a single instant, between its invocation and its completion, so
that the operations taken one at a time in the order of those instants are a
legal run of the model with the outputs the clients saw (Herlihy and Wing,
1990). :func:`check` decides it with the search of Wing and Gong (1993) as
improved by Lowe (2017), the algorithm of Knossos and Porcupine.

Theory of operation
-------------------

1. **Preparation.** ``fail`` operations never took effect and are dropped.
   ``info`` operations (outcome unknown) complete at +infinity; those the
   model calls read-only are dropped too, as they can neither constrain nor
   change anything. Values are frozen (:func:`actorfw.check.models.freeze`).
2. **Partitions.** When the model is P-compositional (its
   :meth:`~actorfw.check.models.Model.partition_key` says so, as for
   :class:`~actorfw.check.models.KeyValue`), each key's operations are
   checked alone: the history is linearizable iff every partition is. The
   partitions are searched side by side, a slice of steps each in turn, so
   one hard key cannot use up the time of the others; a violation on any
   key ends the search at once, and each key gets its own verdict.
3. **Events.** Each operation gives a *call* event at its invocation and,
   if ``ok``, a *return* event at its completion; ``info`` operations have no
   return. Events are sorted by time, calls before returns at equal times
   (so touching operations count as concurrent: never a false alarm), into a
   doubly linked list.
4. **Search.** Depth-first, from the head of the list: at a call, try to
   *linearize* that operation now: if the model accepts it in the current
   state, push (operation, old state), remove its call and return from the
   list ("lift") and start again from the head; if not, move to the next
   entry. Reaching a return means the operation it ends was not
   linearized while it could be: backtrack by popping the last operation,
   restoring its state and its entries, and trying the entry after its
   call. That is the *time order*. In the *unknown-last order* each point
   is scanned twice, for ``ok`` operations first and then, from the head
   again, for ``info`` ones; a return backtracks only in the second scan,
   and a popped operation's next entry is tried in the scan that chose it.
   The first order suits a history whose ``info`` operations mostly took
   effect (tried where they were invoked, they are found at once), the
   second one whose ``info`` operations mostly did not (a client cut off
   from the cluster gives up on commands that never reached it); with many
   of them in flight, the wrong order explores every subset. Both are
   complete. A partition with ``info`` operations is searched in both
   orders side by side, 1,024 steps of one then of the other, until one
   decides: at most twice the steps of the order that suits it. The history
   is linearizable as soon as every ``ok`` operation is linearized (the
   ``info`` ones left over are those that never took effect); it is not if
   the stack is empty when backtracking is needed.
5. **Pruning.** A configuration is the set of linearized operations (a
   bitset: compact words in the compiled kernel, see
   :mod:`actorfw._pure.search`) and the model state (interned as an id).
   The search runs in the kernel of :mod:`actorfw.kernels`, a slice of
   steps at a time (:mod:`actorfw.check.search`). The search enters each
   configuration at most once (Lowe's memoization), as one that was entered
   before either led to success (the search would have stopped) or cannot.
   And a completed read (:meth:`~actorfw.check.models.Model.is_read_only`)
   that is legal where it is tried might as well be linearized there: any
   valid order that places it later stays valid with it moved here (it
   changes no state, and everything that completed before it was invoked is
   already placed). So when backtracking undoes such a read, no other choice
   at that point is tried either; the search backtracks once more.
6. **Budget.** The only clock read is :func:`time.monotonic`, every 1024
   search steps (including before the first), against ``timeout``, less
   the time that freeing the search's memo table will take (it is bounded
   by ``max_memo``). When it runs out the verdict is ``unknown``: no answer
   rather than a wrong one. :func:`check` returns within
   :data:`TIMEOUT_SLACK` of its timeout. Shrinking a violation has a budget
   of its own (``minimize_timeout``), taken after the verdict is known.
7. **Minimization.** For a violation, the failing partition is shrunk to a
   small witness. Removing an operation is not always a weakening (drop the
   write a read returned and the read becomes "a value nobody wrote", true
   but not the bug), so a candidate must keep, for each operation it keeps,
   the write that operation read from. That comes from a *reference order*.
   First the partition is cut to what was invoked by the time the first
   operation the longest valid order could not place (a *culprit*)
   completed: nothing invoked later could come before it, so the search's
   deepest configuration shows that this prefix alone is not linearizable
   (it is searched again to be sure; if it is not refuted, the whole
   partition is kept). The cut also keeps every operation that may change
   the state and was invoked by the time a kept ``ok`` operation completed
   (it could be what that operation read), and so on for those it adds. In
   the prefix, set aside the culprit and search again, until the rest is
   linearizable; in its
   linearization an operation read from the last operation before it that
   changed the state, unless it ignores the state (a put); only an
   operation invoked before the reader completed can be its source (a
   write that came after a read is never taken for what it read). Any subset of a
   valid order closed that way is itself linearizable, so the witness holds
   a real conflict, not a hole made by the shrinking. A culprit needs one of
   the operations that wrote a value it observed
   (:meth:`~actorfw.check.models.Model.observes`). Then: cut to a window
   around the first culprit (drop what was invoked after it completed, and
   as much as still fails of what completed before it), and run delta
   debugging (Zeller's ddmin), removing chunks and then single operations
   while the rest still fails. A candidate that needs many more search
   steps than refuting the prefix did is left undecided and counts as not
   failing (dropping reads can free the order of many writes). A search for
   the reference order may take more (at least two million steps); one that
   gives up all the same leaves the prefix as the witness, not minimized.
   When
   ddmin finishes with every single removal decided, the witness is
   1-minimal: removing any one operation makes it linearizable or drops a
   write that a kept operation read.

Complexity: linearizability checking is NP-complete (Gibbons and Korach,
1997). The configurations are at most ``2**n`` sets times the reachable
states, but the search visits only those reachable in real-time order: for
``c`` operations in flight at any time, at most about ``n * 2**c`` sets, and
a linearizable history is usually found on the first descent, in ``O(n * c)``
steps. ``info`` operations stay in flight to the end, so each one on a key
can double that key's search in the order that does not suit the history
(rule 4); refuting pays for every subset either way. A violation must rule
out every reachable configuration, and each ddmin round repeats the search
on a smaller history.
"""

from __future__ import annotations

import enum
import math
import textwrap
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from actorfw.check.history import History, Operation, Status
from actorfw.check.models import Model
from actorfw.check.search import (
    Outcome,
    Prepared,
    SearchResult,
    Steps,
    deciding,
    prepare,
    search,
)
from actorfw.check.witness import shrink

__all__ = ["DEFAULT_MAX_MEMO", "TIMEOUT_SLACK", "CheckResult", "Verdict", "check"]

DEFAULT_MAX_MEMO = 4_000_000
"""Configurations a search remembers at most by default (about 600 MB at most)."""

TIMEOUT_SLACK = 0.1
"""Seconds :func:`check` may return after its timeout, at most (a stated bound, tested)."""


class Verdict(enum.StrEnum):
    """The answer of :func:`check`."""

    OK = "ok"
    """Linearizable: every partition has a valid order."""
    VIOLATION = "violation"
    """Not linearizable: some partition has no valid order (a proof, not a guess)."""
    UNKNOWN = "unknown"
    """The time budget ran out before every partition was decided, and none violated."""


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check` found. ``str(result)`` explains it in a few lines.

    Attributes:
        verdict: ok, violation or unknown.
        model: the model's name.
        partitions: how many partitions (keys) the history has.
        operations_checked: operations searched (without ``fail`` ones and
            reads of unknown outcome).
        elapsed: seconds the check took (monotonic clock).
        key: the partition of the violation (the first, in history order),
            or for ``unknown`` the first one left undecided; else ``None``.
        violating_keys: every partition found not linearizable.
        unknown_keys: partitions left undecided when the budget ran out.
        operations: the operations of partition ``key`` as checked.
        minimal: for a violation, the smallest non-linearizable sub-history of
            ``operations`` found (all of them if minimization was off).
        minimized: whether minimization ran to the end (``minimal`` is 1-minimal).
        longest_order: the longest valid order of ``minimal`` the search found.
        state_after: the model state after ``longest_order``, described.
        stuck: why each other operation of ``minimal`` cannot come next, one
            line each.
        verdicts: every partition's (key's) own verdict: ``ok`` (also at
            once for a key with nothing to order: its operations all failed,
            or were reads of unknown outcome), ``violation``, or
            ``unknown`` (not decided in time, or not yet when a violation on
            another key ended the search).
    """

    verdict: Verdict
    model: str
    partitions: int
    operations_checked: int
    elapsed: float
    key: Hashable = None
    violating_keys: tuple[Hashable, ...] = ()
    unknown_keys: tuple[Hashable, ...] = ()
    operations: tuple[Operation, ...] = ()
    minimal: tuple[Operation, ...] = ()
    minimized: bool = False
    longest_order: tuple[Operation, ...] = ()
    state_after: str | None = None
    stuck: tuple[str, ...] = ()
    verdicts: Mapping[Hashable, Verdict] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the verdict is :attr:`Verdict.OK`."""
        return self.verdict is Verdict.OK

    def __str__(self) -> str:
        if self.verdict is Verdict.OK:
            return (
                f"linearizable ({self.model} model): a valid order exists for "
                f"{_plural(self.operations_checked, 'operation')} in "
                f"{_plural(self.partitions, 'partition')} (checked in {self.elapsed:.3g} s)"
            )
        undecided = (
            f"{_plural(len(self.unknown_keys), 'partition')} of {self.partitions} left undecided "
            f"when the time or step budget ran out ({_keys(self.unknown_keys)})"
        )
        if self.verdict is Verdict.UNKNOWN:
            return (
                f"unknown ({self.model} model): no violation found, but {undecided}; "
                "give a larger timeout (check()'s timeout or max_steps, or --timeout), or record "
                "fewer concurrent or info operations"
            )
        lines = textwrap.wrap(
            f"not linearizable ({self.model} model): the {len(self.operations)} operations on "
            f"key {self.key!r} have no order that is consistent with both their real-time "
            f"order and the model"
            + (
                f" ({len(self.violating_keys)} of {self.partitions} keys violate: "
                f"{_keys(self.violating_keys)})"
                if len(self.violating_keys) > 1
                else ""
            )
            + ".",
            _WIDTH,
        )
        if self.unknown_keys:
            lines += textwrap.wrap(f"Also {undecided}.", _WIDTH)
        if self.minimized:
            how = (
                "removing any one of them makes it linearizable or leaves a read "
                "without the write it read"
            )
        else:
            how = (
                "not minimized to the end: minimization was off or the time budget ran "
                "out, so it may shrink further"
            )
        lines += [
            "",
            *textwrap.wrap(
                f"Smallest non-linearizable sub-history found: {len(self.minimal)} of "
                f"{len(self.operations)} operations ({how}):",
                _WIDTH,
            ),
            "",
            *_table(self.minimal),
        ]
        if self.state_after is not None:
            shown = self.longest_order[-_SHOWN:]
            order = ", ".join(op.describe() for op in shown) or "nothing"
            if len(self.longest_order) > len(shown):
                order = f"{len(self.longest_order) - len(shown)} operations, then {order}"
            lines += [
                "",
                *textwrap.wrap(
                    f"The longest valid order of these that the search found: {order}; "
                    f"the state is then {self.state_after}, and no other operation can "
                    "come next:",
                    _WIDTH,
                ),
                *(f"  - {why}" for why in self.stuck),
            ]
        return "\n".join(lines)


_WIDTH = 88
_SHOWN = 40  # operations listed in a report, at most
_STUCK_SHOWN = 12  # operations whose reasons are listed, at most


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _keys(keys: Sequence[Hashable], limit: int = 5) -> str:
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _table(ops: Iterable[Operation]) -> list[str]:
    ordered = sorted(ops, key=lambda o: (o.invoke, o.id))
    rows = [("id", "client", "invoke", "complete", "operation")]
    for op in ordered[:_SHOWN]:
        end = "inf" if op.complete is None or op.status is Status.INFO else f"{op.complete:g}"
        rows.append((str(op.id), str(op.client), f"{op.invoke:g}", end, op.describe()))
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    return [
        "  "
        + "  ".join(
            cell.rjust(w) if k != 1 else cell.ljust(w)
            for k, (cell, w) in enumerate(zip(row, widths, strict=False))
        )
        + "  "
        + row[4]
        for row in rows
    ] + ([f"  ... and {len(ordered) - _SHOWN} more"] if len(ordered) > _SHOWN else [])


# -- the entry point -----------------------------------------------------------------


def check(
    history: History | Iterable[Operation],
    model: Model,
    timeout: float | None = None,
    *,
    minimize: bool = True,
    minimize_timeout: float | None = None,
    max_memo: int | None = DEFAULT_MAX_MEMO,
    max_steps: int | None = None,
    kernel: ModuleType | None = None,
) -> CheckResult:
    """Check whether ``history`` is linearizable against ``model``.

    Args:
        history: a :class:`~actorfw.check.history.History`, or its operations.
        model: the sequential specification, such as
            :class:`~actorfw.check.models.KeyValue` or
            :class:`~actorfw.check.models.Register`.
        timeout: wall-clock seconds for the whole check, minimization
            included (``None``: no limit); it returns within
            :data:`TIMEOUT_SLACK` of it. Partitions are searched side by
            side, a slice of steps each in turn, so each has its share of
            the time (rule 2); one that runs out is reported ``unknown`` by
            name while the others are decided. A violation on any partition
            ends the search at once.
        minimize: shrink a violation to a small witness (rule 7).
        minimize_timeout: seconds the shrinking may take at most, on top of
            the search (and within ``timeout``); ``None``: what ``timeout``
            leaves. The verdict does not wait on it: when it runs out, the
            smallest witness found so far is reported, ``minimized`` False.
        max_memo: configurations each search remembers at most (rule 5);
            past that it goes on without remembering more, so memory stays
            bounded (``None``: no bound). About 150 bytes each.
        max_steps: search steps each key may take at most (in each of the
            two orders of rule 4); a key that needs more is ``unknown``.
            Counted, not timed: a verdict under it is the same on every
            machine, however busy (for tests; ``None``: no bound).
        kernel: the search kernel module to run (``None``: the one
            :mod:`actorfw.kernels` selected); a benchmark passes
            ``actorfw.kernels.load("pure")["search"]`` to time the pure
            twin beside the compiled kernel in one process.

    Returns:
        A :class:`CheckResult`; ``str()`` of it explains the verdict.

    Raises:
        TypeError: ``model`` is not a Model, or an operation is not an Operation.
        ValueError: ``timeout`` is negative, or the model cannot interpret an
            operation (an unknown operation name, a malformed value); the
            message names the operation.

    Example::

        history = History()
        a = history.invoke("c1", "put", "x", 1, time=0.0)
        history.ok(a, None, time=1.0)
        b = history.invoke("c2", "get", "x", time=2.0)
        history.ok(b, None, time=3.0)  # reads "absent" after the put completed
        result = check(history, KeyValue())
        assert result.verdict is Verdict.VIOLATION and result.key == "x"
    """
    if not isinstance(model, Model):
        raise TypeError(
            "model must be an actorfw.check Model such as KeyValue() or Register(), "
            + (
                f"not the class {model.__name__}: call it ({model.__name__}())"
                if isinstance(model, type)
                else f"not {type(model).__name__}"
            )
        )
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0
    ):
        raise ValueError(f"timeout must be None or a number of seconds >= 0, not {timeout!r}")
    if minimize_timeout is not None and not (
        isinstance(minimize_timeout, int | float)
        and not isinstance(minimize_timeout, bool)
        and minimize_timeout >= 0
    ):
        raise ValueError(
            f"minimize_timeout must be None or a number of seconds >= 0, not {minimize_timeout!r}"
        )
    if max_steps is not None and not (
        isinstance(max_steps, int) and not isinstance(max_steps, bool) and max_steps >= 0
    ):
        raise ValueError(f"max_steps must be None or an int >= 0, not {max_steps!r}")
    if max_memo is not None and not (
        isinstance(max_memo, int) and not isinstance(max_memo, bool) and max_memo >= 0
    ):
        raise ValueError(f"max_memo must be None or an int >= 0, not {max_memo!r}")
    memo = math.inf if max_memo is None else max_memo
    start = time.monotonic()
    deadline = math.inf if timeout is None else start + timeout

    partitions: dict[Hashable, list[Prepared]] = {}
    for op in history.operations if isinstance(history, History) else history:
        if not isinstance(op, Operation):
            raise TypeError(
                f"a history holds Operation records, not {type(op).__name__}; pass a History"
            )
        model.validate(op)
        key = model.partition_key(op)
        part = partitions.setdefault(key, [])
        if op.status is Status.FAIL:
            continue
        known = op.status is Status.OK
        if not known and model.is_read_only(op.f):
            continue
        part.append(prepare(op, known))

    steps = math.inf if max_steps is None else max_steps
    tables = {key: Steps(model, kernel, memo) for key in partitions}
    violating, verdicts, undecided = _decide_all(partitions, tables, model, deadline, memo, steps)

    checked = sum(len(ops) for ops in partitions.values())
    common: dict[str, Any] = {
        "model": model.name,
        "partitions": len(partitions),
        "operations_checked": checked,
        "violating_keys": tuple(violating),
        "unknown_keys": tuple(undecided),
        "verdicts": verdicts,
    }
    if not violating:
        verdict = Verdict.UNKNOWN if undecided else Verdict.OK
        return CheckResult(
            verdict,
            elapsed=time.monotonic() - start,
            key=undecided[0] if undecided else None,
            **common,
        )

    key = next(iter(violating))
    ops = partitions[key]
    budget = deadline
    if minimize_timeout is not None:
        budget = min(deadline, time.monotonic() + minimize_timeout)
    if minimize:
        witness, minimized = shrink(
            ops, model, budget, violating[key], max_memo=memo, steps=tables[key]
        )
    else:
        witness, minimized = list(ops), False
    # The refuting search already explains the whole partition; a witness needs its own.
    explained = violating[key]
    if len(witness) < len(ops):
        explained = search(witness, model, budget, max_memo=memo, steps=tables[key])
    order: tuple[Operation, ...] = ()
    state_after = None
    stuck: tuple[str, ...] = ()
    if explained.outcome is Outcome.VIOLATION:
        order = tuple(witness[i].op for i in explained.order)
        state_after = model.describe_state(explained.state)
        stuck = _stuck(witness, explained, model)
    return CheckResult(
        Verdict.VIOLATION,
        elapsed=time.monotonic() - start,
        key=key,
        operations=tuple(p.op for p in ops),
        minimal=tuple(p.op for p in witness),
        minimized=minimized,
        longest_order=order,
        state_after=state_after,
        stuck=stuck,
        **common,
    )


def _decide_all(
    partitions: dict[Hashable, list[Prepared]],
    tables: dict[Hashable, Steps],
    model: Model,
    deadline: float,
    memo: float,
    steps: float,
) -> tuple[dict[Hashable, SearchResult], dict[Hashable, Verdict], list[Hashable]]:
    """Search every partition side by side, a slice each in turn, until all are decided,
    one violates, or time runs out (rule 2).

    Returns the refuting searches by key, every key's verdict (``unknown``: not
    decided in time or steps, or not yet when a violation ended the search; ``ok``
    at once for a key with nothing to order), and
    the keys that ran out of time or steps.
    """
    verdicts = {key: Verdict.UNKNOWN if ops else Verdict.OK for key, ops in partitions.items()}
    running = {
        key: deciding(ops, model, deadline, max_memo=memo, max_steps=steps, steps=tables[key])
        for key, ops in partitions.items()
        if ops
    }
    violating: dict[Hashable, SearchResult] = {}
    timed_out: list[Hashable] = []
    try:
        while running and not violating:
            for key, run in list(running.items()):
                try:
                    next(run)
                except StopIteration as done:
                    del running[key]
                    outcome = done.value.outcome
                    if outcome is Outcome.VIOLATION:
                        violating[key] = done.value
                        verdicts[key] = Verdict.VIOLATION
                        break
                    if outcome is Outcome.LINEARIZABLE:
                        verdicts[key] = Verdict.OK
                    else:
                        timed_out.append(key)
    finally:
        for run in running.values():
            run.close()  # their memo tables go now, within the deadline
    return violating, verdicts, timed_out


def _stuck(witness: Sequence[Prepared], explained: SearchResult, model: Model) -> tuple[str, ...]:
    """Why each operation left out of the longest order cannot be linearized next."""
    done = set(explained.order)
    left = sorted((p for i, p in enumerate(witness) if i not in done), key=lambda p: p.invoke)
    state = model.describe_state(explained.state)
    first = min((q for q in left if q.known), key=lambda q: q.complete, default=None)
    reasons = []
    for p in left[:_STUCK_SHOWN]:
        if first is not None and first.complete < p.invoke:
            why = f"must come after #{first.op.id} {first.op.describe()}, which completed first"
        elif not model.step(explained.state, p.op.f, p.value, p.output)[0]:
            why = f"not legal when the state is {state}"
        else:
            why = "legal there, but every order that goes on from it fails later"
        if not p.known:
            why += " (its outcome is unknown, so leaving it out was tried too)"
        reasons.append(f"#{p.op.id} {p.op.describe()}: {why}")
    if len(left) > _STUCK_SHOWN:
        reasons.append(f"... and {len(left) - _STUCK_SHOWN} more")
    return tuple(reasons)
