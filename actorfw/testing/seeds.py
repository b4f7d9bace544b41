"""Run every simulation test over many seeds: split over processes, resumable, summed up.

::

    python -m actorfw.testing.seeds --seeds 10000 --jobs 2 [--state DIR] [pytest args...]

The seeds ``0..N-1`` (``--first F``: ``F..N-1``, a share of a run split
between machines or sittings) are cut into chunks (``--chunk``, 100 by default); each
chunk is one ``pytest --sim-only --sim-seed-range A:B`` process, at most
``--jobs`` at a time, writing a JUnit XML report into the state directory
(``.actorfw-seeds/`` by default). A chunk whose report exists is done: run
the same command again after an interruption and it goes on where it
stopped. At the end (and with ``--summary`` alone, at any time) it prints
what the reports say: seeds and test runs done, failures sorted into
violations and ``unknown`` verdicts (a failure whose message says the
checker could not decide), errors, and the slowest test runs.

Each failure is printed with the command that replays it. Arguments after
the options go to every pytest process (for example the test paths).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

__all__ = ["Summary", "main", "replay", "run_chunks", "summarize"]


@dataclasses.dataclass
class Summary:
    """What the chunk reports of a state directory say, together.

    ``seconds`` and ``slowest`` count the CPU time of each test run (the
    plugin's ``cpu_seconds``), or its wall time in a report that lacks it.
    """

    chunks: int = 0
    seeds: int = 0
    runs: int = 0
    passed: int = 0
    violations: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    unknown: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    errors: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    slowest: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [
            f"{self.chunks} chunks, {self.seeds} seeds, {self.runs} test runs: {self.passed} "
            f"passed, {len(self.violations)} violations, {len(self.unknown)} unknown, "
            f"{len(self.errors)} errors ({self.seconds:,.0f} s of test CPU time)"
        ]
        for title, found in (
            ("violations", self.violations),
            ("unknown", self.unknown),
            ("errors", self.errors),
        ):
            for name, message in found[:20]:
                first = message.strip().splitlines()[0][:200] if message.strip() else ""
                lines.append(f"  {title}: {replay(name)}")
                lines.append(f"    {first}")
        if self.slowest:
            lines.append("slowest test runs (CPU seconds):")
            for seconds, name in self.slowest[:5]:
                lines.append(f"  {seconds:7.2f} s  {name}")
        return "\n".join(lines)


def replay(name: str) -> str:
    """The command that replays a test run named ``module.path::test[seed=N]``."""
    module, _, test = name.partition("::")
    base, _, rest = test.partition("[seed=")
    seed = rest.rstrip("]")
    path = module.replace(".", "/") + ".py"
    return f"pytest {path}::{base} --sim-seed={seed}" if seed else f"pytest {path}::{test}"


def _chunk_name(start: int, end: int) -> str:
    return f"seeds-{start:07d}-{end:07d}.xml"


def run_chunks(
    seeds: int,
    jobs: int,
    chunk: int,
    state: Path,
    pytest_args: list[str],
    progress: bool = True,
    cwd: Path | None = None,
    first: int = 0,
) -> None:
    """Run the chunks of seeds ``first..seeds-1`` that have no report in ``state`` yet.

    The pytest processes run in ``cwd`` (default: this process's directory),
    which decides their root directory and so the test names in the reports.
    """
    state.mkdir(parents=True, exist_ok=True)
    todo = [
        (start, min(start + chunk, seeds))
        for start in range(first, seeds, chunk)
        if not (state / _chunk_name(start, min(start + chunk, seeds))).exists()
    ]
    running: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
    done = 0
    began = time.monotonic()
    while todo or running:
        while todo and len(running) < jobs:
            start, end = todo.pop(0)
            report = state / _chunk_name(start, end)
            partial = report.with_suffix(".partial")
            command = [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--sim-only",
                f"--sim-seed-range={start}:{end}",
                f"--junitxml={partial}",
                *pytest_args,
            ]
            log = open(state / f"seeds-{start:07d}-{end:07d}.log", "wb")
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
            log.close()
            running.append((process, partial, report))
        for entry in list(running):
            process, partial, report = entry
            if process.poll() is None:
                continue
            running.remove(entry)
            if partial.exists():
                partial.rename(report)  # complete: a later run skips this chunk
            done += 1
            if progress:
                elapsed = time.monotonic() - began
                print(
                    f"chunk {report.name} done (exit {process.returncode}); {done} this run, "
                    f"{len(todo) + len(running)} to go; {elapsed:,.0f} s",
                    flush=True,
                )
        time.sleep(0.2)


def summarize(state: Path) -> Summary:
    """Add up every chunk report in ``state``."""
    summary = Summary()
    slow: list[tuple[float, str]] = []
    for report in sorted(state.glob("seeds-*.xml")):
        summary.chunks += 1
        _, first, last = report.stem.split("-")
        summary.seeds += int(last) - int(first)
        root = ElementTree.parse(report).getroot()
        for case in root.iter("testcase"):
            summary.runs += 1
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            seconds = float(case.get("time", "0") or 0)  # wall, for a report without CPU
            for prop in case.iter("property"):
                if prop.get("name") == "cpu_seconds":
                    seconds = float(prop.get("value", "0") or 0)
            summary.seconds += seconds
            slow.append((seconds, name))
            failure = case.find("failure")
            error = case.find("error")
            if failure is not None:
                message = failure.get("message", "") or (failure.text or "")
                # A checker that could not decide says "unknown"; anything else that
                # failed (a violation, an invariant, clients that never finished) is a
                # violation of what the test promises.
                undecided = "unknown" in message and "violation" not in message
                bucket = summary.unknown if undecided else summary.violations
                bucket.append((name, message))
            elif error is not None:
                summary.errors.append((name, error.get("message", "") or (error.text or "")))
            elif case.find("skipped") is None:
                summary.passed += 1
    slow.sort(reverse=True)
    summary.slowest = slow[:5]
    return summary


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module documentation); 1 if anything failed."""
    parser = argparse.ArgumentParser(
        prog="python -m actorfw.testing.seeds",
        description="Run every simulation test over many seeds, in resumable chunks.",
    )
    parser.add_argument("--seeds", type=int, default=10_000, help="seeds 0..N-1 (10000)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes at once")
    parser.add_argument("--first", type=int, default=0, help="the first seed (0)")
    parser.add_argument("--chunk", type=int, default=100, help="seeds per pytest process (100)")
    parser.add_argument(
        "--state", type=Path, default=Path(".actorfw-seeds"), help="where the reports go"
    )
    parser.add_argument(
        "--summary", action="store_true", help="only sum up the reports written so far"
    )
    args, pytest_args = parser.parse_known_args(argv)
    if args.seeds < 1 or args.jobs < 1 or args.chunk < 1:
        parser.error("--seeds, --jobs and --chunk take positive numbers")
    if not 0 <= args.first < args.seeds:
        parser.error("--first takes a seed from 0 up to --seeds, excluded")
    if not args.summary:
        run_chunks(args.seeds, args.jobs, args.chunk, args.state, pytest_args, first=args.first)
    summary = summarize(args.state)
    print(summary)
    return 1 if summary.violations or summary.unknown or summary.errors else 0


if __name__ == "__main__":
    sys.exit(main())
