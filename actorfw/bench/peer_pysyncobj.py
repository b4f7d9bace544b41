"""PySyncObj's side of ``actorfw bench peers``: a replicated key-value store on three Raft nodes.

Each node is a process of its own (spawned), holding a :class:`SyncObj`
whose one replicated method puts a key; the journal is in memory (no file,
no fsync), as actorfw's nodes with ``storage="memory"``. The commands of a
round are issued in the process of the node that leads at that moment
(asked before every round), at most ``window`` outstanding, each answered
put (PySyncObj calls back once the leader applied it) issuing the next:
with a window of 1,024, as actorfw's 1,024 clients do; with none, all at
once, which lets PySyncObj batch without bound. A warm-up of a tenth of
the round's commands runs first, untimed. Three settings differ from
PySyncObj's defaults, so that the figure is its steady rate:

- log compaction is off (a follower that fell behind was sent a full dump
  mid-run, and logged that its commit index exceeded its journal after
  loading it);
- election timeouts are 3 to 6 s rather than 0.4 to 1.4 s: with the
  defaults, a loaded 2-core machine delayed heartbeats enough for
  elections during a run, which then took four times as long;
- the connection timeout is 7 s rather than 3.5 s, since PySyncObj wants
  it no shorter than the longest election timeout.

Even so, a run may log (at CRITICAL) that a follower truncated log entries
it had applied: PySyncObj truncates a follower's log whenever an append
starts before its end, whether or not the entries conflict. Such a round
is slow, and the median of the rounds drops it.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from actorfw.bench.raw import _Sides

__all__ = ["WINDOW", "PySyncObjCluster"]

KEYS = 1024
"""The commands cycle over this many keys."""

WINDOW = 1024
"""Commands outstanding at once by default: as many as actorfw's side has clients."""


def _config() -> Any:
    from pysyncobj import SyncObjConf

    return SyncObjConf(
        dynamicMembershipChange=False,
        appendEntriesUseBatch=True,
        logCompactionMinEntries=10**9,
        logCompactionMinTime=10**9,
        raftMinTimeout=3.0,
        raftMaxTimeout=6.0,
        connectionTimeout=7.0,
    )


def _node(address: str, partners: list[str], pipe: Any) -> None:
    """One Raft node: says ``"ready"``, then answers ``"leader"`` and ``("drive", ...)``.

    ``"done"`` stops it (what :class:`~actorfw.bench.raw._Sides` sends on exit).
    """
    from pysyncobj import FAIL_REASON, SyncObj, replicated

    class Store(SyncObj):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(address, partners, _config())
            self.data: dict[str, int] = {}

        @replicated  # type: ignore[untyped-decorator]
        def put(self, key: str, value: int) -> None:
            self.data[key] = value

    store = Store()
    try:
        pipe.send("ready")
        while True:
            command = pipe.recv()
            if command == "done":
                return
            if command == "leader":
                leader = store._getLeader()
                pipe.send(None if leader is None else str(leader))
            else:
                _, first, count, window = command
                ok = FAIL_REASON.SUCCESS
                warm = _drive(store.put, first, count // 10, window, ok)
                if warm[0] != "ok":
                    pipe.send(warm)
                else:
                    pipe.send(_drive(store.put, first + count // 10, count, window, ok))
    finally:
        store.destroy()


def _drive(put: Any, first: int, count: int, window: int | None, success: Any) -> tuple[str, Any]:
    """``count`` puts, ``window`` at a time (all, if None); ``("ok", rate)`` once applied.

    A failed put (PySyncObj calls back at once, on the caller's thread, when
    its queue is full) ends the round: nothing more is issued, and the round
    reports the failures once every put issued was answered.
    """
    if count <= 0:
        return ("ok", 0.0)
    lock = threading.Lock()
    state = {"next": first, "answered": 0, "failed": 0}  # this round's own
    end = first + count
    done = threading.Event()

    def take() -> int | None:
        with lock:
            i = state["next"]
            if i >= end or state["failed"]:
                return None
            state["next"] = i + 1
            return i

    def callback(result: Any, error: Any) -> None:  # on PySyncObj's thread (or the caller's)
        with lock:
            state["answered"] += 1
            if error != success:
                state["failed"] += 1
            if state["answered"] == count or (
                state["failed"] and state["answered"] == state["next"] - first
            ):
                done.set()
        i = take()
        if i is not None:
            put(f"k{i % KEYS}", i, callback=callback)

    start = time.perf_counter()
    for _ in range(count if window is None else min(window, count)):
        i = take()
        if i is not None:
            put(f"k{i % KEYS}", i, callback=callback)
    if not done.wait(600.0):
        return ("error", f"{count - state['answered']} of {count} commands unanswered")
    if state["failed"]:
        return ("error", f"{state['failed']} of {count} commands failed")
    return ("ok", count / (time.perf_counter() - start))


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class PySyncObjCluster:
    """Three PySyncObj nodes on loopback, stopped on exit (a context manager).

    Args:
        nodes: how many.
        timeout: seconds to wait for a leader.
    """

    def __init__(self, nodes: int = 3, timeout: float = 60.0) -> None:
        addresses = [f"127.0.0.1:{port}" for port in _free_ports(nodes)]
        self._addresses = addresses
        self._sides = _Sides(
            [(_node, (address, [a for a in addresses if a != address])) for address in addresses]
        )
        self._pipes: list[Any] = []
        self._timeout = timeout
        self._next = 0
        self.leader: int | None = None
        """Which node leads (its index), once the cluster is up."""

    def __enter__(self) -> PySyncObjCluster:
        self._pipes = self._sides.__enter__()
        try:
            self.leader = self._elected()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ask(self, index: int, command: Any, timeout: float) -> Any:
        pipe = self._pipes[index]
        pipe.send(command)
        if not pipe.poll(timeout):
            raise RuntimeError(f"PySyncObj node {index} did not answer {command!r}")
        return pipe.recv()

    def _elected(self) -> int:
        """The index of the node every node names as leader (polled until the deadline)."""
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            named = {self._ask(i, "leader", 30.0) for i in range(len(self._pipes))}
            if len(named) == 1 and None not in named:
                return self._addresses.index(named.pop())
            time.sleep(0.05)  # a Raft election takes seconds here: poll, do not spin
        raise RuntimeError(f"no PySyncObj leader within {self._timeout:.0f} s")

    def drive(self, count: int, window: int | None = WINDOW) -> float:
        """Commands per second: ``count`` puts issued by the leader's process, all applied.

        ``window``: how many are outstanding at once (None: all of them).

        Who leads is asked again first: an election between rounds would
        otherwise have a follower forward every command.
        """
        assert self.leader is not None, "use the cluster as a context manager"
        self.leader = self._elected()
        status, value = self._ask(self.leader, ("drive", self._next, count, window), 1320.0)
        self._next += count + count // 10
        if status != "ok":
            raise RuntimeError(f"PySyncObj: {value}")
        return float(value)

    def close(self) -> None:
        """Stop every node (killing one that does not stop)."""
        self._sides.__exit__()
