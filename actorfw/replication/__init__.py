"""Deprecated: :func:`replicate` and its clients are in :mod:`actorfw.services.replication`
(and :func:`actorfw.replicate`); re-exported here for one release."""

import warnings

from actorfw.services.replication import *  # noqa: F403
from actorfw.services.replication import __all__ as _names

warnings.warn(
    "actorfw.replication moved to actorfw.services.replication",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = list(_names)
