"""How a primary-backup node's records are stored: one key per written batch, one for the epoch.

Keys:

- ``E``: the highest epoch seen (an :class:`EpochSeen`), its number packed;
- ``L`` + start position (8 bytes, big-endian): the entries a
  :class:`Written` put there, as a list of ``[epoch, command]`` packed as on
  the wire. One key per batch, not per entry: a primary's batch of writes
  costs each node one row.

A :class:`Truncated` deletes every key that may start a batch inside it.
A batch that starts before it and runs into it keeps its tail on disk: the
backup writes the entry that conflicted, at the truncation's start, in the
same atomic write (it is why it truncates), and reading back replays the
batches in position order, each cutting the log at its start. So a stale
tail is always cut by the batch written after it.

Reading back gives the epoch first, then one :class:`Written` per batch in
position order; a batch that starts past the end of the ones before it is
refused, since no sequence of records leaves a hole.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from actorfw.protocols.primary_backup.messages import Entry, EpochSeen, Record, Truncated, Written
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
        raise TypeError(f"{record!r} is not a primary-backup record")

    def load(self, items: Iterable[tuple[bytes, bytes]]) -> list[Record]:
        """The records stored as ``items`` (in key order): the epoch, then the batches.

        Raises:
            ValueError: a key or value this codec never writes, or a hole in the log.
        """
        epoch: list[Record] = []
        batches: list[Record] = []
        end = 0  # the log's end once the batches so far are replayed
        for key, value in items:
            if key == b"E":
                number = unpack_value(value)
                if type(number) is not int or number < 0:
                    raise ValueError(f"a stored epoch is a number, not {number!r}")
                epoch.append(EpochSeen(number))
            elif key[:1] == b"L" and len(key) == 9:
                start = _U64.unpack_from(key, 1)[0]
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
                end = start + len(entries) - 1
            else:
                raise ValueError(f"{key!r} is not a key a primary-backup node writes")
        return [*epoch, *batches]


CODEC = PrimaryBackupRecords()
"""The codec a primary-backup node's driver stores its records with."""
