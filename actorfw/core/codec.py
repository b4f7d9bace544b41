"""Message values: the registry of message types, validation, and the body encoding.

Theory of operation
-------------------

A *message value* is one of:

- ``None``, ``bool``, ``int`` in ``-2**63 .. 2**64-1``, ``float`` (NaN and
  infinities included), ``str``;
- ``list``, ``tuple`` and ``dict`` with ``str`` keys, of message values;
- ``bytes`` and numpy arrays (any dtype but ``object``), carried as raw
  buffers beside the body, never inside it;
- :class:`~actorfw.ActorRef` and :class:`~actorfw.ReplyTo`;
- an instance of a frozen dataclass registered with :func:`message`, whose
  fields hold message values.

Exact types only: a subclass of ``int`` or ``str`` (an enum member, say) or a
numpy scalar is refused, because it would not come back as itself. Every
value round-trips: ``decode(*encode(v)) == v`` with the same types.

Rules:

1. ``check`` and ``encode`` refuse anything else with :class:`MessageRefused`
   naming the offending part by its path (``message.items[3]``).
2. The body is JSON (orjson). Values JSON cannot hold become one-key objects
   whose key starts with ``$`` (``{"$t": [...]}`` for a tuple,
   ``{"$m": [name, {fields}]}`` for a registered message, ...); a user dict
   of one ``$`` key is escaped as ``{"$d": {...}}``, so tags are never
   ambiguous. Bytes and arrays travel as separate buffers, referred to by
   index, so that large payloads are never copied into the JSON.
3. ``decode`` trusts nothing: any structure it does not expect, an unknown
   message name, fields that do not fit the registered class, a buffer
   index out of range or a buffer of the wrong size raise
   :class:`MalformedMessage`. It never evaluates, unpickles or imports
   anything. Registered classes are the only ones it instantiates.
4. ``encode`` reports whether the body holds any tag; a body without tags is
   plain JSON and ``decode`` skips its walk (``plain=True``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import orjson

from actorfw.core.errors import MalformedMessage, MessageRefused
from actorfw.core.refs import ActorRef, ReplyTo

__all__ = [
    "check",
    "decode",
    "encode",
    "message",
    "message_name",
    "message_type",
    "registered_messages",
]

T = TypeVar("T", bound=type)

_BY_NAME: dict[str, type] = {}
_NAME_OF: dict[type, str] = {}
_FIELDS: dict[type, tuple[str, ...]] = {}

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def message(cls: T | None = None, *, name: str | None = None) -> Any:
    """Register a frozen dataclass as a message type (a class decorator).

    Args:
        name: the name it travels under; defaults to ``module.QualName``.
            Every node must register the class under the same name.

    Raises:
        TypeError: the class is not a frozen dataclass.
        ValueError: the name is already taken by another class.

    Example::

        @message
        @dataclass(frozen=True)
        class Greet:
            name: str
    """

    def register(klass: T) -> T:
        if not (isinstance(klass, type) and dataclasses.is_dataclass(klass)):
            raise TypeError(
                f"@message registers dataclasses; decorate {klass!r} with "
                "@dataclass(frozen=True) first (below @message)"
            )
        if not klass.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            raise TypeError(
                f"message {klass.__qualname__} must be a frozen dataclass: "
                "use @dataclass(frozen=True), messages are shared values"
            )
        key = name or f"{klass.__module__}.{klass.__qualname__}"
        if not isinstance(key, str) or not key:
            raise ValueError(f"a message name must be a non-empty str, not {key!r}")
        existing = _BY_NAME.get(key)
        if existing is not None and existing is not klass:
            if (existing.__module__, existing.__qualname__) != (
                klass.__module__,
                klass.__qualname__,
            ):
                raise ValueError(
                    f"message name {key!r} is taken by "
                    f"{existing.__module__}.{existing.__qualname__}; "
                    "pass @message(name=...) to choose another"
                )
        previous = _NAME_OF.get(klass)
        if previous is not None and previous != key:
            raise ValueError(f"{klass.__qualname__} is already registered as {previous!r}")
        _BY_NAME[key] = klass
        _NAME_OF[klass] = key
        _FIELDS[klass] = tuple(f.name for f in dataclasses.fields(klass) if f.init)
        return klass

    if cls is not None:
        return register(cls)
    return register


def message_name(cls: type) -> str | None:
    """The name a message class is registered under, or None."""
    return _NAME_OF.get(cls)


def message_type(name: str) -> type | None:
    """The message class registered under ``name``, or None."""
    return _BY_NAME.get(name)


def registered_messages() -> dict[str, type]:
    """A copy of the registry: name to class."""
    return dict(_BY_NAME)


# -- encoding ------------------------------------------------------------------------


def _refuse(path: str, why: str) -> MessageRefused:
    return MessageRefused(f"{path} {why}")


def _describe(value: Any) -> str:
    kind = type(value)
    return (
        f"a {kind.__module__}.{kind.__qualname__}"
        if kind.__module__ != "builtins"
        else f"a {kind.__name__}"
    )


class _Encoder:
    """One walk over a value: validates it and builds the JSON tree."""

    __slots__ = ("buffers", "tagged")

    def __init__(self) -> None:
        self.buffers: list[Any] = []
        self.tagged = False

    def walk(self, value: Any, path: str) -> Any:
        kind = type(value)
        if kind is str or kind is bool or value is None:
            return value
        if kind is int:
            if _INT_MIN <= value <= _INT_MAX:
                return value
            raise _refuse(path, f"is {value}, outside the 64-bit range a message can carry")
        if kind is float:
            if math.isfinite(value):
                return value
            self.tagged = True
            return {"$f": "nan" if value != value else ("inf" if value > 0 else "-inf")}
        if kind is list:
            return [self.walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if kind is dict:
            out = {}
            for k, v in value.items():
                if type(k) is not str:
                    raise _refuse(
                        f"{path}",
                        f"has a key {k!r} of type {type(k).__name__}; dict keys must be str",
                    )
                out[k] = self.walk(v, f"{path}[{k!r}]")
            if len(out) == 1 and next(iter(out)).startswith("$"):
                self.tagged = True
                return {"$d": out}
            return out
        if kind is tuple:
            self.tagged = True
            return {"$t": [self.walk(v, f"{path}[{i}]") for i, v in enumerate(value)]}
        if kind is ActorRef:
            self.tagged = True
            return {"$r": [value.node, value.name]}
        name = _NAME_OF.get(kind)
        if name is not None:
            self.tagged = True
            fields = {f: self.walk(getattr(value, f), f"{path}.{f}") for f in _FIELDS[kind]}
            return {"$m": [name, fields]}
        if kind is bytes:
            self.tagged = True
            self.buffers.append(value)
            return {"$b": len(self.buffers) - 1}
        if kind is np.ndarray:
            if value.dtype.hasobject:
                raise _refuse(
                    path, "is a numpy array of Python objects; only plain dtypes can be sent"
                )
            self.tagged = True
            self.buffers.append(np.ascontiguousarray(value))
            return {"$a": [len(self.buffers) - 1, value.dtype.str, list(value.shape)]}
        if kind is ReplyTo:
            self.tagged = True
            return {"$p": [value.node, value.corr]}
        raise _refuse(path, _why_not(value))


def _why_not(value: Any) -> str:
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


_MAX_DEPTH_ERROR = "is nested too deeply to send (JSON allows about 250 levels)"


def check(value: Any) -> None:
    """Raise :class:`MessageRefused` unless ``value`` is a message value.

    The same walk as :func:`encode`, without producing the JSON: what local
    sends (which skip serialization) pay to keep the remote guarantees.
    """
    try:
        _Encoder().walk(value, "message")
    except RecursionError:
        raise _refuse("message", _MAX_DEPTH_ERROR) from None


def encode(value: Any) -> tuple[bytes, list[Any], bool]:
    """Encode a message value.

    Returns:
        ``(body, buffers, plain)``: the JSON body, the raw buffers it refers
        to (bytes and C-contiguous numpy arrays, to be sent as they are), and
        whether the body is plain JSON with no tags.

    Raises:
        MessageRefused: ``value`` is not a message value.
    """
    enc = _Encoder()
    try:
        tree = enc.walk(value, "message")
        body = orjson.dumps(tree)
    except RecursionError:
        raise _refuse("message", _MAX_DEPTH_ERROR) from None
    except orjson.JSONEncodeError as exc:
        raise _refuse("message", f"cannot be encoded: {exc}") from None
    return body, enc.buffers, not enc.tagged


# -- decoding ------------------------------------------------------------------------


def _bad(why: str) -> MalformedMessage:
    return MalformedMessage(f"malformed message body: {why}")


def _build_message(args: Any, buffers: Sequence[Any]) -> Any:
    if not (
        type(args) is list and len(args) == 2 and type(args[0]) is str and type(args[1]) is dict
    ):
        raise _bad("a $m tag must hold [name, {fields}]")
    cls = _BY_NAME.get(args[0])
    if cls is None:
        raise _bad(
            f"unknown message type {args[0]!r} (is it registered with @message on this node?)"
        )
    fields = {k: _walk(v, buffers) for k, v in args[1].items()}
    expected = _FIELDS[cls]
    if set(fields) != set(expected):
        raise _bad(f"message {args[0]!r} has fields {sorted(fields)}, expected {sorted(expected)}")
    try:
        return cls(**fields)
    except Exception as exc:
        raise _bad(f"message {args[0]!r} refused its fields: {exc}") from None


def _buffer(index: Any, buffers: Sequence[Any]) -> Any:
    if type(index) is not int or not 0 <= index < len(buffers):
        raise _bad(f"buffer index {index!r} out of range ({len(buffers)} buffers)")
    return buffers[index]


def _build_array(args: Any, buffers: Sequence[Any]) -> Any:
    if not (
        type(args) is list and len(args) == 3 and type(args[1]) is str and type(args[2]) is list
    ):
        raise _bad("an $a tag must hold [buffer, dtype, shape]")
    raw = _buffer(args[0], buffers)
    try:
        dtype = np.dtype(args[1])
    except TypeError:
        raise _bad(f"unknown array dtype {args[1]!r}") from None
    if dtype.hasobject:
        raise _bad("arrays of Python objects are not accepted")
    shape = args[2]
    if not all(type(n) is int and n >= 0 for n in shape):
        raise _bad(f"bad array shape {shape!r}")
    count = math.prod(shape)
    if count * dtype.itemsize != memoryview(raw).nbytes:
        raise _bad(
            f"array of shape {shape} and dtype {dtype} does not match its "
            f"{memoryview(raw).nbytes}-byte buffer"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _build_bytes(args: Any, buffers: Sequence[Any]) -> Any:
    raw = _buffer(args, buffers)
    return raw if type(raw) is bytes else bytes(raw)


def _build_float(args: Any, buffers: Sequence[Any]) -> Any:
    if args not in ("nan", "inf", "-inf"):
        raise _bad(f"bad $f value {args!r}")
    return float(args)


def _build_ref(args: Any, buffers: Sequence[Any]) -> Any:
    if not (type(args) is list and len(args) == 2 and all(type(a) is str and a for a in args)):
        raise _bad("an $r tag must hold [node, name]")
    return ActorRef(args[0], args[1])


def _build_reply(args: Any, buffers: Sequence[Any]) -> Any:
    if not (
        type(args) is list and len(args) == 2 and type(args[0]) is str and type(args[1]) is int
    ):
        raise _bad("a $p tag must hold [node, corr]")
    return ReplyTo(args[0], args[1])


def _build_tuple(args: Any, buffers: Sequence[Any]) -> Any:
    if type(args) is not list:
        raise _bad("a $t tag must hold a list")
    return tuple(_walk(v, buffers) for v in args)


def _build_dict(args: Any, buffers: Sequence[Any]) -> Any:
    if type(args) is not dict:
        raise _bad("a $d tag must hold an object")
    return {k: _walk(v, buffers) for k, v in args.items()}


_TAGS: dict[str, Callable[[Any, Sequence[Any]], Any]] = {
    "$m": _build_message,
    "$t": _build_tuple,
    "$r": _build_ref,
    "$b": _build_bytes,
    "$a": _build_array,
    "$f": _build_float,
    "$p": _build_reply,
    "$d": _build_dict,
}


def _walk(node: Any, buffers: Sequence[Any]) -> Any:
    kind = type(node)
    if kind is dict:
        if len(node) == 1:
            key = next(iter(node))
            if key.startswith("$"):
                build = _TAGS.get(key)
                if build is None:
                    raise _bad(f"unknown tag {key!r}")
                return build(node[key], buffers)
        return {k: _walk(v, buffers) for k, v in node.items()}
    if kind is list:
        return [_walk(v, buffers) for v in node]
    return node


def decode(body: bytes | memoryview, buffers: Sequence[Any] = (), plain: bool = False) -> Any:
    """Rebuild a message value from :func:`encode`'s output.

    Args:
        body: the JSON body.
        buffers: the raw buffers that came with it (bytes-like objects).
        plain: the body is known to hold no tags (skips the walk).

    Raises:
        MalformedMessage: the input is not an encoding of a message value.
    """
    try:
        tree = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"not valid JSON ({exc})") from None
    if plain:
        return tree
    try:
        return _walk(tree, buffers)
    except RecursionError:
        raise _bad("nested too deeply") from None
