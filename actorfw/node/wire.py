"""The wire format between node processes: batches of envelopes in one ZeroMQ multipart message.

Theory of operation
-------------------

A node sends to a peer in *batches*: every envelope queued for that peer
during one turn of the event loop travels in one multipart message (up to
a cap), so a burst of a thousand tells costs one ``send`` and a few
syscalls. A batch is::

    frame 0        the batch frame: a header and every envelope's body, inline
    frames 1..     the raw buffers (bytes past the inline bound, numpy arrays,
                   vector clocks) of the envelopes, in order, each its own
                   frame, sent zero-copy

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
   *oversized*: its size is checked before anything of it is copied, its
   body is neither copied nor decoded; it is counted, and an ask is
   answered with an error.
3. Everything else is handed to the node engine one envelope at a time:
   each body is copied out of the batch frame and decoded on its own, so a
   malformed body spoils only its envelope (an ask is answered with an
   error) and the envelopes beside it are delivered.
4. Both decoders (compiled and pure) refuse the same batches and return the
   same envelopes: every length and count is checked as an unsigned 64-bit
   number against what is left of the frame before it is used, and a
   varint over 64 bits is malformed.
5. A node's sockets refuse, before reading it, any frame over
   :func:`frame_limit` of its size limit: the limit plus the framing a
   legitimate batch adds (:data:`FRAME_OVERHEAD`). The peer that sent it is
   disconnected by ZeroMQ, and reconnects.
"""

from __future__ import annotations

from actorfw.kernels import wire as _wire

__all__ = [
    "FRAME_OVERHEAD",
    "WIRE_VERSION",
    "MalformedBatch",
    "batch_end",
    "decode_batch",
    "encode_batch",
    "frame_limit",
]

WIRE_VERSION = _wire.WIRE_VERSION
"""The version byte that starts every batch frame."""

MalformedBatch = _wire.MalformedBatch
"""A batch that breaks the wire format (rule 1); a ``ValueError``."""

encode_batch = _wire.encode_batch
"""``encode_batch(envelopes) -> frames``: the batch frame, then every buffer."""

batch_end = _wire.batch_end
"""``batch_end(envelopes, start, max_count, max_bytes) -> end``: where a batch ends.

It holds at most ``max_count`` envelopes and ends after the first that
brings its bodies and buffers to ``max_bytes`` (at least one envelope while
any is left).
"""

decode_batch = _wire.decode_batch
"""``decode_batch(source, frames, max_message_size) -> (envelopes, oversized)``.

Raises :class:`MalformedBatch` for rule 1; envelopes over the limit come
back in ``oversized`` with empty bodies (rule 2).
"""

FRAME_OVERHEAD = 2 << 20
"""Bytes a legitimate frame may carry beyond one envelope's size limit: 2 MiB.

A batch frame holds one envelope that may be as large as the limit, plus
what a sender puts beside it: the bodies of the envelopes before it (a
sender closes a batch once its bodies and buffers pass 1 MiB, so they add
up to less than 1 MiB) and at most 64 envelope headers of at most 8,228
bytes each (kind, flags, three varints of up to 10 bytes, two names of up
to 4,096 bytes with their lengths): 526,592 bytes. That is under 1.6 MiB;
2 MiB leaves room. Buffer frames hold one buffer each, within the limit.
"""


def frame_limit(max_message_size: int) -> int:
    """The largest frame a node's sockets accept (``ZMQ_MAXMSGSIZE``) for a size limit.

    ``max_message_size`` plus :data:`FRAME_OVERHEAD`: no legitimate batch
    is refused, and a frame cannot cost more than that before it is read.
    An envelope over the limit but within this frame is refused on its own
    (an ask is answered with an error); a larger frame is dropped by the
    socket with its connection.
    """
    if max_message_size < 0:
        raise ValueError(f"a size limit cannot be negative, not {max_message_size}")
    return min(max_message_size + FRAME_OVERHEAD, 2**63 - 1)
