"""Shared fixtures: the kernel implementations, and deterministic hypothesis settings."""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from actorfw import kernels

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


@pytest.fixture(scope="session")
def compiled() -> dict[str, ModuleType]:
    """The compiled kernel modules by name."""
    return load_kernels("compiled")


@pytest.fixture(scope="session")
def pure() -> dict[str, ModuleType]:
    """The pure-Python kernel modules by name."""
    return load_kernels("pure")
