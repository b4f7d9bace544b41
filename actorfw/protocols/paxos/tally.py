"""The votes of the acceptors for the slots a leader has in phase 2 (leader rule 3).

A p2b may accept hundreds of slots at once: counting it slot by slot in
Python would be the leader's hottest loop. :class:`VoteTally` keeps a
bitmask of voters per slot in a numpy array indexed by ``slot - base``, so
counting one p2b is a few array operations, whatever its size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from actorfw.protocols.paxos.messages import Slots

__all__ = ["VoteTally"]

_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY.setflags(write=False)
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.integer[Any]]:
    """Set bits per uint64 (``numpy.bitwise_count`` where numpy has it, numpy >= 2)."""
    count = getattr(np, "bitwise_count", None)
    if count is not None:
        return count(words)  # type: ignore[no-any-return]
    counted: npt.NDArray[np.integer[Any]] = _POPCOUNT8[words.view(np.uint8).reshape(-1, 8)].sum(
        axis=1
    )
    return counted


class VoteTally:
    """Votes of the acceptors for the slots in phase 2 under the current ballot.

    A bitmask of voters per slot in a numpy array indexed by ``slot - base``,
    so counting a p2b of hundreds of slots is a few array operations.
    """

    __slots__ = ("_base", "_open", "_quorum", "_votes")

    def __init__(self, quorum: int) -> None:
        self._quorum = quorum
        self._base = 0
        self._votes = np.zeros(0, dtype=np.uint64)
        self._open = np.zeros(0, dtype=np.bool_)

    def reset(self) -> None:
        """Forget every slot (a new ballot counts from nothing)."""
        self._base = 0
        self._votes = np.zeros(0, dtype=np.uint64)
        self._open = np.zeros(0, dtype=np.bool_)

    def _fit(self, lo: int, hi: int) -> None:
        """Make room for slots ``lo..hi``, dropping closed space below the lowest open slot."""
        size = len(self._open)
        if size and self._base <= lo and hi < self._base + size:
            return
        open_index = np.flatnonzero(self._open)
        if len(open_index):
            lo = min(lo, self._base + int(open_index[0]))
            hi = max(hi, self._base + int(open_index[-1]))
        span = hi - lo + 1
        new_size = 1 << max(10, (2 * span - 1).bit_length())
        votes = np.zeros(new_size, dtype=np.uint64)
        is_open = np.zeros(new_size, dtype=np.bool_)
        if len(open_index):
            moved = open_index + (self._base - lo)
            votes[moved] = self._votes[open_index]
            is_open[moved] = True
        self._base, self._votes, self._open = lo, votes, is_open

    def open(self, slots: Slots) -> None:
        """Start counting votes for ``slots`` (from none)."""
        if not len(slots):
            return
        self._fit(int(slots.min()), int(slots.max()))
        index = slots - self._base
        self._votes[index] = 0
        self._open[index] = True

    def close(self, slots: Slots) -> None:
        """Stop counting ``slots`` (they are decided some other way)."""
        index = self._index_of_open(slots)
        self._open[index] = False

    def _index_of_open(self, slots: Slots) -> Slots:
        index = slots - self._base
        inside = (index >= 0) & (index < len(self._open))
        if not inside.all():
            index = index[inside]
        return index[self._open[index]]

    def vote(self, slots: Slots, bit: int) -> Slots:
        """Count acceptor ``bit``'s votes for ``slots``; returns the slots that reached a quorum."""
        index = self._index_of_open(slots)
        if not len(index):
            return _EMPTY
        votes = self._votes[index] | np.uint64(bit)
        self._votes[index] = votes
        done = index[_popcount(votes) >= self._quorum]
        if len(done):
            self._open[done] = False
        chosen: Slots = done + self._base
        return chosen

    def still_open(self, slots: Slots) -> Slots:
        """The slots among ``slots`` still waiting for a quorum."""
        return self._index_of_open(slots) + self._base
