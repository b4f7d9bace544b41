"""Replicated state machines for users: :func:`replicate` and exactly-once clients.

See ``docs/replication.md``.
"""

from actorfw.services.replication import config as config  # registers [[replicated]]
from actorfw.services.replication.client import (
    AsyncGroupClient,
    GroupClient,
    Redirect,
    SessionExpiredError,
    Unavailable,
    new_client_id,
)
from actorfw.services.replication.group import ReplicatedGroup, replicate

__all__ = [
    "AsyncGroupClient",
    "GroupClient",
    "Redirect",
    "ReplicatedGroup",
    "SessionExpiredError",
    "Unavailable",
    "new_client_id",
    "replicate",
]


def __getattr__(name: str) -> object:
    # The old names, for one release: "Client" was also the name of the node runtime's
    # connected client.
    renamed = {"Client": GroupClient, "AsyncClient": AsyncGroupClient}
    if name in renamed:
        import warnings

        new = renamed[name]
        warnings.warn(
            f"actorfw.services.replication.{name} is now {new.__name__}",
            DeprecationWarning,
            stacklevel=2,
        )
        return new
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
