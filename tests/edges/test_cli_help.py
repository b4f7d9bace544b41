"""The ``actorfw`` help says what each command takes and does, and promises nothing more."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from actorfw.cli import main
from actorfw.demo import DemoOptions

ROOT = Path(__file__).resolve().parent.parent.parent

KV_ARGUMENTS = {
    "get": {"KEY"},
    "put": {"KEY", "VALUE"},
    "delete": {"KEY"},
    "cas": {"KEY", "EXPECTED", "NEW"},
    "append": {"KEY", "TEXT"},
}


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(KV_ARGUMENTS))
def test_each_kv_command_help_shows_only_its_own_arguments(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    text = help_of(capsys, "kv", command)
    own = KV_ARGUMENTS[command]
    others = set().union(*KV_ARGUMENTS.values()) - own
    shown = set(re.findall(r"\b[A-Z]{3,}\b", text))
    assert own <= shown, text
    assert not shown & others, text


def test_the_kv_help_explains_every_value_argument(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join(help_of(capsys, "kv").split())
    assert "VALUE, EXPECTED and NEW are read as JSON" in text


def test_the_command_help_promises_only_what_exists(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join(help_of(capsys).split()).lower()
    assert "multi-paxos" in text
    for planned in ("sharding", "primary-backup"):  # causal broadcast and tracing exist
        assert planned not in text


def test_the_demo_lasts_as_long_in_its_help_as_in_the_readme(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = " ".join(help_of(capsys).split())
    said = re.search(r"demo .*?\(about (\d+) s\)", text)
    readme = re.search(
        r"`actorfw demo` \(about (\d+) s\)", (ROOT / "README.md").read_text(encoding="utf-8")
    )
    assert said is not None and readme is not None
    assert said.group(1) == readme.group(1)
    # The workload runs for its default duration; starting and checking come on top.
    assert DemoOptions().duration < int(said.group(1)) <= DemoOptions().duration + 10
