"""The primary-backup configuration service's view, replicated by Multi-Paxos, on both runtimes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actorfw import Simulation, replicate
from actorfw.node import ActorSystem
from actorfw.protocols.primary_backup import ViewMachine

MEMBERS = ["n1", "n2", "n3"]


@pytest.fixture(params=["simulation", "nodes"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "simulation":
        with Simulation(nodes=3, seed=11) as sim:
            yield sim
    else:
        apps = ["actorfw.protocols.primary_backup.view", "actorfw.services.paxos"]
        with ActorSystem(3, apps=apps) as system:
            yield system


def test_two_candidates_that_waited_on_one_view_elect_one_primary(runtime: Any) -> None:
    group = replicate(runtime, (ViewMachine, {"members": MEMBERS}), name="pb-config")
    first, second = group.client(client_id="n2-elector"), group.client(client_id="n3-elector")
    one = first.call(["elect", "n2", 0, 0])
    other = second.call(["elect", "n3", 0, 0])  # saw the same view: too late, refused
    assert one[0] == "view" and other[0] == "refused"
    assert other[2] == one[1] and one[1]["epoch"] == 1
    primary = one[1]["primary"]
    renewed = group.client(client_id="primary").call(["renew", 1, primary])
    assert renewed[1]["grants"] == 1
    assert first.read(["view"])[1] == renewed[1]  # the same view through another client
