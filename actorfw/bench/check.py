"""The linearizability checker's benchmark: compiled search kernel beside its pure twin.

Histories come from :func:`generate`, a store simulated in virtual time:
clients invoke ``get``, ``put`` and ``cas`` on keys, each operation takes
effect at one instant between its invocation and its completion, so every
history is linearizable by construction; some operations end with an
unknown outcome (taking effect later, or never), and a *planted* violation
turns one read stale (:func:`plant_stale_read`). Every written value is
unique, which is what makes the planted read provably stale.

For each case both kernels check the same history in the same run,
alternating, and the figures kept are the best of ``repeats``: the time to
the verdict (``minimize=False``) and, for a violation, the time to the
minimized witness (a whole ``check``). The ratio is pure over compiled.
Speed is never asserted; the verdicts of the two kernels must agree.

:func:`measure_logs` does the same for operation logs of real Jepsen
register tests (:func:`actorfw.check.jepsen.read_jepsen_log`), files the
user points it at, and :func:`render_logs` sums them up: how many are
linearizable, the total and the slowest time to the verdict and to the
minimized witness.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from actorfw.check import (
    CheckResult,
    History,
    KeyValue,
    Model,
    Operation,
    Register,
    Status,
    Verdict,
    check,
)
from actorfw.check.jepsen import read_jepsen_log

__all__ = [
    "SCALES",
    "CheckCase",
    "CheckMeasurement",
    "HistorySpec",
    "LogMeasurement",
    "check_cases",
    "generate",
    "measure_check",
    "measure_logs",
    "plant_stale_read",
    "render_check",
    "render_logs",
]


@dataclasses.dataclass(frozen=True)
class HistorySpec:
    """What the simulated clients do.

    Attributes:
        operations: operations in the history.
        keys: keys they are spread over, uniformly.
        clients: clients, each with one operation in flight at a time.
        unknown: the share of operations whose outcome is unknown (half of
            them take effect, later; a client that gives up reconnects as a
            new one).
        latency: the mean time from invocation to the effect, and from the
            effect to the completion (exponential).
        think: the mean pause between a client's operations.
        writes: the share of ``put`` (of the rest, a quarter ``cas`` and the
            remainder ``get``).
    """

    operations: int
    keys: int
    clients: int
    unknown: float = 0.0
    latency: float = 1.0
    think: float = 0.3
    writes: float = 0.35

    def __post_init__(self) -> None:
        if self.operations < 1 or self.keys < 1 or self.clients < 1:
            raise ValueError(f"operations, keys and clients must be at least 1: {self}")
        if not 0.0 <= self.unknown <= 1.0 or not 0.0 <= self.writes <= 1.0:
            raise ValueError(f"unknown and writes are shares between 0 and 1: {self}")


@dataclasses.dataclass
class _Planned:
    client: str
    f: str
    key: str
    value: Any
    invoke: float
    complete: float | None
    status: Status
    effect: float | None  # when it takes effect; None: never
    output: Any = None


def generate(spec: HistorySpec, seed: int) -> History:
    """A linearizable history of ``spec`` (see the module docstring), the same for the same seed."""
    rng = random.Random(seed)
    latest: dict[str, list[str]] = {}
    planned: list[_Planned] = []
    free = [(rng.uniform(0.0, spec.think), c, 0) for c in range(spec.clients)]
    heapq.heapify(free)
    for n in range(spec.operations):
        now, c, generation = heapq.heappop(free)
        key = f"k{rng.randrange(spec.keys)}"
        roll = rng.random()
        value: Any = None
        if roll < spec.writes:
            f, value = "put", f"v{n}"
            latest.setdefault(key, []).append(value)
        elif roll < spec.writes + (1.0 - spec.writes) / 4:
            f = "cas"
            value = [rng.choice([None, *latest.get(key, [])[-2:]]), f"v{n}"]
        else:
            f = "get"
        there = rng.expovariate(1 / spec.latency)
        back = rng.expovariate(1 / spec.latency)
        client = f"c{c}" if generation == 0 else f"c{c}.{generation}"
        if rng.random() < spec.unknown:
            effect = now + rng.expovariate(1 / (3 * spec.latency)) if rng.random() < 0.5 else None
            op = _Planned(client, f, key, value, now, None, Status.INFO, effect)
            generation += 1
            done = now + there + back
        else:
            op = _Planned(client, f, key, value, now, now + there + back, Status.OK, now + there)
            done = now + there + back
        planned.append(op)
        heapq.heappush(free, (done + rng.expovariate(1 / spec.think), c, generation))
    store: dict[str, Any] = {}
    for op in sorted((p for p in planned if p.effect is not None), key=lambda p: p.effect or 0.0):
        current = store.get(op.key)
        if op.f == "get":
            op.output = current
        elif op.f == "put":
            store[op.key] = op.value
        else:
            op.output = current == op.value[0]
            if op.output:
                store[op.key] = op.value[1]
    history = History()
    for op in planned:
        op_id = history.invoke(op.client, op.f, op.key, op.value, op.invoke)
        if op.status is Status.OK:
            history.ok(op_id, op.output, op.complete or op.invoke)
        else:
            history.info(op_id)
    return history


def _overwrites(op: Operation) -> bool:
    return op.status is Status.OK and (op.f == "put" or (op.f == "cas" and op.output is True))


def plant_stale_read(history: History, seed: int) -> History | None:
    """``history`` with one completed ``get`` made to return a stale value; ``None`` if none fits.

    The get is made to return the value of a ``put`` A that completed before
    an overwrite B (a put, or a cas that swapped) was invoked, where B
    completed before the get was invoked. Values are unique, so in every
    order that respects real time B replaced A's value for good before the
    get: the result is not linearizable. The get chosen is the latest one
    that fits, so that a checker must work through the whole key.
    """
    rng = random.Random(seed)
    ops = history.operations
    by_key: dict[Any, list[Operation]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    reads = [op for op in ops if op.f == "get" and op.status is Status.OK]
    for read in sorted(reads, key=lambda op: -op.invoke)[:200]:
        same = by_key[read.key]
        overwrites = [
            op
            for op in same
            if _overwrites(op) and op.complete is not None and op.complete < read.invoke
        ]
        for overwrite in sorted(overwrites, key=lambda op: -op.invoke)[:5]:
            stale = [
                op
                for op in same
                if op.f == "put"
                and op.status is Status.OK
                and op.complete is not None
                and op.complete < overwrite.invoke
                and op.value != read.output
            ]
            if stale:
                source = rng.choice(stale[-3:])
                edited = [
                    dataclasses.replace(op, output=source.value) if op.id == read.id else op
                    for op in ops
                ]
                return History.from_operations(edited)
    return None


@dataclasses.dataclass(frozen=True)
class CheckCase:
    """One benchmark history: its spec, whether a stale read is planted, and a name."""

    name: str
    spec: HistorySpec
    violation: bool = False
    seed: int = 1

    def history(self) -> History:
        """The case's history (generated anew: deterministic).

        Raises:
            ValueError: no read fits a planted violation (choose another seed).
        """
        history = generate(self.spec, self.seed)
        if not self.violation:
            return history
        planted = plant_stale_read(history, self.seed)
        if planted is None:
            raise ValueError(f"case {self.name}: no read to make stale in seed {self.seed}")
        return planted


def _case(
    operations: int, keys: int, clients: int, unknown: float = 0.0, violation: bool = False
) -> CheckCase:
    name = f"{operations}-ops-{keys}-key{'s' if keys > 1 else ''}-{clients}-clients"
    if unknown:
        name += f"-{unknown:.0%}-unknown"
    if violation:
        name += "-stale-read"
    return CheckCase(name, HistorySpec(operations, keys, clients, unknown), violation)


SCALES: dict[str, list[CheckCase]] = {
    "quick": [
        _case(1_000, 10, 5),
        _case(1_000, 10, 5, 0.02),
        _case(1_000, 10, 5, violation=True),
        _case(2_000, 1, 10, 0.01),
        # hard: many overlapping writes of one key, one read made stale
        _case(200, 1, 15, violation=True),
        _case(100, 1, 2, violation=True),
    ],
    "full": [
        _case(100, 1, 2),
        _case(100, 1, 2, violation=True),
        _case(1_000, 10, 5),
        _case(1_000, 10, 5, 0.02),
        _case(1_000, 10, 5, violation=True),
        _case(10_000, 50, 8, 0.01),
        _case(10_000, 50, 8, 0.01, violation=True),
        _case(10_000, 5, 10, 0.01),
        _case(10_000, 1, 10),
        _case(10_000, 1, 10, 0.01),
        _case(10_000, 1, 10, violation=True),
        _case(100_000, 100, 50),
        _case(100_000, 100, 50, 0.01),
        _case(100_000, 100, 50, 0.01, violation=True),
        # hard: many overlapping writes of one key
        _case(200, 1, 15, violation=True),
        _case(200, 1, 20, violation=True),
        _case(500, 1, 20, 0.01),
        _case(1_000, 1, 20),
    ],
}
"""The cases of each scale: ``quick`` runs in seconds; ``full`` spans 100 to 100,000
operations, 1 to 100 keys and 2 to 50 clients."""


def check_cases(scale: str = "quick") -> list[CheckCase]:
    """The cases of ``scale`` (``"quick"`` or ``"full"``).

    Raises:
        ValueError: an unknown scale.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, not {scale!r}")
    return list(SCALES[scale])


