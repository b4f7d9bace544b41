"""Many seeds: the plugin's --sim-seed-range and --sim-only, and the resumable runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree

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


def test_each_seeded_run_reports_its_cpu_time_and_the_summary_counts_it(
    tmp_path: Path,
) -> None:
    tests = tmp_path / "test_mod.py"
    tests.write_text(SEEDED)
    state = tmp_path / "state"
    run_chunks(2, jobs=1, chunk=2, state=state, pytest_args=[str(tests)], progress=False)
    report = ElementTree.parse(state / "seeds-0000000-0000002.xml").getroot()
    cpu = [p for p in report.iter("property") if p.get("name") == "cpu_seconds"]
    assert len(cpu) == 2 and all(float(p.get("value", "x")) >= 0 for p in cpu)
    # A run that spent 900 s paused and 1.5 s on the CPU counts as 1.5 s; a report
    # without the property (written before it existed) counts its wall time.
    for path in state.glob("*.xml"):
        path.unlink()
    (state / "seeds-0000000-0000002.xml").write_text(
        '<testsuites><testsuite><testcase classname="m" name="t[seed=0]" time="900">'
        '<properties><property name="cpu_seconds" value="1.5"/></properties></testcase>'
        '<testcase classname="m" name="t[seed=1]" time="2.0"/></testsuite></testsuites>'
    )
    summary = summarize(state)
    assert summary.slowest == [(2.0, "m::t[seed=1]"), (1.5, "m::t[seed=0]")]
    assert summary.seconds == 3.5


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


def test_the_runner_starts_at_the_first_seed_it_is_given(tmp_path: Path) -> None:
    tests = tmp_path / "test_mod.py"
    tests.write_text(SEEDED)
    state = tmp_path / "state"
    run_chunks(12, 1, 5, state, [str(tests)], progress=False, cwd=tmp_path, first=5)
    assert sorted(path.name for path in state.glob("*.xml")) == [
        "seeds-0000005-0000010.xml",
        "seeds-0000010-0000012.xml",
    ]
    summary = summarize(state)
    assert (summary.seeds, summary.runs, summary.passed) == (7, 7, 5)
