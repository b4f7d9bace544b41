"""An in-memory, deterministic harness for the Paxos cores: a cluster you drive by hand.

A :class:`Cluster` holds one acceptor, one leader and one replica per node
(``n1``, ``n2``, ...), a key-value state machine per replica (it snapshots,
and answers ``get`` as a read-only query), the records
each role persisted (through :func:`storage_ops`, as a real driver would),
clients, a fake clock and one queue of messages in flight. Nothing moves
unless the test says so: deliver a message (or all of them), drop,
duplicate or reorder them, partition nodes, crash a role and restart it
from what it persisted, advance the clock. After every step the
:class:`Invariants` checker sees the core and its effects.

The driver honours the cores' contract: a step's records are written to
the role's store before its messages join the queue. ``crash_mid_step``
models a crash after the write but before the send (the sends are lost).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from actorfw.protocols.paxos import (
    HANDLED_BY,
    Acceptor,
    Applied,
    CatchUp,
    CatchUpReply,
    Collect,
    Command,
    Config,
    Decision,
    Effects,
    InstallSnapshot,
    Invariants,
    Leader,
    LeaderIs,
    LeaderMode,
    LeaderOptions,
    LeaseGrant,
    LeaseRequest,
    P1a,
    P1b,
    P2a,
    P2b,
    Ping,
    Pong,
    Progress,
    Propose,
    Read,
    ReadIndex,
    ReadIndexReply,
    Replica,
    ReplicaOptions,
    Request,
    Response,
    Role,
    records_from_storage,
    storage_ops,
)
from actorfw.values.codec import decode, encode

KIND: dict[type, str] = {
    Request: "request",
    Response: "response",
    Propose: "propose",
    Applied: "applied",
    P1a: "p1a",
    P1b: "p1b",
    P2a: "p2a",
    P2b: "p2b",
    Collect: "collect",
    Decision: "decision",
    Ping: "ping",
    Pong: "pong",
    Progress: "progress",
    CatchUp: "catchup",
    CatchUpReply: "catchup-reply",
    InstallSnapshot: "snapshot",
    LeaseRequest: "lease",
    LeaseGrant: "lease-grant",
    Read: "read",
    ReadIndex: "read-index",
    ReadIndexReply: "read-index-reply",
}
"""Message type -> the short name scenario files use."""

KINDS = frozenset(KIND.values())


def apply_to(store: dict[bytes, bytes], effects: Effects) -> None:
    """Write a step's records into ``store`` as a role's storage would."""
    for record in effects.persist:
        for key, value in storage_ops(record):
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value


class KeyValueStore:
    """The replicated application of the tests: a dict, with a counter per key.

    Operations (tuples): ``("put", key, value)`` -> ``"ok"``; ``("get", key)``
    -> the value or None; ``("incr", key)`` -> the new count (so every
    execution of a command is visible); anything else -> an error string.
    ``executed`` counts the operations applied (in the snapshot too, so it
    stays the count of the state's history); ``queried`` the reads served
    by :meth:`query`, which change nothing.
    """

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.executed = 0
        self.queried = 0

    def snapshot(self) -> tuple[dict[str, Any], int]:
        return dict(self.data), self.executed

    def restore(self, snapshot: Any) -> None:
        data, executed = snapshot
        self.data = dict(data)
        self.executed = executed

    def is_read_only(self, operation: Any) -> bool:
        return type(operation) is tuple and len(operation) == 2 and operation[0] == "get"

    def query(self, operation: Any) -> Any:
        self.queried += 1
        return self.data.get(operation[1])

    def apply(self, operation: Any) -> Any:
        self.executed += 1
        match operation:
            case ("put", key, value):
                self.data[key] = value
                return "ok"
            case ("get", key):
                return self.data.get(key)
            case ("incr", key):
                self.data[key] = self.data.get(key, 0) + 1
                return self.data[key]
        return f"error: unknown operation {operation!r}"


@dataclass(eq=False)
class Envelope:
    """A message in flight."""

    id: int
    src: str
    dst: str
    role: Role
    message: Any

    @property
    def kind(self) -> str:
        return KIND[type(self.message)]

    def __repr__(self) -> str:
        return f"#{self.id} {self.kind} {self.src}->{self.dst}"


@dataclass
class Client:
    """A client: numbers its commands, remembers what is unanswered and what came back."""

    name: str
    via: str
    seq: int = 0
    sent: dict[int, Command] = field(default_factory=dict)
    pending: dict[int, Command] = field(default_factory=dict)
    sent_at: dict[int, float] = field(default_factory=dict)
    results: dict[int, Any] = field(default_factory=dict)
    reads: set[int] = field(default_factory=set)
    """Seqs sent as :class:`Read`."""
    by_lease: set[int] = field(default_factory=set)
    """Seqs whose (first) answer was served by lease."""


class Cluster:
    """Nodes ``n1..nN``, each running an acceptor, a leader and a replica (see the module).

    Args:
        nodes: how many nodes (or their names).
        seed: seeds the leaders' back-off and the harness's own choices.
        leader_options, replica_options: tuning of every leader / replica.
        check: run the invariant checker after every step.
        wire: pass every delivered message through the codec, as the wire would.
        store: encode persisted records into the roles' stores (needed to
            restart a crashed role); off, records are counted and dropped.
        client_retry: clients re-send an unanswered command after this long
            (to the next replica in turn); None: only on request (``retry``).
        clock_rates: node -> how fast its clock runs (default 1.0): the
            node's cores see ``now * rate`` (drift tests of leases).
        after_step: called with ``(role, node, core, effects)`` after every
            core step (bounds checked "at all times").
    """

    def __init__(
        self,
        nodes: int | list[str] = 3,
        *,
        seed: int = 0,
        leader_options: LeaderOptions | None = None,
        replica_options: ReplicaOptions | None = None,
        check: bool = True,
        wire: bool = False,
        client_retry: float | None = None,
        store: bool = True,
        clock_rates: dict[str, float] | None = None,
        after_step: Callable[[Role, str, Any, Effects], None] | None = None,
    ) -> None:
        names = [f"n{i}" for i in range(1, nodes + 1)] if isinstance(nodes, int) else nodes
        self.names = names
        self.config = Config.colocated(names)
        self.seed = seed
        self.rng = random.Random(seed)
        self.leader_options = leader_options or LeaderOptions()
        self.replica_options = replica_options or ReplicaOptions()
        self.now = 0.0
        self.clock_rates = dict(clock_rates or {})
        self.after_step = after_step
        self.wire = wire
        self.store = store
        self.client_retry = client_retry
        self.checker = Invariants(self.config, self.replica_options.window) if check else None
        self.storage: dict[tuple[Role, str], dict[bytes, bytes]] = {
            (role, n): {} for n in names for role in (Role.ACCEPTOR, Role.LEADER, Role.REPLICA)
        }
        self.incarnation: Counter[tuple[Role, str]] = Counter()
        self.acceptors: dict[str, Acceptor | None] = {n: Acceptor(self.config, n) for n in names}
        self.leaders: dict[str, Leader | None] = {n: self._new_leader(n, []) for n in names}
        self.machines: dict[str, KeyValueStore] = {n: KeyValueStore() for n in names}
        self.replicas: dict[str, Replica | None] = {
            n: Replica(self.config, n, self.machines[n], self.replica_options) for n in names
        }
        self.queue: list[Envelope] = []
        self.clients: dict[str, Client] = {}
        self.groups: list[set[str]] | None = None
        self.stats: Counter[str] = Counter()
        self._ids = 0
        self._persisting: dict[str, int] = {}  # a replica's steps that persisted, since restore
        self.started = False

    # -- building --------------------------------------------------------------------------

    def _new_leader(self, node: str, records: list[Any]) -> Leader:
        rng = random.Random(f"{self.seed}/{node}/{self.incarnation[(Role.LEADER, node)]}")
        if records:
            return Leader.restore(self.config, node, records, rng, self.leader_options)
        return Leader(self.config, node, rng, self.leader_options)

    def start(self) -> None:
        """Start every leader (the initial one scouts)."""
        self.started = True
        for node, leader in self.leaders.items():
            if leader is not None:
                self._after(Role.LEADER, node, leader.start(self.time_at(node)))

    # -- the step ----------------------------------------------------------------------------

    def time_at(self, node: str) -> float:
        """What ``node``'s clock reads now (``now`` times its clock rate)."""
        return self.now * self.clock_rates.get(node, 1.0)

    def core(self, role: Role, node: str) -> Any:
        """The live core of ``role`` at ``node`` (None if crashed)."""
        cores: dict[Role, dict[str, Any]] = {
            Role.ACCEPTOR: self.acceptors,
            Role.LEADER: self.leaders,
            Role.REPLICA: self.replicas,
        }
        return cores[role][node]

    def _after(self, role: Role, node: str, effects: Effects, *, lose_sends: bool = False) -> None:
        if effects.persist and not self.store:
            self.stats["records"] += len(effects.persist)
        elif effects.persist:
            apply_to(self.storage[(role, node)], effects)
        checker = self.checker
        if checker is not None:
            if role is Role.ACCEPTOR:
                checker.acceptor_step(node, self.acceptors[node], effects)  # type: ignore[arg-type]
            elif role is Role.LEADER:
                checker.leader_step(node, self.leaders[node], effects)  # type: ignore[arg-type]
            else:
                checker.replica_step(node, self.replicas[node], effects)  # type: ignore[arg-type]
        if self.after_step is not None:
            self.after_step(role, node, self.core(role, node), effects)
        if role is Role.REPLICA and effects.persist:
            # This storage is durable at once: say so (rule 8 of actorfw.protocols.effects).
            steps = self._persisting[node] = self._persisting.get(node, 0) + 1
            self.replicas[node].made_durable(steps)  # type: ignore[union-attr]
        if lose_sends:
            return
        for dst, message in effects.send:
            self._enqueue(node, dst, message)
        for dst, message in effects.send_now:
            if type(message) is not LeaderIs:
                self._enqueue(node, dst, message)
            # A LeaderIs only narrows where a replica proposes (to one leader rather than to
            # all, replica rule 3): this harness leaves replicas on PMMC's rule, to every
            # leader, and the actor runtimes (tests/services) exercise the hint.
        for response in effects.responses:
            self._enqueue(node, response.client, response)

    def _enqueue(self, src: str, dst: str, message: Any) -> None:
        self._ids += 1
        self.queue.append(Envelope(self._ids, src, dst, HANDLED_BY[type(message)], message))

    def reachable(self, a: str, b: str) -> bool:
        """Can ``a`` and ``b`` talk? (Clients reach everyone; partitions cut nodes apart.)"""
        if self.groups is None or a == b or a in self.clients or b in self.clients:
            return True
        return any(a in g and b in g for g in self.groups)

    def deliver_envelope(self, env: Envelope, *, crash_mid_step: bool = False) -> None:
        """Deliver one queued message (removing it from the queue)."""
        for index, queued in enumerate(self.queue):
            if queued is env:
                del self.queue[index]
                break
        else:
            raise ValueError(f"{env!r} is not queued")
        self._handle(env, crash_mid_step=crash_mid_step)

    def _handle(self, env: Envelope, *, crash_mid_step: bool = False) -> None:
        if not self.reachable(env.src, env.dst):
            self.stats["cut"] += 1
            return
        message = env.message
        if self.wire:
            body, buffers, plain = encode(message)
            message = decode(body, buffers, plain)
        if env.role is Role.CLIENT:
            self._client_response(env.dst, message)
            return
        core = self.core(env.role, env.dst)
        if core is None:
            self.stats["to_crashed"] += 1
            return
        self.stats["delivered"] += 1
        now = self.time_at(env.dst)
        self._after(env.role, env.dst, core.handle(message, now), lose_sends=crash_mid_step)
        if crash_mid_step:
            self.crash_node(env.dst)

    def deliver_rounds(self, max_rounds: int = 1_000_000) -> None:
        """Deliver everything in rounds: each core takes all its queued messages in one batch."""
        rounds = 0
        while self.queue:
            rounds += 1
            if rounds > max_rounds:
                raise RuntimeError("deliver_rounds: the queue never empties")
            batch, self.queue = self.queue, []
            self.queue = batch
            self.deliver_together(batch)

    def deliver_all(self, limit: int = 200_000) -> int:
        """Deliver in FIFO order, including what deliveries produce, until the queue is empty."""
        count = 0
        while self.queue:
            count += 1
            if count > limit:
                raise RuntimeError(f"deliver_all: more than {limit} messages; a livelock?")
            self._handle(self.queue.pop(0))
        return count

    # -- selecting, dropping, duplicating ---------------------------------------------------

    def select(
        self, kind: str | None = None, to: str | None = None, frm: str | None = None
    ) -> list[Envelope]:
        """The queued messages matching a kind, a destination and a source (None: any)."""
        return [
            e
            for e in self.queue
            if (kind is None or e.kind == kind)
            and (to is None or e.dst == to)
            and (frm is None or e.src == frm)
        ]

    def deliver(self, envelopes: Iterable[Envelope]) -> int:
        """Deliver these queued messages, in order (not what they produce)."""
        count = 0
        queued = {id(e) for e in self.queue}
        for env in list(envelopes):
            if id(env) in queued:
                self.deliver_envelope(env)
                count += 1
        return count

    def deliver_together(self, envelopes: Iterable[Envelope]) -> int:
        """Deliver these queued messages, each destination taking all of its own in one batch.

        What a driver does when it drains a mailbox into ``handle_all``.
        """
        wanted = {id(e) for e in envelopes}
        chosen = [e for e in self.queue if id(e) in wanted]
        self.queue = [e for e in self.queue if id(e) not in wanted]
        groups: dict[tuple[Role, str], list[Any]] = {}
        for env in chosen:
            if not self.reachable(env.src, env.dst):
                continue
            if env.role is Role.CLIENT:
                self._client_response(env.dst, env.message)
                continue
            groups.setdefault((env.role, env.dst), []).append(env.message)
        for (role, node), messages in groups.items():
            core = self.core(role, node)
            if core is not None:
                self.stats["delivered"] += len(messages)
                self._after(role, node, core.handle_all(messages, self.time_at(node)))
        return len(chosen)

    def drop(self, envelopes: Iterable[Envelope]) -> int:
        """Lose these queued messages."""
        doomed = {id(e) for e in envelopes}
        before = len(self.queue)
        self.queue = [e for e in self.queue if id(e) not in doomed]
        return before - len(self.queue)

    def duplicate(self, envelopes: Iterable[Envelope]) -> int:
        """Queue a second copy of each of these messages (at the end)."""
        count = 0
        for env in list(envelopes):
            self._enqueue(env.src, env.dst, env.message)
            count += 1
        return count

    # -- faults ------------------------------------------------------------------------------

    def crash(self, role: Role, node: str) -> None:
        """Lose a role's memory; what it persisted stays; messages to it are lost meanwhile."""
        if role is Role.ACCEPTOR:
            self.acceptors[node] = None
        elif role is Role.LEADER:
            self.leaders[node] = None
        else:
            self.replicas[node] = None

    def crash_node(self, node: str) -> None:
        """Crash every role of ``node``."""
        for role in (Role.ACCEPTOR, Role.LEADER, Role.REPLICA):
            self.crash(role, node)

    def restart(self, role: Role, node: str) -> None:
        """Rebuild a crashed role from its persisted records."""
        if self.core(role, node) is not None:
            return
        self.incarnation[(role, node)] += 1
        if role is Role.ACCEPTOR:
            records = records_from_storage(sorted(self.storage[(role, node)].items()))
            acceptor = Acceptor.restore(self.config, node, records, now=self.time_at(node))
            self.acceptors[node] = acceptor
            if self.checker is not None:
                self.checker.acceptor_restarted(node, acceptor)
        elif role is Role.LEADER:
            records = records_from_storage(sorted(self.storage[(role, node)].items()))
            leader = self._new_leader(node, records)
            self.leaders[node] = leader
            if self.started:
                self._after(role, node, leader.start(self.time_at(node)))
        else:
            records = records_from_storage(sorted(self.storage[(role, node)].items()))
            self.machines[node] = KeyValueStore()
            replica = Replica.restore(
                self.config, node, self.machines[node], records, self.replica_options
            )
            self.replicas[node] = replica
            self._persisting[node] = 0
            if self.checker is not None:
                self.checker.replica_restarted(node, replica)

    def restart_node(self, node: str) -> None:
        """Restart every crashed role of ``node``."""
        for role in (Role.ACCEPTOR, Role.LEADER, Role.REPLICA):
            self.restart(role, node)

    def down(self) -> set[str]:
        """Nodes with at least one crashed role."""
        return {
            n
            for n in self.names
            if self.acceptors[n] is None or self.leaders[n] is None or self.replicas[n] is None
        }

    def partition(self, groups: list[set[str]]) -> None:
        """Only nodes of one group reach each other; unlisted nodes are alone."""
        listed = set().union(*groups)
        self.groups = [set(g) for g in groups] + [{n} for n in self.names if n not in listed]

    def heal(self) -> None:
        """End any partition."""
        self.groups = None

    # -- clients -----------------------------------------------------------------------------

    def client(self, name: str, via: str | None = None) -> Client:
        """The client ``name`` (created on first use, talking to ``via`` or ``n1``)."""
        client = self.clients.get(name)
        if client is None:
            client = self.clients[name] = Client(name, via or self.names[0])
        elif via is not None:
            client.via = via
        return client

    def submit(self, name: str, op: Any, via: str | None = None) -> Command:
        """Client ``name`` sends its next command (``op``) to the replica at ``via``."""
        client = self.client(name, via)
        client.seq += 1
        command = Command(name, client.seq, op)
        client.pending[client.seq] = command
        client.sent[client.seq] = command
        client.sent_at[client.seq] = self.now
        self._enqueue(name, client.via, Request(command))
        return command

    def read(self, name: str, op: Any, via: str | None = None) -> Command:
        """Client ``name`` sends its next command as a :class:`Read` (served by lease if it can)."""
        client = self.client(name, via)
        client.seq += 1
        command = Command(name, client.seq, op)
        client.pending[client.seq] = command
        client.sent[client.seq] = command
        client.sent_at[client.seq] = self.now
        client.reads.add(client.seq)
        self._enqueue(name, client.via, Read(command))
        return command

    def retry(self, name: str, via: str | None = None, seq: int | None = None) -> int:
        """Client ``name`` re-sends its unanswered commands, or command ``seq`` even if answered."""
        client = self.client(name, via)
        commands = client.pending if seq is None else {seq: client.sent[seq]}
        for number, command in commands.items():
            if number in client.pending:
                client.sent_at[number] = self.now
            self._enqueue(name, client.via, self._ask(client, number, command))
        return len(commands)

    @staticmethod
    def _ask(client: Client, seq: int, command: Command) -> Request | Read:
        return Read(command) if seq in client.reads else Request(command)

    def _client_response(self, name: str, response: Response) -> None:
        client = self.clients.get(name)
        if client is None:
            return
        if response.seq in client.pending:
            del client.pending[response.seq]
            del client.sent_at[response.seq]
        if response.seq not in client.results and response.by_lease:
            client.by_lease.add(response.seq)
        client.results.setdefault(response.seq, response.result)

    def _tick_clients(self) -> None:
        if self.client_retry is None:
            return
        for client in self.clients.values():
            due = [s for s, at in client.sent_at.items() if at + self.client_retry <= self.now]
            if due:
                client.via = self.names[(self.names.index(client.via) + 1) % len(self.names)]
                for seq in due:
                    client.sent_at[seq] = self.now
                    ask = self._ask(client, seq, client.pending[seq])
                    self._enqueue(client.name, client.via, ask)

    def unanswered(self) -> int:
        """Commands submitted and not answered yet."""
        return sum(len(c.pending) for c in self.clients.values())

    # -- time --------------------------------------------------------------------------------

    def tick(self) -> None:
        """Tick every live leader and replica at the current time, and the clients."""
        for node in self.names:
            leader = self.leaders[node]
            if leader is not None:
                self._after(Role.LEADER, node, leader.tick(self.time_at(node)))
            replica = self.replicas[node]
            if replica is not None:
                self._after(Role.REPLICA, node, replica.tick(self.time_at(node)))
        self._tick_clients()

    def advance(self, seconds: float) -> None:
        """Move the clock forward, then tick everything once."""
        self.now += seconds
        self.tick()

    def next_deadline(self) -> float | None:
        """The earliest deadline of any live core or client."""
        deadlines = []
        for node in self.names:
            rate = self.clock_rates.get(node, 1.0)
            for core in (self.leaders[node], self.replicas[node]):
                deadline = core.next_deadline() if core is not None else None
                if deadline is not None:
                    deadlines.append(deadline / rate)
        if self.client_retry is not None:
            deadlines.extend(
                at + self.client_retry for c in self.clients.values() for at in c.sent_at.values()
            )
        return min(deadlines) if deadlines else None

    def run(self, seconds: float, *, rounds: bool = False) -> None:
        """Let time pass with a perfect network: deliver everything, tick at each deadline."""
        end = self.now + seconds
        while True:
            self.deliver_rounds() if rounds else self.deliver_all()
            deadline = self.next_deadline()
            if deadline is None or deadline > end:
                self.now = end
                self.tick()
                self.deliver_rounds() if rounds else self.deliver_all()
                return
            self.now = max(self.now, deadline)
            self.tick()

    def run_until(
        self, done: Callable[[], bool], *, timeout: float = 60.0, step: float = 0.1
    ) -> bool:
        """Run until ``done()`` holds, for at most ``timeout`` virtual seconds."""
        end = self.now + timeout
        while not done():
            if self.now >= end:
                return False
            self.run(step)
        return True

    # -- observations ------------------------------------------------------------------------

    def active_leader(self) -> str | None:
        """The live active leader with the highest ballot, if any."""
        active = [
            (lead.ballot, n)
            for n, lead in self.leaders.items()
            if lead is not None and lead.mode is LeaderMode.ACTIVE
        ]
        return max(active)[1] if active else None

    def decided(self, slot: int) -> tuple[Command, ...] | None:
        """The batch some live replica knows decided at ``slot``."""
        for replica in self.replicas.values():
            if replica is not None:
                batch = replica.decided(slot)
                if batch is not None:
                    return batch
        return None

    def stored(self, role: Role, node: str) -> int:
        """Keys the role at ``node`` holds in its durable store."""
        return len(self.storage[(role, node)])

    def collect(self, node: str, below: int) -> None:
        """Make the acceptor at ``node`` collect below ``below`` (if it is up)."""
        acceptor = self.acceptors[node]
        if acceptor is not None:
            self._after(Role.ACCEPTOR, node, acceptor.collect(below))

    def settled(self) -> bool:
        """No unanswered command, and every live replica applied the same number of slots."""
        outs = {r.slot_out for r in self.replicas.values() if r is not None}
        return self.unanswered() == 0 and len(outs) == 1 and not self.queue
