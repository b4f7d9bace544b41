"""The checker's benchmark: its generated histories are what they claim, and its command runs."""

from __future__ import annotations

import json

import pytest

from actorfw.bench.check import HistorySpec, check_cases, generate, plant_stale_read
from actorfw.check import KeyValue, Status, Verdict, check
from actorfw.cli import main


@pytest.mark.parametrize("unknown", [0.0, 0.05])
def test_generated_histories_are_linearizable(unknown: float) -> None:
    history = generate(HistorySpec(400, 3, 6, unknown), seed=5)
    assert len(history) == 400
    assert check(history, KeyValue()).verdict is Verdict.OK


def test_generated_histories_have_unknown_outcomes_when_asked() -> None:
    history = generate(HistorySpec(400, 3, 6, 0.05), seed=5)
    assert {op.status for op in history} == {Status.OK, Status.INFO}


def test_generated_histories_are_the_same_for_the_same_seed() -> None:
    spec = HistorySpec(200, 2, 4, 0.05)
    assert generate(spec, 3).operations == generate(spec, 3).operations


def test_a_planted_stale_read_is_a_violation_with_a_small_witness() -> None:
    history = plant_stale_read(generate(HistorySpec(400, 3, 6), seed=2), seed=2)
    assert history is not None
    result = check(history, KeyValue())
    assert result.verdict is Verdict.VIOLATION and result.minimized
    assert len(result.minimal) <= 4


def test_a_history_without_reads_has_nowhere_to_plant_a_violation() -> None:
    history = generate(HistorySpec(50, 1, 2, writes=1.0), seed=1)
    assert plant_stale_read(history, seed=1) is None


def test_the_scales_span_the_sizes_the_benchmark_promises() -> None:
    full = check_cases("full")
    assert min(c.spec.operations for c in full) == 100
    assert max(c.spec.operations for c in full) == 100_000
    assert {min(c.spec.keys for c in full), max(c.spec.keys for c in full)} == {1, 100}
    assert {min(c.spec.clients for c in full), max(c.spec.clients for c in full)} == {2, 50}
    assert any(c.violation for c in full) and any(c.spec.unknown for c in full)
    with pytest.raises(ValueError, match="scale must be one of"):
        check_cases("huge")


def test_bench_check_json_reports_both_kernels_verdicts_and_ratios(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "check", "--json", "--repeats", "1", "--filter", "100-ops"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (row,) = doc["results"]
    assert row["verdict"] == {"compiled": "violation", "pure": "violation"}
    assert set(row["seconds_to_verdict"]) == {"compiled", "pure"}
    assert set(row["seconds_to_witness"]) == {"compiled", "pure"}
    assert row["witness_ratio_pure_over_compiled"] > 0


def test_bench_check_with_a_filter_matching_nothing_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "check", "--filter", "no-such-case"]) == 2
    assert "no case matches" in capsys.readouterr().err
