"""The kernel selector: compiled by default, pure on request, clear errors for a missing build."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import actorfw
from actorfw import kernels
from tests.conftest import load_kernels


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "ACTORFW_PURE"}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def test_compiled_kernels_are_the_default() -> None:
    load_kernels("compiled")  # skips when the suite runs without a build, on purpose
    result = run_python("import actorfw; print(actorfw.kernels_info())")
    assert result.returncode == 0, result.stderr
    assert "implementation='compiled'" in result.stdout
    assert "selected_by='default'" in result.stdout
    assert "_cext" in result.stdout


def test_actorfw_pure_selects_the_twins() -> None:
    result = run_python("import actorfw; print(actorfw.kernels_info())", ACTORFW_PURE="1")
    assert result.returncode == 0, result.stderr
    assert "implementation='pure'" in result.stdout
    assert "selected_by='ACTORFW_PURE=1'" in result.stdout
    assert "_pure" in result.stdout


def test_actorfw_pure_zero_keeps_the_compiled_kernels() -> None:
    load_kernels("compiled")
    result = run_python(
        "import actorfw; print(actorfw.kernels_info().implementation)", ACTORFW_PURE="0"
    )
    assert result.stdout.strip() == "compiled", result.stderr


def test_an_unknown_actorfw_pure_value_is_an_import_error_saying_what_to_set() -> None:
    result = run_python("import actorfw", ACTORFW_PURE="sometimes")
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "ACTORFW_PURE='sometimes' is not understood" in result.stderr


BLOCK_COMPILED = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "actorfw._cext.vclock":
            raise ImportError("No module named 'actorfw._cext.vclock'")
sys.meta_path.insert(0, Missing())
try:
    import actorfw
except ImportError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_missing_build_is_an_import_error_that_says_how_to_build() -> None:
    result = run_python(BLOCK_COMPILED)
    assert result.returncode == 3, result.stdout + result.stderr
    message = result.stdout
    assert "actorfw._cext.vclock could not be imported" in message
    assert "pip install -e" in message
    assert "C compiler" in message
    assert "ACTORFW_PURE=1" in message


def test_a_missing_build_does_not_matter_when_the_twins_are_chosen() -> None:
    result = run_python(
        BLOCK_COMPILED + "\nprint(actorfw.kernels_info().implementation)\n", ACTORFW_PURE="1"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "pure"


def test_the_public_vector_clock_is_the_active_implementation() -> None:
    assert actorfw.VectorClock is kernels.vclock.VectorClock
    assert actorfw.kernels_info().implementation in ("compiled", "pure")
    assert set(actorfw.kernels_info().modules) == set(kernels.KERNELS)


def test_load_refuses_an_unknown_implementation() -> None:
    with pytest.raises(ValueError, match="'compiled' or 'pure'"):
        kernels.load("fast")
