"""Clients of the replicated KV store: put, get, delete, compare-and-set, append.

Every operation goes through the replicated log, so reads are linearizable;
each runs exactly once even when retried across a leader change.
"""

from __future__ import annotations

from typing import Any

from actorfw.kv.machine import KVError
from actorfw.services.replication.client import AsyncGroupClient, GroupClient
from actorfw.services.sharding import AsyncShardedClient, ShardedClient

__all__ = ["KV", "AsyncKV"]


def _result(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2 and value[0] == "error":
        raise KVError(value[1])
    return value


class KV:
    """A blocking client of a replicated KV store.

    It wraps a :class:`~actorfw.services.replication.GroupClient`, or for a
    sharded store a :class:`~actorfw.services.sharding.ShardedClient`.
    """

    def __init__(self, client: GroupClient | ShardedClient) -> None:
        self.client = client

    def get(self, key: str) -> Any:
        """The value of ``key``, or None (by the leader's lease when leases are on)."""
        return _result(self.client.read(["get", key]))

    def put(self, key: str, value: Any) -> None:
        """Set ``key`` to ``value`` (not None)."""
        _result(self.client.call(["put", key, value]))

    def delete(self, key: str) -> None:
        """Remove ``key``."""
        _result(self.client.call(["delete", key]))

    def cas(self, key: str, expected: Any, new: Any) -> bool:
        """Set ``key`` to ``new`` iff it holds ``expected`` (None: absent); True if it did."""
        done: bool = _result(self.client.call(["cas", key, [expected, new]]))
        return done

    def append(self, key: str, text: str) -> str:
        """Append ``text`` to the string at ``key`` (absent: ""); returns the new string."""
        value: str = _result(self.client.call(["append", key, text]))
        return value


class AsyncKV:
    """The same operations for ``async`` code.

    Wraps an :class:`~actorfw.services.replication.AsyncGroupClient` (or an
    :class:`~actorfw.services.sharding.AsyncShardedClient`).
    """

    def __init__(self, client: AsyncGroupClient | AsyncShardedClient) -> None:
        self.client = client

    async def get(self, key: str) -> Any:
        """The value of ``key``, or None (by the leader's lease when leases are on)."""
        return _result(await self.client.read(["get", key]))

    async def put(self, key: str, value: Any) -> None:
        """Set ``key`` to ``value`` (not None)."""
        _result(await self.client.call(["put", key, value]))

    async def delete(self, key: str) -> None:
        """Remove ``key``."""
        _result(await self.client.call(["delete", key]))

    async def cas(self, key: str, expected: Any, new: Any) -> bool:
        """Set ``key`` to ``new`` iff it holds ``expected``; True if it did."""
        done: bool = _result(await self.client.call(["cas", key, [expected, new]]))
        return done

    async def append(self, key: str, text: str) -> str:
        """Append ``text`` to the string at ``key``; returns the new string."""
        value: str = _result(await self.client.call(["append", key, text]))
        return value
