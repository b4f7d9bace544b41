"""The pytest plugin of the test kit: seeds, replay commands, the simulation fixture."""

from __future__ import annotations

import pytest

from actorfw.check.trace import load_trace

PROBE = """
import pytest
from actorfw import Actor, handler

class Echo(Actor):
    @handler
    def echo(self, msg: str) -> str:
        return msg

@pytest.mark.simulation(seeds=4)
def test_fails_on_seed_two(simulation, sim_seed):
    sim = simulation(nodes=2)
    assert sim.seed == sim_seed
    ref = sim.spawn("n1", Echo, name="e")
    assert sim.ask(ref, "x", on="n2") == "x"
    assert sim_seed != 2

def test_without_seed_uses_zero(simulation):
    assert simulation(nodes=1).seed == 0
"""


def test_a_failing_seed_prints_the_command_that_replays_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_fails_on_seed_two?seed=2?*",
            "*failed with seed 2; replay it with:*",
            "*pytest test_probe.py::test_fails_on_seed_two --sim-seed=2*",
            "*the traced rerun failed the same way; its causal trace*: actorfw trace *sim1",
        ]
    )
    traced = pytester.path / ".actorfw-traces" / "test_probe.py_test_fails_on_seed_two_seed=2_"
    trace = load_trace([str(traced / "sim1")])
    assert trace.nodes == ["n1", "n2"]  # the ask crossed from n2 to n1 and back


def test_sim_seed_runs_only_that_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest("-p", "no:cacheprovider", "--sim-seed=3", "-k", "seed_two")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("-p", "no:cacheprovider", "--sim-seed=2", "-k", "seed_two")
    result.assert_outcomes(failed=1)


def test_sim_seeds_overrides_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest("-p", "no:cacheprovider", "--sim-seeds=2", "-k", "seed_two")
    result.assert_outcomes(passed=2)


def test_the_worked_example_in_the_testing_guide_passes(pytester: pytest.Pytester) -> None:
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parent.parent.parent / "docs" / "testing.md").read_text()
    example = re.findall(r"```python\n(.*?)```", guide, flags=re.DOTALL)[0]
    pytester.makepyfile(test_register=example)
    result = pytester.runpytest("-p", "no:cacheprovider", "--sim-seeds=3")
    result.assert_outcomes(passed=3)
