"""Shared fixtures: the kernel implementations, and deterministic hypothesis settings."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from actorfw import Simulation, SupervisorStrategy, kernels
from actorfw.core.cluster import Cluster
from actorfw.core.engine import NodeConfig

# Derandomized by default so that every run of the suite checks the same
# examples; `pytest --hypothesis-profile=explore` searches afresh.
settings.register_profile(
    "default",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile("default")

IMPLEMENTATIONS = ("compiled", "pure")


def load_kernels(implementation: str) -> dict[str, ModuleType]:
    """The kernel modules of one implementation.

    When the suite runs on purpose without the compiled kernels
    (ACTORFW_PURE=1 on a machine that could not build them), the compiled
    side is skipped with the reason; otherwise a missing build fails.
    """
    try:
        return kernels.load(implementation)
    except ImportError as exc:
        if implementation == "compiled" and kernels.info().implementation == "pure":
            pytest.skip(f"compiled kernels are not built: {exc}")
        raise


@pytest.fixture(params=IMPLEMENTATIONS)
def vclock(request: pytest.FixtureRequest) -> ModuleType:
    """The vector-clock kernel module, compiled then pure."""
    return load_kernels(request.param)["vclock"]


@pytest.fixture(params=IMPLEMENTATIONS)
def ballot(request: pytest.FixtureRequest) -> ModuleType:
    """The ballot kernel module, compiled then pure."""
    return load_kernels(request.param)["ballot"]


@pytest.fixture(params=IMPLEMENTATIONS)
def search_kernel(request: pytest.FixtureRequest) -> ModuleType:
    """The linearizability search kernel module, compiled then pure."""
    return load_kernels(request.param)["search"]


@pytest.fixture(scope="session")
def compiled() -> dict[str, ModuleType]:
    """The compiled kernel modules by name."""
    return load_kernels("compiled")


@pytest.fixture(scope="session")
def pure() -> dict[str, ModuleType]:
    """The pure-Python kernel modules by name."""
    return load_kernels("pure")


# -- runtimes ---------------------------------------------------------------------------------

RUNTIMES = ("sim", "processes")
"""The runtimes the actor behaviour suite runs on: the simulator, and node processes."""

# Top-level actors may restart 3 times a minute, quickly: tests reach the limit fast.
TEST_NODE_CONFIG = dict(
    root_strategy=SupervisorStrategy(max_restarts=3, within=60.0, min_backoff=0.01, max_backoff=0.1)
)


@pytest.fixture(params=RUNTIMES)
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A running 3-node cluster (``n1``, ``n2``, ``n3``) on each runtime.

    It offers ``spawn``, ``tell``, ``ask``, ``poll``, ``run``, ``crash`` and
    ``restart``; tests observe actors through asks only.
    """
    if request.param == "sim":
        with Simulation(nodes=3, seed=1, node_config=NodeConfig(**TEST_NODE_CONFIG)) as sim:
            yield sim
    else:
        from actorfw.node import ActorSystem

        with ActorSystem(
            nodes=3, apps=["tests.support.actors"], node_config=NodeConfig(**TEST_NODE_CONFIG)
        ) as system:
            yield system
