"""The wire format between node processes: batches of envelopes in one ZeroMQ multipart message.

Theory of operation
-------------------

A node sends to a peer in *batches*: every envelope queued for that peer
during one turn of the event loop travels in one multipart message (up to
a cap), so a burst of a thousand tells costs one ``send`` and a few
syscalls. A batch is::

    frame 0        the batch frame: a header and every envelope's body, inline
    frames 1..     the raw buffers (bytes, numpy arrays) of the envelopes, in
                   order, each its own frame, sent zero-copy

The batch frame (version 1), integers as unsigned LEB128 varints::

    u8      version = 1
    varint  n, the number of envelopes
    n times:
      u8      kind: 0 tell, 1 ask, 2 reply, 3 failure
      u8      flags: bit 0 plain body (no tags), bit 1 has a sender
      varint  corr, the ask's correlation id (0 for a tell)
      varint  target length, then the target actor's name (UTF-8)
      [varint sender length, then the sender actor's name, if flag bit 1]
      varint  body length, then the body (orjson, see actorfw.core.codec)
      varint  k, the number of buffer frames this envelope owns

Small bodies ride inside the batch frame, so a batch of small messages is
one ZeroMQ frame however many envelopes it holds; only buffers get frames
of their own, and those are never copied. The sending node is not in the
batch: the receiving ROUTER socket knows it (the peer's ZeroMQ identity,
which CURVE authentication ties to the peer's key on TCP).

Rules for input (the receiver trusts nothing):

1. A batch frame that does not parse, a version it does not know, unknown
   kinds or flag bits, names that are not UTF-8, a frame count that does not
   match: the whole batch is malformed; it is counted and dropped (no
   correlation id in it can be trusted to answer).
2. An envelope whose body and buffers together exceed the size limit is
   *oversized*: its body is not decoded; it is counted, and an ask is
   answered with an error.
3. Everything else is handed to the node engine, which decodes bodies
   and answers a malformed body of an ask with an error. Decoded bodies are
   views into the batch frame, not copies.
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
    """The frames of one batch carrying ``envelopes`` (the batch frame first)."""
    out = bytearray((WIRE_VERSION,))
    _put_varint(out, len(envelopes))
    frames: list[Any] = [out]
    for env in envelopes:
        sender = env.sender
        out.append(env.kind)
        out.append((_PLAIN if env.plain else 0) | (_HAS_SENDER if sender is not None else 0))
        _put_varint(out, env.corr)
        target = env.target.encode("utf-8")
        _put_varint(out, len(target))
        out += target
        if sender is not None:
            name = sender.encode("utf-8")
            _put_varint(out, len(name))
            out += name
        body = env.body
        _put_varint(out, len(body))
        out += body
        buffers = env.buffers
        _put_varint(out, len(buffers))
        if buffers:
            frames.extend(buffers)
    return frames


class _Reader:
    __slots__ = ("data", "end", "pos", "view")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.view = memoryview(data)
        self.pos = 0
        self.end = len(data)

    def byte(self) -> int:
        if self.pos >= self.end:
            raise MalformedBatch(f"batch frame truncated at byte {self.pos}")
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

    def chunk(self, what: str, limit: int) -> memoryview:
        size = self.varint()
        if size > limit or self.pos + size > self.end:
            raise MalformedBatch(f"{what} of {size} bytes at byte {self.pos} does not fit")
        view = self.view[self.pos : self.pos + size]
        self.pos += size
        return view

    def text(self, what: str) -> str:
        raw = self.chunk(what, _MAX_NAME)
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError:
            raise MalformedBatch(f"{what} before byte {self.pos} is not UTF-8") from None


def decode_batch(
    source: str, frames: Sequence[Any], max_message_size: int
) -> tuple[list[Envelope], list[Envelope]]:
    """Split a received batch into envelopes (rule 1 raises :class:`MalformedBatch`).

    Args:
        source: the sending node (from the socket, not from the batch).
        frames: the frames after the routing identity: the batch frame
            (bytes), then the buffers (kept as they are: zero-copy).
        max_message_size: rule 2's limit, in bytes, per envelope.

    Returns:
        ``(envelopes, oversized)``: envelopes to hand to the engine, and
        envelopes over the limit (with empty bodies) to refuse.
    """
    if not frames:
        raise MalformedBatch("empty message")
    reader = _Reader(frames[0] if type(frames[0]) is bytes else bytes(frames[0]))
    version = reader.byte()
    if version != WIRE_VERSION:
        raise MalformedBatch(f"wire version {version}; this node speaks {WIRE_VERSION}")
    count = reader.varint()
    if count > reader.end:
        raise MalformedBatch(f"{count} envelopes cannot fit in a {reader.end}-byte batch frame")
    envelopes: list[Envelope] = []
    oversized: list[Envelope] = []
    index = 1
    nframes = len(frames)
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
        body = reader.chunk("body", reader.end)
        nbuf = reader.varint()
        if index + nbuf > nframes:
            raise MalformedBatch("the batch has fewer frames than its header announces")
        buffers = list(frames[index : index + nbuf]) if nbuf else []
        index += nbuf
        size = len(body)
        for buffer in buffers:
            size += memoryview(buffer).nbytes
        env = Envelope(kind, source, target, sender, corr, body, buffers, bool(flags & _PLAIN))
        if size > max_message_size:
            env.body = b""
            env.buffers = []
            oversized.append(env)
        else:
            envelopes.append(env)
    if reader.pos != reader.end:
        raise MalformedBatch(f"{reader.end - reader.pos} stray bytes after the last envelope")
    if index != nframes:
        raise MalformedBatch(f"{nframes - index} frames beyond what the batch announces")
    return envelopes, oversized
