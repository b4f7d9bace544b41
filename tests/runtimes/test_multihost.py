"""Three nodes on three "hosts" (network namespaces), over TCP with CURVE.

Each node is ``python -m actorfw node --config nI.toml`` run inside its own
namespace (see :mod:`tests.support.netns`), so node-to-node traffic crosses real
network interfaces, and a host can be cut off and healed like a pulled
cable. The test process drives the cluster as the client ``driver``, whose
public key is on the nodes' allow-list.

The cluster is started once for the module; every test begins with every
link healed and every node seeing its peers up, and heals what it cut.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
import zmq.auth

from actorfw import ActorRef, AskTimeout, NodeDown
from actorfw.node import Connection, connect
from actorfw.node.config import load_curve
from actorfw.node.keys import generate_keys
from tests.support.actors import Asker, Get, Put, Recorder, Send, Watch, Watcher
from tests.support.netns import Host, Network, network, skip_unless_netns

pytestmark = pytest.mark.multihost

ROOT = Path(__file__).resolve().parent.parent.parent
NODES = ("n1", "n2", "n3")
PORT = 7000
START_TIMEOUT = 30.0
LIVENESS_TIMEOUT = 15.0  # down in ~2-4 s; re-admitted at the next heartbeat that gets through
STOP_TIMEOUT = 15.0  # a graceful stop may wait 5 s (linger) for messages to peers gone first

_names = itertools.count(1)


def unique(name: str) -> str:
    """An actor name not used before in this module (the cluster outlives each test)."""
    return f"{name}-{next(_names)}"


def wait_until(what: str, condition: Callable[[], Any], timeout: float) -> Any:
    """Poll ``condition`` until it returns something true; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not so after {timeout:g}s")
        time.sleep(0.05)


@dataclass
class NodeProcess:
    """A node process running in a host's namespace, its stderr going to a file."""

    name: str
    host: Host
    process: subprocess.Popen[bytes]
    stderr_path: Path
    stderr: IO[bytes]

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@dataclass
class Cluster:
    """The running cluster: the network, the nodes, the key files and the driver's client."""

    net: Network
    keys: Path
    allowed: Path
    nodes: dict[str, NodeProcess] = field(default_factory=dict)
    client: Connection | None = None

    @property
    def addresses(self) -> dict[str, str]:
        return {name: f"tcp://{node.host.address}:{PORT}" for name, node in self.nodes.items()}

    @property
    def driver(self) -> Connection:
        assert self.client is not None
        return self.client

    def peer_view(self, node: str, peer: str) -> dict[str, Any]:
        """What ``node`` believes of ``peer`` (``state``, ``incarnation``, ``phi``); {} if it
        does not answer within a second (or the driver holds it down)."""
        try:
            view: dict[str, Any] = self.driver.status(node, timeout=1.0)["peers"][peer]
        except (AskTimeout, NodeDown):
            return {}
        return view

    def peer_state(self, node: str, peer: str) -> str | None:
        """``node``'s view of ``peer``: "up", "down", "unknown", or None if it won't say."""
        state: str | None = self.peer_view(node, peer).get("state")
        return state

    def check_running(self) -> None:
        for node in self.nodes.values():
            code = node.process.poll()
            if code is not None:
                pytest.fail(f"node {node.name} exited with {code}; its log:\n{node.log()}")

    def all_up(self) -> bool:
        """Every node sees every peer up, and heard it within about a heartbeat (phi < 1): a
        peer still "up" on old heartbeats while its link was cut does not count."""
        self.check_running()
        for node in NODES:
            for peer in NODES:
                if peer == node:
                    continue
                view = self.peer_view(node, peer)
                if view.get("state") != "up" or view["phi"] >= 1.0:
                    return False
        return True

    @contextlib.contextmanager
    def cut_off(self, node: str) -> Iterator[None]:
        """Cut ``node``'s host off the network for the block, and heal it after (also on error)."""
        host = self.nodes[node].host
        self.net.cut(host)
        try:
            yield
        finally:
            self.net.heal(host)


