"""Replicated state machines for users: :func:`replicate` and exactly-once clients.

See ``docs/replication.md``.
"""

from actorfw.services.replication.client import (
    AsyncClient,
    Client,
    SessionExpiredError,
    Unavailable,
    new_client_id,
)
from actorfw.services.replication.group import ReplicatedGroup, replicate

__all__ = [
    "AsyncClient",
    "Client",
    "ReplicatedGroup",
    "SessionExpiredError",
    "Unavailable",
    "new_client_id",
    "replicate",
]