@dataclasses.dataclass(frozen=True)
class CheckMeasurement:
    """One case's figures on each kernel, best of the repeats, in seconds.

    ``verdict`` maps a kernel ("compiled", "pure") to the time to the
    verdict, ``witness`` to the time to the minimized witness (violations
    only), ``outcome`` to the verdict each kernel reached.
    """

    case: CheckCase
    operations: int
    verdict: dict[str, float]
    witness: dict[str, float]
    outcome: dict[str, str]
    witness_size: int | None

    def ratio(self, figure: dict[str, float]) -> float | None:
        """Pure over compiled for one figure, or None unless both were measured."""
        if "pure" in figure and "compiled" in figure and figure["compiled"] > 0:
            return figure["pure"] / figure["compiled"]
        return None

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data (seconds)."""
        return {
            "case": self.case.name,
            "operations": self.operations,
            "keys": self.case.spec.keys,
            "clients": self.case.spec.clients,
            "unknown": self.case.spec.unknown,
            "planted_violation": self.case.violation,
            "verdict": self.outcome,
            "seconds_to_verdict": self.verdict,
            "seconds_to_witness": self.witness,
            "witness_operations": self.witness_size,
            "verdict_ratio_pure_over_compiled": self.ratio(self.verdict),
            "witness_ratio_pure_over_compiled": self.ratio(self.witness),
        }


def _timed(
    history: History,
    timeout: float,
    minimize: bool,
    kernel: ModuleType,
    model: Model | None = None,
) -> tuple[float, CheckResult]:
    start = time.perf_counter()
    result = check(history, model or KeyValue(), timeout, minimize=minimize, kernel=kernel)
    return time.perf_counter() - start, result


def measure_check(
    cases: Sequence[CheckCase],
    kernels: dict[str, ModuleType],
    repeats: int = 3,
    timeout: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> list[CheckMeasurement]:
    """Check every case's history on every kernel, alternating, ``repeats`` times.

    Args:
        cases: the histories.
        kernels: implementation name to its search kernel module.
        repeats: checks per kernel and figure; the best is kept.
        timeout: each check's ``timeout`` (a check that runs out is
            ``unknown`` and its time is the timeout).
        progress: called with each case's name before it is measured.

    Raises:
        RuntimeError: two kernels reached different verdicts (a bug).
    """
    results = []
    for case in cases:
        if progress is not None:
            progress(case.name)
        history = case.history()
        verdict = {impl: math.inf for impl in kernels}
        witness = {impl: math.inf for impl in kernels}
        outcome: dict[str, str] = {}
        size = None
        for _ in range(repeats):
            for impl, kernel in kernels.items():
                seconds, result = _timed(history, timeout, False, kernel)
                verdict[impl] = min(verdict[impl], seconds)
                outcome[impl] = str(result.verdict)
                if result.verdict is Verdict.VIOLATION:
                    seconds, result = _timed(history, timeout, True, kernel)
                    witness[impl] = min(witness[impl], seconds)
                    size = len(result.minimal)
        decided = {v for v in outcome.values() if v != Verdict.UNKNOWN}
        if len(decided) > 1:
            raise RuntimeError(f"case {case.name}: the kernels disagree: {outcome}")
        results.append(
            CheckMeasurement(
                case,
                len(history),
                verdict,
                {k: v for k, v in witness.items() if v < math.inf},
                outcome,
                size,
            )
        )
    return results


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-6:.3g} µs"


def render_check(results: Sequence[CheckMeasurement]) -> str:
    """A plain-text table: verdict and witness times on each kernel, and their ratios."""
    header = [
        "case",
        "verdict",
        "to verdict: compiled",
        "pure",
        "ratio",
        "to witness: compiled",
        "pure",
        "ratio",
    ]
    rows = [header]
    for m in results:
        verdict_ratio = m.ratio(m.verdict)
        witness_ratio = m.ratio(m.witness)
        verdicts = sorted(set(m.outcome.values()))
        rows.append(
            [
                m.case.name,
                "/".join(verdicts),
                _seconds(m.verdict.get("compiled")),
                _seconds(m.verdict.get("pure")),
                "-" if verdict_ratio is None else f"{verdict_ratio:.1f}x",
                _seconds(m.witness.get("compiled")),
                _seconds(m.witness.get("pure")),
                "-" if witness_ratio is None else f"{witness_ratio:.1f}x",
            ]
        )
    return _table(rows, left=2)


def _table(rows: list[list[str]], left: int) -> str:
    """``rows`` (the header first) aligned: the first ``left`` columns to the left."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [c.ljust(widths[k]) if k < left else c.rjust(widths[k]) for k, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class LogMeasurement:
    """One Jepsen log's figures on each kernel, best of the repeats, in seconds.

    ``verdict``: kernel to the time to the verdict (``minimize=False``);
    ``whole``: to a whole ``check``, the witness minimized when there is
    one (for a linearizable history, the verdict again); ``outcome``: the
    verdict each kernel reached.
    """

    name: str
    operations: int
    verdict: dict[str, float]
    whole: dict[str, float]
    outcome: dict[str, str]
    witness_size: int | None
    """The witness's size (the last whole check of a violation)."""
    minimized: dict[str, bool] = dataclasses.field(default_factory=dict)
    """Kernel to: did every whole check of a violation minimize its witness to the end?"""

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data (seconds)."""
        return {
            "log": self.name,
            "operations": self.operations,
            "verdict": self.outcome,
            "seconds_to_verdict": self.verdict,
            "seconds_to_verdict_and_witness": self.whole,
            "witness_operations": self.witness_size,
            "witness_minimized": self.minimized,
        }


def measure_logs(
    paths: Sequence[str],
    kernels: dict[str, ModuleType],
    repeats: int = 3,
    timeout: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> list[LogMeasurement]:
    """Check each Jepsen register log on every kernel, alternating, ``repeats`` times.

    Each log is read once (:func:`~actorfw.check.jepsen.read_jepsen_log`,
    not timed) and checked with ``Register()``: once for the verdict alone
    and once whole, per kernel and repeat; the best of each is kept.

    Raises:
        ValueError: a log that does not read (named).
        RuntimeError: two kernels reached different verdicts (a bug).
    """
    results = []
    for path in paths:
        name = path.rsplit("/", 1)[-1]
        if progress is not None:
            progress(name)
        history = read_jepsen_log(path)
        verdict = {impl: math.inf for impl in kernels}
        whole = {impl: math.inf for impl in kernels}
        outcome: dict[str, str] = {}
        size = None
        minimized = dict.fromkeys(kernels, True)
        for _ in range(repeats):
            for impl, kernel in kernels.items():
                seconds, result = _timed(history, timeout, False, kernel, Register())
                verdict[impl] = min(verdict[impl], seconds)
                outcome[impl] = str(result.verdict)
                seconds, result = _timed(history, timeout, True, kernel, Register())
                whole[impl] = min(whole[impl], seconds)
                if result.verdict is Verdict.VIOLATION:
                    size = len(result.minimal)
                minimized[impl] &= result.verdict is Verdict.VIOLATION and result.minimized
        decided = {v for v in outcome.values() if v != Verdict.UNKNOWN}
        if len(decided) > 1:
            raise RuntimeError(f"log {name}: the kernels disagree: {outcome}")
        results.append(LogMeasurement(name, len(history), verdict, whole, outcome, size, minimized))
    return results


def render_logs(results: Sequence[LogMeasurement]) -> str:
    """A summary per kernel: verdicts, the total and slowest times to them and to witnesses,
    and how many witnesses were minimized to the end."""
    kernels = sorted({k for m in results for k in m.verdict}, key=lambda k: k != "compiled")
    header = ["kernel", "logs", "ok", "violation", "unknown", "to verdict: total", "slowest"]
    header += ["verdict + witness: total", "slowest", "minimized"]
    rows = [header]
    for impl in kernels:
        verdicts = [m.outcome.get(impl, "") for m in results]
        verdict = [m.verdict[impl] for m in results if impl in m.verdict]
        whole = [m.whole[impl] for m in results if impl in m.whole]
        rows.append(
            [
                impl,
                str(len(results)),
                str(verdicts.count(Verdict.OK)),
                str(verdicts.count(Verdict.VIOLATION)),
                str(verdicts.count(Verdict.UNKNOWN)),
                _seconds(sum(verdict)),
                _seconds(max(verdict, default=0.0)),
                _seconds(sum(whole)),
                _seconds(max(whole, default=0.0)),
                str(sum(m.minimized.get(impl, False) for m in results)),
            ]
        )
    return _table(rows, left=1)
