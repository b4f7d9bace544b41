"""A test network of "hosts" made of Linux network namespaces, for the multi-host tests.

Theory of operation
-------------------

:class:`Network` builds, with iproute2, a star network that exists only on
this machine and only for the life of the test::

    root namespace (the driver: the test process)
      afw<pid>n<k>d  10.213.X.254/24 ──veth──┐
                                             │  namespace afw<pid>n<k>-sw ("switch")
                                             ├─ drv ─┐
                                             │       br0 (a bridge, no address)
    namespace afw<pid>n<k>-h1  eth0 10.213.X.1/24 ──veth── h1 ─┤
    namespace afw<pid>n<k>-h2  eth0 10.213.X.2/24 ──veth── h2 ─┤
    ...

Its rules:

1. **Names are unique to the process.** Every namespace and the one link in
   the root namespace are named ``afw<pid>n<k>...``: the test process id and a
   counter, so parallel runs (pytest-xdist workers, two checkouts) cannot
   collide. Every other link lives inside a namespace of ours, where its
   short name (``br0``, ``h1``, ``eth0``) cannot clash with anything.
2. **The subnet is free.** ``10.213.X.0/24`` is chosen, under a file lock,
   among the /24s of ``10.213.0.0/16`` that no route or address of the root
   namespace overlaps. Host ``hI`` is ``10.213.X.I``; the driver is
   ``10.213.X.254``, on the veth whose other end is a port of the bridge,
   so the test process reaches every host over TCP with no routing and no
   forwarding. Traffic never leaves the machine: the subnet is routed only
   through that veth, and the bridge has no uplink.
3. **The bridge lives in its own namespace**, so frames between hosts never
   pass the root namespace's bridge netfilter hooks or firewall.
4. **Cutting a host** sets its port on the bridge down: the host's own
   ``eth0`` loses its carrier, and no frame reaches it from the other hosts
   or the driver, nor leaves it. Nothing else changes (addresses, routes,
   TCP connections stay), as in a pulled cable. **Healing** sets the port up
   again and waits until the bridge forwards on it. (TCP sees the two sides
   differently: the cut host's sends fail locally, without carrier, and
   are retried without backoff, while the other side's retransmissions
   back off; after a long cut the cut host is heard again sooner than it
   hears the others.)
5. **Teardown removes everything it made**, also after a failure halfway
   through building: it kills what still runs inside the namespaces (only
   processes the test started there can be in them; finding any is
   reported as an error, since the test should have stopped them), deletes
   the root namespace's veth and every namespace (which destroys the links
   in them) and waits until they are gone. A run killed before its
   teardown leaves names with its pid; :func:`remove_stale` (called before
   each build) deletes those whose pid is no longer alive, with whatever
   still runs in them, and nothing else.

:func:`skip_unless_netns` skips a test with the reason when this machine
cannot do any of this (not root, no ``ip``, no free subnet, namespaces
refused).

Example::

    with network(3) as net:                 # skips the test where impossible
        h1, h2, h3 = net.hosts
        server = net.popen(h3, ["python", "-m", "http.server", "8000"])
        try:
            ...                             # reach http://{h3.address}:8000 from here
            net.cut(h3)                     # now h3 is unreachable, and reaches nothing
            net.heal(h3)
        finally:
            server.kill()
            server.wait()
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "PREFIX",
    "SUPERNET",
    "Host",
    "Network",
    "NetworkError",
    "netns_available",
    "network",
    "remove_stale",
    "skip_unless_netns",
]

PREFIX = "afw"
"""Every name this module gives starts with ``afw<pid>n<k>``."""

SUPERNET = ipaddress.IPv4Network("10.213.0.0/16")
"""Where test subnets are taken from, one /24 per network."""

_DRIVER_HOST_NUMBER = 254
_IP_TIMEOUT = 20.0
_LOCK_FILE = Path(tempfile.gettempdir()) / "actorfw-netns.lock"
_NAME = re.compile(rf"^{PREFIX}(?P<pid>\d+)n(?P<seq>\d+)(?P<rest>-sw|-h\d+|d)$")
_NETWORKS = itertools.count(1)


class NetworkError(RuntimeError):
    """An ``ip`` command failed, or the network did not reach the wanted state in time."""


@dataclass(frozen=True)
class Host:
    """One host of a :class:`Network`.

    Attributes:
        name: the host's name in the test (``h1``, ``h2``, ...).
        netns: the network namespace it is.
        address: its IPv4 address on the test subnet.
        port: its veth's end on the bridge, in the switch namespace.
    """

    name: str
    netns: str
    address: str
    port: str


def _ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    """Run ``ip [-n NETNS] ARGS...`` and return its output; raise NetworkError on failure."""
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=_IP_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise NetworkError(f"`{' '.join(argv)}` did not finish in {_IP_TIMEOUT:g}s") from None
    if check and done.returncode != 0:
        raise NetworkError(
            f"`{' '.join(argv)}` failed (exit {done.returncode}): {done.stderr.strip()}"
        )
    return done.stdout


def _ip_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
    out = _ip("-j", *args, netns=netns).strip()
    return list(json.loads(out)) if out else []


def _wait_for(what: str, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise NetworkError(f"{what}: not the case after {timeout:g}s")
        time.sleep(0.02)


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def _root_links() -> list[str]:
    return [link["ifname"] for link in _ip_json("link", "show")]


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie is not: it has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state follows the parenthesised command name, which may contain spaces.
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _kill_inside(netns: str, timeout: float = 10.0) -> list[int]:
    """SIGKILL every process still in ``netns``; return their pids once they are gone."""
    pids = [int(p) for p in _ip("netns", "pids", netns, check=False).split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    # Children of ours are reaped by their Popen; others by their parent or init.
    _wait_for(
        f"the processes left in {netns} ({pids}) are gone",
        lambda: not _ip("netns", "pids", netns, check=False).split(),
        timeout,
    )
    return pids


def _delete(
    netns_names: Sequence[str], root_links: Sequence[str], orphans_expected: bool = False
) -> list[str]:
    """Delete links and namespaces, waiting until they are gone; return what failed.

    Processes still inside a namespace are killed first; unless ``orphans_expected``
    (a crashed run's leftovers), that is reported too: whoever started them should
    have stopped them.
    """
    errors = []
    for link in root_links:
        if link in _root_links():
            try:
                _ip("link", "del", link)
            except NetworkError as error:
                errors.append(str(error))
    existing = set(_namespaces())
    for name in netns_names:
        if name not in existing:
            continue
        try:
            left = _kill_inside(name)
            if left and not orphans_expected:
                errors.append(f"processes {left} were still running in {name}; killed")
            _ip("netns", "del", name)
        except NetworkError as error:
            errors.append(str(error))
    try:
        _wait_for(
            "the namespaces and links are removed",
            lambda: (
                not (set(netns_names) & set(_namespaces()))
                and not (set(root_links) & set(_root_links()))
            ),
        )
    except NetworkError as error:
        errors.append(str(error))
    return errors


def remove_stale() -> list[str]:
    """Delete namespaces and links this module made in runs whose process is dead.

    Only names of the form ``afw<pid>n<k>...`` whose ``pid`` is not a
    running process are touched. Returns the names removed.
    """
    stale_ns = [n for n in _namespaces() if (m := _NAME.match(n)) and not _pid_alive(int(m["pid"]))]
    stale_links = [
        n for n in _root_links() if (m := _NAME.match(n)) and not _pid_alive(int(m["pid"]))
    ]
    errors = _delete(stale_ns, stale_links, orphans_expected=True)
    if errors:
        raise NetworkError("could not remove a previous run's leftovers: " + "; ".join(errors))
    return stale_ns + stale_links


@contextlib.contextmanager
def _subnet_lock() -> Iterator[None]:
    with open(_LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _used_networks() -> list[ipaddress.IPv4Network]:
    used = []
    for route in _ip_json("-4", "route", "show", "table", "all"):
        dst = route.get("dst", "default")
        if dst != "default":
            used.append(ipaddress.IPv4Network(dst, strict=False))
    for link in _ip_json("-4", "addr", "show"):
        for info in link.get("addr_info", []):
            used.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    return used


def _free_subnet(start: int) -> ipaddress.IPv4Network:
    """A /24 of SUPERNET that nothing in the root namespace overlaps (call under the lock)."""
    used = _used_networks()
    candidates = list(SUPERNET.subnets(new_prefix=24))
    for i in range(len(candidates)):
        subnet = candidates[(start + i) % len(candidates)]
        if not any(subnet.overlaps(u) for u in used):
            return subnet
    raise NetworkError(f"every /24 of {SUPERNET} is in use by a route or address on this machine")


class Network:
    """A star network of ``hosts`` namespaces around a bridge (see the module documentation).

    Use it as a context manager (or call :meth:`close`): leaving it tears
    everything down. A failure while building tears down what was built,
    then raises.

    Args:
        hosts: how many hosts (``h1`` .. ``hN``), at most 250.

    Raises:
        NetworkError: an ``ip`` command failed (the message has its error).
    """

    def __init__(self, hosts: int) -> None:
        if not 1 <= hosts <= 250:
            raise ValueError(f"a test network has 1 to 250 hosts, not {hosts}")
        self.tag = f"{PREFIX}{os.getpid()}n{next(_NETWORKS)}"
        self.switch = f"{self.tag}-sw"
        self.driver_link = f"{self.tag}d"
        self.hosts: list[Host] = []
        self._namespaces: list[str] = []
        self._root_links: list[str] = []
        self._closed = False
        remove_stale()
        try:
            self._build(hosts)
        except BaseException as error:
            try:
                self.close()
            except NetworkError as teardown:
                error.add_note(f"and tearing the partial network down failed: {teardown}")
            raise

    # -- building ------------------------------------------------------------------------

    def _add_namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self._namespaces.append(name)
        _ip("link", "set", "lo", "up", netns=name)

    def _build(self, count: int) -> None:
        self._add_namespace(self.switch)
        _ip("link", "add", "name", "br0", "type", "bridge", "stp_state", "0", netns=self.switch)
        _ip("link", "set", "br0", "up", netns=self.switch)
        with _subnet_lock():
            self.subnet = _free_subnet(start=os.getpid())
            self.prefixlen = self.subnet.prefixlen
            self.driver_address = str(self.subnet[_DRIVER_HOST_NUMBER])
            # The driver's link, created with its peer inside the switch namespace.
            _ip(
                "link", "add", "name", self.driver_link, "type", "veth",
                "peer", "name", "drv", "netns", self.switch,
            )  # fmt: skip
            self._root_links.append(self.driver_link)
            _ip("addr", "add", f"{self.driver_address}/{self.prefixlen}", "dev", self.driver_link)
        _ip("link", "set", "drv", "master", "br0", "up", netns=self.switch)
        _ip("link", "set", self.driver_link, "up")
        for number in range(1, count + 1):
            host = Host(
                name=f"h{number}",
                netns=f"{self.tag}-h{number}",
                address=str(self.subnet[number]),
                port=f"h{number}",
            )
            self._add_namespace(host.netns)
            _ip(
                "link", "add", "name", host.port, "netns", self.switch, "type", "veth",
                "peer", "name", "eth0", "netns", host.netns,
            )  # fmt: skip
            _ip("link", "set", host.port, "master", "br0", "up", netns=self.switch)
            _ip("addr", "add", f"{host.address}/{self.prefixlen}", "dev", "eth0", netns=host.netns)
            _ip("link", "set", "eth0", "up", netns=host.netns)
            self.hosts.append(host)
        _wait_for("the driver's link has a carrier", lambda: self._carrier(None, self.driver_link))
        for host in self.hosts:
            self._wait_linked(host)

    def _carrier(self, netns: str | None, dev: str) -> bool:
        (link,) = _ip_json("link", "show", "dev", dev, netns=netns)
        return "LOWER_UP" in link.get("flags", ())

    def _forwarding(self, port: str) -> bool:
        (link,) = _ip_json("-d", "link", "show", "dev", port, netns=self.switch)
        state = link.get("linkinfo", {}).get("info_slave_data", {}).get("state")
        return bool(state == "forwarding")

    def _wait_linked(self, host: Host) -> None:
        _wait_for(
            f"{host.name}'s link is up and forwarded by the bridge",
            lambda: self._carrier(host.netns, "eth0") and self._forwarding(host.port),
        )

    # -- using ---------------------------------------------------------------------------

    def host(self, name: str) -> Host:
        """The host called ``name`` (``h1``, ...)."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no host {name!r} in this network (hosts: {[h.name for h in self.hosts]})")

    def argv(self, host: Host, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` inside ``host``'s namespace."""
        return ["ip", "netns", "exec", host.netns, *argv]

    def run(
        self, host: Host, argv: Sequence[str], **kwargs: Any
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` inside ``host`` to completion (``subprocess.run`` arguments apply)."""
        check = kwargs.pop("check", False)
        kwargs.setdefault("timeout", 60)
        return subprocess.run(self.argv(host, argv), check=check, **kwargs)

    def popen(self, host: Host, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside ``host``; the caller stops it (``ip netns exec`` execs it, so
        the Popen's pid is the command's own)."""
        return subprocess.Popen(self.argv(host, argv), **kwargs)

    def cut(self, host: Host) -> None:
        """Disconnect ``host``: nothing reaches it or leaves it until :meth:`heal`."""
        _ip("link", "set", host.port, "down", netns=self.switch)
        _wait_for(
            f"{host.name} has lost its carrier", lambda: not self._carrier(host.netns, "eth0")
        )

    def heal(self, host: Host) -> None:
        """Connect ``host`` again, and wait until the bridge forwards its frames."""
        _ip("link", "set", host.port, "up", netns=self.switch)
        self._wait_linked(host)

    def is_cut(self, host: Host) -> bool:
        """Whether ``host``'s port on the bridge is down."""
        (link,) = _ip_json("link", "show", "dev", host.port, netns=self.switch)
        return "UP" not in link.get("flags", ())

    # -- tearing down --------------------------------------------------------------------

    def close(self) -> None:
        """Remove every namespace and link of this network (see rule 5).

        Raises:
            NetworkError: something could not be removed (after trying all of it).
        """
        if self._closed:
            return
        self._closed = True
        errors = _delete(list(reversed(self._namespaces)), self._root_links)
        if errors:
            raise NetworkError(f"tearing down {self.tag}: " + "; ".join(errors))

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@cache
def netns_available() -> str | None:
    """None if this process can build a :class:`Network`, else why not (tried once)."""
    if os.geteuid() != 0:
        return "network namespaces need root (run the multihost tests as root)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    try:
        with _subnet_lock():
            _free_subnet(0)
    except (NetworkError, OSError) as error:
        return f"no test subnet can be had: {error}"
    probe = f"{PREFIX}{os.getpid()}n0-sw"
    try:
        _ip("netns", "add", probe)
    except (NetworkError, OSError) as error:
        return f"cannot create a network namespace here: {error}"
    reason = None
    try:
        _ip("link", "add", "name", "br0", "type", "bridge", netns=probe)
        _ip(
            "link", "add", "name", "va", "netns", probe, "type", "veth",
            "peer", "name", "vb", "netns", probe,
        )  # fmt: skip
    except NetworkError as error:
        reason = f"cannot create a bridge and veth pairs in a network namespace: {error}"
    errors = _delete([probe], [])
    if errors:
        reason = "cannot remove a network namespace: " + "; ".join(errors)
    return reason


def skip_unless_netns() -> None:
    """Skip the calling test, with the reason, where :class:`Network` cannot work."""
    reason = netns_available()
    if reason is not None:
        pytest.skip(reason)


@contextlib.contextmanager
def network(hosts: int) -> Iterator[Network]:
    """A :class:`Network` for a test or fixture: skips where impossible, always torn down.

    Example::

        @pytest.fixture(scope="module")
        def net() -> Iterator[Network]:
            with network(3) as built:
                yield built
    """
    skip_unless_netns()
    network = Network(hosts)
    try:
        yield network
    finally:
        network.close()
