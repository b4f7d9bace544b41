"""Replicated state machines for users: :func:`replicate` and exactly-once clients.

See ``docs/replication.md``.
"""

from actorfw.replication.client import (
    AsyncClient,
    Client,
    SessionExpiredError,
    Unavailable,
    new_client_id,
)
from actorfw.replication.group import ReplicatedGroup, replicate

__all__ = [
    "AsyncClient",
    "Client",
    "ReplicatedGroup",
    "SessionExpiredError",
    "Unavailable",
    "new_client_id",
    "replicate",
]
