"""Message values as self-contained bytes, for storage: the codec's body and its buffers.

A durable record holds values a peer sent (commands, payloads, clocks); they
are stored in the same encoding the wire uses, so reading them back goes
through the same checks as a message, and nothing stored is ever unpickled.
"""

from __future__ import annotations

import struct
from typing import Any

from actorfw.values.codec import decode, encode

__all__ = ["pack_value", "unpack_value"]

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def _bytes_of(buffer: Any) -> memoryview:
    """A buffer's bytes; an empty array's too (a cast refuses zeros in a shape)."""
    view = memoryview(buffer)
    return view.cast("B") if view.nbytes else memoryview(b"")


def pack_value(value: Any) -> bytes:
    """A message value as one self-contained ``bytes`` (codec body plus its buffers).

    Raises:
        MessageRefused: ``value`` is not a message value.
    """
    body, buffers, _ = encode(value)
    raw = [_bytes_of(b) for b in buffers]
    parts: list[bytes | memoryview] = [_U32.pack(len(raw))]
    parts.extend(_U64.pack(r.nbytes) for r in raw)
    parts.append(_U32.pack(len(body)))
    parts.append(body)
    parts.extend(raw)
    return b"".join(parts)


def unpack_value(data: bytes) -> Any:
    """The message value :func:`pack_value` stored.

    Raises:
        ValueError: ``data`` is not a packed value (truncated or trailing bytes).
        MalformedMessage: the body is not a message value encoding.
    """
    view = memoryview(data)
    try:
        (count,) = _U32.unpack_from(view, 0)
        offset = 4
        sizes = []
        for _ in range(count):
            sizes.append(_U64.unpack_from(view, offset)[0])
            offset += 8
        (body_size,) = _U32.unpack_from(view, offset)
        offset += 4
    except struct.error:
        raise ValueError("stored value is truncated") from None
    body = view[offset : offset + body_size]
    offset += body_size
    buffers = []
    for size in sizes:
        buffers.append(bytes(view[offset : offset + size]))
        offset += size
    if offset != len(view) or len(body) != body_size:
        raise ValueError(f"stored value is {len(view)} bytes but its header describes {offset}")
    return decode(bytes(body), buffers)
