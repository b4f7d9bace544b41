"""The wire envelope and the message-value codec, in plain Python: the twin of ``cext/wire.pyx``.

Two hot paths live here, one per message on every send and receive:

- the *value codec*: the walk that checks a message value and turns it into
  JSON (orjson) plus raw buffers, and the walk back; its rules are those of
  :mod:`actorfw.values.codec`, which owns the registry of message types and
  hands it to this module with :func:`bind`;
- the *batch* format between node processes, documented in
  :mod:`actorfw.node.wire`: many envelopes per ZeroMQ message, bodies
  inline, buffers as frames of their own.

Both walks run without building paths: the common case is a value that is
fine. When the fast walk meets something wrong, a second, careful walk
(:func:`explain_refusal`, or the decoder's own checks) says exactly what
and where; the compiled twin calls this module for those explanations, so
both report the same errors by construction.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson

__all__ = [
    "INLINE_BUDGET",
    "INLINE_BYTES",
    "MAX_DEPTH",
    "WIRE_VERSION",
    "Envelope",
    "MalformedBatch",
    "batch_end",
    "bind",
    "check_value",
    "decode_batch",
    "decode_value",
    "encode_batch",
    "encode_value",
    "explain_refusal",
]

WIRE_VERSION = 1
"""The version byte that starts every batch frame."""

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_PLAIN = 1
_HAS_SENDER = 2
_KNOWN_FLAGS = _PLAIN | _HAS_SENDER
_MAX_NAME = 4096
MAX_DEPTH = 100
"""How deep containers (lists, dicts, tuples, messages) may nest in a message value."""
INLINE_BYTES = 1024
"""``bytes`` of at most this many bytes travel inside the body (``$x``), not as a frame.

A frame of its own costs a send and a receive call and an object on each
side. Inside the body, the bytes are a string of the same code points
(latin-1): one string per value, checked and turned back in one C call,
at most six JSON bytes per byte (control characters are escaped)."""
INLINE_BUDGET = 64 << 10
"""Bytes one message inlines at most, all its values together; the rest go as frames.

