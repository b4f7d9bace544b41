"""Sequential models: what a single correct copy of an object would do, one operation at a time.

The checker asks whether a concurrent history could have been produced by
some one-at-a-time order of its operations on a *model*; this module defines
what a model is and ships two: :class:`KeyValue` (a map of strings, integers
and other JSON values, with get/put/delete/cas/append) and :class:`Register`
(read/write/cas registers).

Theory of operation
-------------------

1. A model is a pure transition function over immutable, hashable states:
   ``step(state, f, value, output) -> (legal, next_state)``. ``legal`` says
   whether ``f(value)`` may return ``output`` in ``state``; ``next_state`` is
   the state after it. The checker memoizes states, so they must be hashable
   and never mutated; the empty state is :meth:`Model.init`.
2. For an operation whose outcome is unknown (``info``) the checker passes
   ``output=UNKNOWN``: the model must then accept and return the operation's
   effect. Models here are deterministic, so that effect is one state (a
   ``cas`` of unknown outcome succeeds iff the state matches). Whether the
   operation took effect *at all* is the checker's business, not the model's.
3. Values reach ``step`` *frozen*: JSON lists as tuples and objects as
   frozensets of items (see :func:`freeze`), so they can be part of a state.
   They compare by Python equality, so ``1``, ``1.0`` and ``true`` are equal.
4. A model is *P-compositional* over keys when a history is linearizable iff
   each key's sub-history is (true of maps of independent registers):
   :meth:`Model.partition_key` then returns the key, and the checker checks
   each key alone, which turns one exponential search into many small ones.
5. For minimizing a violation the checker needs to know which operation's
   effect another one observed: :meth:`Model.observes` and
   :meth:`Model.installs` name the values read and written, so that a
   minimal witness keeps a write whose value a kept read returned (otherwise
   every stale read would shrink to "a read of a value never written").
6. For speed a model may say that an operation acts on its state as one
   operation of a register does (:meth:`Model.as_register`): a read of a
   value, a write, a compare-and-set with a known or unknown outcome. The
   search kernel then decides it by comparing interned states, without
   calling :meth:`Model.step`. It must describe exactly what ``step`` does;
   the checker only uses it when the class that defines ``as_register``
   also defines ``step``.

Operations of :class:`KeyValue` (per key; ``None`` is "absent"):

==========  =======================  =======================================
operation   value                    output (``ok``)
==========  =======================  =======================================
get         ``None``                 the value, or ``None`` when absent
put         the value (not ``None``) ignored
delete      ``None``                 ignored
cas         ``[expected, new]``      ``True`` if the value was ``expected``
                                     (``None``: absent) and is now ``new``,
                                     else ``False`` (and no change)
append      a string                 ``None`` (not reported, not checked) or
                                     the string after appending
==========  =======================  =======================================

``append`` to an absent key appends to ``""``; to a value that is not a
string it cannot succeed (an ``ok`` append there is a violation; one of
unknown outcome had no effect).

:class:`Register` has ``read`` (output: the value), ``write`` (value) and
``cas`` (value ``[expected, new]``, output ``True``/``False``), each key an
independent register starting at ``initial``.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable
from typing import Any, ClassVar, Final, cast, final

from actorfw.check.history import Operation, Status

__all__ = ["UNKNOWN", "KeyValue", "Model", "Register", "freeze"]


@final
class _Unknown:
    """The type of :data:`UNKNOWN`."""

    _instance: ClassVar[_Unknown | None] = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()
"""The output passed to :meth:`Model.step` for an operation whose outcome is unknown."""


_SCALARS = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Hashable:
    """``value`` in a hashable form: lists and tuples as tuples, dicts as frozensets of items.

    Frozen values of different JSON kinds never compare equal (an object is
    not a list of pairs). Scalars are returned unchanged.

    Raises:
        TypeError: ``value`` holds something that is neither JSON data nor hashable.
    """
    if type(value) in _SCALARS:  # most values: no ABC check needed
        scalar: Hashable = value
        return scalar
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    if isinstance(value, dict):
        return frozenset((key, freeze(item)) for key, item in value.items())
    if not isinstance(value, Hashable):
        raise TypeError(f"cannot use {type(value).__name__} {value!r} as a value in a model state")
    return value


class Model(abc.ABC):
    """A sequential specification for the checker; see the module docstring.

    Subclass it and implement :meth:`init` and :meth:`step`; override the
    other methods to validate operations, partition by key, drop reads of
    unknown outcome, and help minimization.
    """

    name: ClassVar[str] = "model"
    """A short name for messages."""

    @abc.abstractmethod
    def init(self) -> Hashable:
        """The state before any operation."""

    @abc.abstractmethod
    def step(
        self, state: Hashable, f: str, value: Hashable, output: Hashable
    ) -> tuple[bool, Hashable]:
        """Whether ``f(value)`` may return ``output`` in ``state``, and the state after it.

        ``value`` and ``output`` are frozen (:func:`freeze`); ``output`` is
        :data:`UNKNOWN` for an operation whose outcome is unknown, and then
        the step must be legal. Must not mutate ``state``.
        """

    def validate(self, op: Operation) -> None:  # noqa: B027 (optional hook; accepts all)
        """Raise ``ValueError`` if the model cannot interpret ``op`` (say why and how to fix it)."""

    def partition_key(self, op: Operation) -> Hashable:
        """The partition of ``op``: all in one (``None``) unless the model is P-compositional."""
        return None

    def is_read_only(self, f: str) -> bool:
        """Whether ``f`` never changes the state (its unknown outcomes are then dropped)."""
        return False

    def observes(self, f: str, value: Hashable, output: Hashable) -> tuple[Hashable, ...]:
        """Values this operation saw that some other operation must have written (frozen)."""
        return ()

    def installs(self, f: str, value: Hashable, output: Hashable) -> tuple[Hashable, ...]:
        """Values this operation may have written (frozen)."""
        return ()

    def describe_state(self, state: Hashable) -> str:
        """A short human form of ``state`` for reports."""
        return repr(state)

    def as_register(
        self, f: str, value: Hashable, output: Hashable
    ) -> tuple[str, Hashable, Hashable] | None:
        """This operation as an operation on a register whose value is the state, if it is one.

        One of ``("read", v, None)`` (legal iff the state is ``v``; no
        change), ``("write", v, None)`` (the state becomes ``v``),
        ``("cas", e, v)`` (legal iff the state is ``e``; it becomes ``v``),
        ``("cas-failed", e, None)`` (legal iff the state is not ``e``; no
        change), ``("cas-maybe", e, v)`` (``v`` if the state is ``e``, else
        no change) or ``("nop", None, None)``; ``None`` when the operation is
        none of these (the checker then calls :meth:`step`). States compare
        by equality. The default: ``None`` for every operation (rule 6).
        """
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _op_error(op: Operation, problem: str) -> ValueError:
    return ValueError(f"operation {op.id} ({op.describe()}, client {op.client!r}): {problem}")


def _pair(value: Hashable) -> tuple[Hashable, Hashable]:
    expected, new = cast(tuple[Hashable, Hashable], value)
    return expected, new


def _check_pair(op: Operation, model: str) -> None:
    if not isinstance(op.value, list | tuple) or len(op.value) != 2:
        raise _op_error(
            op, f"the {model} model's cas takes value [expected, new], not {op.value!r}"
        )


def _register_cas(value: Hashable, output: Hashable) -> tuple[str, Hashable, Hashable]:
    """A compare-and-set of ``value`` = ``[expected, new]`` described for the search kernel."""
    expected, new = _pair(value)
    if output is UNKNOWN:
        return "cas-maybe", expected, new
    if output:
        return "cas", expected, new
    return "cas-failed", expected, None


def _register_read(output: Hashable) -> tuple[str, Hashable, Hashable]:
    return ("nop", None, None) if output is UNKNOWN else ("read", output, None)


def _cas(state: Hashable, value: Hashable, output: Hashable) -> tuple[bool, Hashable]:
    """A compare-and-set of ``value`` = ``[expected, new]`` on ``state``: (legal, state after).

    Its output is True (it swapped), False (it did not) or unknown (either).
    """
    expected, new = _pair(value)
    if output is UNKNOWN:
        return True, (new if state == expected else state)
    if output:
        return state == expected, new
    return state != expected, state


class KeyValue(Model):
    """A map from keys to values with get, put, delete, cas and append (see the module docstring).

    P-compositional: each key is checked on its own. Example::

        result = check(history, KeyValue())
    """

    name: ClassVar[str] = "kv"
    OPERATIONS: ClassVar[tuple[str, ...]] = ("get", "put", "delete", "cas", "append")
    """The operation names the model knows."""

    def init(self) -> Hashable:
        """An absent key: ``None``."""
        return None

    def step(
        self, state: Hashable, f: str, value: Hashable, output: Hashable
    ) -> tuple[bool, Hashable]:
        """One key-value operation on one key's value (``None``: absent)."""
        if f == "get":
            return (output is UNKNOWN or output == state), state
        if f == "put":
            return True, value
        if f == "cas":
            return _cas(state, value, output)
        if f == "append":
            if state is None:
                state = ""
            elif not isinstance(state, str):
                return output is UNKNOWN, state
            grown = state + cast(str, value)
            return (output is UNKNOWN or output is None or output == grown), grown
        if f == "delete":
            return True, None
        raise AssertionError(f"kv model: unvalidated operation {f!r}")

    def validate(self, op: Operation) -> None:
        """Check the operation's name, value and output types (``ValueError`` names the problem)."""
        f, value, output = op.f, op.value, op.output
        if f not in self.OPERATIONS:
            raise _op_error(
                op,
                f"the kv model has no operation {f!r}; it knows {', '.join(self.OPERATIONS)}"
                + (
                    " (for read/write, the register model: Register(), or --model register)"
                    if f in Register.OPERATIONS
                    else ""
                ),
            )
        known = op.status is Status.OK
        if f in ("get", "delete") and value is not None:
            raise _op_error(op, f"{f} takes no value (None), not {value!r}")
        if f == "put" and value is None:
            raise _op_error(op, "put of None is ambiguous with an absent key; use delete")
        if f == "cas":
            _check_pair(op, "kv")
            if value[1] is None:
                raise _op_error(op, "cas to None is ambiguous with an absent key; use delete")
            if known and not isinstance(output, bool):
                raise _op_error(op, f"a completed cas returns True or False, not {output!r}")
        if f == "append":
            if not isinstance(value, str):
                raise _op_error(op, f"append takes a string to append, not {value!r}")
            if known and output is not None and not isinstance(output, str):
                raise _op_error(
                    op, f"append returns None or the string after appending, not {output!r}"
                )

    def partition_key(self, op: Operation) -> Hashable:
        """The operation's key: keys are independent."""
        return op.key

    def is_read_only(self, f: str) -> bool:
        """``get`` is read-only."""
        return f == "get"

    def observes(self, f: str, value: Hashable, output: Hashable) -> tuple[Hashable, ...]:
        """A get's output; a successful cas's expected value; what a reported append appended to.

        ``None`` (absent) counts as written by a delete: a read of "absent"
        in a partition with deletes needs one of them to explain it.
        """
        if f == "get" and output is not UNKNOWN:
            return (output,)
        if f == "cas" and output is True:
            return (_pair(value)[0],)
        if f == "append" and isinstance(output, str) and isinstance(value, str):
            before = output[: len(output) - len(value)]
            return (before,) if before and output.endswith(value) else ()
        return ()

    def installs(self, f: str, value: Hashable, output: Hashable) -> tuple[Hashable, ...]:
        """A put's value; a cas's new value if it did or may have succeeded; an append's
        output; ``None`` for a delete."""
        if f == "put":
            return (value,)
        if f == "delete":
            return (None,)
        if f == "cas" and output is not False:
            return (_pair(value)[1],)
        if f == "append" and isinstance(output, str):
            return (output,)
        return ()

    def describe_state(self, state: Hashable) -> str:
        """The key's value, or "absent"."""
        return "absent" if state is None else repr(state)

    def as_register(
        self, f: str, value: Hashable, output: Hashable
    ) -> tuple[str, Hashable, Hashable] | None:
        """get, put, delete and cas as register operations (delete writes ``None``);
        append is not one."""
        if f == "get":
            return _register_read(output)
        if f == "put":
            return "write", value, None
        if f == "delete":
            return "write", None, None
        if f == "cas":
            return _register_cas(value, output)
        return None


