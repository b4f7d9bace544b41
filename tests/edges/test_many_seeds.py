"""Many seeds: the plugin's --sim-seed-range and --sim-only, and the resumable runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actorfw.testing.seeds import replay, run_chunks, summarize

SEEDED = """
import pytest

@pytest.mark.simulation(seeds=3)
def test_seeded(sim_seed):
    assert sim_seed != 7, "violation: seed 7 breaks it"
    assert sim_seed != 9, "unknown (kv model): undecided when the budget ran out"

def test_plain():
    pass
"""


def test_the_summary_counts_cpu_time_not_time_spent_paused(tmp_path: Path) -> None:
    tests = tmp_path / "test_idle.py"
    tests.write_text(
        "import time\n"
        "def test_idle(sim_seed):\n"
        "    time.sleep(0.5)  # the scenario: half a second in which the run uses no CPU\n"
    )
    state = tmp_path / "state"
    run_chunks(1, jobs=1, chunk=1, state=state, pytest_args=[str(tests)], progress=False)
    report = (state / "seeds-0000000-0000001.xml").read_text()
    assert 'name="cpu_seconds"' in report
    summary = summarize(state)
    assert summary.runs == summary.passed == 1
    assert summary.slowest[0][0] < 0.4 and summary.seconds < 0.4


def test_a_seed_range_and_sim_only_select_the_seeded_runs(pytester: Any) -> None:
    pytester.makepyfile(test_mod=SEEDED)
    result = pytester.runpytest("--sim-seed-range=3:6", "--sim-only", "-v")
    result.assert_outcomes(passed=3, deselected=1)
    result.stdout.fnmatch_lines(["*test_seeded?seed=3?*", "*test_seeded?seed=5?*"])
    assert "seed=2]" not in result.stdout.str() and "seed=6]" not in result.stdout.str()
    pytester.runpytest("--sim-seed-range=5:5").stderr.fnmatch_lines(["*--sim-seed-range*"])


def test_the_runner_sums_up_violations_and_unknowns_and_resumes(tmp_path: Path) -> None:
    tests = tmp_path / "test_mod.py"
    tests.write_text(SEEDED)
    state = tmp_path / "state"
    # Run where the tests are, so that their names do not depend on where this runs.
    options: dict[str, Any] = dict(pytest_args=[str(tests)], progress=False, cwd=tmp_path)
    run_chunks(12, jobs=2, chunk=5, state=state, **options)
    summary = summarize(state)
    assert (summary.chunks, summary.seeds, summary.runs, summary.passed) == (3, 12, 12, 10)
    assert [name for name, _ in summary.violations] == ["test_mod::test_seeded[seed=7]"]
    assert [name for name, _ in summary.unknown] == ["test_mod::test_seeded[seed=9]"]
    assert replay(summary.violations[0][0]) == "pytest test_mod.py::test_seeded --sim-seed=7"
    # Interrupted: a chunk's report is missing. The same command runs that chunk only.
    (state / "seeds-0000005-0000010.xml").unlink()
    first_log = (state / "seeds-0000000-0000005.log").stat().st_mtime_ns
    run_chunks(12, jobs=2, chunk=5, state=state, **options)
    assert (state / "seeds-0000005-0000010.xml").exists()
    assert (state / "seeds-0000000-0000005.log").stat().st_mtime_ns == first_log
    assert summarize(state).runs == 12