So inlining grows a message by at most five times this, 320 KiB, inside
the 2 MiB a batch frame may hold beside the largest envelope
(``docs/wire.md``): a message that inlining takes past
``max_message_size`` (which counts the encoded size, as for every body) is
refused on its own, with an error, never dropped with its batch."""
_MAX_VARINT = 2**64 - 1
_MAX_DIMS = 64  # numpy's own limit on array dimensions
_DEPTH = f"is nested too deeply to send (more than {MAX_DEPTH} levels)"
_TOO_DEEP = f"nested too deeply (more than {MAX_DEPTH} levels)"
_DIGITS = 19
"""A run of this many digits may be an integer outside the 64-bit range (see ``_check_numbers``)."""
_LONG_RUN = re.compile(rb"[0-9]{%d}" % _DIGITS)
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?', re.DOTALL)


class MalformedBatch(ValueError):
    """A batch that breaks the wire format (see :mod:`actorfw.node.wire`, rule 1)."""


class Envelope:
    """One message between nodes: who, to whom, what kind, and the encoded body.

    Attributes:
        kind: 0 tell, 1 ask, 2 reply, 3 failure.
        source: the sending node.
        target: the actor's name on the receiving node (``$node`` for the
            node protocol; empty for replies).
        sender: the sending actor's name, or None.
        corr: the ask's correlation id on the asking node (0 for tells).
        body, buffers, plain: the encoded message (see :func:`encode_value`).
    """

    __slots__ = ("body", "buffers", "corr", "kind", "plain", "sender", "source", "target")

    def __init__(
        self,
        kind: int,
        source: str,
        target: str,
        sender: str | None,
        corr: int,
        body: Any,
        buffers: list[Any],
        plain: bool,
    ) -> None:
        self.kind = kind
        self.source = source
        self.target = target
        self.sender = sender
        self.corr = corr
        self.body = body
        self.buffers = buffers
        self.plain = plain

    def __repr__(self) -> str:
        return (
            f"Envelope(kind={self.kind}, source={self.source!r}, target={self.target!r}, "
            f"sender={self.sender!r}, corr={self.corr}, {len(self.body)} body bytes, "
            f"{len(self.buffers)} buffers)"
        )


# -- the registry, bound by actorfw.values.codec ----------------------------------------------

_BY_NAME: dict[str, type] = {}
_NAME_OF: dict[type, str] = {}
_FIELDS: dict[type, tuple[str, ...]] = {}
_DIRECT: set[type] = set()
_SLOTTED: set[type] = set()
_CLOCK: type | None = None
_object_new = object.__new__
_set_field = object.__setattr__
_REF: type = type(None)
_REPLY: type = type(None)
_REFUSED: type[Exception] = TypeError
_MALFORMED: type[Exception] = ValueError


def bind(
    by_name: dict[str, type],
    name_of: dict[type, str],
    fields: dict[type, tuple[str, ...]],
    ref_type: type,
    reply_type: type,
    refused: type[Exception],
    malformed: type[Exception],
    direct: set[type] | None = None,
    slotted: set[type] | None = None,
    clock: type | None = None,
) -> None:
    """Give the codec the registry of message types (live dicts) and the types and errors it uses.

    ``ref_type`` and ``reply_type`` are built from two-item lists
    (``(node, name)``, ``(node, corr)``) and read back through their
    ``node``/``name``/``corr`` attributes. ``direct`` (a live set) holds the
    registered classes whose ``__init__`` only stores its arguments as
    fields: the decoder builds those by filling a fresh instance's
    ``__dict__``, without the call. ``slotted`` (a live set) holds such
    classes whose fields are slots: the decoder sets each one past the
    class's frozen ``__setattr__``, as the generated ``__init__`` does.
    ``clock`` is the vector-clock class that travels as a ``$v`` tag (its
    canonical encoding as a buffer, rebuilt by its ``decode``).
    """
    global _BY_NAME, _NAME_OF, _FIELDS, _DIRECT, _SLOTTED, _REF, _REPLY, _REFUSED, _MALFORMED
    global _CLOCK
    _CLOCK = clock
    _BY_NAME, _NAME_OF, _FIELDS = by_name, name_of, fields
    _DIRECT = set() if direct is None else direct
    _SLOTTED = set() if slotted is None else slotted
    _REF, _REPLY, _REFUSED, _MALFORMED = ref_type, reply_type, refused, malformed


# -- encoding values ------------------------------------------------------------------------


class _Refuse(Exception):
    """Internal: the fast walk met something that is not a message value."""


class _Encoder:
    __slots__ = ("buffers", "inline_left", "tagged")

    def __init__(self) -> None:
        self.buffers: list[Any] = []
        self.tagged = False
        self.inline_left = INLINE_BUDGET

    def walk(self, value: Any, depth: int) -> Any:
        kind = type(value)
        if kind is str or kind is bool or value is None:
            return value
        if kind is int:
            if _INT_MIN <= value <= _INT_MAX:
                return value
            raise _Refuse
        if kind is float:
            if math.isfinite(value):
                return value
            self.tagged = True
            return {"$f": "nan" if value != value else ("inf" if value > 0 else "-inf")}
        if kind is list:
            if depth >= MAX_DEPTH:
                raise _Refuse
            return [self.walk(v, depth + 1) for v in value]
        if kind is dict:
            if depth >= MAX_DEPTH:
                raise _Refuse
            depth += 1
            out = {}
            for k, v in value.items():
                if type(k) is not str:
                    raise _Refuse
                out[k] = self.walk(v, depth)
            if len(out) == 1 and next(iter(out)).startswith("$"):
                self.tagged = True
                return {"$d": out}
            return out
        if kind is tuple:
            if depth >= MAX_DEPTH:
                raise _Refuse
            self.tagged = True
            return {"$t": [self.walk(v, depth + 1) for v in value]}
        if kind is _REF:
            self.tagged = True
            return {"$r": [value.node, value.name]}
        name = _NAME_OF.get(kind)
        if name is not None:
            if depth >= MAX_DEPTH:
                raise _Refuse
            self.tagged = True
            fields = {f: self.walk(getattr(value, f), depth + 1) for f in _FIELDS[kind]}
            return {"$m": [name, fields]}
        if kind is bytes:
            self.tagged = True
            size = len(value)
            if size <= INLINE_BYTES and size <= self.inline_left:
                self.inline_left -= size
                return {"$x": value.decode("latin-1")}
            self.buffers.append(value)
            return {"$b": len(self.buffers) - 1}
        if kind is np.ndarray:
            if value.dtype.hasobject:
                raise _Refuse
            self.tagged = True
            self.buffers.append(np.ascontiguousarray(value))
            return {"$a": [len(self.buffers) - 1, value.dtype.str, list(value.shape)]}
        if kind is _REPLY:
            self.tagged = True
            return {"$p": [value.node, value.corr]}
        if kind is _CLOCK:
            self.tagged = True
            self.buffers.append(value.encode())
            return {"$v": len(self.buffers) - 1}
        raise _Refuse


def _describe(value: Any) -> str:
    kind = type(value)
    name = kind.__name__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{kind.__qualname__}"
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


def _why_not(value: Any) -> str | None:
    """Why ``value`` itself (not its content) is no message value; None if it is one."""
    kind = type(value)
    if kind in (str, bool, float, list, dict, tuple, bytes) or value is None:
        return None
    if kind is int:
        if _INT_MIN <= value <= _INT_MAX:
            return None
        return f"is {value}, outside the 64-bit range a message can carry"
    if kind is _REF or kind is _REPLY or kind is _CLOCK or kind in _NAME_OF:
        return None
    if type(value).__name__ == "VectorClock":
        return (
            f"is {_describe(value)}, a vector clock of the other kernel: send the active "
            "one (actorfw.VectorClock)"
        )
    if kind is np.ndarray:
        if value.dtype.hasobject:
            return "is a numpy array of Python objects; only plain dtypes can be sent"
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            f"is {_describe(value)}, a dataclass that is not registered: decorate it with "
            "@actorfw.message (and make it frozen)"
        )
    if isinstance(value, np.generic):
        return f"is {_describe(value)}, a numpy scalar: convert it with int(), float() or bool()"
    if isinstance(value, (int, float, str)):
        return (
            f"is {_describe(value)}, a subclass of {type(value).__mro__[-2].__name__}: "
            "send the plain value (e.g. its .value for an enum member)"
        )
    if isinstance(value, (set, frozenset)):
        return f"is {_describe(value)}: send a sorted list or tuple instead"
    if isinstance(value, (bytearray, memoryview)):
        return f"is {_describe(value)}: send bytes(...) instead"
    return (
        f"is {_describe(value)}, which is not a message value (JSON-shaped data, bytes, numpy "
        "arrays, actor refs, or a registered frozen dataclass)"
    )


def _find(value: Any, path: str, depth: int = 0) -> str | None:
    why = _why_not(value)
    if why is not None:
        return f"{path} {why}"
    kind = type(value)
    if kind in (list, tuple, dict) or kind in _NAME_OF:
        if depth >= MAX_DEPTH:
            return f"{path} {_DEPTH}"
        depth += 1
    if kind is list or kind is tuple:
        for i, item in enumerate(value):
            found = _find(item, f"{path}[{i}]", depth)
            if found:
                return found
    elif kind is dict:
        for k, item in value.items():
            if type(k) is not str:
                return f"{path} has a key {k!r} of type {type(k).__name__}; dict keys must be str"
            found = _find(item, f"{path}[{k!r}]", depth)
            if found:
                return found
    elif kind in _NAME_OF:
        for f in _FIELDS[kind]:
            found = _find(getattr(value, f), f"{path}.{f}", depth)
            if found:
                return found
    return None


def explain_refusal(value: Any) -> Exception:
    """The refusal error for a value the fast walk refused: what, and where (its path)."""
    return _REFUSED(_find(value, "message") or "message cannot be encoded")


def check_value(value: Any) -> None:
    """Raise the bound refusal error unless ``value`` is a message value."""
    try:
        _Encoder().walk(value, 0)
    except _Refuse:
        raise explain_refusal(value) from None


def encode_value(value: Any) -> tuple[bytes, list[Any], bool]:
    """Encode a message value: ``(body, buffers, plain)`` (see :mod:`actorfw.values.codec`)."""
    enc = _Encoder()
    try:
        tree = enc.walk(value, 0)
        body = orjson.dumps(tree)
    except _Refuse:
        raise explain_refusal(value) from None
    except orjson.JSONEncodeError as exc:
        raise _REFUSED(f"message cannot be encoded: {exc}") from None
    return body, enc.buffers, not enc.tagged


# -- decoding values ------------------------------------------------------------------------
#
# Every failure of a decode is the bound MALFORMED error, whatever the input: a
# builder's own checks word the common ones; anything else that a hostile body
# makes numpy, a registered class or the walk raise is caught at the top
# (decode_value) and reported as malformed too, so a caller only ever has to
# catch one error. Depth counts as in the encoder: each list, dict, tuple or
# message is one level, and a body nesting containers more than MAX_DEPTH deep
# is refused, whether it is flagged plain or not.


def _bad(why: str) -> Exception:
    return _MALFORMED(f"malformed message body: {why}")


def _build_message(args: Any, buffers: Sequence[Any], depth: int) -> Any:
    if not (
        type(args) is list and len(args) == 2 and type(args[0]) is str and type(args[1]) is dict
    ):
        raise _bad("a $m tag must hold [name, {fields}]")
    if depth >= MAX_DEPTH:
        raise _bad(_TOO_DEEP)
    cls = _BY_NAME.get(args[0])
    if cls is None:
        raise _bad(
            f"unknown message type {args[0]!r} (is it registered with @message on this node?)"
        )
    fields = {k: _walk(v, buffers, depth + 1) for k, v in args[1].items()}
    expected = _FIELDS[cls]
    if len(fields) != len(expected) or any(f not in fields for f in expected):
        raise _bad(f"message {args[0]!r} has fields {sorted(fields)}, expected {sorted(expected)}")
    if cls in _DIRECT:
        built: Any = _object_new(cls)
        built.__dict__.update(fields)
        return built
    if cls in _SLOTTED:
        built = _object_new(cls)
        for key, value in fields.items():
            _set_field(built, key, value)
        return built
    try:
        return cls(**fields)
    except Exception as exc:
        raise _bad(f"message {args[0]!r} refused its fields: {exc}") from None


def _buffer(index: Any, buffers: Sequence[Any]) -> Any:
    if type(index) is not int or not 0 <= index < len(buffers):
        raise _bad(f"buffer index {index!r} out of range ({len(buffers)} buffers)")
    return buffers[index]


def _build_array(args: Any, buffers: Sequence[Any], depth: int) -> Any:
    if not (
        type(args) is list and len(args) == 3 and type(args[1]) is str and type(args[2]) is list
    ):
        raise _bad("an $a tag must hold [buffer, dtype, shape]")
    raw = _buffer(args[0], buffers)
    text = args[1]
    try:
        dtype = np.dtype(text)
    except Exception:
        raise _bad(f"unknown array dtype {text[:40]!r}") from None
    # Only what the encoder writes: a dtype's own ``str``, of a plain item
    # type (no sub-array, no Python objects) with a size.
    if dtype.str != text or dtype.shape != () or dtype.itemsize == 0:
        raise _bad(f"array dtype {text[:40]!r} is not one an encoder writes")
    if dtype.hasobject:
        raise _bad("arrays of Python objects are not accepted")
    shape = args[2]
    if len(shape) > _MAX_DIMS:
        raise _bad(f"an array of {len(shape)} dimensions (at most {_MAX_DIMS})")
    if not all(type(n) is int and n >= 0 for n in shape):
        raise _bad(f"bad array shape {shape!r}")
    size = memoryview(raw).nbytes
    if math.prod(shape) * dtype.itemsize != size:
        raise _bad(
            f"array of shape {shape} and dtype {dtype} does not match its {size}-byte buffer"
        )
    try:
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    except Exception as exc:
        raise _bad(f"array of shape {shape} and dtype {dtype} cannot be built: {exc}") from None


def _build_bytes(args: Any, buffers: Sequence[Any], depth: int) -> Any:
    raw = _buffer(args, buffers)
    return raw if type(raw) is bytes else bytes(raw)


def _build_inline_bytes(args: Any, buffers: Sequence[Any], depth: int) -> Any:
    if type(args) is not str:
        raise _bad("an $x tag must hold a string of the bytes' code points")
    try:
        return args.encode("latin-1")
    except UnicodeEncodeError:
        raise _bad("an $x tag holds a character past U+00FF, which is no byte") from None


def _build_clock(args: Any, buffers: Sequence[Any], depth: int) -> Any:
    raw = _buffer(args, buffers)
    if _CLOCK is None:
        raise _bad("a $v tag, but no vector-clock type is bound")
    try:
        return _CLOCK.decode(raw)  # type: ignore[attr-defined]
    except (ValueError, TypeError, OverflowError) as exc:
        raise _bad(f"a malformed vector clock: {exc}") from None


def _build_float(args: Any, buffers: Sequence[Any], depth: int) -> Any:
    if args not in ("nan", "inf", "-inf"):
        raise _bad(f"bad $f value {args!r}")
    return float(args)


def _build_ref(args: Any, buffers: Sequence[Any], depth: int) -> Any:
    if not (type(args) is list and len(args) == 2 and all(type(a) is str and a for a in args)):
        raise _bad("an $r tag must hold [node, name]")
    return _REF(args[0], args[1])


def _build_reply(args: Any, buffers: Sequence[Any], depth: int) -> Any:
    if not (
        type(args) is list and len(args) == 2 and type(args[0]) is str and type(args[1]) is int
    ):
        raise _bad("a $p tag must hold [node, corr]")
    return _REPLY(args[0], args[1])


def _build_tuple(args: Any, buffers: Sequence[Any], depth: int) -> Any:
    if type(args) is not list:
        raise _bad("a $t tag must hold a list")
    if depth >= MAX_DEPTH:
        raise _bad(_TOO_DEEP)
    return tuple([_walk(v, buffers, depth + 1) for v in args])


def _build_dict(args: Any, buffers: Sequence[Any], depth: int) -> Any:
    if type(args) is not dict:
        raise _bad("a $d tag must hold an object")
    if depth >= MAX_DEPTH:
        raise _bad(_TOO_DEEP)
    return {k: _walk(v, buffers, depth + 1) for k, v in args.items()}


_TAGS: dict[str, Callable[[Any, Sequence[Any], int], Any]] = {
    "$m": _build_message,
    "$t": _build_tuple,
    "$r": _build_ref,
    "$b": _build_bytes,
    "$x": _build_inline_bytes,
    "$a": _build_array,
    "$f": _build_float,
    "$p": _build_reply,
    "$d": _build_dict,
    "$v": _build_clock,
}


def _walk(node: Any, buffers: Sequence[Any], depth: int) -> Any:
    """Rebuild the value of a parsed body; ``depth`` counts the containers around ``node``."""
    kind = type(node)
    if kind is list:
        if depth >= MAX_DEPTH:
            raise _bad(_TOO_DEEP)
        return [_walk(v, buffers, depth + 1) for v in node]
    if kind is not dict:
        return node
    if len(node) == 1:
        key = next(iter(node))
        if key.startswith("$"):
            build = _TAGS.get(key)
            if build is None:
                raise _bad(f"unknown tag {key[:40]!r}")
            return build(node[key], buffers, depth)
    if depth >= MAX_DEPTH:
        raise _bad(_TOO_DEEP)
    return {k: _walk(v, buffers, depth + 1) for k, v in node.items()}


def _too_deep(tree: Any) -> bool:
    """Whether a parsed plain body nests lists and dicts more than MAX_DEPTH deep."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        kind = type(node)
        if kind is not list and kind is not dict:
            continue
        if depth >= MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in (node if kind is list else node.values()))
    return False


