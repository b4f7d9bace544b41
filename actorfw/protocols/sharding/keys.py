"""Keys to shards: a stable hash partition, the same on every host, process and Python.

:func:`shard_of` maps a key to one of ``shards`` shards. Python's ``hash()``
is salted per process for ``str`` and ``bytes`` and so cannot be used: two
clients must agree on a key's shard, and so must a key's shard across
restarts and upgrades. The function is part of the wire contract and does
not change: for a key ``k`` and ``n`` shards,

1. the key is turned into bytes with a one-byte type tag: ``b"s"`` and the
   UTF-8 encoding of a ``str``; ``b"b"`` and a ``bytes`` key as it is;
   ``b"i"`` and the decimal digits of an ``int`` (``bool`` is refused, as
   ``True`` would otherwise share ``1``'s shard);
2. the bytes are hashed with BLAKE2b, 8-byte digest, no key, no salt;
3. the digest, read as a big-endian unsigned integer, modulo ``n``.

BLAKE2b spreads keys evenly, so ``n`` need not be a power of two, and keys
with a common prefix land on unrelated shards. Range partitioning is not
offered: a shard is a hash bucket.
"""

from __future__ import annotations

import hashlib

__all__ = ["MAX_SHARDS", "shard_of"]

MAX_SHARDS = 65_536
"""The most shards a cluster may have."""


def _key_bytes(key: object) -> bytes:
    if type(key) is str:
        return b"s" + key.encode("utf-8", "surrogatepass")
    if type(key) is bytes:
        return b"b" + key
    if type(key) is int:
        return b"i" + str(key).encode("ascii")
    raise TypeError(f"a shard key is a str, bytes or int, not {type(key).__name__} ({key!r})")


def shard_of(key: str | bytes | int, shards: int) -> int:
    """The shard (``0 .. shards - 1``) that ``key`` belongs to (see the module's rules).

    Raises:
        TypeError: the key is not a ``str``, ``bytes`` or ``int``.
        ValueError: ``shards`` is not an int from 1 to :data:`MAX_SHARDS`.

    Example::

        >>> shard_of("user:42", 64)
        54
    """
    if type(shards) is not int or not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards must be an int from 1 to {MAX_SHARDS}, not {shards!r}")
    digest = hashlib.blake2b(_key_bytes(key), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards
