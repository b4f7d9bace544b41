"""How a causal member's records are stored: a key per logged message or run, and per floor.

Keys (a sender's name is length-prefixed, so any name is safe):

- ``L`` + name + sequence number (8 bytes, big-endian): a :class:`Logged`
  message; its value is its clock and payload, packed as on the wire;
- ``R`` + name + first sequence number: a :class:`LoggedRun`, consecutive
  messages of the sender delivered in one step; its value is one tuple,
  the first clock then the payloads, packed;
- ``F`` + name: the sender's floor (a :class:`Forgotten`), its sequence
  number packed; writing it deletes the ``L`` and ``R`` keys it drops.

Reading back, every floor comes first (``F`` sorts before ``L``), so
:meth:`CausalMember.restore` sees the floors before the log.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from actorfw.kernels import vclock as _vclock
from actorfw.protocols.causal.messages import Forgotten, Logged, LoggedRun, Record, VectorClock
from actorfw.protocols.causal.runs import RUN_RECORD_MAX
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


def _run_key(sender: bytes, seq: int) -> bytes:
    return b"R" + sender + _U64.pack(seq)


def _check_stamp(clock: Any, sender: str, seq: int, count: int) -> None:
    """Refuse a stored stamp that is not a clock naming its message as its key does."""
    if not isinstance(clock, VectorClock) or clock.get(sender) != seq or seq < 1:
        raise ValueError(f"the stored stamp {clock!r:.200} is not message {seq} of {sender!r}")
    if seq + count - 1 > _vclock.MAX_COUNTER:
        raise ValueError(f"a stored run of {count} from message {seq} passes the counters' bound")


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
        if type(record) is LoggedRun:
            # (clock, *payloads): payloads nest no deeper than in a Logged record.
            return [
                (
                    _run_key(_name(record.sender), record.seq),
                    pack_value((record.clock, *record.payloads)),
                )
            ]
        if type(record) is Forgotten:
            name = _name(record.sender)
            ops: list[tuple[bytes, bytes | None]] = []
            for seq in record.dropped:  # a Logged or a LoggedRun: deleting the other is a no-op
                ops.append((_log_key(name, seq), None))
                ops.append((_run_key(name, seq), None))
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
                seq = _U64.unpack(rest)[0]
                _check_stamp(pair[0], sender, seq, 1)
                logged.append(Logged(sender, seq, pair[0], pair[1]))
            elif kind == b"R" and len(rest) == 8:
                run: Any = unpack_value(value)
                if not (
                    isinstance(run, (tuple, list))
                    and 2 <= len(run) <= RUN_RECORD_MAX + 1
                    and isinstance(run[0], VectorClock)
                ):
                    raise ValueError(
                        f"a stored run is (clock, 1 to {RUN_RECORD_MAX} payloads), not {run!r:.200}"
                    )
                seq = _U64.unpack(rest)[0]
                _check_stamp(run[0], sender, seq, len(run) - 1)
                logged.append(LoggedRun(sender, seq, run[0], tuple(run[1:])))
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