def _check_numbers(body: bytes) -> None:
    """Refuse a body with an integer outside ``-2**63 .. 2**64-1``.

    orjson reads such an integer as a float: without this check a peer could
    slip in a float where the sender's encoder only ever writes integers
    (codec rule 1). Only bodies with a run of 19 digits can hold one, so the
    careful scan of every number token runs only for those.
    """
    if _LONG_RUN.search(body) is None:
        return
    for token in _TOKEN.finditer(body):
        text = token.group()
        if text[0] == 0x22 or b"." in text or b"e" in text or b"E" in text:  # a string, a float
            continue
        if not _INT_MIN <= int(text) <= _INT_MAX:
            raise _bad(f"the integer {text[:40].decode()} is outside the 64-bit range")


def _body_bytes(body: Any) -> bytes:
    """A body as bytes: bytes-like objects and str are accepted, like orjson does."""
    if type(body) is bytes:
        return body
    if isinstance(body, str):
        try:
            return body.encode("utf-8")
        except UnicodeEncodeError:
            raise _bad("not valid JSON (a str that is not UTF-8)") from None
    try:
        return bytes(memoryview(body))
    except TypeError:
        raise _bad(f"not valid JSON (a body must be bytes, not {type(body).__name__})") from None


def decode_value(body: Any, buffers: Sequence[Any] = (), plain: bool = False) -> Any:
    """Rebuild a message value from :func:`encode_value`'s output (or raise the bound error).

    Whatever ``body`` and ``buffers`` hold, the only error is the bound
    malformed error: a body that is not JSON, a tag that does not fit, an
    integer outside the 64-bit range, containers nested more than
    ``MAX_DEPTH`` deep (plain bodies too), or anything a builder refuses.
    """
    data = _body_bytes(body)
    try:
        tree = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"not valid JSON ({exc})") from None
    _check_numbers(data)
    if plain:
        if type(tree) is list or type(tree) is dict:
            if (data.count(b"[") + data.count(b"{") > MAX_DEPTH) and _too_deep(tree):
                raise _bad(_TOO_DEEP)
        return tree
    try:
        return _walk(tree, buffers, 0)
    except _MALFORMED:
        raise
    except Exception as exc:  # whatever a hostile body made a builder raise
        raise _bad(f"cannot be rebuilt ({type(exc).__name__}: {str(exc)[:200]})") from None


