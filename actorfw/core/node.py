"""Deprecated: the engine is :mod:`actorfw.core.engine` (``Engine``, formerly ``Node``).

This module re-exports it under the old names for one release.
"""

import warnings

from actorfw.core.cell import Cell
from actorfw.core.engine import (
    ASK,
    ASK_TIMER_SLACK,
    FAILURE,
    NODE_TARGET,
    REPLY,
    TELL,
    ClientEndpoint,
    Engine,
    Envelope,
    NodeConfig,
    NodeStats,
    Tracer,
    Transport,
    derive_seed,
)

Node = Engine
"""The engine's old name."""

warnings.warn(
    "actorfw.core.node moved: import the engine (Engine, formerly Node) and NodeConfig "
    "from actorfw.core.engine",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "ASK",
    "ASK_TIMER_SLACK",
    "FAILURE",
    "NODE_TARGET",
    "REPLY",
    "TELL",
    "Cell",
    "ClientEndpoint",
    "Envelope",
    "Node",
    "NodeConfig",
    "NodeStats",
    "Tracer",
    "Transport",
    "derive_seed",
]
