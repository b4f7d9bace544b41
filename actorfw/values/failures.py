"""An error as it travels back to an asker, and exception types that travel as themselves.

Theory of operation
-------------------

A handler that raises answers its ask with a *failure*: a list of message
values, not the exception object (nothing off a socket is ever unpickled).

1. A failure is ``[type_name, message, traceback, actor]`` (four strings),
   or those four and a fifth item, the exception's ``args``, for a type
   registered with :func:`remote_exception`. :func:`failure_of` builds it;
   :func:`error_from_failure` checks a received one and rebuilds the error.
2. A type registered with :func:`remote_exception` (by name, like a
   :func:`~actorfw.message` class) comes back as itself, built by calling
   the class with its ``args`` (``cls(*args)``), with ``remote_traceback`` and
   ``actor`` set on it. Its ``args`` must be message values; if they are not
   (or the class cannot be rebuilt from them on the asker's side), it comes
   back as a :class:`~actorfw.RemoteError` like any other type.
3. Framework errors (``ActorNotFound``, ``NodeDown``, ...) come back as
   themselves; a built-in type as a :class:`~actorfw.RemoteError` that is
   also an instance of the built-in; anything else as a plain
   :class:`~actorfw.RemoteError` with the type's qualified name and
   ``str()`` (see :func:`~actorfw.values.errors.remote_error`).
4. An error passed on from elsewhere (a :class:`RemoteError`, or a
   registered type that came back) keeps its origin: its type, traceback
   and actor.
5. Tracebacks are cut to :data:`TRACEBACK_LIMIT` characters (head and tail).

The same rules hold on every runtime: a local ask's error goes through
:func:`failure_of` and :func:`error_from_failure` too, so an actor sees the
same error whether the handler ran on its node or another.
"""

from __future__ import annotations

import traceback
from typing import Any, TypeVar

from actorfw.values import codec
from actorfw.values.errors import MessageRefused, remote_error

__all__ = [
    "TRACEBACK_LIMIT",
    "error_from_failure",
    "failure_of",
    "registered_exceptions",
    "remote_exception",
]

E = TypeVar("E", bound=type)

TRACEBACK_LIMIT = 8192
"""Characters of a remote traceback kept (the first and last halves)."""

_BY_NAME: dict[str, type[Exception]] = {}
_NAME_OF: dict[type, str] = {}


def remote_exception(cls: E | None = None, *, name: str | None = None) -> Any:
    """Register an exception type so that an asker on any node gets it as itself.

    Without it, a handler's ``AccountError`` reaches a remote asker as a
    :class:`~actorfw.RemoteError` naming the type, which ``except
    AccountError`` cannot catch. A registered type is rebuilt at the asker
    with ``cls(*error.args)`` (rule 2 of this module), so its ``args`` must be
    message values and its constructor must accept them back. Every node
    must register the class under the same name.

    Args:
        name: the name it travels under; defaults to ``module.QualName``.

    Raises:
        TypeError: the class is not an ``Exception`` subclass.
        ValueError: the name is taken by another class.

    Example::

        @remote_exception
        class AccountError(Exception):
            pass

        # in an actor:  except AccountError as error: ...
    """

    def register(klass: E) -> E:
        if not (isinstance(klass, type) and issubclass(klass, Exception)):
            raise TypeError(
                f"@remote_exception registers exception classes, not {klass!r}; "
                "messages are registered with @message"
            )
        key = name or f"{klass.__module__}.{klass.__qualname__}"
        if not isinstance(key, str) or not key:
            raise ValueError(f"an exception name must be a non-empty str, not {key!r}")
        existing = _BY_NAME.get(key)
        if existing is not None and existing is not klass:
            if (existing.__module__, existing.__qualname__) != (
                klass.__module__,
                klass.__qualname__,
            ):
                raise ValueError(
                    f"exception name {key!r} is taken by "
                    f"{existing.__module__}.{existing.__qualname__}; "
                    "pass @remote_exception(name=...) to choose another"
                )
        previous = _NAME_OF.get(klass)
        if previous is not None and previous != key:
            raise ValueError(f"{klass.__qualname__} is already registered as {previous!r}")
        _BY_NAME[key] = klass
        _NAME_OF[klass] = key
        return klass

    if cls is not None:
        return register(cls)
    return register


def registered_exceptions() -> dict[str, type[Exception]]:
    """A copy of the registry: name to exception class."""
    return dict(_BY_NAME)


def _type_name(kind: type) -> str:
    if kind.__module__ in ("builtins", "actorfw.values.errors"):
        return kind.__name__
    return f"{kind.__module__}.{kind.__qualname__}"


def _cut(text: str) -> str:
    if len(text) > TRACEBACK_LIMIT:
        return text[: TRACEBACK_LIMIT // 2] + "\n...\n" + text[-TRACEBACK_LIMIT // 2 :]
    return text


def failure_of(error: BaseException, actor: str) -> list[Any]:
    """The failure that answers an ask whose handler (at path ``actor``) raised ``error``."""
    origin = getattr(error, "remote_traceback", None)
    kind = type(error)
    registered = _NAME_OF.get(kind)
    if registered is None and getattr(error, "type_name", None) and origin is not None:
        # A RemoteError passed on: keep its origin (rule 4).
        return [error.type_name, error.message, origin, error.actor]  # type: ignore[attr-defined]
    if isinstance(origin, str):  # a registered type that came back, passed on
        text = origin
        where = str(getattr(error, "actor", actor))
    else:
        text = _cut("".join(traceback.format_exception(kind, error, error.__traceback__)))
        where = actor
    if registered is not None:
        args = list(error.args)
        try:
            codec.check(args)
        except MessageRefused:
            pass  # not message values: it travels as a RemoteError (rule 2)
        else:
            return [registered, str(error), text, where, args]
    return [_type_name(kind), str(error), text, where]


def error_from_failure(value: Any) -> Exception | None:
    """The error a received failure stands for, or None if ``value`` is not a failure (rule 1)."""
    if type(value) is not list or len(value) not in (4, 5):
        return None
    type_name, message, remote_traceback, actor = value[:4]
    if not (
        type(type_name) is str
        and type(message) is str
        and type(remote_traceback) is str
        and type(actor) is str
    ):
        return None
    if len(value) == 5:
        args = value[4]
        if type(args) is not list:
            return None
        cls = _BY_NAME.get(type_name)
        if cls is not None:
            try:
                error = cls(*args)
                error.remote_traceback = remote_traceback  # type: ignore[attr-defined]
                error.actor = actor  # type: ignore[attr-defined]
            except Exception:  # the asker's class cannot take these args back
                pass
            else:
                return error
    return remote_error(type_name, message, remote_traceback, actor)
