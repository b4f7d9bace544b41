"""How a causal member's records are stored: one key per logged message, one floor per sender.

Keys (a sender's name is length-prefixed, so any name is safe):

- ``L`` + name + sequence number (8 bytes, big-endian): a :class:`Logged`
  message; its value is its clock and payload, packed as on the wire;
- ``F`` + name: the sender's floor (a :class:`Forgotten`), its sequence
  number packed; writing it deletes the ``L`` keys it drops.

Reading back, every floor comes first (``F`` sorts before ``L``), so
:meth:`CausalMember.restore` sees the floors before the log.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from actorfw.protocols.causal.delivery import Forgotten, Logged, Record
from actorfw.values.packed import pack_value, unpack_value

__all__ = ["CODEC", "CausalRecords"]

_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")


def _name(sender: str) -> bytes:
    raw = sender.encode()
    if len(raw) > 0xFFFF:
        raise ValueError(f"a member's name is at most 65,535 bytes, not {len(raw):,}")
    return _U16.pack(len(raw)) + raw


def _log_key(sender: bytes, seq: int) -> bytes:
    return b"L" + sender + _U64.pack(seq)


class CausalRecords:
    """A causal member's records as a :class:`~actorfw.protocols.effects.RecordCodec`."""

    __slots__ = ()

    def ops(self, record: Record) -> list[tuple[bytes, bytes | None]]:
        """The writes that make ``record`` durable (a ``None`` value deletes the key)."""
        if type(record) is Logged:
            return [
                (
                    _log_key(_name(record.sender), record.seq),
                    pack_value((record.clock, record.payload)),
                )
            ]
        if type(record) is Forgotten:
            name = _name(record.sender)
            ops: list[tuple[bytes, bytes | None]] = [
                (_log_key(name, seq), None) for seq in record.dropped
            ]
            ops.append((b"F" + name, pack_value(record.seq)))
            return ops
        raise TypeError(f"{record!r} is not a causal member's record")

    def load(self, items: Iterable[tuple[bytes, bytes]]) -> list[Record]:
        """The records stored as ``items``, floors first.

        Raises:
            ValueError: a key or value no causal member writes.
        """
        floors: list[Record] = []
        logged: list[Record] = []
        for key, value in items:
            kind, sender, rest = self._split(key)
            if kind == b"F" and not rest:
                seq = unpack_value(value)
                if type(seq) is not int:
                    raise ValueError(f"a stored floor is a number, not {seq!r}")
                floors.append(Forgotten(sender, seq))
            elif kind == b"L" and len(rest) == 8:
                pair: Any = unpack_value(value)
                if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                    raise ValueError(f"a stored message is (clock, payload), not {pair!r}")
                logged.append(Logged(sender, _U64.unpack(rest)[0], pair[0], pair[1]))
            else:
                raise ValueError(f"{key!r} is not a key a causal member writes")
        return floors + logged

    @staticmethod
    def _split(key: bytes) -> tuple[bytes, str, bytes]:
        if len(key) < 3:
            raise ValueError(f"{key!r} is not a key a causal member writes")
        (size,) = _U16.unpack_from(key, 1)
        name = key[3 : 3 + size]
        if len(name) != size:
            raise ValueError(f"{key!r} is not a key a causal member writes")
        return key[:1], name.decode(), key[3 + size :]


CODEC = CausalRecords()
"""The codec a causal member's driver stores its records with."""
