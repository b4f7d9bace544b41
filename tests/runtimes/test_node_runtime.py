"""Node processes: graceful and hard stops, restarts, durable storage, liveness, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from actorfw import Actor, AskTimeout, NodeDown, RemoteError, handler
from actorfw.core.engine import NodeConfig
from actorfw.node import ActorSystem
from tests.support.actors import (
    Asker,
    Blast,
    Block,
    Counter,
    GcInfo,
    Get,
    Put,
    Recorder,
    Send,
    Size,
    StopSelf,
    Sync,
    Tally,
    Watch,
    Watcher,
)

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    with ActorSystem(nodes=3, apps=["tests.support.actors"]) as s:
        yield s


def wait_until(condition, timeout: float = 30.0, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


def peer_state(system: ActorSystem, node: str, peer: str) -> dict[str, object]:
    state: dict[str, object] = system.status(node)["peers"][peer]
    return state


# -- stopping ----------------------------------------------------------------------------


def test_a_graceful_stop_flushes_every_queued_message(system: ActorSystem) -> None:
    sink = system.spawn("n2", Tally, name="sink")
    source = system.spawn("n1", Tally, name="source")
    system.ask(source, Blast(sink, 20_000))
    assert system.poll(source, Size(), until=lambda s: s[2] == 20_000)  # all sent
    # Tells may still sit in n1's queues and mailbox: a graceful stop must send them all.
    assert system.stop_node("n1") == 0
    assert system.poll(sink, Size(), until=lambda s: s[0] == 20_000, timeout=30.0)[:2] == [
        20_000,
        True,
    ]


def test_a_graceful_stop_removes_the_ipc_file(system: ActorSystem) -> None:
    path = Path(system.endpoint("n2").removeprefix("ipc://"))
    assert path.exists()
    assert system.stop_node("n2") == 0
    assert not path.exists()


def test_a_killed_node_restarts_on_its_socket_and_respawns_its_actors(system: ActorSystem) -> None:
    ref = system.spawn("n1", Recorder, "kept", name="kept")
    system.ask(ref, Put("gone with the process"))
    system.crash("n1")
    system.restart("n1")
    state = system.ask(ref, Get())
    assert (state["label"], state["items"]) == ("kept", [])


def test_synced_writes_survive_a_sigkill_and_unsynced_ones_do_not(system: ActorSystem) -> None:
    ref = system.spawn("n1", Counter, name="c")
    assert system.ask(ref, Put(5)) == 5
    assert system.ask(ref, Sync()) == 5
    assert system.ask(ref, Put(7)) == 12  # in memory only: never synced
    pid = system.pid("n1")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: system.pid("n1") is None)
    system.restart("n1")
    assert system.ask(ref, Get()) == 5


# -- liveness ----------------------------------------------------------------------------


def test_a_restarted_node_is_a_new_incarnation_that_its_peers_readmit(system: ActorSystem) -> None:
    assert wait_until(lambda: peer_state(system, "n2", "n1")["state"] == "up")
    assert peer_state(system, "n2", "n1")["incarnation"] == 1
    system.crash("n1")
    assert wait_until(lambda: peer_state(system, "n2", "n1")["state"] == "down")
    system.restart("n1")
    assert wait_until(
        lambda: (
            (peer_state(system, "n2", "n1")["state"], peer_state(system, "n2", "n1")["incarnation"])
            == ("up", 2)
        )
    )


def test_asks_from_a_peer_to_a_down_node_fail_fast_with_node_down(system: ActorSystem) -> None:
    target = system.spawn("n3", Recorder, name="t")
    asker = system.spawn("n2", Asker, name="a")
    assert system.ask(asker, Send(target, Put(1))) == 1
    system.crash("n3")
    assert wait_until(lambda: peer_state(system, "n2", "n3")["state"] == "down")
    with pytest.raises(NodeDown, match="node n3 is declared down"):
        system.ask(asker, Send(target, Get()))


# -- remote spawn ------------------------------------------------------------------------


class NotLoadedThere(Actor):
    """Defined in a module the nodes never import."""

    @handler
    def get(self, msg: Get) -> str:
        return "unreachable"


def test_spawning_a_class_the_node_has_not_imported_is_refused_clearly(system: ActorSystem) -> None:
    with pytest.raises(
        RemoteError, match=r"NotLoadedThere is not loaded on node n1; import its module"
    ):
        system.spawn("n1", NotLoadedThere, name="x")


# -- no orphans --------------------------------------------------------------------------

DRIVER = textwrap.dedent(
    """
    import sys
    from actorfw.node import ActorSystem

    if __name__ == "__main__":
        with ActorSystem(nodes=2, apps=["tests.support.actors"]) as system:
            print(" ".join(str(system.pid(n)) for n in system.nodes), flush=True)
            sys.stdin.readline()  # wait until told, or killed
    """
)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except FileNotFoundError:
        return False


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    children: list[int] = []
    try:
        assert proc.stdout is not None
        children = [int(p) for p in proc.stdout.readline().split()]
        assert len(children) == 2, "the driver did not report its nodes"
        yield proc, children
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_nodes_stop_when_their_parent_is_killed(
    driver: tuple[subprocess.Popen[str], list[int]],
) -> None:
    proc, children = driver
    assert all(alive(pid) for pid in children)
    proc.kill()
    proc.wait(10)
    assert wait_until(lambda: not any(alive(pid) for pid in children), timeout=30.0)


def test_ctrl_c_in_the_parent_stops_every_node(
    driver: tuple[subprocess.Popen[str], list[int]],
) -> None:
    proc, children = driver
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    assert not any(alive(pid) for pid in children)


def test_closing_the_system_leaves_no_process_and_no_file() -> None:
    system = ActorSystem(nodes=2, apps=["tests.support.actors"], node_config=NodeConfig())
    pids = [system.pid(n) for n in system.nodes]
    base = system.base_dir
    system.close()
    assert not any(alive(pid) for pid in pids if pid is not None)
    assert not base.exists()


def test_refs_and_values_cross_processes_both_ways(system: ActorSystem) -> None:
    sink = system.spawn("n2", Tally, name="sink")
    asker = system.spawn("n1", Asker, name="a")
    assert system.ask(asker, Send(sink, Size())) == [0, True, 0]


def test_arrays_of_any_shape_cross_processes(system: ActorSystem) -> None:
    # As in the simulator (tests/runtimes/test_simulation.py): one with a zero in its shape too.
    recorder = system.spawn("n2", Recorder, name="r")
    asker = system.spawn("n1", Asker, name="a")
    shapes = [(1, 0, 2), (0,), (3, 4)]
    for n, shape in enumerate(shapes, 1):
        assert system.ask(asker, Send(recorder, Put(np.zeros(shape, dtype=np.float32)))) == n
    items = system.ask(recorder, Get())["items"]
    assert [(item[0].shape, item[0].dtype) for item in items] == [
        (shape, np.float32) for shape in shapes
    ]


def test_a_node_process_freezes_its_start_up_objects_and_sets_its_gc_thresholds(
    system: ActorSystem,
) -> None:
    from actorfw.node.config import GC_THRESHOLD

    ref = system.spawn("n2", Recorder, name="gc")
    *threshold, frozen = system.ask(ref, GcInfo())
    assert tuple(threshold) == GC_THRESHOLD
    assert frozen > 1000  # the modules and classes loaded at start


def test_a_node_whose_loop_stood_still_judges_no_peer_on_that_silence() -> None:
    with ActorSystem(nodes=2, apps=["tests.support.actors"], storage="memory") as system:
        watcher = system.spawn("n1", Watcher, name="watcher")
        watched = system.spawn("n2", Recorder, name="watched")
        system.ask(watcher, Watch(watched))
        system.tell(system.spawn("n1", Recorder, name="blocker"), Block(5.0))

        def stalls() -> int:
            try:
                return int(system.status("n1", timeout=1.0)["stats"]["stalls"])
            except (NodeDown, AskTimeout):  # the client's view of n1 while it stands still
                return 0

        assert wait_until(lambda: stalls() == 1, timeout=60.0)
        peers = system.status("n1")["peers"]
        assert peers["n2"]["state"] == "up"
        assert system.ask(watcher, Get()) == []  # no Terminated: n2 was never declared down
        # n2 heard nothing from n1 for 5 s and declared it down; down is a suspicion, so it
        # kept n1's watch of its actor, and the watcher still learns when that actor stops.
        assert wait_until(lambda: system.status("n2")["peers"]["n1"]["state"] == "up")
        system.tell(watched, StopSelf())
        events = system.poll(watcher, Get(), until=lambda events: events, timeout=30.0)
        assert events == [["n2/watched", "stopped"]]


def test_a_client_whose_loop_stood_still_still_reaches_its_nodes() -> None:
    # A driver coroutine that blocks the client's loop for longer than the failure detector
    # allows: on its next heartbeat round the client forgives its own pause, so the nodes are
    # still up to it and the next ask goes through.
    with ActorSystem(nodes=1, apps=["tests.support.actors"], storage="memory") as system:
        ref = system.spawn("n1", Recorder, name="r")

        async def block() -> None:
            time.sleep(5.0)

        system.run(block, timeout=30.0)
        assert system.ask(ref, Get())["items"] == []
        assert wait_until(lambda: system._client.stats.stalls == 1, timeout=10.0)


def test_gc_threshold_settings_are_checked_and_read_from_toml(tmp_path: Path) -> None:
    from actorfw.node.config import GC_THRESHOLD, NodeSettings, load_settings

    with pytest.raises(ValueError, match="gc_threshold is three positive ints"):
        NodeSettings("n1", "ipc:///tmp/n1.sock", {}, "d", gc_threshold=(0, 10, 10))
    base = 'name = "n1"\nlisten = "ipc:///tmp/n1.sock"\n'
    cases = {"": GC_THRESHOLD, "gc_threshold = [700, 10, 10]\n": (700, 10, 10)}
    cases["gc_threshold = []\n"] = None
    for tuning, expected in cases.items():
        path = tmp_path / "node.toml"
        path.write_text(base + ("[tuning]\n" + tuning if tuning else ""))
        assert load_settings(path).gc_threshold == expected
    path.write_text(base + '[tuning]\ngc_threshold = "often"\n')
    with pytest.raises(ValueError, match=r"\[tuning\] gc_threshold is a list of three ints"):
        load_settings(path)
