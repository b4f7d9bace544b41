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
      varint  body length, then the body (orjson, see actorfw.values.codec)
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

from actorfw.kernels import wire as _wire

__all__ = ["WIRE_VERSION", "MalformedBatch", "decode_batch", "encode_batch"]

WIRE_VERSION = _wire.WIRE_VERSION
"""The version byte that starts every batch frame."""

MalformedBatch = _wire.MalformedBatch
"""A batch that breaks the wire format (rule 1); a ``ValueError``."""

encode_batch = _wire.encode_batch
"""``encode_batch(envelopes) -> frames``: the batch frame, then every buffer."""

decode_batch = _wire.decode_batch
"""``decode_batch(source, frames, max_message_size) -> (envelopes, oversized)``.

Raises :class:`MalformedBatch` for rule 1; envelopes over the limit come
back in ``oversized`` with empty bodies (rule 2).
"""