class Register(Model):
    """Read/write/cas registers, one per key, each starting at ``initial``.

    Args:
        initial: the value every register holds before the first write
            (any JSON value; frozen).

    Example::

        result = check(history, Register(initial=0))
    """

    name: ClassVar[str] = "register"
    OPERATIONS: ClassVar[tuple[str, ...]] = ("read", "write", "cas")
    """The operation names the model knows."""

    def __init__(self, initial: Any = None) -> None:
        self.initial: Hashable = freeze(initial)

    def init(self) -> Hashable:
        """The initial value."""
        return self.initial

    def step(
        self, state: Hashable, f: str, value: Hashable, output: Hashable
    ) -> tuple[bool, Hashable]:
        """One register operation."""
        if f == "read":
            return (output is UNKNOWN or output == state), state
        if f == "write":
            return True, value
        if f == "cas":
            return _cas(state, value, output)
        raise AssertionError(f"register model: unvalidated operation {f!r}")

    def validate(self, op: Operation) -> None:
        """Check the operation's name, value and output types (``ValueError`` names the problem)."""
        if op.f not in self.OPERATIONS:
            raise _op_error(
                op,
                f"the register model has no operation {op.f!r}; it knows "
                f"{', '.join(self.OPERATIONS)}"
                + (
                    " (for get/put/..., the kv model: KeyValue(), or --model kv)"
                    if op.f in KeyValue.OPERATIONS
                    else ""
                ),
            )
        if op.f == "read" and op.value is not None:
            raise _op_error(op, f"read takes no value (None), not {op.value!r}")
        if op.f == "cas":
            _check_pair(op, "register")
            if op.status is Status.OK and not isinstance(op.output, bool):
                raise _op_error(op, f"a completed cas returns True or False, not {op.output!r}")

    def partition_key(self, op: Operation) -> Hashable:
        """The operation's key: registers are independent."""
        return op.key

    def is_read_only(self, f: str) -> bool:
        """``read`` is read-only."""
        return f == "read"

    def observes(self, f: str, value: Hashable, output: Hashable) -> tuple[Hashable, ...]:
        """A read's output, a successful cas's expected value (unless the initial value)."""
        if f == "read" and output is not UNKNOWN:
            seen = output
        elif f == "cas" and output is True:
            seen = _pair(value)[0]
        else:
            return ()
        return () if seen == self.initial else (seen,)

    def installs(self, f: str, value: Hashable, output: Hashable) -> tuple[Hashable, ...]:
        """A write's value; the new value of a cas that did or may have succeeded."""
        if f == "write":
            return (value,)
        if f == "cas" and output is not False:
            return (_pair(value)[1],)
        return ()

    def as_register(
        self, f: str, value: Hashable, output: Hashable
    ) -> tuple[str, Hashable, Hashable] | None:
        """Every operation of a register is one."""
        if f == "read":
            return _register_read(output)
        if f == "write":
            return "write", value, None
        if f == "cas":
            return _register_cas(value, output)
        return None

    def __repr__(self) -> str:
        return f"Register(initial={self.initial!r})"
