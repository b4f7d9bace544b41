"""A node-like process for the SQLite crash test: it writes until it is killed.

Run as ``python sqlite_crash_child.py PATH``. It opens a
:class:`~actorfw.node.storage.SqliteBackend` on ``PATH`` and writes batches
forever, batch ``i`` putting ``a<i>`` and ``b<i>`` (9-digit, zero-padded)
with the value ``str(i)`` in the namespace ``crash``. After every
``SYNC_EVERY`` batches it asks for a sync without waiting for it, and when
that sync completes prints ``SYNCED n`` (flushed at once): batches ``0 ..
n-1`` are durable. Meanwhile it keeps writing, so when the test SIGKILLs it
there are writes in a commit in flight and writes not yet handed to any.
"""

from __future__ import annotations

import asyncio
import functools
import sys

from actorfw.node.storage import SqliteBackend

__all__ = ["NAMESPACE", "SYNC_EVERY", "key", "main"]

NAMESPACE = "crash"
"""Where the child writes."""

SYNC_EVERY = 32
"""Batches written between two sync requests."""


def key(kind: str, i: int) -> bytes:
    """The key of batch ``i``'s ``kind`` ("a" or "b") write."""
    return f"{kind}{i:09d}".encode()


def _report(future: asyncio.Future[None], *, synced: int) -> None:
    if not future.cancelled() and future.exception() is None:
        print(f"SYNCED {synced}", flush=True)


async def main(path: str) -> None:
    """Write batches to ``path`` until killed, reporting each completed sync."""
    loop = asyncio.get_running_loop()
    backend = SqliteBackend(path, loop)
    store = backend.namespace(NAMESPACE)
    i = 0
    while True:
        with store.batch() as batch:
            value = str(i).encode()
            batch.put(key("a", i), value)
            batch.put(key("b", i), value)
        i += 1
        if i % SYNC_EVERY == 0:
            future = asyncio.ensure_future(store.sync())
            future.add_done_callback(functools.partial(_report, synced=i))
        await asyncio.sleep(0)  # let commit completions in


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
