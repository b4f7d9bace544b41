"""A simulated linearizable key-value store that records client histories, and its own tests.

``simulate_kv_store`` plays clients against an in-memory store in virtual
time: each operation takes effect atomically at one instant between its
invocation and its completion (random latencies either side), so every
history it records is linearizable by construction. Operations can also
fail (no effect) or time out (outcome unknown: applied at some later
instant, or never). Every written value is unique (``v<n>`` for put and
cas, ``+<n>`` tokens for append), which makes corruptions easy to reason
about. The linearizability tests and ``benchmarks/test_check.py`` use it.
"""

from __future__ import annotations

import dataclasses
import heapq
import io
import random
from dataclasses import dataclass, field
from typing import Any

from actorfw.check import History, Operation, Status

__all__ = ["Workload", "simulate_kv_store", "with_stale_read"]

STATE_CHANGING = ("put", "delete", "append")


@dataclass(frozen=True)
class Workload:
    """What the simulated clients do."""

    operations: int = 1000
    keys: int = 5
    clients: int = 5
    mix: dict[str, float] = field(
        default_factory=lambda: {"get": 0.4, "put": 0.25, "cas": 0.15, "append": 0.1, "delete": 0.1}
    )
    p_fail: float = 0.0  # known not to have taken effect
    p_info: float = 0.0  # outcome unknown; applied (later) half of the time
    latency: float = 1.0  # mean of each half, request and response
    think: float = 0.3  # mean pause between a client's operations
    client_timeout: float = 5.0  # when a client gives up on an info operation


@dataclass
class _Planned:
    client: str
    f: str
    key: str
    value: Any
    invoke: float
    complete: float | None  # None: info
    status: Status
    applied_at: float | None  # the linearization point, None if never applied
    report_append: bool = False
    output: Any = None


def simulate_kv_store(seed: int, workload: Workload = Workload()) -> History:
    """A linearizable history of ``workload`` on a simulated store, from ``seed``."""
    rng = random.Random(seed)
    names, weights = list(workload.mix), list(workload.mix.values())
    recent: dict[str, list[Any]] = {}
    planned: list[_Planned] = []
    clients = [(rng.uniform(0, workload.think), c, 0) for c in range(workload.clients)]
    heapq.heapify(clients)
    for n in range(workload.operations):
        now, c, generation = heapq.heappop(clients)
        key = f"k{rng.randrange(workload.keys)}"
        f = rng.choices(names, weights)[0]
        value: Any = None
        if f == "put":
            value = f"v{n}"
        elif f == "cas":
            value = [rng.choice([None, *recent.get(key, [])[-3:]]), f"v{n}"]
        elif f == "append":
            value = f"+{n}"
        if f in ("put", "cas"):
            recent.setdefault(key, []).append(value if f == "put" else value[1])
        roll = rng.random()
        request = rng.expovariate(1 / workload.latency)
        response = rng.expovariate(1 / workload.latency)
        client = f"c{c}" if generation == 0 else f"c{c}.{generation}"
        if roll < workload.p_fail:
            op = _Planned(client, f, key, value, now, now + request, Status.FAIL, None)
        elif roll < workload.p_fail + workload.p_info:
            applied = (
                now + rng.expovariate(1 / (3 * workload.latency)) if rng.random() < 0.5 else None
            )
            op = _Planned(client, f, key, value, now, None, Status.INFO, applied)
            generation += 1  # the client gave up and reconnects as a new one
        else:
            op = _Planned(
                client, f, key, value, now, now + request + response, Status.OK, now + request
            )
        op.report_append = rng.random() < 0.5
        planned.append(op)
        free = op.complete if op.complete is not None else now + workload.client_timeout
        heapq.heappush(clients, (free + rng.expovariate(1 / workload.think), c, generation))

    store: dict[str, Any] = {}
    for op in sorted((p for p in planned if p.applied_at is not None), key=lambda p: p.applied_at):
        current = store.get(op.key)
        if op.f == "get":
            op.output = current
        elif op.f == "put":
            store[op.key] = op.value
        elif op.f == "delete":
            store.pop(op.key, None)
        elif op.f == "cas":
            op.output = current == op.value[0]
            if op.output:
                store[op.key] = op.value[1]
        elif op.f == "append":
            store[op.key] = ("" if current is None else current) + op.value
            op.output = store[op.key] if op.report_append else None

    history = History()
    for op in planned:
        op_id = history.invoke(op.client, op.f, op.key, op.value, op.invoke)
        if op.status is Status.OK:
            assert op.complete is not None
            history.ok(op_id, op.output, op.complete)
        elif op.status is Status.FAIL:
            assert op.complete is not None
            history.fail(op_id, op.complete)
        else:
            history.info(op_id)
    return history


def _changes_state(op: Operation) -> bool:
    return op.status is Status.OK and (op.f in STATE_CHANGING or (op.f == "cas" and op.output))


def with_stale_read(history: History, rng: random.Random) -> tuple[History, Operation] | None:
    """``history`` with one ok get changed to return a stale value, and that get; None if none fits.

    The new output ``A`` was written by an ok ``put`` that completed before a
    state-changing ok operation ``B`` was invoked, and ``B`` completed before
    the get was invoked. Values are unique, so in every order consistent with
    real time ``B`` overwrote ``A`` for good before the get: the result is not
    linearizable.
    """
    ops = history.operations
    reads = [op for op in ops if op.f == "get" and op.status is Status.OK]
    rng.shuffle(reads)
    for read in reads:
        same_key = [op for op in ops if op.key == read.key]
        before = [
            op
            for op in same_key
            if _changes_state(op) and op.complete is not None and op.complete < read.invoke
        ]
        for overwrite in sorted(before, key=lambda op: -op.invoke):
            puts = [
                op
                for op in same_key
                if op.f == "put"
                and op.status is Status.OK
                and op.complete is not None
                and op.complete < overwrite.invoke
                and op.value != read.output
            ]
            if puts:
                stale = rng.choice(puts)
                bad = dataclasses.replace(read, output=stale.value)
                edited = [bad if op.id == read.id else op for op in ops]
                return History.from_operations(edited), bad
    return None


# -- tests of the simulator itself -------------------------------------------------------


def test_simulated_store_records_the_same_history_for_the_same_seed() -> None:
    first, second = io.StringIO(), io.StringIO()
    simulate_kv_store(7, Workload(operations=300, p_info=0.05, p_fail=0.05)).to_jsonl(first)
    simulate_kv_store(7, Workload(operations=300, p_info=0.05, p_fail=0.05)).to_jsonl(second)
    assert first.getvalue() == second.getvalue()


def test_simulated_store_histories_have_overlapping_operations_on_one_key() -> None:
    ops = simulate_kv_store(1, Workload(operations=300, keys=2)).operations
    assert any(
        a.key == b.key and a.invoke < b.invoke < (a.complete or 0.0) for a in ops for b in ops
    )


def test_simulated_store_histories_have_every_status_when_asked() -> None:
    ops = simulate_kv_store(2, Workload(operations=500, p_info=0.05, p_fail=0.05)).operations
    assert {op.status for op in ops} == {Status.OK, Status.FAIL, Status.INFO}


def test_stale_read_corruption_changes_exactly_one_read() -> None:
    history = simulate_kv_store(3, Workload(operations=300, keys=2))
    found = with_stale_read(history, random.Random(3))
    assert found is not None
    edited, bad = found
    changed = [(a, b) for a, b in zip(history.operations, edited.operations, strict=True) if a != b]
    assert [b for _, b in changed] == [bad]
    assert bad.f == "get" and changed[0][0].output != bad.output