# -- batches --------------------------------------------------------------------------------


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def batch_end(envelopes: Sequence[Envelope], start: int, max_count: int, max_bytes: int) -> int:
    """Where the batch of ``envelopes`` that begins at ``start`` ends (the index after it).

    It holds at most ``max_count`` envelopes, and ends after the first one
    that brings the bytes of its bodies and buffers to ``max_bytes`` or more;
    it holds at least one envelope while any is left.
    """
    for bound in (start, max_count, max_bytes):  # the compiled twin's C integers
        if not -(2**63) <= operator.index(bound) < 2**63:
            raise OverflowError(f"{bound} does not fit a signed 64-bit integer")
    if start < 0:
        raise ValueError(f"a batch cannot begin at {start}")
    if max_count < 1 or max_bytes < 1:
        raise ValueError(
            f"a batch holds at least one envelope, not {max_count} or {max_bytes} bytes"
        )
    end = start
    size = 0
    while end < len(envelopes) and end - start < max_count and size < max_bytes:
        envelope = envelopes[end]
        size += len(envelope.body)
        for buffer in envelope.buffers:
            size += memoryview(buffer).nbytes
        end += 1
    return end


def encode_batch(envelopes: Sequence[Envelope]) -> list[Any]:
    """The frames of one batch carrying ``envelopes``: the batch frame, then every buffer."""
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
    frames[0] = bytes(out)
    return frames


