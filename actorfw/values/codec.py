"""Message values: the registry of message types, validation, and the body encoding.

Theory of operation
-------------------

A *message value* is one of:

- ``None``, ``bool``, ``int`` in ``-2**63 .. 2**64-1``, ``float`` (NaN and
  infinities included), ``str``;
- ``list``, ``tuple`` and ``dict`` with ``str`` keys, of message values;
- numpy arrays (any dtype but ``object``), carried as raw buffers beside
  the body, never inside it; ``bytes`` too, but for small ones (at most
  1 KiB each, 64 KiB in all per message), which travel inside the body
  (``{"$x": text}``, see ``docs/wire.md``);
- :class:`~actorfw.ActorRef` and :class:`~actorfw.ReplyTo`;
- :class:`~actorfw.VectorClock` (the active kernel's), carried as its
  canonical encoding in a buffer (``{"$v": index}``);
- an instance of a frozen dataclass registered with :func:`message`, whose
  fields hold message values.

Exact types only: a subclass of ``int`` or ``str`` (an enum member, say) or a
numpy scalar is refused, because it would not come back as itself. Every
value round-trips: ``decode(*encode(v)) == v`` with the same types.

Rules:

1. ``check`` and ``encode`` refuse anything else with :class:`MessageRefused`
   naming the offending part by its path (``message.items[3]``), including
   containers nested more than 100 deep.
2. The body is JSON (orjson). Values JSON cannot hold become one-key objects
   whose key starts with ``$`` (``{"$t": [...]}`` for a tuple,
   ``{"$m": [name, {fields}]}`` for a registered message, ...); a user dict
   of one ``$`` key is escaped as ``{"$d": {...}}``, so tags are never
   ambiguous. Bytes and arrays travel as separate buffers, referred to by
   index, so that large payloads are never copied into the JSON.
3. ``decode`` trusts nothing: any structure it does not expect, an unknown
   message name, fields that do not fit the registered class, a buffer
   index out of range or a buffer of the wrong size raise
   :class:`MalformedMessage`, and so do the limits of rule 1 broken by a
   peer (nesting past 100 levels, also in a plain body; an integer outside
   the 64-bit range, which JSON would bring back as a float). Whatever the
   input, it raises nothing else. It never evaluates, unpickles or imports
   anything. Registered classes are the only ones it instantiates.
4. ``encode`` reports whether the body holds any tag; a body without tags is
   plain JSON and ``decode`` skips its walk (``plain=True``).
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from typing import Any, TypeVar, cast, dataclass_transform

from actorfw.kernels import vclock as _vclock
from actorfw.kernels import wire as _wire
from actorfw.values.errors import MalformedMessage, MessageRefused
from actorfw.values.refs import ActorRef, ReplyTo

__all__ = [
    "bind_kernel",
    "check",
    "decode",
    "encode",
    "is_routine",
    "message",
    "message_name",
    "message_type",
    "registered_messages",
]

T = TypeVar("T", bound=type)

_BY_NAME: dict[str, type] = {}
_NAME_OF: dict[type, str] = {}
_FIELDS: dict[type, tuple[str, ...]] = {}
_DIRECT: set[type] = set()
"""Registered classes a decoder builds without calling ``__init__`` (``_builds_directly``)."""
_SLOTTED: set[type] = set()
"""The same, for slotted classes: their fields are set one by one, not through ``__dict__``."""
_ROUTINE: set[type] = set()
"""Registered classes marked ``routine``: their dead letters are logged at DEBUG."""


@dataclasses.dataclass(frozen=True)
class _Probe:
    x: int


_GENERATED_IN = _Probe.__init__.__code__.co_filename

_HEAP_TYPE = 1 << 9
"""``Py_TPFLAGS_HEAPTYPE``: a class made by a class statement, not a built-in type."""
"""Where the dataclass decorator's generated ``__init__`` methods say they come from."""


