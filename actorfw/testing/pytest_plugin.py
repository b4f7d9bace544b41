"""The pytest plugin of the test kit (registered under the ``pytest11`` entry point).

Options:
    ``--sim-seeds N``: run each test that takes ``sim_seed`` with seeds 0..N-1.
    ``--sim-seed S``: run them with seed S only (what a failure tells you to run).
    ``--sim-seed-range A:B``: run them with seeds A..B-1 (a share of a long run,
    see :mod:`actorfw.testing.seeds`).
    ``--sim-only``: run only the tests that take ``sim_seed``.

Each run of a seeded test records the CPU time its call took, in the test's
own process (not in processes it starts), as the JUnit property
``cpu_seconds`` (the long-run summary sorts by it: unlike wall time, it does
not count a run's process being paused or sharing its core).

A seed that fails is run once more, at once, with causal tracing on (the
same seed replays the same run); its trace is written under
``.actorfw-traces/`` of the test run's root directory, and the report says
where, beside the replay command.
"""

from __future__ import annotations

import re
import shlex
import shutil
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from actorfw.sim import Simulation

__all__ = ["DEFAULT_SEEDS", "replay_command"]

DEFAULT_SEEDS = 10
"""Seeds a ``sim_seed`` test runs with when neither the command line nor its marker says."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("actorfw", "actorfw simulation")
    group.addoption(
        "--sim-seeds",
        type=int,
        default=None,
        metavar="N",
        help="run every test that takes sim_seed with seeds 0..N-1",
    )
    group.addoption(
        "--sim-seed",
        type=int,
        default=None,
        metavar="S",
        help="run every test that takes sim_seed with seed S only (to replay a failure)",
    )
    group.addoption(
        "--sim-seed-range",
        default=None,
        metavar="A:B",
        help="run every test that takes sim_seed with seeds A..B-1",
    )
    group.addoption(
        "--sim-only",
        action="store_true",
        default=False,
        help="run only the tests that take sim_seed",
    )


def pytest_configure(config: pytest.Config) -> None:
    span = config.getoption("--sim-seed-range")
    if span is not None:
        _seed_range(span)  # a malformed range is a usage error, before anything is collected
    config.addinivalue_line(
        "markers",
        "simulation(seeds=N): a test of the deterministic simulator; with a sim_seed "
        "argument it runs once per seed",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sim_seed" not in metafunc.fixturenames:
        return
    forced = metafunc.config.getoption("--sim-seed")
    span = metafunc.config.getoption("--sim-seed-range")
    if forced is not None:
        seeds = [forced]
    elif span is not None:
        seeds = list(range(*_seed_range(span)))
    else:
        count = metafunc.config.getoption("--sim-seeds")
        if count is None:
            marker = metafunc.definition.get_closest_marker("simulation")
            count = marker.kwargs.get("seeds", DEFAULT_SEEDS) if marker else DEFAULT_SEEDS
        seeds = list(range(count))
    metafunc.parametrize("sim_seed", seeds, ids=[f"seed={s}" for s in seeds])


def _seed_range(text: str) -> tuple[int, int]:
    start, sep, end = text.partition(":")
    try:
        first, last = int(start), int(end)
    except ValueError:
        first, last = 0, -1
    if not sep or first < 0 or last <= first:
        raise pytest.UsageError(f"--sim-seed-range takes A:B with 0 <= A < B, not {text!r}")
    return first, last


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--sim-only"):
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        seeded = "sim_seed" in getattr(item, "fixturenames", ())
        (keep if seeded else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def replay_command(nodeid: str, seed: int) -> str:
    """The command that reruns one test with one seed."""
    base = nodeid.split("[", 1)[0]
    return f"pytest {shlex.quote(base)} --sim-seed={seed}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    seeded = "sim_seed" in getattr(item, "fixturenames", ())
    start = time.process_time()
    yield
    if seeded:
        item.user_properties.append(("cpu_seconds", f"{time.process_time() - start:.3f}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    outcome: Any = yield
    report = outcome.get_result()
    seed = getattr(item, "callspec", None) and item.callspec.params.get("sim_seed")  # type: ignore[attr-defined]
    if report.failed and seed is not None:
        text = f"failed with seed {seed}; replay it with:\n  {replay_command(item.nodeid, seed)}"
        if call.when == "call":
            first = call.excinfo.value if call.excinfo is not None else None
            text += "\n" + _trace_failure(item, first)
        report.sections.append(("simulation seed", text))


def _trace_failure(item: pytest.Item, first: BaseException | None) -> str:
    """Run the failed test again with causal tracing on; where its trace went."""
    from actorfw.sim import causal_traces

    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", item.nodeid)
    directory = item.config.rootpath / ".actorfw-traces" / name
    shutil.rmtree(directory, ignore_errors=True)
    with causal_traces(str(directory)) as made:
        try:
            item.runtest()
            again = "the traced rerun did not fail (does the test depend on more than its seed?)"
        except (KeyboardInterrupt, pytest.exit.Exception):
            raise
        except BaseException as error:  # the failure replayed, as it should
            same = first is not None and type(error) is type(first) and str(error) == str(first)
            again = (
                "the traced rerun failed the same way"
                if same
                else f"the traced rerun failed differently ({type(error).__name__}: {error})"
            )
    if not made:
        return f"{again}; it made no simulation to trace"
    runs = ", ".join(f"{directory}/sim{n}" for n in range(1, len(made) + 1))
    return f"{again}; its causal trace (one directory per simulation): actorfw trace {runs}"


@pytest.fixture
def simulation(request: pytest.FixtureRequest) -> Iterator[Callable[..., Simulation]]:
    """A factory of simulated clusters, seeded by ``sim_seed`` when the test takes it.

    Example::

        def test_something(simulation, sim_seed):
            sim = simulation(nodes=3)        # Simulation(nodes=3, seed=sim_seed)
    """
    from actorfw.sim import Simulation

    made: list[Simulation] = []
    default_seed = (
        request.node.callspec.params.get("sim_seed", 0) if hasattr(request.node, "callspec") else 0
    )

    def make(**options: Any) -> Simulation:
        options.setdefault("seed", default_seed)
        sim = Simulation(**options)
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.close()
