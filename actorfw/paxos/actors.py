"""Deprecated: the Paxos actors are in :mod:`actorfw.services.paxos`, re-exported here.

A node configuration that lists ``actorfw.paxos.actors`` in its apps still
works; list ``actorfw.services.paxos`` instead.
"""

import warnings

from actorfw.services.paxos import *  # noqa: F403
from actorfw.services.paxos import __all__ as _actors

warnings.warn(
    "actorfw.paxos.actors moved to actorfw.services.paxos",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = list(_actors)
