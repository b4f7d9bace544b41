"""replicate() and its exactly-once clients, on the simulator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actorfw import MessageRefused, Simulation
from actorfw.check import History, KeyValue, check
from actorfw.kv import KV, AsyncKV, KVError, KVStateMachine
from actorfw.protocols.paxos.messages import Command, Ping, Pong, Role
from actorfw.protocols.paxos.types import LeaderOptions, ReplicaOptions
from actorfw.services.paxos import ReplicaStatus, Submit, role_name
from actorfw.services.replication import GroupClient, SessionExpiredError, Unavailable, replicate
from actorfw.values.refs import ActorRef


class Counter:
    """A module-level state machine, as replicate() requires."""

    def __init__(self) -> None:
        self.n = 0

    def apply(self, op: Any) -> Any:
        self.n += op
        return self.n

    def snapshot(self) -> Any:
        return self.n

    def restore(self, snapshot: Any) -> None:
        self.n = snapshot


def test_counter_replicated_on_three_nodes() -> None:
    with Simulation(nodes=3, seed=1) as sim:
        group = replicate(sim, Counter, name="counter")
        client = group.client(client_id="c1")
        assert [client.call(n) for n in (5, 2, -1)] == [5, 7, 6]
        assert client.leader in sim.nodes


def test_kv_operations_and_errors() -> None:
    with Simulation(nodes=3, seed=2) as sim:
        kv = KV(replicate(sim, KVStateMachine, name="kv").client(client_id="c"))
        assert kv.get("a") is None
        kv.put("a", 1)
        assert kv.get("a") == 1
        assert kv.cas("a", 1, 2) is True
        assert kv.cas("a", 1, 3) is False
        assert kv.append("s", "x") == "x"
        assert kv.append("s", "y") == "xy"
        kv.delete("a")
        assert kv.get("a") is None
        with pytest.raises(KVError, match="does not hold a string"):
            kv.put("n", 1)
            kv.append("n", "z")
        with pytest.raises(KVError, match="put None"):
            kv.put("a", None)
        assert kv.get("s") == "xy"  # a refused operation changed nothing


def test_a_retried_command_runs_once() -> None:
    # A command sent twice (a client retrying after a lost answer) is applied once,
    # and the retry gets the first answer.
    with Simulation(nodes=3, seed=3) as sim:
        group = replicate(sim, Counter, name="counter")
        replicas = group.refs(Role.REPLICA)

        async def main() -> list[Any]:
            command = Command("dup", 1, 10)
            first = await replicas[0].ask(Submit(command), 5.0)
            again = await replicas[1].ask(Submit(command), 5.0)
            return [first.result, again.result]

        assert sim.run(main) == [10, 10]
        assert group.client(client_id="other").call(0) == 10


def test_a_client_whose_session_was_dropped_gets_an_error_then_continues_under_a_new_id() -> None:
    with Simulation(nodes=3, seed=8) as sim:
        group = replicate(
            sim, Counter, name="counter", replica_options=ReplicaOptions(max_sessions=2)
        )
        old, a, b = (group.client(client_id=name) for name in ("old", "a", "b"))
        assert old.call(1) == 1
        assert a.call(10) == 11
        assert b.call(100) == 111  # the third session drops the least recent: old's
        with pytest.raises(SessionExpiredError, match="dropped the session of client old "):
            old.call(1000)
        assert old.client_id == "old~1"
        assert old.call(1) == 112  # 1000 never ran; old~1's session drops a's, the oldest
        assert b.call(0) == 112
        with pytest.raises(SessionExpiredError, match="client a "):
            a.call(5)
        assert a.call(5) == 117


def test_a_client_continues_under_a_new_id_after_a_command_it_gave_up_on() -> None:
    with Simulation(nodes=3, seed=9) as sim:
        group = replicate(sim, Counter, name="counter")
        nodes = list(sim.nodes)
        client = group.client(client_id="c", timeout=0.5, deadline=3.0, on=nodes[0])
        assert client.call(1) == 1
        sim.crash(nodes[1])
        sim.crash(nodes[2])
        with pytest.raises(Unavailable):
            client.call(10)  # may run later: the next command must not look like its successor
        assert client.client_id == "c~1"
        sim.restart(nodes[1])
        sim.restart(nodes[2])
        assert client.call(100) in (101, 111)


def test_a_refused_operation_leaves_the_clients_numbering_alone() -> None:
    with Simulation(nodes=3, seed=10) as sim:
        group = replicate(sim, Counter, name="counter")
        client = group.client(client_id="c")
        with pytest.raises(MessageRefused):
            client.call({1, 2})
        assert (client.client_id, client.inner.seq) == ("c", 0)
        assert client.call(1) == 1


def test_client_fails_over_when_the_leader_crashes() -> None:
    with Simulation(nodes=3, seed=4) as sim:
        group = replicate(sim, KVStateMachine, name="kv")
        kv = KV(group.client(client_id="c", timeout=0.5))
        kv.put("k", "v1")
        leader = kv.client.leader
        assert leader is not None
        on = next(node for node in sim.nodes if node != leader)
        kv = KV(group.client(client_id="c2", timeout=0.5, on=on))
        sim.crash(leader)
        kv.put("k", "v2")
        assert kv.get("k") == "v2"
        assert kv.client.leader not in (None, leader)
        sim.restart(leader)
        assert kv.get("k") == "v2"


def test_a_client_cut_off_from_the_leader_gets_its_answers_through_another_replica() -> None:
    # Answers go back the way the command came: the replica the client reached passes it
    # on to the leader's and relays the answer, so the link to the leader is not needed.
    with Simulation(nodes=["n1", "n2", "n3", "c"], seed=3) as sim:
        group = replicate(sim, Counter, nodes=["n1", "n2", "n3"], name="counter")
        assert group.client(client_id="warm", on="c").call(1) == 1
        leader = next(
            n
            for n in ("n1", "n2", "n3")
            if sim.ask(
                ActorRef(n, role_name("counter", Role.REPLICA)), ReplicaStatus(), on=n
            ).leader
            == n
        )
        sim.network.cut("c", leader)
        follower = next(n for n in ("n1", "n2", "n3") if n != leader)
        replica = ActorRef(follower, role_name("counter", Role.REPLICA))
        answered = sim.ask(replica, Submit(Command("direct", 1, 10)), on="c", timeout=5.0)
        assert (answered.result, answered.leader) == (11, leader)
        client = group.client(client_id="c1", timeout=1.0, on="c")
        assert [client.call(n) for n in (5, 2)] == [16, 18]
        assert client.leader != leader  # it keeps to the replica that relays


def test_a_forward_or_relay_from_outside_the_group_is_refused() -> None:
    from actorfw.services.paxos import Forward, Relayed

    with Simulation(nodes=["n1", "n2", "n3", "x"], seed=3) as sim:
        group = replicate(sim, Counter, nodes=["n1", "n2", "n3"], name="counter")
        assert group.client(client_id="warm").call(1) == 1
        replica = ActorRef("n1", role_name("counter", Role.REPLICA))
        sim.tell(replica, Forward(Command("intruder", 1, 100)), on="x")
        sim.tell(replica, Relayed("warm", 1, "forged", "n1"), on="x")
        sim.run_for(2.0)
        assert group.client(client_id="after").call(1) == 2  # the intruder's 100 never ran


def test_unavailable_without_a_quorum() -> None:
    with Simulation(nodes=3, seed=5) as sim:
        group = replicate(sim, Counter, name="counter")
        nodes = list(sim.nodes)
        group.client(client_id="warm").call(1)
        sim.crash(nodes[1])
        sim.crash(nodes[2])
        client = group.client(client_id="c", timeout=0.5, deadline=3.0, on=nodes[0])
        with pytest.raises(Unavailable, match="may have lost its quorum"):
            client.call(1)


def test_a_wrong_group_name_fails_at_once() -> None:
    with Simulation(nodes=3, seed=7) as sim:
        replicate(sim, Counter, name="counter")
        client = GroupClient(sim, "countr", list(sim.nodes), "c")
        started = sim.now
        with pytest.raises(Unavailable, match="is the group's name right"):
            client.call(1)
        assert sim.now - started < 1.0


def test_concurrent_async_clients_are_linearizable() -> None:
    with Simulation(nodes=3, seed=6) as sim:
        group = replicate(sim, KVStateMachine, name="kv")
        history = History()

        async def worker(index: int) -> None:
            kv = AsyncKV(group.async_client(client_id=f"w{index}", timeout=0.5))
            for step in range(20):
                key = f"k{step % 3}"
                if step % 2:
                    value = f"{index}-{step}"
                    op = history.invoke(index, "put", key, value, time=sim.now)
                    await kv.put(key, value)
                    history.ok(op, None, time=sim.now)
                else:
                    op = history.invoke(index, "get", key, time=sim.now)
                    result = await kv.get(key)
                    history.ok(op, result, time=sim.now)

        async def main() -> None:
            await asyncio.gather(*(worker(index) for index in range(4)))

        sim.run(main)
        assert check(history, KeyValue()).ok


def slot_out(sim: Simulation, node: str) -> int:
    async def ask() -> int:
        state = await ActorRef(node, role_name("kv", Role.REPLICA)).ask(ReplicaStatus(), 1.0)
        return int(state.slot_out)

    return int(sim.run(ask))


@pytest.mark.parametrize("leases", [False, True])
def test_reads_go_through_the_log_unless_leases_are_on(leases: bool) -> None:
    options = LeaderOptions(lease_duration=2.0, max_drift=0.2) if leases else None
    with Simulation(nodes=3, seed=8) as sim:
        group = replicate(sim, KVStateMachine, name="kv", leader_options=options)
        kv = KV(group.client(client_id="c"))
        kv.put("a", 1)
        leader = kv.client.leader
        assert leader is not None
        if leases:  # wait until the new leader holds its first lease
            sim.run_for(1.0)
        before = slot_out(sim, leader)
        assert [kv.get("a") for _ in range(5)] == [1] * 5
        kv.put("a", 2)
        assert kv.get("a") == 2
        grew = slot_out(sim, leader) - before
        # With leases the six reads were served from the leader's state: only the put took
        # a slot. Without, every read took one too.
        assert grew == (1 if leases else 7)
        # A client's first command opens its session through the log, even a read.
        before = slot_out(sim, leader)
        assert KV(group.client(client_id="fresh")).get("a") == 2
        assert slot_out(sim, leader) - before == 1


def test_a_read_with_a_staleness_bound_is_linearizable_on_paxos() -> None:
    # The bound lets a primary-backup backup answer; Multi-Paxos ignores it.
    with Simulation(nodes=3, seed=9) as sim:
        group = replicate(sim, KVStateMachine, name="kv")
        client = group.client(client_id="c")
        client.call(["put", "a", 1])
        assert [client.read(["get", "a"], max_staleness=5.0) for _ in range(3)] == [1] * 3
        client.call(["put", "a", 2])
        assert client.read(["get", "a"], max_staleness=5.0) == 2
        with pytest.raises(ValueError, match="max_staleness"):
            client.read(["get", "a"], max_staleness=-1)


def test_machines_must_be_importable_by_path() -> None:
    class Local:
        def apply(self, op: Any) -> Any:
            return op

    with Simulation(nodes=1) as sim, pytest.raises(TypeError, match="module level"):
        replicate(sim, Local)
    with Simulation(nodes=1) as sim, pytest.raises(TypeError, match="module:QualName"):
        replicate(sim, 42)


def test_a_message_no_role_takes_is_refused_and_the_group_goes_on() -> None:
    # Any peer may send any registered message to a role: one outside the role's
    # alphabet once made the core raise, and four of them stopped the actor for good.
    with Simulation(nodes=3, seed=12) as sim:
        group = replicate(sim, Counter, name="counter")
        client = group.client(client_id="c")
        assert client.call(1) == 1
        before = sum(sim.node(n).stats.unhandled for n in sim.nodes)
        foreign = Command("x", 1, 1)  # a value, but no role's message
        for node in sim.nodes:
            for role in (Role.ACCEPTOR, Role.LEADER, Role.REPLICA):
                for junk in (12345, foreign):
                    for _ in range(5):
                        sim.tell(ActorRef(node, role_name("counter", role)), junk)
        sim.run_for(1.0)
        assert sum(sim.node(n).stats.unhandled for n in sim.nodes) == before + 90
        # A role's own message with fields of the wrong kinds (a list where a name
        # goes: unhashable) is malformed, dropped and counted by the core.
        for node in sim.nodes:
            for _ in range(5):
                sim.tell(ActorRef(node, role_name("counter", Role.LEADER)), Ping([1], [1]))
                sim.tell(ActorRef(node, role_name("counter", Role.LEADER)), Pong([1], [1], [1]))
        sim.run_for(1.0)
        assert sum(sim.node(n).stats.failures for n in sim.nodes) == 0
        assert sum(sim.node(n).stats.restarts for n in sim.nodes) == 0
        assert client.call(1) == 2
