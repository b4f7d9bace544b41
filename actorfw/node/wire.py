"""The wire format between node processes: batches of envelopes in one ZeroMQ multipart message.

Theory of operation
-------------------

A node sends to a peer in *batches*: every envelope queued for that peer
during one turn of the event loop travels in one multipart message, so a
burst of a thousand tells costs one ``send`` and a few syscalls. A batch is::

    frame 0        the batch header (below)
    then, for each envelope in order:
      1 frame      its body (orjson, see actorfw.core.codec)
      k frames     its k raw buffers (bytes, numpy arrays), sent zero-copy

The batch header (version 1), integers as unsigned LEB128 varints::

    u8      version = 1
    varint  n, the number of envelopes
    n times:
      u8      kind: 0 tell, 1 ask, 2 reply, 3 failure
      u8      flags: bit 0 plain body (no tags), bit 1 has a sender
      varint  corr, the ask's correlation id (0 for a tell)
      varint  target length, then the target actor's name (UTF-8)
      [varint sender length, then the sender actor's name, if flag bit 1]
      varint  k, the number of buffer frames

The sending node is not in the batch: the receiving ROUTER socket knows it
(the peer's ZeroMQ identity, which CURVE authentication ties to the peer's
key on TCP).

Rules for input (the receiver trusts nothing):

1. A header that does not parse, a version it does not know, unknown bits,
   a frame count that does not match, names that are not UTF-8: the whole
   batch is malformed; it is counted and dropped (there is no trustworthy
   correlation id to answer).
2. An envelope whose body and buffers together exceed the size limit is
   *oversized*: its body is not decoded; it is counted, and an ask is
   answered with an error.
3. Everything else is handed to the node engine, which decodes bodies
   and answers a malformed body of an ask with an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actorfw.core.node import Envelope

__all__ = ["WIRE_VERSION", "MalformedBatch", "decode_batch", "encode_batch"]

WIRE_VERSION = 1
"""The version byte that starts every batch header."""

_PLAIN = 1
_HAS_SENDER = 2
_KNOWN_FLAGS = _PLAIN | _HAS_SENDER
_MAX_NAME = 4096


class MalformedBatch(ValueError):
    """A batch that breaks the wire format (rule 1)."""


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def encode_batch(envelopes: Sequence[Envelope]) -> list[Any]:
    """The frames of one batch carrying ``envelopes`` (the header first)."""
    header = bytearray((WIRE_VERSION,))
    _put_varint(header, len(envelopes))
    frames: list[Any] = [header]
    for env in envelopes:
        sender = env.sender
        header.append(env.kind)
        header.append((_PLAIN if env.plain else 0) | (_HAS_SENDER if sender is not None else 0))
        _put_varint(header, env.corr)
        target = env.target.encode("utf-8")
        _put_varint(header, len(target))
        header += target
        if sender is not None:
            name = sender.encode("utf-8")
            _put_varint(header, len(name))
            header += name
        buffers = env.buffers
        _put_varint(header, len(buffers))
        frames.append(env.body)
        if buffers:
            frames.extend(buffers)
    return frames


class _Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)

    def byte(self) -> int:
        if self.pos >= self.end:
            raise MalformedBatch(f"batch header truncated at byte {self.pos}")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        start = self.pos
        value = shift = 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise MalformedBatch(f"varint at byte {start} is longer than 64 bits")

    def text(self, what: str) -> str:
        size = self.varint()
        if size > _MAX_NAME or self.pos + size > self.end:
            raise MalformedBatch(f"{what} of {size} bytes at byte {self.pos} does not fit")
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedBatch(f"{what} at byte {self.pos - size} is not UTF-8") from None


def decode_batch(
    source: str, frames: Sequence[Any], max_message_size: int
) -> tuple[list[Envelope], list[Envelope]]:
    """Split a received batch into envelopes (rule 1 raises :class:`MalformedBatch`).

    Args:
        source: the sending node (from the socket, not from the batch).
        frames: the frames after the routing identity; the header first.
            Body frames may be bytes or buffers; buffer frames are kept as
            they are (zero-copy).
        max_message_size: rule 2's limit, in bytes, per envelope.

    Returns:
        ``(envelopes, oversized)``: envelopes to hand to the engine, and
        envelopes over the limit (with empty bodies) to refuse.
    """
    if not frames:
        raise MalformedBatch("empty message")
    reader = _Reader(bytes(frames[0]))
    version = reader.byte()
    if version != WIRE_VERSION:
        raise MalformedBatch(f"wire version {version}; this node speaks {WIRE_VERSION}")
    count = reader.varint()
    if count > len(frames) - 1:
        raise MalformedBatch(f"{count} envelopes announced but only {len(frames) - 1} frames")
    envelopes: list[Envelope] = []
    oversized: list[Envelope] = []
    index = 1
    for _ in range(count):
        kind = reader.byte()
        if kind > 3:
            raise MalformedBatch(f"unknown envelope kind {kind}")
        flags = reader.byte()
        if flags & ~_KNOWN_FLAGS:
            raise MalformedBatch(f"unknown envelope flags {flags:#x}")
        corr = reader.varint()
        target = reader.text("target name")
        sender = reader.text("sender name") if flags & _HAS_SENDER else None
        nbuf = reader.varint()
        if index + 1 + nbuf > len(frames):
            raise MalformedBatch("the batch has fewer frames than its header announces")
        body = frames[index]
        buffers = list(frames[index + 1 : index + 1 + nbuf])
        index += 1 + nbuf
        size = len(body) + sum(memoryview(b).nbytes for b in buffers)
        env = Envelope(kind, source, target, sender, corr, body, buffers, bool(flags & _PLAIN))
        if size > max_message_size:
            env.body = b""
            env.buffers = []
            oversized.append(env)
        else:
            envelopes.append(env)
    if reader.pos != reader.end:
        raise MalformedBatch(f"{reader.end - reader.pos} stray bytes after the batch header")
    if index != len(frames):
        raise MalformedBatch(f"{len(frames) - index} frames beyond what the header announces")
    return envelopes, oversized
