"""``actorfw bench peers`` runs the installed peers beside actorfw and skips the others by name."""

from __future__ import annotations

import json

import pytest

from actorfw.bench import peers
from actorfw.cli import main


def test_pykka_and_thespian_run_beside_actorfw_and_each_figure_is_a_ratio(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("pykka")
    pytest.importorskip("thespian")
    argv = ["bench", "peers", "--quick", "--json", "--peer", "pykka", "--peer", "thespian"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["skipped"] == {}
    got = {(r["case"], r["peer"]): r for r in doc["results"]}
    assert set(got) == {
        ("tell within a process", "pykka"),
        ("ask within a process p50", "pykka"),
        ("tell across processes", "thespian"),
        ("driver ask p50", "thespian"),
    }
    for r in got.values():
        assert r["actorfw"] > 0 and r["other"] > 0 and r["actorfw_faster"] > 0


def test_a_peer_that_is_not_installed_is_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(peers, "installed", lambda peer: False)
    assert main(["bench", "peers", "--quick"]) == 0  # starts no cluster: nothing to compare
    out = capsys.readouterr().out
    for peer in peers.PEERS:
        assert f"skipped {peer}: not installed (pip install {peer})" in out


def test_a_peer_that_fails_is_reported_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("pykka")

    def broken(ours: object, settings: object) -> list[peers.PeerResult]:
        raise ValueError("no cluster here")

    monkeypatch.setitem(peers._RUNS, "thespian", broken)
    monkeypatch.setattr(peers, "installed", lambda peer: peer in ("thespian", "pykka"))
    results, skipped = peers.run_peers("quick", ("thespian", "pykka", "pykka"))
    assert skipped == {"thespian": "failed: ValueError: no cluster here"}
    assert {r.peer for r in results} == {"pykka"} and len(results) == 2


def test_a_time_is_faster_when_smaller_and_a_rate_when_larger() -> None:
    assert peers.PeerResult("ask", "p", "µs", 100.0, 300.0).faster == 3.0
    assert peers.PeerResult("tell", "p", "msgs/s", 300.0, 100.0).faster == 3.0


def test_pysyncobj_runs_a_replicated_store_beside_actorfws() -> None:
    pytest.importorskip("pysyncobj")
    results, skipped = peers.run_peers("quick", ("pysyncobj",))
    assert skipped == {}
    assert [(r.case, r.peer, r.unit) for r in results] == [
        ("replicated puts in memory, 1,024 outstanding", "pysyncobj", "cmds/s"),
        ("replicated puts in memory, peer's all at once", "pysyncobj", "cmds/s"),
    ]
    for result in results:
        assert result.actorfw > 0 and result.other > 0 and result.faster > 0
