"""Deprecated: the Multi-Paxos cores are in :mod:`actorfw.protocols.paxos`, their actors in
:mod:`actorfw.services.paxos`. This module re-exports both for one release."""

import warnings

from actorfw.protocols.paxos import *  # noqa: F403
from actorfw.protocols.paxos import __all__ as _cores

warnings.warn(
    "actorfw.paxos moved: import the cores from actorfw.protocols.paxos and the actors "
    "from actorfw.services.paxos",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = list(_cores)
