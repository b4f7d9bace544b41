"""A primary-backup KV store (``sync`` mode) on node processes, under load, through kills and stops.

Clients append unique tokens to a few keys (see
:mod:`tests.support.process_load`): every acknowledged append must be in
the final value, and the whole history must be linearizable, across a
SIGKILL of the primary, then of a backup, and a SIGSTOP of the primary
past its lease (resumed, it must not acknowledge anything: a new primary
was elected meanwhile, and its lease ended before that).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest

from actorfw import ActorRef, AskTimeout, NodeDown
from actorfw.kv import KVStateMachine
from actorfw.node import ActorSystem
from actorfw.protocols.paxos import Command, Read
from actorfw.protocols.primary_backup import MemberOptions
from actorfw.services.paxos import Answered
from actorfw.services.primary_backup import MemberStatus, member_name
from actorfw.services.replication import Redirect, replicate
from tests.support.process_load import KEYS, Load, final_check, progress, wait_for

APPS = ["actorfw.kv.machine", "actorfw.services.primary_backup"]


async def member_statuses(nodes: list[str], deadline: float = 30.0) -> list[dict[str, Any]]:
    """Every member's status, asked until it answers (a node just restarted may not yet)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    statuses = []
    for node in nodes:
        while True:
            try:
                statuses.append(await ActorRef(node, member_name("kv")).ask(MemberStatus(), 1.0))
                break
            except (NodeDown, AskTimeout):
                if loop.time() > give_up:
                    raise
                await asyncio.sleep(0.05)
    return statuses


@pytest.mark.timeout(180)
def test_no_acknowledged_write_is_lost_across_sigkills_of_the_primary_and_a_backup() -> None:
    # Small snapshot intervals: each node killed misses more than a snapshot's worth
    # of writes, so it comes back behind the primary's base and installs its snapshot.
    options = MemberOptions(snapshot_interval=64, log_tail=16)
    with ActorSystem(3, apps=APPS) as system:
        nodes = list(system.nodes)
        replicate(
            system, KVStateMachine, name="kv", replication="primary-backup", member_options=options
        )
        load = Load(nodes)
        running = system.start(load.run())
        try:
            wait_for(progress(load, 300), "the load to get going")
            primary = load.leader
            assert primary is not None
            system.crash(primary)  # SIGKILL
            wait_for(lambda: load.leader not in (None, primary), "a new primary")
            wait_for(progress(load, 300), "commands under the new primary")
            system.restart(primary)
            wait_for(progress(load, 300), "commands after the old primary's restart")
            backup = next(n for n in nodes if n not in (load.leader, primary))
            system.crash(backup)
            wait_for(progress(load, 300), "commands without a backup")
            system.restart(backup)
            wait_for(progress(load, 300), "commands after the backup's restart")
        finally:
            load.stopping = True
            running.result(timeout=60)
        final_check(system, load)
        # The node restarted last may still be catching up: wait until every member holds
        # the whole log (no new writes come now).
        deadline = time.monotonic() + 30.0
        while True:
            statuses = system.run(member_statuses(nodes), timeout=40.0)
            if len({s["position"] for s in statuses}) == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        # Every log compacted; each killed node (its counts restart with it) installed one.
        assert all(s["base"] > 0 for s in statuses) and statuses[0]["position"] > 1000, statuses
        assert sum(s["installed"] >= 1 for s in statuses) >= 2, statuses


@pytest.mark.timeout(180)
def test_a_primary_stopped_past_its_lease_acknowledges_nothing_when_it_resumes() -> None:
    with ActorSystem(3, apps=APPS) as system:
        nodes = list(system.nodes)
        replicate(system, KVStateMachine, name="kv", replication="primary-backup", lease=1.0)
        load = Load(nodes)
        running = system.start(load.run())
        try:
            wait_for(progress(load, 300), "the load to get going")
            primary = load.leader
            pid = system.pid(primary) if primary is not None else None
            assert primary is not None and pid is not None
            os.kill(pid, signal.SIGSTOP)
            try:
                wait_for(lambda: load.leader not in (None, primary), "a new primary")
                wait_for(progress(load, 300), "commands under the new primary")
                key = KEYS[0]
                acknowledged = list(load.acknowledged[key])
            finally:
                os.kill(pid, signal.SIGCONT)

            async def probe() -> Any:
                # A read of the resumed primary as soon as it is seen alive again:
                # answered only if it is fresh.
                command = Command("probe", 1, ["get", key])
                loop = asyncio.get_running_loop()
                give_up = loop.time() + 10.0
                while loop.time() < give_up:
                    try:
                        return await ActorRef(primary, member_name("kv")).ask(Read(command), 2.0)
                    except AskTimeout:
                        return None
                    except NodeDown:  # not seen alive again yet
                        await asyncio.sleep(0.01)
                return None

            answer = system.run(probe())
            assert type(answer) in (Redirect, type(None), Answered), answer
            if type(answer) is Answered:
                tokens = (answer.result or "").split(";")
                stale = {t.rstrip(";") for t in acknowledged} - set(tokens)
                assert not stale, f"the resumed primary answered a stale read: {answer}"
            wait_for(progress(load, 300), "commands after the old primary resumed")

            async def status() -> Any:
                return await ActorRef(primary, member_name("kv")).ask(MemberStatus(), 5.0)

            wait_for(lambda: system.run(status())["acting"] == 0, "the old primary to step down")
        finally:
            load.stopping = True
            running.result(timeout=60)
        final_check(system, load)


@pytest.mark.timeout(180)
def test_a_planned_switchover_under_load_loses_nothing() -> None:
    with ActorSystem(3, apps=APPS) as system:
        nodes = list(system.nodes)
        group = replicate(system, KVStateMachine, name="kv", replication="primary-backup")
        load = Load(nodes)
        running = system.start(load.run())
        try:
            wait_for(progress(load, 300), "the load to get going")
            primary = load.leader
            assert primary is not None
            to = next(n for n in nodes if n != primary)
            view = group.switchover(to)
            assert view["primary"] == to
            wait_for(lambda: load.leader == to, "the clients to follow the new primary")
            wait_for(progress(load, 300), "commands under the new primary")
        finally:
            load.stopping = True
            running.result(timeout=60)
        final_check(system, load)
