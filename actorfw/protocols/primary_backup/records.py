"""How a primary-backup node's records are stored: one key per log position, one for the epoch.

Keys:

- ``E``: the highest epoch seen (an :class:`EpochSeen`), its number packed;
- ``L`` + position (8 bytes, big-endian): the :class:`Entry` there, as
  ``(epoch, command)`` packed as on the wire.

A :class:`Written` record is one ``L`` key per entry; a :class:`Truncated`
deletes its positions' keys. Reading back gives the epoch first, then the
log as one :class:`Written` from position 1 (key order is position order);
positions that do not follow on from 1 are refused, since no sequence of
records leaves a hole.
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
            return [
                (b"L" + _U64.pack(record.start + i), pack_value((entry.epoch, entry.command)))
                for i, entry in enumerate(record.entries)
            ]
        if type(record) is Truncated:
            return [(b"L" + _U64.pack(p), None) for p in range(record.start, record.end + 1)]
        if type(record) is EpochSeen:
            return [(b"E", pack_value(record.epoch))]
        raise TypeError(f"{record!r} is not a primary-backup record")

    def load(self, items: Iterable[tuple[bytes, bytes]]) -> list[Record]:
        """The records stored as ``items`` (in key order): the epoch, then the log.

        Raises:
            ValueError: a key or value this codec never writes, or a hole in the log.
        """
        epoch: list[Record] = []
        entries: list[Entry] = []
        for key, value in items:
            if key == b"E":
                number = unpack_value(value)
                if type(number) is not int or number < 0:
                    raise ValueError(f"a stored epoch is a number, not {number!r}")
                epoch.append(EpochSeen(number))
            elif key[:1] == b"L" and len(key) == 9:
                position = _U64.unpack_from(key, 1)[0]
                if position != len(entries) + 1:
                    raise ValueError(f"the stored log skips to position {position}")
                pair: Any = unpack_value(value)
                if not (
                    isinstance(pair, (tuple, list)) and len(pair) == 2 and type(pair[0]) is int
                ):
                    raise ValueError(f"a stored entry is (epoch, command), not {pair!r}")
                entries.append(Entry(pair[0], pair[1]))
            else:
                raise ValueError(f"{key!r} is not a key a primary-backup node writes")
        return [*epoch, Written(1, tuple(entries))] if entries else epoch


CODEC = PrimaryBackupRecords()
"""The codec a primary-backup node's driver stores its records with."""