def node_config(cluster: Cluster, name: str, host: Host, data_dir: Path) -> str:
    """A node's TOML configuration, as docs/deployment.md describes it."""
    peers = "\n".join(
        f'{peer} = "tcp://{cluster.net.host(f"h{i}").address}:{PORT}"'
        for i, peer in enumerate(NODES, start=1)
        if peer != name
    )
    secret = cluster.keys / f"{name}.key_secret"
    return (
        f'name = "{name}"\n'
        f'listen = "tcp://{host.address}:{PORT}"\n'
        f"data_dir = {json.dumps(str(data_dir))}\n"  # a JSON string is a TOML basic string
        'apps = ["tests.support.actors"]\n'
        f"\n[peers]\n{peers}\n"
        f"\n[keys]\nsecret = {json.dumps(str(secret))}\n"
        f"peers = {json.dumps(str(cluster.allowed))}\n"
    )


def start_node(cluster: Cluster, name: str, host: Host, base: Path) -> NodeProcess:
    config = base / f"{name}.toml"
    config.write_text(node_config(cluster, name, host, base / f"data-{name}"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    stderr_path = base / f"{name}.stderr"
    stderr = open(stderr_path, "wb")  # closed by stop_nodes
    try:
        process = cluster.net.popen(
            host,
            [sys.executable, "-m", "actorfw", "node", "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
    except BaseException:
        stderr.close()
        raise
    return NodeProcess(name, host, process, stderr_path, stderr)


def stop_nodes(nodes: list[NodeProcess]) -> None:
    """SIGTERM every node, SIGKILL those still running at the deadline; close their logs."""
    try:
        for node in nodes:
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for node in nodes:
            try:
                node.process.wait(max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
    finally:
        for node in nodes:
            if node.process.poll() is None:  # only if something above raised
                node.process.kill()
                node.process.wait()
            node.stderr.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    skip_unless_netns()
    base = tmp_path_factory.mktemp("multihost")
    keys = base / "keys"
    allowed = base / "allowed"
    allowed.mkdir()
    for name in (*NODES, "driver"):
        public, _ = generate_keys(name, keys)
        (allowed / public.name).write_bytes(public.read_bytes())
    with network(len(NODES)) as net:
        cluster = Cluster(net, keys, allowed)
        try:
            for i, name in enumerate(NODES, start=1):
                cluster.nodes[name] = start_node(cluster, name, net.host(f"h{i}"), base)
            curve = load_curve(keys / "driver.key_secret", allowed)
            cluster.client = connect(cluster.addresses, curve=curve, name="driver")
            wait_until("every node sees its peers up", cluster.all_up, START_TIMEOUT)
            yield cluster
        finally:
            try:
                if cluster.client is not None:
                    cluster.client.close()
            finally:
                stop_nodes(list(cluster.nodes.values()))


@pytest.fixture
def healthy(cluster: Cluster) -> Cluster:
    """The cluster with every link up and every node seeing its peers up."""
    for host in cluster.net.hosts:
        if cluster.net.is_cut(host):
            cluster.net.heal(host)
    wait_until("every node sees its peers up", cluster.all_up, LIVENESS_TIMEOUT)
    return cluster


# -- messages between hosts --------------------------------------------------------------


def test_an_actor_asks_an_actor_on_another_host_over_curve(healthy: Cluster) -> None:
    driver = healthy.driver
    recorder = driver.spawn("n3", Recorder, "on n3", name=unique("recorder"))
    asker = driver.spawn("n1", Asker, name=unique("asker"))
    assert driver.ask(asker, Send(recorder, Put("hello"))) == 1
    assert driver.ask(recorder, Get())["items"] == [["hello", f"n1/{asker.name}"]]


# -- the network helper ------------------------------------------------------------------


LISTENER = (
    "import socket\n"
    f"server = socket.create_server(('0.0.0.0', {PORT}))\n"
    "while True:\n"
    "    server.accept()[0].close()\n"
)


def reachable(net: Network, source: Host | None, target: Host) -> bool:
    """Whether a TCP connection from ``source`` (None: the driver) to ``target`` opens."""
    probe = (
        "import socket, sys\n"
        "try:\n"
        f"    socket.create_connection(({target.address!r}, {PORT}), timeout=0.5).close()\n"
        "except OSError:\n"
        "    sys.exit(1)\n"
    )
    argv = [sys.executable, "-c", probe]
    if source is not None:
        argv = net.argv(source, argv)
    return subprocess.run(argv, check=False, timeout=30).returncode == 0


def test_a_cut_host_is_unreachable_from_the_driver_and_the_other_hosts_until_healed() -> None:
    # A network of its own: cutting a host here does not disturb the cluster's failure detectors.
    with network(3) as net:
        h1, h2, h3 = net.hosts
        listeners = []
        try:
            for host in (h2, h3):
                listeners.append(net.popen(host, [sys.executable, "-c", LISTENER]))
            wait_until("the listeners accept", lambda: reachable(net, None, h3), 10.0)
            wait_until("the listeners accept", lambda: reachable(net, None, h2), 10.0)
            assert reachable(net, h1, h3)
            net.cut(h3)
            assert not reachable(net, None, h3)
            assert not reachable(net, h1, h3)
            assert not reachable(net, h3, h2)
            assert reachable(net, h1, h2)
            net.heal(h3)
            assert reachable(net, None, h3) and reachable(net, h1, h3)
        finally:
            for listener in listeners:
                listener.kill()
                listener.wait()


# -- liveness ----------------------------------------------------------------------------


def test_a_cut_off_host_is_declared_down_by_its_peers(healthy: Cluster) -> None:
    with healthy.cut_off("n3"):
        wait_until(
            "n1 and n2 see n3 down",
            lambda: healthy.peer_state("n1", "n3") == healthy.peer_state("n2", "n3") == "down",
            LIVENESS_TIMEOUT,
        )
    assert "node n3 is down" in healthy.nodes["n1"].log()


def test_watchers_of_an_actor_on_a_cut_off_host_get_terminated_node_down(
    healthy: Cluster,
) -> None:
    driver = healthy.driver
    recorder = driver.spawn("n3", Recorder, name=unique("watched"))
    watcher = driver.spawn("n1", Watcher, name=unique("watcher"))
    driver.ask(watcher, Watch(recorder))
    assert driver.ask(watcher, Get()) == []
    with healthy.cut_off("n3"):
        events = driver.poll(watcher, Get(), until=bool, timeout=LIVENESS_TIMEOUT)
    assert events == [[recorder.path, "node-down"]]


def test_a_healed_host_is_readmitted_and_answers_asks_again(healthy: Cluster) -> None:
    driver = healthy.driver
    recorder = driver.spawn("n3", Recorder, name=unique("recorder"))
    asker = driver.spawn("n1", Asker, name=unique("asker"))
    with healthy.cut_off("n3"):
        wait_until(
            "n1 sees n3 down", lambda: healthy.peer_state("n1", "n3") == "down", LIVENESS_TIMEOUT
        )
    # Each direction is its own TCP connection: n1 hears n3 again when n3's retransmissions
    # get through, n3 hears n1 when n1's do (their backoff can differ). The ask needs both.
    wait_until(
        "n1 and n3 see each other up",
        lambda: healthy.peer_state("n1", "n3") == healthy.peer_state("n3", "n1") == "up",
        LIVENESS_TIMEOUT,
    )
    assert healthy.peer_view("n1", "n3")["incarnation"] == 1  # the same process, re-admitted
    assert driver.ask(asker, Send(recorder, Put("after the cut"))) == 1


# -- the allow-list ----------------------------------------------------------------------


@contextlib.contextmanager
def intruder(cluster: Cluster) -> Iterator[tuple[Connection, str]]:
    """A client with a valid key pair of its own that is not on the nodes' allow-list."""
    folder = cluster.keys.parent / unique("intruder")
    public, secret = generate_keys("intruder", folder)
    key = zmq.auth.load_certificate(str(public))[0].decode("ascii")
    with connect(
        cluster.addresses, curve=load_curve(secret, cluster.allowed), name="intruder"
    ) as c:
        yield c, key


def test_a_client_whose_key_is_not_on_the_allow_list_gets_no_answer(healthy: Cluster) -> None:
    recorder = healthy.driver.spawn("n2", Recorder, name=unique("guarded"))
    with intruder(healthy) as (client, _), pytest.raises(AskTimeout):
        client.ask(recorder, Get(), timeout=2.0)
    assert healthy.driver.ask(recorder, Get())["items"] == []


def test_a_node_logs_the_refusal_of_a_key_not_on_the_allow_list(healthy: Cluster) -> None:
    node = healthy.nodes["n2"]
    with intruder(healthy) as (client, key):
        client.tell(ActorRef("n2", "anyone"), Get())
        wait_until(
            "n2 logs the refusal",
            lambda: (
                f"refused a connection: public key {key} is not on the allow-list" in node.log()
            ),
            10.0,
        )
