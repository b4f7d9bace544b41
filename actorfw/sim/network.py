"""The simulated network: latency, loss, duplication, reordering and partitions, from one seed.

Theory of operation
-------------------

Every message between two nodes goes through :meth:`SimNetwork.send`,
which decides its fate with the network's own random source, in this order:

1. If a partition separates the two nodes, the message is dropped.
2. With probability ``drop`` it is dropped.
3. With probability ``duplicate`` it is sent twice.
4. Each copy gets a latency drawn from ``latency``.
5. Unless ``reorder`` is on, a copy never overtakes an earlier message of
   the same (sender node, receiver node) pair: it arrives at the later of
   its own time and the previous message's. This is the FIFO-per-pair
   promise the real transport keeps; with ``reorder`` on, copies arrive in
   the order of their own times.
6. At arrival, a message for a node that crashed since it was sent is lost
   (the connection it travelled on is gone).

Everything is recorded in the simulation's trace, so a run can be read back
message by message.
"""

from __future__ import annotations

import dataclasses
import random
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from actorfw.core.envelopes import ASK, FAILURE, REPLY, TELL, Envelope, Receiver

if TYPE_CHECKING:
    from actorfw.sim.cluster import Simulation

__all__ = ["Latency", "NetworkConfig", "SimNetwork"]

Latency = tuple[float, float] | Callable[[random.Random], float]
"""``(low, high)`` seconds, drawn uniformly, or a function of the network's random source."""

_KINDS = {TELL: "tell", ASK: "ask", REPLY: "reply", FAILURE: "failure"}


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """How the simulated network treats messages (see the module rules).

    Attributes:
        latency: ``(low, high)`` seconds, uniform, or ``f(rng) -> seconds``.
        drop: probability that a message is lost.
        duplicate: probability that a message is delivered twice.
        reorder: let messages of one pair of nodes overtake each other.
    """

    latency: Latency = (0.0005, 0.002)
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: bool = False

    def __post_init__(self) -> None:
        if not (0.0 <= self.drop <= 1.0 and 0.0 <= self.duplicate <= 1.0):
            raise ValueError("drop and duplicate are probabilities, in [0, 1]")
        if isinstance(self.latency, tuple):
            low, high = self.latency
            if not 0.0 <= low <= high:
                raise ValueError(f"latency (low, high) needs 0 <= low <= high, not {self.latency}")
        elif not callable(self.latency):
            raise TypeError("latency is (low, high) or a function of a random.Random")

    def sample(self, rng: random.Random) -> float:
        """One latency, in seconds."""
        if isinstance(self.latency, tuple):
            low, high = self.latency
            return low if low == high else rng.uniform(low, high)
        value = float(self.latency(rng))
        if value < 0:
            raise ValueError(f"the latency function returned {value}, a negative latency")
        return value


def digest(envelope: Envelope) -> str:
    """A short checksum of an envelope's bytes, for the trace."""
    crc = zlib.crc32(envelope.body)
    for buffer in envelope.buffers:
        crc = zlib.crc32(memoryview(buffer).cast("B"), crc)
    return f"{crc:08x}"


class _Channel:
    __slots__ = ("last", "queue")

    def __init__(self) -> None:
        self.last = 0.0
        self.queue: deque[tuple[Envelope, int]] = deque()


class _Port:
    """The transport one node's engine sends through."""

    __slots__ = ("_network", "_source")

    def __init__(self, network: SimNetwork, source: str) -> None:
        self._network = network
        self._source = source

    def send(self, destination: str, envelope: Envelope) -> None:
        """Send ``envelope`` to ``destination`` across the simulated network."""
        self._network.send(self._source, destination, envelope)

    def attach(self, inbound: Receiver) -> None:
        """What arrives for this node goes to ``inbound`` (its engine's, this incarnation's)."""
        self._network.attach(self._source, inbound)


