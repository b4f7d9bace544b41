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

Everything is told to the network's recorder (the simulation's trace), so a
run can be read back message by message. The network knows nodes only by
name, and each node's engine only by what it attached
(:class:`~actorfw.core.envelopes.Receiver`): a crash detaches it, a restart
attaches a new one.
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
    import asyncio

__all__ = ["Latency", "NetworkConfig", "Recorder", "SimNetwork"]

Recorder = Callable[[str, str, str], None]
"""Where the network reports what it does: ``record(kind, node, detail)``."""

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
        view = memoryview(buffer)
        if view.nbytes:  # an empty array's shape may hold a zero, which a cast refuses
            crc = zlib.crc32(view.cast("B"), crc)
    return f"{crc:08x}"


class _Channel:
    __slots__ = ("last", "queue")

    def __init__(self) -> None:
        self.last = 0.0
        self.queue: deque[tuple[Envelope, Receiver | None]] = deque()


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
    """The network of a :class:`~actorfw.sim.Simulation` (see the module rules).

    Args:
        nodes: the names of the nodes it joins.
        loop: the simulation's loop (its clock, and where arrivals are scheduled).
        config: latency and faults.
        rng: the network's own random source.
        record: told of every send, drop, duplicate and arrival.
    """

    def __init__(
        self,
        nodes: Iterable[str],
        loop: asyncio.AbstractEventLoop,
        config: NetworkConfig,
        rng: random.Random,
        record: Recorder,
    ) -> None:
        self._nodes = tuple(nodes)
        self._loop = loop
        self._record = record
        self._config = config
        self._rng = rng
        self._groups: dict[str, int] | None = None
        self._cut: set[tuple[str, str]] = set()  # links cut one by one (both directions)
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._receivers: dict[str, Receiver | None] = {}  # None: the node is down
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
        self._record("network", "-", repr(new))
        return new

    def port(self, node: str) -> _Port:
        """The transport for ``node``'s engine."""
        return _Port(self, node)

    def detach(self, node: str) -> None:
        """``node`` crashed: what is on its way to it is lost (rule 6)."""
        self._receivers[node] = None

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
                if node not in self._nodes:
                    raise ValueError(
                        f"no node {node!r} in this simulation (nodes: {list(self._nodes)})"
                    )
                if node in assignment:
                    raise ValueError(f"node {node!r} is in two groups")
                assignment[node] = index
        rest = len(lists)
        for node in self._nodes:
            assignment.setdefault(node, rest)
        self._groups = assignment
        self._record("partition", "-", " | ".join(",".join(sorted(g)) for g in lists))

    def cut(self, a: str, b: str) -> None:
        """Cut the link between ``a`` and ``b`` (both ways), leaving every other link.

        Unlike :meth:`partition`, cuts need not be transitive: cutting n1-n3
        alone leaves n2 a bridge that reaches both.
        """
        for node in (a, b):
            if node not in self._nodes:
                raise ValueError(
                    f"no node {node!r} in this simulation (nodes: {list(self._nodes)})"
                )
        self._cut.add((a, b))
        self._cut.add((b, a))
        self._record("cut", "-", f"{a}-{b}")

    def heal(self) -> None:
        """Remove the partition and every cut link."""
        self._groups = None
        self._cut.clear()
        self._record("heal", "-", "")

    def connected(self, a: str, b: str) -> bool:
        """Can ``a`` reach ``b`` now?"""
        if self._cut and (a, b) in self._cut:
            return False
        return self._groups is None or self._groups.get(a) == self._groups.get(b)

    # -- carrying ------------------------------------------------------------------------

    def send(self, source: str, destination: str, envelope: Envelope) -> None:
        """Carry ``envelope`` from ``source`` to ``destination`` (rules 1-5)."""
        record = self._record
        self.sent += 1
        if destination not in self._nodes:
            self.dropped += 1
            record("drop", source, f"->{destination} no such node {_describe(envelope)}")
            return
        if not self.connected(source, destination):
            self.dropped += 1
            record("drop", source, f"->{destination} partitioned {_describe(envelope)}")
            return
        config = self._config
        rng = self._rng
        if config.drop and rng.random() < config.drop:
            self.dropped += 1
            record("drop", source, f"->{destination} lost {_describe(envelope)}")
            return
        copies = 1
        if config.duplicate and rng.random() < config.duplicate:
            copies = 2
            self.duplicated += 1
            record("dup", source, f"->{destination} {_describe(envelope)}")
        loop = self._loop
        receiver = self._receivers.get(destination)  # the connection it travels on
        for _ in range(copies):
            when = loop.time() + config.sample(rng)
            if config.reorder:
                loop.call_at(when, self._arrive, destination, envelope, receiver)
            else:
                channel = self._channels.get((source, destination))
                if channel is None:
                    channel = self._channels[(source, destination)] = _Channel()
                when = max(when, channel.last)
                channel.last = when
                channel.queue.append((envelope, receiver))
                loop.call_at(when, self._arrive_next, channel, destination)

    def _arrive_next(self, channel: _Channel, destination: str) -> None:
        envelope, receiver = channel.queue.popleft()
        self._arrive(destination, envelope, receiver)

    def _arrive(self, destination: str, envelope: Envelope, receiver: Receiver | None) -> None:
        if receiver is None or self._receivers.get(destination) is not receiver:
            self.dropped += 1
            self._record(
                "drop", envelope.source, f"->{destination} node-gone {_describe(envelope)}"
            )
            return
        self.delivered += 1
        self._record("recv", destination, f"<-{envelope.source} {_describe(envelope)}")
        receiver.heard_from(envelope.source)  # the contract every transport keeps
        receiver.receive(envelope)


def _describe(envelope: Envelope) -> str:
    kind = _KINDS.get(envelope.kind, str(envelope.kind))
    target = envelope.target or f"#{envelope.corr}"
    return f"{kind} {target} {digest(envelope)}"
