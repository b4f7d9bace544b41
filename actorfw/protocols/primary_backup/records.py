"""How a primary-backup node's records are stored: one key per written batch, one for the epoch.

Keys:

- ``E``: the highest epoch seen (an :class:`EpochSeen`), its number packed;
- ``L`` + start position (8 bytes, big-endian): the entries a
  :class:`Written` put there, as a list of ``[epoch, command]`` packed as on
  the wire. One key per batch, not per entry: a primary's batch of writes
  costs each node one row.
- ``R``: present while the member is starting again from nothing (a
  :class:`Rebuilding`; async mode);
- ``S``: the latest snapshot (a :class:`Snapshotted`): position, its
  epoch, the log's base and the epoch there, the state, the sessions and
  the epoch runs. A :class:`Compacted` deletes the batches it covers, in
  the same atomic write.

A :class:`Truncated` deletes every key that may start a batch inside it.
A batch that starts before it and runs into it keeps its tail on disk: the
backup writes the entry that conflicted, at the truncation's start, in the
same atomic write (it is why it truncates), and reading back replays the
batches in position order, each cutting the log at its start. So a stale
tail is always cut by the batch written after it.

Reading back gives the epoch first, then the snapshot, then one
:class:`Written` per batch in position order; a batch that starts past the
end of the ones before it (or of the snapshot's base) is refused, since no
sequence of records leaves a hole. The first batch may begin below the
base: its entries up to the base are skipped on replay.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from actorfw.protocols.primary_backup.messages import (
    Compacted,
    Entry,
    EpochSeen,
    Rebuilding,
    Record,
    Snapshotted,
    Truncated,
    Written,
)
from actorfw.values.packed import pack_value, unpack_value

__all__ = ["CODEC", "PrimaryBackupRecords"]

_U64 = struct.Struct(">Q")


class PrimaryBackupRecords:
    """A primary-backup node's records as a :class:`~actorfw.protocols.effects.RecordCodec`."""

    __slots__ = ()

    def ops(self, record: Record) -> list[tuple[bytes, bytes | None]]:
        """The writes that make ``record`` durable (a ``None`` value deletes the key)."""
        if type(record) is Written:
            pairs = [(entry.epoch, entry.command) for entry in record.entries]
            return [(b"L" + _U64.pack(record.start), pack_value(pairs))]
        if type(record) is Truncated:
            return [(b"L" + _U64.pack(p), None) for p in range(record.start, record.end + 1)]
        if type(record) is EpochSeen:
            return [(b"E", pack_value(record.epoch))]
        if type(record) is Snapshotted:
            value = (
                record.position,
                record.epoch,
                record.base,
                record.base_epoch,
                record.state,
                record.sessions,
                record.runs,
            )
            return [(b"S", pack_value(value))]
        if type(record) is Compacted:
            return [(b"L" + _U64.pack(start), None) for start in record.starts]
        if type(record) is Rebuilding:
            return [(b"R", pack_value(True) if record.on else None)]
        raise TypeError(f"{record!r} is not a primary-backup record")

    def load(self, items: Iterable[tuple[bytes, bytes]]) -> list[Record]:
        """The records stored as ``items`` (in key order): the epoch, then the batches.

        Raises:
            ValueError: a key or value this codec never writes, or a hole in the log.
        """
        epoch: list[Record] = []
        snapshot: list[Record] = []
        rebuilding: list[Record] = []
        stored: list[tuple[int, Any]] = []
        for key, value in items:
            if key == b"S":
                snapshot.append(_snapshot(unpack_value(value)))
            elif key == b"R":
                if unpack_value(value) is not True:
                    raise ValueError("a stored rebuilding mark is true")
                rebuilding.append(Rebuilding(True))
            elif key == b"E":
                number = unpack_value(value)
                if type(number) is not int or number < 0:
                    raise ValueError(f"a stored epoch is a number, not {number!r}")
                epoch.append(EpochSeen(number))
            elif key[:1] == b"L" and len(key) == 9:
                stored.append((_U64.unpack_from(key, 1)[0], value))
            else:
                raise ValueError(f"{key!r} is not a key a primary-backup node writes")
        base = snapshot[0].base if snapshot else 0  # type: ignore[union-attr]
        end = base  # the log's end once the batches so far are replayed
        batches: list[Record] = []
        for start, value in sorted(stored, key=lambda s: s[0]):
            if not 1 <= start <= end + 1:
                raise ValueError(f"the stored log skips to position {start}")
            pairs: Any = unpack_value(value)
            if not (isinstance(pairs, (tuple, list)) and pairs):
                raise ValueError(f"a stored batch is a list of [epoch, command], not {pairs!r}")
            entries = []
            for pair in pairs:
                if not (
                    isinstance(pair, (tuple, list)) and len(pair) == 2 and type(pair[0]) is int
                ):
                    raise ValueError(f"a stored entry is (epoch, command), not {pair!r}")
                entries.append(Entry(pair[0], pair[1]))
            batches.append(Written(start, tuple(entries)))
            end = max(base, start + len(entries) - 1)  # each batch cuts the log at its start
        return [*epoch, *snapshot, *rebuilding, *batches]


def _snapshot(value: Any) -> Snapshotted:
    """A stored snapshot, checked.

    Raises:
        ValueError: not the shape :meth:`PrimaryBackupRecords.ops` writes.
    """
    if not (isinstance(value, (tuple, list)) and len(value) == 7):
        raise ValueError("a stored snapshot is (position, epoch, base, base epoch, state, ...)")
    position, epoch, base, base_epoch, state, sessions, runs = value
    numbers = (position, epoch, base, base_epoch)
    if not (all(type(n) is int and n >= 0 for n in numbers) and base <= position):
        raise ValueError(f"a stored snapshot's positions and epochs are {numbers!r}")
    if not isinstance(sessions, dict) or not isinstance(runs, (tuple, list)):
        raise ValueError("a stored snapshot's sessions are a dict and its runs a list")
    pairs: list[tuple[int, int]] = []
    for run in runs:
        if not (
            isinstance(run, (tuple, list))
            and len(run) == 2
            and all(type(n) is int for n in run)
            and (not pairs or (run[0] > pairs[-1][0] and run[1] > pairs[-1][1]))
        ):
            raise ValueError(f"a stored snapshot's runs rise as (position, epoch), not {runs!r}")
        pairs.append((run[0], run[1]))
    table: dict[str, tuple[int, Any]] = {}
    for client, session in sessions.items():
        if not (type(client) is str and isinstance(session, (tuple, list)) and len(session) == 2):
            raise ValueError(f"a stored session is client: (seq, result), not {session!r}")
        table[client] = (session[0], session[1])
    return Snapshotted(position, epoch, base, base_epoch, state, table, tuple(pairs))


CODEC = PrimaryBackupRecords()
"""The codec a primary-backup node's driver stores its records with."""
