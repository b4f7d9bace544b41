"""Fixtures shared by the kernel tests."""

from __future__ import annotations

from types import ModuleType

import pytest

from actorfw.values import codec
from tests.conftest import load_kernels


@pytest.fixture(scope="module")
def twins() -> tuple[ModuleType, ModuleType]:
    """The compiled and the pure wire kernel, each bound to the message registry."""
    compiled, pure = load_kernels("compiled")["wire"], load_kernels("pure")["wire"]
    codec.bind_kernel(compiled)
    codec.bind_kernel(pure)
    return compiled, pure
