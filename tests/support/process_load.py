"""Clients appending unique tokens to a few keys on node processes, and waiting helpers.

Every acknowledged append leaves a trace that must be in the final value,
and the whole history (appends and reads) must be linearizable: what the
process tests of replicated groups check after their kills.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from actorfw.check import History
from actorfw.services.replication import AsyncGroupClient, Unavailable

KEYS = [f"k{i}" for i in range(6)]
CLIENTS = 6


class Load:
    """Clients appending unique tokens (and reading) until told to stop."""

    def __init__(self, nodes: list[str], group: str = "kv") -> None:
        self.group = group
        self.nodes = nodes
        self.history = History()
        self.acknowledged: dict[str, list[str]] = {key: [] for key in KEYS}
        self.completed = 0
        self.leader: str | None = None
        self.stopping = False
        self.t0 = time.monotonic()

    async def run(self) -> None:
        await asyncio.gather(*(self.client(index) for index in range(CLIENTS)))

    async def client(self, index: int) -> None:
        client = AsyncGroupClient(
            self.group, self.nodes, f"load-{index}", timeout=0.5, deadline=10.0
        )
        step = 0
        while not self.stopping:
            step += 1
            key = KEYS[(index + step) % len(KEYS)]
            if step % 4 == 0:
                f, value, op = "get", None, ["get", key]
            else:
                token = f"{index}.{step};"
                f, value, op = "append", token, ["append", key, token]
            record = self.history.invoke(index, f, key, value, time=time.monotonic() - self.t0)
            try:
                result = await client.call(op)
            except Unavailable:
                self.history.info(record)
                continue
            self.history.ok(record, result, time=time.monotonic() - self.t0)
            if f == "append":
                self.acknowledged[key].append(value)
            self.completed += 1
            self.leader = client.leader


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def progress(load: Load, more: int) -> Callable[[], bool]:
    target = load.completed + more
    return lambda: load.completed >= target


def final_check(system: Any, load: Load) -> None:
    """After the load stopped: every acknowledged append in the final values, once, and the
    whole history linearizable (what is still pending counts as of unknown outcome)."""
    from actorfw.check import KeyValue, check

    for op in load.history.pending:
        load.history.info(op)
    reader = AsyncGroupClient(load.group, load.nodes, "final-reader", timeout=0.5, deadline=20.0)

    async def final() -> dict[str, Any]:
        return {key: await reader.call(["get", key]) for key in KEYS}

    check_appends(system.run(final()), load)
    result = check(load.history, KeyValue(), timeout=60.0)
    assert result.ok, str(result)


def check_appends(values: dict[str, Any], load: Load) -> None:
    """Every acknowledged append is in ``values`` once (the final reads of :data:`KEYS`)."""
    for key in KEYS:
        tokens = (values[key] or "").split(";")[:-1]
        assert len(tokens) == len(set(tokens)), f"{key}: a token appears twice"
        missing = {t.rstrip(";") for t in load.acknowledged[key]} - set(tokens)
        assert not missing, f"{key}: acknowledged appends lost: {sorted(missing)[:5]}"
