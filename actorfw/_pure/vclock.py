"""Vector clocks, in plain Python: the reference twin of ``cext/vclock.pyx``.

A vector clock maps node ids (``str``) to event counters over any set of
nodes. It is a total function: a node it has never seen has counter 0, and a
clock stores only the nodes whose counter is above 0, so two clocks that
agree on every node are equal whatever their history.

Theory of operation
-------------------

1. ``a`` happened before ``b`` (``a < b``) iff every counter of ``a`` is at
   most the one of ``b`` and at least one is lower. Two clocks where each has
   a counter above the other's are concurrent. :meth:`VectorClock.compare`
   decides which of EQUAL, BEFORE, AFTER, CONCURRENT holds in one pass.
2. Merge is the pointwise maximum: the least clock that is at or after both.
   It is commutative, associative and idempotent.
3. Causal delivery (Birman, Schiper and Stephenson): a message stamped ``m``
   by ``sender`` is deliverable at a process whose clock is ``v`` iff
   ``m[sender] == v[sender] + 1`` (it is the next event of that sender) and
   ``m[k] <= v[k]`` for every other node ``k`` (everything it depends on has
   been delivered).
4. The wire encoding is canonical: equal clocks encode to equal bytes, in
   every process. Layout (version 1)::

       u8      version, 1
       varint  n, the number of entries
       n times, in increasing order of the node id's UTF-8 bytes:
         u8      length of the node id in UTF-8 bytes (1..255)
         bytes   the node id, UTF-8
         varint  the counter (1 .. 2**64-1)

   where ``varint`` is unsigned LEB128 in its shortest form. The decoder
   rejects anything else (a different version, truncation, trailing bytes,
   a longer-than-needed or over-64-bit varint, a zero counter, an empty or
   invalid UTF-8 node id, node ids out of order or repeated) with a
   ``ValueError`` that says what and where.

The compiled twin keeps the same contract with a different representation
(a sorted array of interned node indices and counters); see
``docs/kernels.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Union

from actorfw._order import Order

__all__ = [
    "ENCODING_VERSION",
    "MAX_COUNTER",
    "MAX_NODE_ID_BYTES",
    "Order",
    "VectorClock",
]

MAX_COUNTER = 2**64 - 1
"""The largest counter a clock can hold; incrementing past it raises ``OverflowError``."""

MAX_NODE_ID_BYTES = 255
"""The longest node id, in UTF-8 bytes."""

ENCODING_VERSION = 1
"""The version byte that starts every encoded clock."""

_EQUAL, _BEFORE, _AFTER, _CONCURRENT = Order.EQUAL, Order.BEFORE, Order.AFTER, Order.CONCURRENT
_ORDERS = (_EQUAL, _BEFORE, _AFTER, _CONCURRENT)

Entries = Union["VectorClock", Mapping[str, int], Iterable[tuple[str, int]], None]


def _check_node(node: object) -> str:
    if not isinstance(node, str):
        raise TypeError(f"a node id must be a str, not {type(node).__name__}")
    try:
        size = len(node.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"node id {node!r} cannot be encoded as UTF-8") from None
    if size == 0:
        raise ValueError("a node id must not be empty")
    if size > MAX_NODE_ID_BYTES:
        raise ValueError(
            f"node id {node[:20]!r}... is {size} bytes in UTF-8; the limit is {MAX_NODE_ID_BYTES}"
        )
    return node


def _check_counter(node: str, count: object) -> int:
    if not isinstance(count, int):
        raise TypeError(f"the counter for node {node!r} must be an int, not {type(count).__name__}")
    if count < 0 or count > MAX_COUNTER:
        raise ValueError(f"the counter for node {node!r} is {count}; it must be in 0..2**64-1")
    return int(count)


def _check_clock(other: object, what: str = "other") -> VectorClock:
    if not isinstance(other, VectorClock):
        raise TypeError(f"{what} must be a VectorClock, not {type(other).__name__}")
    return other


class VectorClock:
    """A vector clock over any set of nodes; see the module documentation.

    Args:
        entries: another clock, a mapping of node id to counter, or an
            iterable of ``(node, counter)`` pairs. Counters of 0 are dropped.

    Raises:
        TypeError: a node id is not a ``str`` or a counter not an ``int``.
        ValueError: a node id is empty or over 255 UTF-8 bytes, or a counter
            is outside ``0 .. 2**64-1``.

    Example::

        >>> a = VectorClock({"n1": 2})
        >>> b = a.copy(); b.increment("n2")
        1
        >>> a < b, a.compare(b)
        (True, <Order.BEFORE: 1>)

    Clocks hash by content, like tuples, so a clock can key a dict or sit in
    a set; do not change a clock while it is used that way (copy it first).
    """

    __slots__ = ("_c",)

    def __init__(self, entries: Entries = None) -> None:
        self._c: dict[str, int] = {}
        if entries is None:
            return
        if isinstance(entries, VectorClock):
            self._c = dict(entries._c)
            return
        pairs = entries.items() if isinstance(entries, Mapping) else entries
        for pair in pairs:
            node, count = pair
            _check_node(node)
            count = _check_counter(node, count)
            if count:
                self._c[node] = count
            else:
                self._c.pop(node, None)

    # -- reading -------------------------------------------------------------

    def get(self, node: str) -> int:
        """The counter of ``node``: 0 for a node this clock has not seen."""
        return self._c.get(_check_node(node), 0)

    def __getitem__(self, node: str) -> int:
        return self.get(node)

    def __contains__(self, node: object) -> bool:
        return isinstance(node, str) and node in self._c

    def __len__(self) -> int:
        return len(self._c)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._c))

    def items(self) -> list[tuple[str, int]]:
        """The ``(node, counter)`` pairs, sorted by node id."""
        return sorted(self._c.items())

    def to_dict(self) -> dict[str, int]:
        """A new dict of node id to counter, in node id order."""
        return dict(self.items())

    def copy(self) -> VectorClock:
        """An independent copy of this clock."""
        new = VectorClock.__new__(VectorClock)
        new._c = dict(self._c)
        return new

    __copy__ = copy

    def __deepcopy__(self, memo: Any) -> VectorClock:
        return self.copy()

    def __reduce__(self) -> tuple[Any, ...]:
        return (VectorClock, (self.to_dict(),))

    def __repr__(self) -> str:
        return f"VectorClock({self.to_dict()!r})"

    # -- changing ------------------------------------------------------------

    def increment(self, node: str, by: int = 1) -> int:
        """Count ``by`` (default 1) new events at ``node``; return its new counter.

        Raises:
            TypeError: ``by`` is not an ``int`` (a float is refused, not rounded).
            ValueError: ``by`` is below 1.
            OverflowError: the counter would pass ``2**64-1`` (so does any
                ``by`` above it).
        """
        _check_node(node)
        if not isinstance(by, int):
            raise TypeError(f"by must be an int, not {type(by).__name__}")
        if by < 1:
            raise ValueError(f"by must be at least 1, not {by}")
        count = self._c.get(node, 0) + by
        if count > MAX_COUNTER:
            raise OverflowError(f"the counter for node {node!r} would exceed 2**64-1")
        self._c[node] = count
        return count

    def merge(self, other: VectorClock) -> VectorClock:
        """A new clock, the pointwise maximum of this one and ``other``."""
        new = self.copy()
        new.merge_in(other)
        return new

    def merge_in(self, other: VectorClock) -> None:
        """Merge ``other`` into this clock, in place (pointwise maximum)."""
        mine = self._c
        for node, count in _check_clock(other)._c.items():
            if count > mine.get(node, 0):
                mine[node] = count

    def __or__(self, other: object) -> VectorClock:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self.merge(other)

    def __ior__(self, other: object) -> VectorClock:
        if not isinstance(other, VectorClock):
            return NotImplemented
        self.merge_in(other)
        return self

    def prune(self, node: str) -> int:
        """Forget ``node`` (it left for good); return the counter it had (0 if none)."""
        return self._c.pop(_check_node(node), 0)

    # -- comparing -----------------------------------------------------------

    def compare(self, other: VectorClock) -> Order:
        """How this clock relates to ``other``: EQUAL, BEFORE, AFTER or CONCURRENT."""
        theirs = _check_clock(other)._c
        mine = self._c
        lower = higher = False
        for node, count in mine.items():
            their = theirs.get(node, 0)
            if count > their:
                higher = True
            elif count < their:
                lower = True
        if not lower:
            for node in theirs:
                if node not in mine:
                    lower = True
                    break
        return _ORDERS[lower | (higher << 1)]

    def happened_before(self, other: VectorClock) -> bool:
        """True iff this clock happened before ``other`` (``self < other``)."""
        return self.compare(other) is _BEFORE

    def concurrent_with(self, other: VectorClock) -> bool:
        """True iff neither clock happened before the other and they differ."""
        return self.compare(other) is _CONCURRENT

    def deliverable(self, message: VectorClock, sender: str) -> bool:
        """May a message stamped ``message`` by ``sender`` be delivered here?

        This clock is the receiver's: ``message[sender]`` must be exactly one
        above ours, and every other counter of ``message`` at most ours (rule
        3 of the module documentation).
        """
        _check_node(sender)
        mine = self._c
        for node, count in _check_clock(message, "message")._c.items():
            if node == sender:
                if count != mine.get(node, 0) + 1:
                    return False
            elif count > mine.get(node, 0):
                return False
        return sender in message._c

    def compare_many(self, others: Iterable[VectorClock]) -> bytes:
        """Compare this clock with each of ``others`` (any iterable), in one call.

        Returns:
            ``bytes`` with one :class:`Order` value per clock, in order:
            ``Order(result[i]) == self.compare(others[i])``.
        """
        compare = self.compare
        return bytes([compare(other) for other in others])

    def deliverable_many(self, messages: Iterable[VectorClock], senders: Iterable[str]) -> bytes:
        """:meth:`deliverable` for each ``(messages[i], senders[i])``, in one call.

        Both arguments may be any iterables (lists, tuples, generators).

        Returns:
            ``bytes`` with 1 where the message is deliverable, else 0.

        Raises:
            ValueError: the two differ in length.
        """
        messages = list(messages)
        senders = list(senders)
        if len(messages) != len(senders):
            raise ValueError(
                f"{len(messages)} message clocks but {len(senders)} senders; "
                "pass one sender per message"
            )
        deliverable = self.deliverable
        return bytes([deliverable(m, s) for m, s in zip(messages, senders, strict=True)])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self._c == other._c

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self._c != other._c

    def __hash__(self) -> int:
        return hash(frozenset(self._c.items()))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self.compare(other) is _BEFORE

    def __le__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self.compare(other) in (_BEFORE, _EQUAL)

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self.compare(other) is _AFTER

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self.compare(other) in (_AFTER, _EQUAL)

    # -- the wire ------------------------------------------------------------

    def encode(self) -> bytes:
        """The canonical binary encoding (module documentation, rule 4)."""
        out = bytearray((ENCODING_VERSION,))
        _put_varint(out, len(self._c))
        for name, count in sorted((node.encode("utf-8"), count) for node, count in self._c.items()):
            out.append(len(name))
            out += name
            _put_varint(out, count)
        return bytes(out)

    @staticmethod
    def decode(data: object) -> VectorClock:
        """Rebuild a clock from :meth:`encode`'s bytes.

        Args:
            data: any C-contiguous bytes-like object: ``bytes``,
                ``bytearray``, ``memoryview``, ``array.array``, a numpy
                array, ... (its raw bytes are read).

        Raises:
            TypeError: ``data`` is not a contiguous bytes-like object.
            ValueError: ``data`` is not a valid encoding; the message says why.
        """
        buf = _raw_bytes(data)
        end = len(buf)
        if end == 0:
            raise ValueError("malformed vector clock: empty input")
        if buf[0] != ENCODING_VERSION:
            raise ValueError(
                f"malformed vector clock: version byte is {buf[0]}, expected {ENCODING_VERSION}"
            )
        count, pos = _get_varint(buf, 1, "entry count")
        # Every entry takes at least 3 bytes; refuse counts the input cannot hold.
        if count > (end - pos) // 3:
            raise ValueError(
                f"malformed vector clock: {count} entries cannot fit in {end - pos} bytes"
            )
        entries: dict[str, int] = {}
        previous = b""
        for _ in range(count):
            if pos >= end:
                raise ValueError(f"malformed vector clock: truncated node id length at byte {pos}")
            size = buf[pos]
            pos += 1
            if size == 0:
                raise ValueError(f"malformed vector clock: empty node id at byte {pos - 1}")
            if pos + size > end:
                raise ValueError(f"malformed vector clock: truncated node id at byte {pos}")
            name = buf[pos : pos + size]
            if name <= previous:
                raise ValueError(
                    f"malformed vector clock: node id at byte {pos} is "
                    + ("repeated" if name == previous else "out of order")
                )
            try:
                node = name.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(
                    f"malformed vector clock: node id at byte {pos} is not valid UTF-8"
                ) from None
            counter_at = pos + size
            value, pos = _get_varint(buf, counter_at, "counter")
            if value == 0:
                raise ValueError(f"malformed vector clock: zero counter at byte {counter_at}")
            entries[node] = value
            previous = name
        if pos != end:
            raise ValueError(f"malformed vector clock: {end - pos} trailing bytes at byte {pos}")
        clock = VectorClock.__new__(VectorClock)
        clock._c = entries
        return clock


def _raw_bytes(data: object) -> bytes:
    """The bytes of a C-contiguous buffer (what ``PyBUF_SIMPLE`` gives the compiled twin)."""
    if isinstance(data, str):
        raise TypeError("decode takes bytes, not str")
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"decode takes bytes, not {type(data).__name__}") from None
    with view:
        if not view.c_contiguous:
            raise TypeError(
                f"decode takes a contiguous buffer; this {type(data).__name__} is not one"
            )
        return view.tobytes()


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _get_varint(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    """Read an unsigned LEB128 varint of at most 64 bits, in its shortest form."""
    start = pos
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError(f"malformed vector clock: truncated {what} at byte {start}")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift >= 70:
            raise ValueError(f"malformed vector clock: {what} at byte {start} exceeds 64 bits")
    if value > MAX_COUNTER:
        raise ValueError(f"malformed vector clock: {what} at byte {start} exceeds 64 bits")
    if byte == 0 and pos - start > 1:
        raise ValueError(f"malformed vector clock: {what} at byte {start} is not in shortest form")
    return value, pos