def _builds_directly(klass: type) -> set[type] | None:
    """Whether setting the fields of a fresh instance is all that ``__init__`` would do.

    Yes for the common message class: the ``__init__`` the dataclass
    decorator wrote (not one of the class's own), taking exactly the fields
    (none ``init=False``, no ``InitVar``), no ``__post_init__``, classes
    only (no built-in base such as ``Exception`` or ``dict``, whose part
    ``object.__new__`` would leave unmade) and none defining ``__new__``,
    and every field kept in a slot, or every one in the instance's
    ``__dict__`` (none behind a descriptor of the class's own). A decoder then
    skips the call (a frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__``), which builds the value in less than
    half the time.

    Returns:
        :data:`_SLOTTED` or :data:`_DIRECT`, the set the class goes in; None
        if it is built by calling it.
    """
    code = getattr(klass.__dict__.get("__init__"), "__code__", None)
    if code is None or code.co_filename != _GENERATED_IN:  # not the decorator's
        return None
    arguments = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]
    fields = tuple(f.name for f in dataclasses.fields(klass))
    if arguments != fields or hasattr(klass, "__post_init__"):
        return None
    for base in klass.__mro__[:-1]:
        if not base.__flags__ & _HEAP_TYPE or "__new__" in base.__dict__:
            return None  # a built-in base's layout, or a __new__ that must run
    slotted = in_dict = 0
    for name in fields:
        where = inspect.getattr_static(klass, name, None)
        if type(where) is types.MemberDescriptorType:
            slotted += 1  # a slot (under its mangled name, if private)
        elif hasattr(type(where), "__set__") or hasattr(type(where), "__delete__"):
            return None  # a descriptor of the class's own keeps the field
        else:
            in_dict += 1  # no attribute, or a default value: the instance's __dict__
    if slotted == len(fields):
        return _SLOTTED
    if in_dict == len(fields) and klass.__dictoffset__ != 0:
        return _DIRECT
    return None  # some fields in slots, some in a base's __dict__


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def message(
    cls: T | None = None, *, name: str | None = None, eq: bool = True, routine: bool = False
) -> Any:
    """Register a message type (a class decorator); a plain class becomes a frozen dataclass.

    A class that is not a dataclass yet is made one: frozen (messages are
    shared values) and slotted (smaller, and rebuilt faster by the decoder).
    A class already decorated with ``@dataclass(frozen=True)`` below
    ``@message`` is registered as it is.

    Args:
        name: the name it travels under; defaults to ``module.QualName``
            (a class of the main script is ``__main__.QualName`` in every
            process, also in node processes that import the script again).
            Every node must register the class under the same name.
        eq: whether the made dataclass compares by value (as ``dataclass``'s
            ``eq``); only for a class that is not a dataclass yet.
        routine: a periodic report or heartbeat that a protocol expects to
            lose now and then (to a peer that is not started yet, or has
            stopped). Such a message that finds no actor is still counted
            as a dead letter, but logged at DEBUG, not INFO, so that a
            cluster's start-up is not a burst of warnings-to-be.

    Raises:
        TypeError: the class is a dataclass that is not frozen, or not a class.
        ValueError: the name is already taken by another class.

    Example::

        @message
        class Greet:
            name: str
    """

    def register(klass: T) -> T:
        if not isinstance(klass, type):
            raise TypeError(f"@message registers classes, not {klass!r}")
        if "__dataclass_fields__" not in klass.__dict__:
            klass = cast(T, dataclasses.dataclass(frozen=True, slots=True, eq=eq)(klass))
        elif not klass.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            raise TypeError(
                f"message {klass.__qualname__} must be a frozen dataclass: "
                "use @dataclass(frozen=True), or no @dataclass at all (@message makes one)"
            )
        module = "__main__" if klass.__module__ == "__mp_main__" else klass.__module__
        key = name or f"{module}.{klass.__qualname__}"
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
        _DIRECT.discard(klass)
        _SLOTTED.discard(klass)
        (_ROUTINE.add if routine else _ROUTINE.discard)(klass)
        built_as = _builds_directly(klass)
        if built_as is not None:
            built_as.add(klass)
        return klass

    if cls is not None:
        return register(cls)
    return register


def message_name(cls: type) -> str | None:
    """The name a message class is registered under, or None."""
    return _NAME_OF.get(cls)


def is_routine(cls: type) -> bool:
    """Was ``cls`` registered as a ``routine`` message (see :func:`message`)?"""
    return cls in _ROUTINE


def message_type(name: str) -> type | None:
    """The message class registered under ``name``, or None."""
    return _BY_NAME.get(name)


def registered_messages() -> dict[str, type]:
    """A copy of the registry: name to class."""
    return dict(_BY_NAME)


# -- the codec itself lives in the wire kernel (compiled, or its pure twin) ----------------


def bind_kernel(module: Any) -> None:
    """Give a wire kernel module this registry (done for the active one at import)."""
    module.bind(
        _BY_NAME,
        _NAME_OF,
        _FIELDS,
        ActorRef,
        ReplyTo,
        MessageRefused,
        MalformedMessage,
        direct=_DIRECT,
        slotted=_SLOTTED,
        clock=_vclock.VectorClock,
    )


bind_kernel(_wire)

check = _wire.check_value
"""Raise :class:`MessageRefused` unless a value is a message value (rule 1).

The same walk as :func:`encode` without producing JSON: what local sends
(which skip serialization) pay to keep the remote guarantees.
"""

encode = _wire.encode_value
"""Encode a message value into ``(body, buffers, plain)``.

``body`` is the JSON, ``buffers`` the raw buffers it refers to (bytes past
the inline bound and C-contiguous numpy arrays, to be sent as they are), ``plain`` whether the
body holds no tags (rule 4). Raises :class:`MessageRefused`.
"""

decode = _wire.decode_value
"""Rebuild a message value from ``(body, buffers=(), plain=False)`` (rule 3).

Raises :class:`MalformedMessage` if the input is not an encoding of a
message value.
"""
