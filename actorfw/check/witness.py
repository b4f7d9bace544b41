"""Shrinking a violation to a small witness: rule 7 of :mod:`actorfw.check.linearizability`."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence

from actorfw.check.models import Model
from actorfw.check.search import Outcome, Prepared, SearchResult, Steps, search

__all__ = ["OutOfTime", "shrink"]


class OutOfTime(Exception):
    """The budget ran out during minimization."""


_MAX_CULPRITS = 8  # operations set aside, one search each, to find a reference order


def shrink(
    ops: Sequence[Prepared],
    model: Model,
    deadline: float,
    refuted: SearchResult,
    *,
    max_memo: float = math.inf,
    steps: Steps | None = None,
) -> tuple[list[Prepared], bool]:
    """Shrink a non-linearizable partition (rule 7). Returns (witness, 1-minimal?).

    ``refuted`` is the search that found ``ops`` not linearizable. First cut
    the partition to a window around the first operation no valid order
    explains (the *culprit*): drop what was invoked after it completed and
    cannot be the source of what a kept operation read (when that prefix is
    refuted on its own, everything below works on it alone, and "the
    refutation" below is the prefix's), then as much as possible of what
    completed before it; then run ddmin. A candidate whose search needs many
    more steps than the refutation took is left undecided (dropping reads
    can free the order of many writes and blow the search up) and counts as
    not failing. The searches for the reference order, a few in all, may
    take more (at least ``_REFERENCE_STEPS`` each); one that gives up all
    the same leaves the prefix unshrunk: without the reference, a read's
    source is not known,
    and keeping any write of the value it read could keep one the real
    source overwrote, a conflict the history does not have. Every search
    remembers at most ``max_memo`` configurations; ``steps`` (the
    partition's transitions) is shared by all of them.
    """
    if steps is None:
        steps = Steps(model)
    ops, refuted = _refuted_prefix(ops, model, deadline, refuted, max_memo, steps)
    max_steps = _GIVE_UP_FACTOR * refuted.steps + _GIVE_UP_SLACK
    try:
        reference = _reference_order(
            ops, model, deadline, refuted, max(max_steps, _REFERENCE_STEPS), max_memo, steps
        )
    except OutOfTime:
        return list(ops), False
    if reference is None:
        return list(ops), False
    order, culprits = reference
    needs = _dependencies(ops, model, order, culprits)

    def admissible(subset: Iterable[int], kept: set[int]) -> bool:
        return all(not sources.isdisjoint(kept) for i in subset for sources in needs.get(i, ()))

    def fails(subset: Sequence[int]) -> bool | None:
        if not admissible(subset, set(subset)):
            return False  # it would lose the write that a kept operation read
        outcome = search(
            [ops[i] for i in subset],
            model,
            deadline,
            max_steps=max_steps,
            max_memo=max_memo,
            steps=steps,
        ).outcome
        if outcome is Outcome.TIMEOUT:
            raise OutOfTime
        return None if outcome is Outcome.GAVE_UP else outcome is Outcome.VIOLATION

    def closure(subset: Iterable[int]) -> list[int]:
        kept = set(subset)
        todo = list(kept)
        while todo:
            for sources in needs.get(todo.pop(), ()):
                if sources.isdisjoint(kept):
                    latest = max(sources, key=lambda j: (ops[j].invoke, j))
                    kept.add(latest)
                    todo.append(latest)
        return sorted(kept)

    items = list(range(len(ops)))
    try:
        if culprits:
            culprit = min(culprits, key=lambda i: (ops[i].complete, i))
            cut = closure(i for i in items if ops[i].invoke <= ops[culprit].complete)
            if len(cut) < len(items) and fails(cut):
                items = cut
            starts = sorted(
                {ops[i].complete for i in items if ops[i].complete < ops[culprit].invoke}
            )
            low, high = 0, len(starts) - 1
            while low <= high:  # the latest start whose window still fails
                middle = (low + high) // 2
                cut = closure([culprit, *(i for i in items if ops[i].complete >= starts[middle])])
                if fails(cut):
                    items, low = cut, middle + 1
                else:
                    high = middle - 1
        items, decided = _ddmin(items, fails)
    except OutOfTime as stop:
        return [ops[i] for i in (stop.args[0] if stop.args else items)], False
    return [ops[i] for i in items], decided


def _refuted_prefix(
    ops: Sequence[Prepared],
    model: Model,
    deadline: float,
    refuted: SearchResult,
    max_memo: float,
    steps: Steps,
) -> tuple[Sequence[Prepared], SearchResult]:
    """The prefix of ``ops`` at the culprit if it is refuted on its own, and the search that did.

    A prefix here is what was invoked by the time the culprit completed
    (nothing invoked later can be linearized before the culprit, so the
    longest valid order never reaches past it), plus what could be the source
    of what it read (:func:`_prefix`). When the prefix alone is not
    linearizable, a witness (and the reference order for it) can be sought
    in the prefix alone. That matters on real histories: refuting a prefix
    of 20 operations takes tens of steps where linearizing the 60 after it,
    for a reference order, took two million. A prefix that linearizes, or
    whose search takes more steps than a shrinking candidate may, leaves
    ``ops`` and ``refuted`` as they were. (Cutting the prefix's own prefix
    again changed no witness in many thousands of random histories.)
    """
    culprit = _first_unplaced(ops, refuted)
    prefix = _prefix(ops, model, ops[culprit].complete)
    if len(prefix) == len(ops):
        return ops, refuted
    searched = search(
        prefix,
        model,
        deadline,
        max_steps=_GIVE_UP_FACTOR * refuted.steps + _GIVE_UP_SLACK,
        max_memo=max_memo,
        steps=steps,
    )
    if searched.outcome is not Outcome.VIOLATION:
        return ops, refuted
    return prefix, searched


def _prefix(ops: Sequence[Prepared], model: Model, until: float) -> list[Prepared]:
    """What was invoked by ``until``, and every operation that could be the source of what it read.

    An ``ok`` operation kept here may complete after ``until``, and may have
    read (directly, or through a chain of writes each reading the one
    before) what an operation invoked after ``until`` wrote: whatever it
    read was linearized before it completed, so it was invoked by then.
    Dropping that write would turn a correct read into "a value nobody
    wrote", a conflict the history does not have. So every operation that
    may change the state and was invoked by the time a kept ``ok``
    operation completed (touching counts, as in the search) is kept too,
    until nothing more is added. An operation of
    unknown outcome needs no source kept: it can always not have taken
    effect, and whatever a kept ``ok`` operation read through it lies before
    that operation's completion.

    One pass in invocation order reaches what repeating "keep, then extend to
    the latest completion kept" would, without a pass per extension (a chain
    of overlapping writes across a long partition would take one per write).
    """
    limit = until  # the latest completion of an ``ok`` operation kept so far
    kept: set[int] = set()
    for i in sorted(range(len(ops)), key=lambda i: ops[i].invoke):
        p = ops[i]
        if p.invoke > limit:
            break  # and so is every later one: nothing kept can reach them
        if p.invoke <= until or not model.is_read_only(p.op.f):
            kept.add(i)
            if p.known and p.complete > limit:
                limit = p.complete
    return [p for i, p in enumerate(ops) if i in kept]


def _first_unplaced(ops: Sequence[Prepared], searched: SearchResult) -> int:
    """The ``ok`` operation outside ``searched``'s longest valid order that completes first."""
    placed = set(searched.order)
    return min(
        (j for j, p in enumerate(ops) if p.known and j not in placed),
        key=lambda j: (ops[j].complete, j),
    )


def _reference_order(
    ops: Sequence[Prepared],
    model: Model,
    deadline: float,
    refuted: SearchResult,
    max_steps: float,
    max_memo: float,
    steps: Steps,
) -> tuple[list[int], list[int]] | None:
    """A model-legal order of most operations, and the ``ok`` ones it leaves out (culprits).

    Set aside the unplaced ``ok`` operation that completes first after the
    longest valid order found, search again, and repeat until what remains
    is linearizable: its linearization is the reference. After
    ``_MAX_CULPRITS`` tries, extend the longest valid order instead with the
    other ``ok`` operations in invocation order where the model allows
    (legal, though maybe not in real-time order). ``None`` if a search needs
    more than ``max_steps``; :class:`OutOfTime` past the deadline.
    """
    remaining = list(range(len(ops)))
    culprits: list[int] = []
    searched = refuted
    for _ in range(_MAX_CULPRITS):
        if searched.outcome is Outcome.LINEARIZABLE:
            return [remaining[j] for j in searched.order], culprits
        first = _first_unplaced([ops[i] for i in remaining], searched)
        culprits.append(remaining.pop(first))
        searched = search(
            [ops[i] for i in remaining],
            model,
            deadline,
            max_steps=max_steps,
            max_memo=max_memo,
            steps=steps,
        )
        if searched.outcome is Outcome.TIMEOUT:
            raise OutOfTime
        if searched.outcome is Outcome.GAVE_UP:
            return None
    if searched.outcome is Outcome.LINEARIZABLE:
        return [remaining[j] for j in searched.order], culprits
    order = [remaining[j] for j in searched.order]
    placed = set(order)
    state = searched.state
    rest = [i for i in remaining if ops[i].known and i not in placed]
    for i in sorted(rest, key=lambda i: (ops[i].invoke, i)):
        legal, after = model.step(state, ops[i].op.f, ops[i].value, ops[i].output)
        if legal:
            order.append(i)
            state = after
        else:
            culprits.append(i)
    return order, culprits


def _dependencies(
    ops: Sequence[Prepared], model: Model, order: Sequence[int], culprits: Sequence[int]
) -> dict[int, list[frozenset[int]]]:
    """For each operation, sets of operations of which a witness keeping it must keep one.

    In the reference ``order``, an operation read from the last operation
    before it that changed the state (none when it read the initial state,
    or when it ignores the state as a put does). A culprit falls back on the
    model's :meth:`~Model.observes` and :meth:`~Model.installs`: it needs one
    of the operations that wrote a value it observed. Either way only an
    operation invoked before the reader completed counts as a source (a
    write that came after a read cannot be what it read); a read with no
    such source needs nothing.
    """
    needs: dict[int, list[frozenset[int]]] = {}
    state = model.init()
    last_change: int | None = None
    for i in order:
        p = ops[i]
        legal, after = model.step(state, p.op.f, p.value, p.output)
        if not legal:  # a broken invariant: the order was checked step by step
            raise AssertionError(f"reference order: {p.op} is not legal in {state!r}")
        if (
            last_change is not None
            and _could_read(ops, i, last_change)
            and not _blind(model, p, after)
        ):
            needs[i] = [frozenset((last_change,))]
        if after != state:
            last_change = i
        state = after
    writers: dict[Hashable, set[int]] = {}
    for i, p in enumerate(ops):
        for value in model.installs(p.op.f, p.value, p.output):
            writers.setdefault(value, set()).add(i)
    for i in culprits:
        p = ops[i]
        for value in model.observes(p.op.f, p.value, p.output):
            sources = frozenset(j for j in writers.get(value, ()) if _could_read(ops, i, j))
            if sources:
                needs.setdefault(i, []).append(sources)
    return needs


def _could_read(ops: Sequence[Prepared], i: int, j: int) -> bool:
    """Whether operation ``i`` could have read what ``j`` wrote: ``j`` is another operation,
    invoked before ``i`` completed (touching counts, as in the search)."""
    return j != i and ops[j].invoke <= ops[i].complete


_PROBE = object()  # a state no model knows: an operation that ignores the state is blind to it


def _blind(model: Model, p: Prepared, after: Hashable) -> bool:
    """Whether ``p`` ignores the state: legal from a state no model knows, to the same end."""
    try:
        legal, probed = model.step(_PROBE, p.op.f, p.value, p.output)
    except Exception:  # a model may reject a state it does not know: not blind
        return False
    return legal and probed == after


_GIVE_UP_FACTOR = 4
_GIVE_UP_SLACK = 50_000
_REFERENCE_STEPS = 2_000_000
"""Steps a search for the reference order may take at least. Refuting may take few steps
where linearizing the rest takes many more: without the cut to the refuted prefix, 7 of
the first 14 of Jepsen's etcd logs gave up at a candidate's bound and left the whole
history as the witness. With the cut this is rarer, but an ``ok`` read that spans the
culprit keeps, in the prefix, every write invoked before it completed, however hard they
are to order. Two million compiled steps take a few tens of milliseconds."""


def _ddmin(
    items: list[int], fails: Callable[[Sequence[int]], bool | None]
) -> tuple[list[int], bool]:
    """Zeller's ddmin: a sublist of ``items`` (which fails) that still fails.

    ``fails`` may answer ``None`` (undecided), taken as "does not fail".
    Returns the sublist and whether it is 1-minimal: every single removal
    was decided and does not fail.

    Raises:
        OutOfTime: with the smallest failing list found so far as its argument.
    """
    granularity = 2
    decided = True
    try:
        while len(items) >= 2:
            size = len(items)
            bounds = [size * k // granularity for k in range(granularity + 1)]
            decided = True
            smaller = None
            for k in range(granularity):
                answer = fails(items[bounds[k] : bounds[k + 1]])
                decided = decided and answer is not None
                if answer:
                    smaller = items[bounds[k] : bounds[k + 1]]
                    break
            if smaller is not None:
                items, granularity = smaller, 2
                continue
            if granularity > 2:  # with two chunks, the complements are the chunks
                for k in range(granularity):
                    complement = items[: bounds[k]] + items[bounds[k + 1] :]
                    answer = fails(complement)
                    decided = decided and answer is not None
                    if answer:
                        smaller = complement
                        break
                if smaller is not None:
                    items, granularity = smaller, max(granularity - 1, 2)
                    continue
            if granularity >= size:
                break
            granularity = min(size, 2 * granularity)
    except OutOfTime:
        raise OutOfTime(items) from None
    return items, decided or len(items) == 1
