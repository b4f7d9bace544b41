"""What storage holds after a role's records are written, in order, through its codec."""

from __future__ import annotations

from typing import Any


def stored(codec: Any, records: list[Any]) -> dict[bytes, bytes]:
    """The key-value pairs left by writing ``records`` one by one (a ``None`` value deletes)."""
    store: dict[bytes, bytes] = {}
    for record in records:
        for key, value in codec.ops(record):
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value
    return store
