"""The kernel benchmark workloads: vector clocks and Paxos ballots, sized like real use."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["BATCH_COMPARE_SIZE", "CLOCK_SIZES", "SLOT_BATCHES", "Case", "kernel_cases"]

CLOCK_SIZES = (4, 16, 64, 256)
"""Number of nodes in the benchmarked vector clocks."""
SLOT_BATCHES = (1, 64, 1024)
"""Number of slots in the benchmarked ballot and pvalue batches."""
BATCH_COMPARE_SIZE = 10_000
"""How many clocks one ``compare_many`` call compares against."""
QUORUM = 3
"""Acceptors whose reports ``pmax`` combines."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark workload.

    Attributes:
        operation: what is measured, e.g. ``"vclock.compare"``.
        size: the workload size, e.g. ``"16 nodes"``.
        kernel: which kernel module ``build`` needs (``"vclock"`` or ``"ballot"``).
        build: given that kernel module, returns ``(function, args)``; the
            measured call is ``function(*args)``.
        items: elementary operations per call (10,000 for a batch compare).
        item: what one of those is called, for per-item figures.
        inner: calls per timed run (see :meth:`timed`).
    """

    operation: str
    size: str
    kernel: str
    build: Callable[[ModuleType], tuple[Callable[..., Any], tuple[Any, ...]]]
    items: int = 1
    item: str = "call"
    inner: int = 100

    @property
    def name(self) -> str:
        """``operation[size]``, unique among the cases."""
        return f"{self.operation}[{self.size.replace(' ', '-')}]"

    def timed(self, module: ModuleType) -> Callable[[], None]:
        """A function that makes ``inner`` calls of this case on ``module``.

        A plain loop of direct calls, as application code makes them: a
        timer calling the kernel once per run (often through ``f(*args,
        **kwargs)``) would add more overhead than a small kernel costs.
        Divide a run's time by ``inner`` for the time per call.
        """
        function, args = self.build(module)
        return _loop(function, args, range(self.inner))


def _loop(function: Callable[..., Any], args: tuple[Any, ...], calls: range) -> Callable[[], None]:
    if len(args) == 0:

        def run0() -> None:
            for _ in calls:
                function()

        return run0
    if len(args) == 1:
        (a,) = args

        def run1() -> None:
            for _ in calls:
                function(a)

        return run1
    if len(args) == 2:
        a, b = args

        def run2() -> None:
            for _ in calls:
                function(a, b)

        return run2

    def run() -> None:
        for _ in calls:
            function(*args)

    return run


def _counters(nodes: int, seed: int) -> dict[str, int]:
    rnd = random.Random(seed)
    return {f"n{i}": rnd.randint(1, 1_000_000) for i in range(nodes)}


def _bumped(base: dict[str, int], up: list[str], down: list[str]) -> dict[str, int]:
    out = dict(base)
    for node in up:
        out[node] += 1
    for node in down:
        out[node] -= 1
    return out


def _compare(nodes: int) -> Case:
    # b is a with one counter raised: a full pass, no early exit (BEFORE).
    def build(m: ModuleType) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        base = _counters(nodes, nodes)
        a = m.VectorClock(base)
        b = m.VectorClock(_bumped(base, [f"n{nodes // 2}"], []))
        return a.compare, (b,)

    return Case("vclock.compare", f"{nodes} nodes", "vclock", build)


def _merge_pair(m: ModuleType, nodes: int) -> tuple[Any, Any]:
    # Two concurrent clocks over the same nodes, each ahead on half of them.
    base = _counters(nodes, nodes)
    names = list(base)
    a = m.VectorClock(_bumped(base, names[0::2], []))
    b = m.VectorClock(_bumped(base, names[1::2], []))
    return a, b


def _merge(nodes: int) -> Case:
    def build(m: ModuleType) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        a, b = _merge_pair(m, nodes)
        return a.merge, (b,)

    return Case("vclock.merge", f"{nodes} nodes", "vclock", build)


def _merge_in(nodes: int) -> Case:
    # After the first call the target already covers the other clock: the
    # steady state of merging each received clock into a local one.
    def build(m: ModuleType) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        a, b = _merge_pair(m, nodes)
        return a.merge_in, (b,)

    return Case("vclock.merge_in", f"{nodes} nodes", "vclock", build)


def _encode(nodes: int) -> Case:
    def build(m: ModuleType) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return m.VectorClock(_counters(nodes, nodes)).encode, ()

    return Case("vclock.encode", f"{nodes} nodes", "vclock", build)


def _decode(nodes: int) -> Case:
    def build(m: ModuleType) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        data = m.VectorClock(_counters(nodes, nodes)).encode()
        return m.VectorClock.decode, (data,)

    return Case("vclock.decode", f"{nodes} nodes", "vclock", build)


def _compare_many(nodes: int) -> Case:
    # 10,000 clocks near the base: equal, one counter up, one down, or both
    # (concurrent); three of the four kinds need a full pass.
    def build(m: ModuleType) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        base = _counters(nodes, nodes)
        names = list(base)
        rnd = random.Random(nodes + 1)
        others = []
        for i in range(BATCH_COMPARE_SIZE):
            kind = i % 4
            raised, lowered = rnd.sample(names, 2)
            up = [raised] if kind in (1, 3) else []
            down = [lowered] if kind in (2, 3) else []
            others.append(m.VectorClock(_bumped(base, up, down)))
        return m.VectorClock(base).compare_many, (others,)

    return Case(
        "vclock.compare_many",
        f"{nodes} nodes",
        "vclock",
        build,
        items=BATCH_COMPARE_SIZE,
        item="comparison",
        inner=1,
    )


def _phase1() -> Case:
    def build(m: ModuleType) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return m.phase1, (m.make_ballot(41, 2), m.make_ballot(42, 1))

    return Case("ballot.phase1", "1 ballot", "ballot", build)


def _next_ballot() -> Case:
    def build(m: ModuleType) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return m.next_ballot, (m.make_ballot(41, 2), 1)

    return Case("ballot.next_ballot", "1 ballot", "ballot", build)


def _phase2(slots: int) -> Case:
    # A p2a batch of consecutive slots whose ballots are all at or above the
    # promise, as a stable leader sends them.
    def build(m: ModuleType) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        promised = m.make_ballot(7, 1)
        slot_array = np.arange(1000, 1000 + slots, dtype=np.int64)
        ballot_array = np.full(slots, promised, dtype=np.int64)
        return m.phase2, (promised, slot_array, ballot_array, 500)

    return Case(
        "ballot.phase2",
        f"{slots} slots",
        "ballot",
        build,
        items=slots,
        item="slot",
        inner=max(1, 100 // slots),
    )


def _pmax(slots: int) -> Case:
    # What a quorum of 3 acceptors reports: overlapping windows of slots,
    # each accepted under one of several past ballots.
    def build(m: ModuleType) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        rnd = random.Random(slots)
        all_slots: list[int] = []
        all_ballots: list[int] = []
        for acceptor in range(QUORUM):
            start = 5000 + acceptor * max(1, slots // 8)
            for s in range(start, start + slots):
                all_slots.append(s)
                all_ballots.append(m.make_ballot(rnd.randint(1, 6), rnd.randint(0, 2)))
        return m.pmax, (np.array(all_slots, dtype=np.int64), np.array(all_ballots, dtype=np.int64))

    return Case(
        "ballot.pmax",
        f"{slots} slots",
        "ballot",
        build,
        items=slots,
        item="slot",
        inner=max(1, 100 // slots),
    )


def kernel_cases() -> list[Case]:
    """Every kernel workload, in the order the table shows them."""
    cases: list[Case] = []
    for make in (_compare, _merge, _merge_in, _encode, _decode, _compare_many):
        cases.extend(make(n) for n in CLOCK_SIZES)
    cases.append(_phase1())
    cases.append(_next_ballot())
    for make_batch in (_phase2, _pmax):
        cases.extend(make_batch(n) for n in SLOT_BATCHES)
    return cases
