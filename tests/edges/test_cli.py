"""The ``actorfw`` command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import actorfw
from actorfw.cli import main
from tests.conftest import load_kernels


def test_version_is_printed_by_the_installed_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "actorfw", "--version"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"actorfw {actorfw.__version__}"


def test_info_names_the_active_kernels(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"kernels: {actorfw.kernels_info().implementation}" in out
    assert "vclock:" in out and "ballot:" in out


def test_bench_kernels_json_reports_both_implementations_and_their_ratio(
    capsys: pytest.CaptureFixture[str],
) -> None:
    load_kernels("compiled")
    assert main(["bench", "kernels", "--quick", "--json", "--filter", "16-nodes"]) == 0
    doc = json.loads(capsys.readouterr().out)
    ops = {r["operation"] for r in doc["results"]}
    assert {"vclock.compare", "vclock.merge", "vclock.compare_many"} <= ops
    for r in doc["results"]:
        assert r["size"] == "16 nodes"
        assert r["compiled_ns_per_call"] > 0 and r["pure_ns_per_call"] > 0
        ratio = r["pure_ns_per_call"] / r["compiled_ns_per_call"]
        assert r["ratio_pure_over_compiled"] == pytest.approx(ratio)
    many = next(r for r in doc["results"] if r["operation"] == "vclock.compare_many")
    assert many["items_per_call"] == 10_000
    assert many["compiled_ns_per_comparison"] == pytest.approx(
        many["compiled_ns_per_call"] / 10_000
    )


def test_bench_kernels_table_has_a_row_per_case(capsys: pytest.CaptureFixture[str]) -> None:
    load_kernels("compiled")
    assert main(["bench", "kernels", "--quick", "--filter", "ballot.pmax"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("ballot.pmax")]
    assert [r.split()[1] for r in rows] == ["1", "64", "1024"]
    assert all(r.rstrip().endswith("x") for r in rows)


def test_bench_kernels_with_a_filter_matching_nothing_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "kernels", "--quick", "--filter", "no-such-case"]) == 2
    assert "no case matches" in capsys.readouterr().err


def test_a_missing_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


def test_bench_causal_json_reports_each_size_beside_plain_tells(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "causal", "--quick", "--json", "--kernels", "compiled"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (result,) = doc["results"]
    assert result["members"] == 3 and result["kernels"] == "compiled"
    assert result["causal"] > 0 and result["tells"] > 0
    assert result["ratio"] == pytest.approx(result["causal"] / result["tells"])
