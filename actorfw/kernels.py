"""The kernel selector: the compiled kernels, or their pure-Python twins on request.

The package imports the Cython kernels built from ``cext/*.pyx`` into
``actorfw._cext``. If they are missing or broken, importing ``actorfw``
fails with an ``ImportError`` that says what happened and how to build them:
there is no silent fallback to slow code. Setting the environment variable
``ACTORFW_PURE=1`` before the import selects the twins in ``actorfw._pure``
on purpose, for debugging and for measuring what the compiled code buys.

Attributes:
    vclock: the active vector-clock kernel module.
    ballot: the active ballot and pvalue kernel module.
    wire: the active wire envelope and message-value codec module.
    search: the active linearizability search kernel (the hot loop of
        :mod:`actorfw.check.search`).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from types import ModuleType

__all__ = ["KERNELS", "KernelsInfo", "ballot", "info", "load", "search", "vclock", "wire"]

KERNELS = ("vclock", "ballot", "wire", "search")
"""The names of the kernel modules, the same under ``_cext`` and ``_pure``."""

_PURE_ON = ("1", "true", "yes", "on")
_PURE_OFF = ("", "0", "false", "no", "off")


@dataclasses.dataclass(frozen=True)
class KernelsInfo:
    """What :func:`info` reports: which kernels are active and why."""

    implementation: str
    """``"compiled"`` or ``"pure"``."""
    selected_by: str
    """``"default"`` or ``"ACTORFW_PURE=<value>"``."""
    modules: dict[str, str]
    """Kernel name to the file it was loaded from."""


def _wants_pure() -> tuple[bool, str]:
    raw = os.environ.get("ACTORFW_PURE")
    if raw is None:
        return False, "default"
    value = raw.strip().lower()
    if value in _PURE_ON:
        return True, f"ACTORFW_PURE={raw}"
    if value in _PURE_OFF:
        return False, f"ACTORFW_PURE={raw}"
    raise ImportError(
        f"ACTORFW_PURE={raw!r} is not understood: set it to 1 to use the pure-Python "
        "kernels, or to 0 (or leave it unset) for the compiled ones"
    )


def load(implementation: str) -> dict[str, ModuleType]:
    """Import every kernel of one implementation, ``"compiled"`` or ``"pure"``.

    Raises:
        ImportError: a compiled kernel is missing or does not import; the
            message says how to build it.
        ValueError: ``implementation`` is neither name.
    """
    if implementation == "pure":
        return {name: importlib.import_module(f"actorfw._pure.{name}") for name in KERNELS}
    if implementation != "compiled":
        raise ValueError(f"implementation must be 'compiled' or 'pure', not {implementation!r}")
    modules = {}
    for name in KERNELS:
        try:
            modules[name] = importlib.import_module(f"actorfw._cext.{name}")
        except ImportError as exc:
            raise ImportError(
                f"actorfw's compiled kernel actorfw._cext.{name} could not be imported "
                f"({exc}). The kernels are compiled when the package is installed: from "
                "the source tree run `pip install -e '.[test]'` (or `pip install .`), which "
                "needs a C compiler and the Python headers (on Debian or Ubuntu: "
                "`apt-get install build-essential python3-dev`). If you changed a .pyx "
                "file, install again to rebuild. To run on the slower pure-Python twins "
                "on purpose, set ACTORFW_PURE=1."
            ) from exc
    return modules


_pure, _selected_by = _wants_pure()
_IMPLEMENTATION = "pure" if _pure else "compiled"
_modules = load(_IMPLEMENTATION)

vclock: ModuleType = _modules["vclock"]
ballot: ModuleType = _modules["ballot"]
wire: ModuleType = _modules["wire"]
search: ModuleType = _modules["search"]


def info() -> KernelsInfo:
    """Which kernel implementation this process uses, why, and where it was loaded from.

    Example::

        >>> import actorfw
        >>> actorfw.kernels_info().implementation
        'compiled'
    """
    return KernelsInfo(
        implementation=_IMPLEMENTATION,
        selected_by=_selected_by,
        modules={name: str(module.__file__) for name, module in _modules.items()},
    )
