"""A node's event loop is chosen by configuration: the standard library's, or uvloop's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from actorfw.node import ActorSystem
from actorfw.node.config import EVENT_LOOPS, NodeSettings, load_settings, loop_factory
from tests.support.actors import Get, LoopInfo, Put, Recorder


@pytest.mark.parametrize("event_loop", EVENT_LOOPS)
def test_nodes_and_the_client_run_on_the_loop_chosen(event_loop: str) -> None:
    with ActorSystem(2, apps=["tests.support.actors"], event_loop=event_loop) as system:
        ref = system.spawn("n2", Recorder, name="r")
        kind, distinct = system.ask(ref, LoopInfo())
        # Actors' clock is as fine on either loop (uvloop's own counts whole milliseconds).
        assert kind == event_loop and distinct >= 100
        for n in range(200):
            system.tell(ref, Put(n))
        assert len(system.ask(ref, Get())["items"]) == 200
        system.crash("n2")
        system.restart("n2")
        assert system.poll(ref, LoopInfo(), until=lambda info: True)[0] == event_loop
        loop = type(system._loop).__module__.split(".")[0]
        assert loop == event_loop
        assert system.status("n2")["loop"].split(".")[0] == event_loop  # what an operator sees


def test_an_unknown_loop_is_refused_where_it_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="event_loop is one of asyncio, uvloop, not 'trio'"):
        loop_factory("trio")
    with pytest.raises(ValueError, match="node n1: event_loop is one of"):
        NodeSettings("n1", "ipc:///tmp/n1.sock", {}, "d", event_loop="trio")
    with pytest.raises(ValueError, match="event_loop is one of"):
        ActorSystem(1, event_loop="trio")
    path = tmp_path / "node.toml"
    base = 'name = "n1"\nlisten = "ipc:///tmp/n1.sock"\n'
    path.write_text(base)
    assert load_settings(path).event_loop == "asyncio"
    path.write_text(base + '[tuning]\nevent_loop = "uvloop"\n')
    assert load_settings(path).event_loop == "uvloop"
    path.write_text(base + '[tuning]\nevent_loop = "fast"\n')
    with pytest.raises(ValueError, match=r"\[tuning\] event_loop is one of asyncio, uvloop"):
        load_settings(path)
    path.write_text(base + '[tuning]\nevent-loop = "uvloop"\n')  # a misspelt key is no default
    with pytest.raises(ValueError, match=r"unknown key in \[tuning\]: event-loop \(known: "):
        load_settings(path)


def test_uvloop_missing_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"needs the uvloop package: pip install uvloop"):
        loop_factory("uvloop")
    with pytest.raises(ImportError, match=r"needs the uvloop package: pip install uvloop"):
        ActorSystem(1, event_loop="uvloop")
    path = tmp_path / "node.toml"
    path.write_text('name = "n1"\nlisten = "ipc:///tmp/n1.sock"\n[tuning]\nevent_loop = "uvloop"\n')
    with pytest.raises(ValueError, match=r"node.toml: \[tuning\] event_loop 'uvloop' needs"):
        load_settings(path)
    assert loop_factory("asyncio")  # the standard loop needs nothing
