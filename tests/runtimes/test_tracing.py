"""Causal tracing: clocks in messages between traced nodes, events recorded, questions answered.

The same behaviour on the simulator and on node processes; the ShiViz export
is parsed here by that format's own rules.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actorfw import Actor, ActorSystem, NodeConfig, Simulation, VectorClock, handler, message
from actorfw.check.trace import CausalEvent, Trace, TraceError, load_trace
from actorfw.cli import main as cli
from actorfw.core.tracing import Traced, TraceRecorder
from tests.support.shiviz import parse_shiviz


@message(name="tests.tracing.Relay")
class Relay:
    """Pass ``hops`` on along ``path`` (node ids), logging each hop."""

    path: tuple[str, ...]


class Hop(Actor):
    """Logs the relay, and sends it on to the same-named actor of the next node."""

    def __init__(self) -> None:
        self.seen: list[Relay] = []

    @handler
    def relay(self, msg: Relay) -> None:
        self.seen.append(msg)
        self.context.log.info("relay at %s", self.context.node)
        if msg.path:
            nxt = self.context.actor_ref("hop", msg.path[0])
            self.context.tell(nxt, Relay(msg.path[1:]))

    @handler
    def count(self, msg: int) -> int:
        return len(self.seen)


def relay_run(sim: Simulation) -> None:
    hops = {node: sim.spawn(node, Hop, name="hop") for node in ("n1", "n2", "n3")}
    sim.tell(hops["n1"], Relay(("n2", "n3")), on="n1")
    sim.poll(hops["n3"], 0, until=lambda n: n == 1)
    sim.tell(hops["n2"], Relay(()), on="n3")  # from n3's client after the relay reached it
    sim.poll(hops["n2"], 0, until=lambda n: n == 2)


def test_a_relay_across_three_nodes_is_ordered_by_the_trace(tmp_path: Path) -> None:
    with Simulation(nodes=3, seed=5, node_config=NodeConfig(trace_dir=str(tmp_path))) as sim:
        relay_run(sim)
    trace = load_trace([str(tmp_path)])
    assert trace.gaps() == []
    logs: dict[str, CausalEvent] = {}
    for event in trace.events:  # each node's first relay line
        if event.kind == "log" and event.what.startswith("relay at"):
            logs.setdefault(event.node, event)
    assert set(logs) == {"n1", "n2", "n3"}
    assert trace.happened_before(logs["n1"].id, logs["n2"].id)
    assert trace.happened_before(logs["n2"].id, logs["n3"].id)
    assert not trace.happened_before(logs["n3"].id, logs["n1"].id)
    past = {e.id for e in trace.causal_past(logs["n3"].id)}
    assert logs["n1"].id in past and logs["n2"].id in past
    sends = [e for e in trace.events if e.kind == "send" and e.what == "tests.tracing.Relay"]
    receives = [e for e in trace.events if e.kind == "receive" and e.what == "tests.tracing.Relay"]
    # n1 to n2, n2 to n3, n3's client to n2; the first tell, from n1's client to n1, is local.
    assert len(sends) == 3 and len(receives) == 3
    # The second relay left n3 after the first reached it.
    second = [e for e in receives if e.node == "n2"][-1]
    assert trace.happened_before(logs["n3"].id, second.id)


def test_events_on_nodes_that_never_talk_are_concurrent(tmp_path: Path) -> None:
    with Simulation(nodes=2, seed=1, node_config=NodeConfig(trace_dir=str(tmp_path))) as sim:
        a, b = sim.spawn("n1", Hop, name="hop"), sim.spawn("n2", Hop, name="hop")
        sim.tell(a, Relay(()), on="n1")
        sim.tell(b, Relay(()), on="n2")
        sim.poll(b, 0, until=lambda n: n == 1)
        sim.poll(a, 0, until=lambda n: n == 1)
    trace = load_trace([str(tmp_path)])
    mine, theirs = (
        next(e for e in trace.events if e.node == n and e.kind == "log") for n in ("n1", "n2")
    )
    assert not trace.happened_before(mine.id, theirs.id)
    assert theirs in trace.concurrent(mine.id)


def test_the_shiviz_export_parses_by_that_formats_rules(tmp_path: Path) -> None:
    with Simulation(nodes=3, seed=2, node_config=NodeConfig(trace_dir=str(tmp_path))) as sim:
        relay_run(sim)
    trace = load_trace([str(tmp_path)])
    events = parse_shiviz(trace.to_shiviz())
    assert len(events) == len(trace)
    assert {host for _, host, _ in events} == {"n1", "n2", "n3"}


def test_a_restarted_node_goes_on_counting_where_it_stopped(tmp_path: Path) -> None:
    config = NodeConfig(trace_dir=str(tmp_path))
    with Simulation(nodes=2, seed=3, node_config=config) as sim:
        hop = sim.spawn("n2", Hop, name="hop")
        sim.spawn("n1", Hop, name="hop")
        sim.tell(hop, Relay(("n1",)), on="n1")
        sim.poll(hop, 0, until=lambda n: n == 1)
        sim.crash("n2")
        sim.restart("n2")
        sim.tell(hop, Relay(()), on="n1")  # the restarted node spawned its actors again
        sim.poll(hop, 0, until=lambda n: n == 1)
    trace = load_trace([str(tmp_path)])
    assert trace.gaps() == []
    parse_shiviz(trace.to_shiviz())
    n2 = [e for e in trace.events if e.node == "n2"]
    assert [e.counter for e in n2] == list(range(1, len(n2) + 1))
    assert sum(1 for e in n2 if e.kind == "log") == 2  # one per incarnation


def test_tracing_off_writes_nothing_and_actors_never_see_the_wrapper(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    with Simulation(nodes=2, seed=4) as sim:
        hop = sim.spawn("n2", Hop, name="hop")
        # A peer that traces sends Traced; a node that does not trace unwraps it.
        sim.tell(hop, Traced(VectorClock({"n9": 3}), Relay(())), on="n1")
        sim.poll(hop, 0, until=lambda n: n == 1)
    assert list(tmp_path.iterdir()) == []


def test_the_bound_on_events_stops_tracing_without_a_gap(tmp_path: Path) -> None:
    trace = TraceRecorder(str(tmp_path), "n1", max_events=3)
    sent = trace.outgoing("n1/a", "n2", Relay(()))
    assert isinstance(sent, Traced)
    trace.logged("n1/a", "one")
    trace.logged("n1/a", "two")
    assert not trace.active
    assert trace.outgoing("n1/a", "n2", Relay(())) == Relay(())  # unwrapped now
    trace.close()
    loaded = load_trace([str(tmp_path)])
    assert [e.counter for e in loaded.events] == [1, 2, 3] and loaded.gaps() == []
    again = TraceRecorder(str(tmp_path), "n1", max_events=3)  # a restart stays stopped
    assert not again.active
    again.close()


def test_bad_trace_files_and_unknown_events_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "n1.trace.jsonl"
    bad.write_text('{"format": "actorfw-trace/1", "node": "n1"}\n{"kind": "log", "clock": 3}\n')
    with pytest.raises(TraceError, match="bad clock"):
        load_trace([str(tmp_path)])
    with pytest.raises(TraceError, match="no trace files"):
        load_trace([])
    one = Trace([CausalEvent("n1", 1, "log", "n1/a", "", "hi", {"n1": 1})])
    with pytest.raises(TraceError, match="no event 'n1:2'"):
        one.causal_past("n1:2")
    with pytest.raises(TraceError, match="two events are n1:1"):
        Trace([one.events[0], one.events[0]])


def test_the_trace_command_answers_and_exports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Simulation(nodes=3, seed=6, node_config=NodeConfig(trace_dir=str(tmp_path))) as sim:
        relay_run(sim)
    trace = load_trace([str(tmp_path)])
    logs = [e for e in trace.events if e.kind == "log"]
    first, last = logs[0].id, next(e.id for e in logs if e.node == "n3")
    assert cli(["trace", str(tmp_path), "--before", first, last]) == 0
    assert "happened before" in capsys.readouterr().out
    assert cli(["trace", str(tmp_path), "--before", last, first]) == 1
    assert cli(["trace", str(tmp_path), "--past", last]) == 0
    assert first in capsys.readouterr().out
    out = tmp_path / "run.shiviz"
    assert cli(["trace", str(tmp_path), "--shiviz", str(out)]) == 0
    assert len(parse_shiviz(out.read_text())) == len(trace)
    assert cli(["trace", str(tmp_path), "--concurrent", "n7:1"]) == 2
    assert "no event 'n7:1'" in capsys.readouterr().err


def test_node_processes_trace_the_same_way(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    config = NodeConfig(trace_dir=str(traces))
    with ActorSystem(
        3, apps=["tests.runtimes.test_tracing"], node_config=config, base_dir=tmp_path
    ) as system:
        hops = {node: system.spawn(node, Hop, name="hop") for node in system.nodes}
        system.tell(hops["n1"], Relay(("n2", "n3")))
        system.poll(hops["n3"], 0, until=lambda n: n == 1)
    trace = load_trace([str(traces)])
    assert trace.gaps() == []
    logs = {e.node: e for e in trace.events if e.kind == "log"}
    assert trace.happened_before(logs["n1"].id, logs["n3"].id)
    parse_shiviz(trace.to_shiviz())


def test_a_node_file_sets_the_trace_directory_relative_to_itself(tmp_path: Path) -> None:
    from actorfw.node.config import load_settings

    base = 'name = "n1"\nlisten = "ipc:///tmp/n1.sock"\n'
    path = tmp_path / "node.toml"
    path.write_text(base)
    assert load_settings(path).engine.trace_dir is None
    path.write_text(base + '[tuning]\ntrace_dir = "traces"\n')
    assert load_settings(path).engine.trace_dir == str(tmp_path / "traces")
    path.write_text(base + "[tuning]\ntrace_dir = 3\n")
    with pytest.raises(ValueError, match=r"\[tuning\] trace_dir is a directory path"):
        load_settings(path)


def test_a_killed_nodes_lost_event_ids_are_skipped_not_reused(tmp_path: Path) -> None:
    first = TraceRecorder(str(tmp_path), "n1")
    for n in range(5):
        first.logged("n1/a", f"before {n}")
    first.flush()
    first._file.close()  # killed: no closing line, and a half-written one
    with open(first.path, "ab") as file:
        file.write(b'{"kind": "log", "clo')
    again = TraceRecorder(str(tmp_path), "n1")
    again.logged("n1/a", "after")
    again.close()
    trace = load_trace([str(tmp_path)])
    counters = [e.counter for e in trace.events]
    assert counters[:5] == [1, 2, 3, 4, 5] and counters[5] > 5 + 1024
    assert trace.gaps(), "the lost ids show as a gap"
    closed = TraceRecorder(str(tmp_path), "n1")  # closed cleanly: goes on at once
    closed.logged("n1/a", "next")
    closed.close()
    assert load_trace([str(tmp_path)]).events[-1].counter == counters[5] + 1


def test_an_implausible_peer_clock_is_not_merged(tmp_path: Path) -> None:
    recorder = TraceRecorder(str(tmp_path), "n2")
    recorder.incoming(Traced(VectorClock({"n2": 1000, "n1": 1}), Relay(())), "n2/a", "n1")
    huge = VectorClock({f"ghost{i}": 1 for i in range(2000)})
    recorder.incoming(Traced(huge, Relay(())), "n2/a", "n1")
    recorder.close()
    events = load_trace([str(tmp_path)]).events
    assert [e.counter for e in events] == [1, 2] and all(len(e.clock) == 1 for e in events)


def test_a_message_wrapped_twice_is_refused_not_delivered(tmp_path: Path) -> None:
    with Simulation(nodes=2, seed=7) as sim:
        hop = sim.spawn("n2", Hop, name="hop")
        clock = VectorClock({"n1": 1})
        sim.tell(hop, Traced(clock, Traced(clock, Relay(()))), on="n1")
        sim.tell(hop, Relay(()), on="n1")
        sim.poll(hop, 0, until=lambda n: n == 1)
        assert sim.ask(hop, 0) == 1  # only the plain relay arrived