class SimNetwork:
    """The network of a :class:`~actorfw.sim.Simulation` (see the module rules)."""

    def __init__(self, sim: Simulation, config: NetworkConfig, rng: random.Random) -> None:
        self._sim = sim
        self._config = config
        self._rng = rng
        self._groups: dict[str, int] | None = None
        self._cut: set[tuple[str, str]] = set()  # links cut one by one (both directions)
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._receivers: dict[str, Receiver] = {}
        self.sent = 0
        self.dropped = 0
        self.duplicated = 0
        self.delivered = 0

    @property
    def config(self) -> NetworkConfig:
        """The configuration in force."""
        return self._config

    def configure(self, config: NetworkConfig | None = None, **changes: Any) -> NetworkConfig:
        """Change the network mid-run: a new config, or some fields of the current one."""
        new = config if config is not None else dataclasses.replace(self._config, **changes)
        self._config = new
        self._sim._record("network", "-", repr(new))
        return new

    def port(self, node: str) -> _Port:
        """The transport for ``node``'s engine."""
        return _Port(self, node)

    def attach(self, node: str, inbound: Receiver) -> None:
        """Hand what arrives for ``node`` to ``inbound`` (its engine's ``Receiver``)."""
        self._receivers[node] = inbound

    # -- partitions ----------------------------------------------------------------------

    def partition(self, *groups: Iterable[str]) -> None:
        """Split the nodes into groups that cannot reach each other.

        Nodes named in no group form one more group together.
        """
        lists = [list(group) for group in groups]
        assignment: dict[str, int] = {}
        for index, group in enumerate(lists):
            for node in group:
                if node not in self._sim.nodes:
                    raise ValueError(
                        f"no node {node!r} in this simulation (nodes: {list(self._sim.nodes)})"
                    )
                if node in assignment:
                    raise ValueError(f"node {node!r} is in two groups")
                assignment[node] = index
        rest = len(lists)
        for node in self._sim.nodes:
            assignment.setdefault(node, rest)
        self._groups = assignment
        self._sim._record("partition", "-", " | ".join(",".join(sorted(g)) for g in lists))

    def cut(self, a: str, b: str) -> None:
        """Cut the link between ``a`` and ``b`` (both ways), leaving every other link.

        Unlike :meth:`partition`, cuts need not be transitive: cutting n1-n3
        alone leaves n2 a bridge that reaches both.
        """
        for node in (a, b):
            if node not in self._sim.nodes:
                raise ValueError(
                    f"no node {node!r} in this simulation (nodes: {list(self._sim.nodes)})"
                )
        self._cut.add((a, b))
        self._cut.add((b, a))
        self._sim._record("cut", "-", f"{a}-{b}")

    def heal(self) -> None:
        """Remove the partition and every cut link."""
        self._groups = None
        self._cut.clear()
        self._sim._record("heal", "-", "")

    def connected(self, a: str, b: str) -> bool:
        """Can ``a`` reach ``b`` now?"""
        if self._cut and (a, b) in self._cut:
            return False
        return self._groups is None or self._groups.get(a) == self._groups.get(b)

    # -- carrying ------------------------------------------------------------------------

    def send(self, source: str, destination: str, envelope: Envelope) -> None:
        """Carry ``envelope`` from ``source`` to ``destination`` (rules 1-5)."""
        sim = self._sim
        self.sent += 1
        target = sim.nodes.get(destination)
        if target is None:
            self.dropped += 1
            sim._record("drop", source, f"->{destination} no such node {_describe(envelope)}")
            return
        if not self.connected(source, destination):
            self.dropped += 1
            sim._record("drop", source, f"->{destination} partitioned {_describe(envelope)}")
            return
        config = self._config
        rng = self._rng
        if config.drop and rng.random() < config.drop:
            self.dropped += 1
            sim._record("drop", source, f"->{destination} lost {_describe(envelope)}")
            return
        copies = 1
        if config.duplicate and rng.random() < config.duplicate:
            copies = 2
            self.duplicated += 1
            sim._record("dup", source, f"->{destination} {_describe(envelope)}")
        loop = sim.loop
        incarnation = target.incarnation
        for _ in range(copies):
            when = loop.time() + config.sample(rng)
            if config.reorder:
                loop.call_at(when, self._arrive, destination, envelope, incarnation)
            else:
                channel = self._channels.get((source, destination))
                if channel is None:
                    channel = self._channels[(source, destination)] = _Channel()
                when = max(when, channel.last)
                channel.last = when
                channel.queue.append((envelope, incarnation))
                loop.call_at(when, self._arrive_next, channel, destination)

    def _arrive_next(self, channel: _Channel, destination: str) -> None:
        envelope, incarnation = channel.queue.popleft()
        self._arrive(destination, envelope, incarnation)

    def _arrive(self, destination: str, envelope: Envelope, incarnation: int) -> None:
        sim = self._sim
        node = sim.nodes[destination]
        if not node.running or node.incarnation != incarnation:
            self.dropped += 1
            sim._record("drop", envelope.source, f"->{destination} node-gone {_describe(envelope)}")
            return
        self.delivered += 1
        sim._record("recv", destination, f"<-{envelope.source} {_describe(envelope)}")
        inbound = self._receivers[destination]  # the contract every transport keeps
        inbound.heard_from(envelope.source)
        inbound.receive(envelope)


def _describe(envelope: Envelope) -> str:
    kind = _KINDS.get(envelope.kind, str(envelope.kind))
    target = envelope.target or f"#{envelope.corr}"
    return f"{kind} {target} {digest(envelope)}"