class _Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: Any) -> None:
        self.data = data  # bytes, or a memoryview of bytes: slicing copies nothing
        self.pos = 0
        self.end = len(data)

    def byte(self) -> int:
        if self.pos >= self.end:
            raise MalformedBatch(f"batch frame truncated at byte {self.pos}")
        value: int = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        start = self.pos
        value = shift = 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 63:
                raise MalformedBatch(f"varint at byte {start} is longer than 64 bits")
        if value > _MAX_VARINT:
            raise MalformedBatch(f"varint at byte {start} is longer than 64 bits")
        return value

    def length(self, what: str, limit: int) -> int:
        """Read a length and check that so many bytes follow (and at most ``limit``)."""
        size = self.varint()
        if size > limit or size > self.end - self.pos:
            raise MalformedBatch(f"{what} of {size} bytes at byte {self.pos} does not fit")
        return size

    def text(self, what: str) -> str:
        size = self.length(what, _MAX_NAME)
        raw = bytes(self.data[self.pos : self.pos + size])
        self.pos += size
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedBatch(f"{what} before byte {self.pos} is not UTF-8") from None


def decode_batch(
    source: str, frames: Sequence[Any], max_message_size: int
) -> tuple[list[Envelope], list[Envelope]]:
    """Split a received batch into envelopes; :class:`MalformedBatch` if it breaks the format.

    Args:
        source: the sending node (from the socket, not from the batch).
        frames: the batch frame (bytes-like), then the buffers (kept as they
            are: zero-copy).
        max_message_size: bytes an envelope's body and buffers may hold.

    Returns:
        ``(envelopes, oversized)``: envelopes for the engine, and envelopes
        over the limit (with empty bodies) to refuse. Each body within the
        limit is copied out of the batch frame; an oversized body is never
        copied (its size is checked first).
    """
    if not frames:
        raise MalformedBatch("empty message")
    first = frames[0]
    reader = _Reader(first if type(first) is bytes else memoryview(first).cast("B"))
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
    data = reader.data
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
        length = reader.length("body", reader.end)
        at = reader.pos
        reader.pos += length
        nbuf = reader.varint()
        if nbuf > nframes - index:
            raise MalformedBatch("the batch has fewer frames than its header announces")
        buffers = list(frames[index : index + nbuf]) if nbuf else []
        index += nbuf
        size = length
        for buffer in buffers:
            size += memoryview(buffer).nbytes
        plain = bool(flags & _PLAIN)
        if size > max_message_size:
            oversized.append(Envelope(kind, source, target, sender, corr, b"", [], plain))
        else:
            body = bytes(data[at : at + length])
            envelopes.append(Envelope(kind, source, target, sender, corr, body, buffers, plain))
    if reader.pos != reader.end:
        raise MalformedBatch(f"{reader.end - reader.pos} stray bytes after the last envelope")
    if index != nframes:
        raise MalformedBatch(f"{nframes - index} frames beyond what the batch announces")
    return envelopes, oversized
