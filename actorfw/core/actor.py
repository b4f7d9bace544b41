"""The actor API: the :class:`Actor` base class and the :func:`handler` decorator.

An application subclasses :class:`Actor` and handles messages in methods
marked with :func:`handler`, chosen by the message's type (its class, or
its registered name). A handler may be a plain function or ``async def``;
what it returns answers an ask. Messages no handler claims go to
:meth:`Actor.receive`, which by default refuses them
(:class:`~actorfw.UnhandledMessage`).

An actor processes one message at a time: while an ``async`` handler
awaits, the actor's next message waits. Hooks: :meth:`Actor.on_start`
before the first message, :meth:`Actor.on_stop` after the last,
:meth:`Actor.on_restart` on the fresh instance that replaces a failed one
(by default it calls ``on_start``). Hooks may be ``async`` too.

Every subclass is registered by its import path (``module:QualName``) so
that a node can spawn it on behalf of another (see ``Context.spawn_on``);
only the path travels, never code, and a node only spawns classes already
imported in its process.
"""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from actorfw.values.codec import message_name
from actorfw.values.errors import UnhandledMessage

if TYPE_CHECKING:
    from actorfw.core.context import Context
    from actorfw.core.supervision import SupervisorStrategy

__all__ = [
    "Actor",
    "actor_class",
    "actor_path",
    "handler",
    "main_module_name",
    "missing_actor_class",
    "registered_actor_paths",
]

F = TypeVar("F", bound=Callable[..., Any])

_ACTOR_CLASSES: dict[str, type[Actor]] = {}
_MISSING = object()


def main_module_name(module: str) -> str:
    """A module's name as every process knows it: the main script is ``__main__`` everywhere.

    A node process started with the *spawn* method imports the parent's main
    script again under the name ``__mp_main__``; classes defined there must
    still have the paths (and messages the names) the parent gives them.
    """
    return "__main__" if module == "__mp_main__" else module


def actor_path(cls: type) -> str:
    """The path an actor class is registered and spawned under: ``module:QualName``."""
    return f"{main_module_name(cls.__module__)}:{cls.__qualname__}"


def actor_class(path: str) -> type[Actor] | None:
    """The actor class registered under ``path``, if its module is imported here."""
    return _ACTOR_CLASSES.get(path)


def registered_actor_paths() -> list[str]:
    """The paths of every actor class defined in this process so far."""
    return list(_ACTOR_CLASSES)


@overload
def handler(arg: F) -> F: ...
@overload
def handler(arg: type | str, *more: type | str) -> Callable[[F], F]: ...
def handler(arg: Any = None, *more: Any) -> Any:
    """Mark a method as the handler of one or more message types.

    Forms::

        @handler                    # the type of the message parameter's annotation
        def greet(self, msg: Greet) -> str: ...

        @handler(Greet, Wave)       # explicit classes (subclasses match too)
        def greet(self, msg): ...

        @handler("shop.Order")      # a registered message name
        async def order(self, msg): ...
    """

    def mark(function: F, keys: tuple[Any, ...]) -> F:
        if not callable(function):
            raise TypeError(f"@handler decorates methods, not {function!r}")
        for key in keys:
            if key is not _MISSING and not isinstance(key, (type, str)):
                raise TypeError(f"@handler takes message classes or registered names, not {key!r}")
        existing = getattr(function, "_actorfw_handles", ())
        function._actorfw_handles = existing + keys  # type: ignore[attr-defined]
        return function

    if callable(arg) and not isinstance(arg, type) and not more:
        return mark(arg, (_MISSING,))
    keys = (arg, *more)
    return lambda function: mark(function, keys)


def _annotated_type(function: Callable[..., Any], owner: type) -> type:
    params = list(inspect.signature(function).parameters.values())
    if len(params) < 2:
        raise TypeError(
            f"{owner.__qualname__}.{function.__name__} is a @handler but takes no message "
            "parameter; define it as (self, message)"
        )
    hints = typing.get_type_hints(function)
    hint = hints.get(params[1].name)
    if hint is None:
        raise TypeError(
            f"@handler on {owner.__qualname__}.{function.__name__} needs a type: annotate its "
            "message parameter or write @handler(MessageClass)"
        )
    origin = typing.get_origin(hint) or hint
    if not isinstance(origin, type):
        raise TypeError(
            f"the message annotation of {owner.__qualname__}.{function.__name__} is {hint!r}; "
            "use one class, or @handler(A, B) for several"
        )
    return origin


class Actor:
    """Base class of actors; see the module documentation.

    Attributes:
        context: the actor's door to the world (set by the runtime before
            :meth:`on_start`): sending, timers, storage, spawning, time.
        supervisor_strategy: how this actor supervises its children;
            defaults to one-for-one restarts (see :mod:`actorfw.core.supervision`).
    """

    context: Context
    supervisor_strategy: ClassVar[SupervisorStrategy | None] = None

    mailbox_limit: ClassVar[int | None] = 10_000
    """Messages that may wait in the mailbox; past it, :attr:`mailbox_policy` applies.

    None: unbounded (for an actor whose senders are bounded some other way).
    See :mod:`actorfw.core.flow` and ``docs/actors.md``, "Flow control".
    """
    mailbox_policy: ClassVar[str] = "hold"
    """What a tell to a full mailbox does: ``"hold"`` (queue it and hold the sender
    back: no more turns for an actor here, no more credit for another node) or
    ``"drop"`` (drop it, counted in ``stats.overloaded``). An ask to a full
    mailbox is refused with :class:`~actorfw.Overloaded` either way."""

    # Filled per class by __init_subclass__: message class or name -> method name.
    _actorfw_keys: ClassVar[dict[Any, str]] = {}
    _actorfw_lazy: ClassVar[list[tuple[str, Any]]] = []
    _actorfw_dispatch: ClassVar[dict[type, str | None]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        limit = cls.mailbox_limit
        if limit is not None and (type(limit) is not int or limit < 1):
            raise TypeError(
                f"{cls.__qualname__}.mailbox_limit must be a positive int or None, not {limit!r}"
            )
        if cls.mailbox_policy not in ("hold", "drop"):
            raise TypeError(
                f"{cls.__qualname__}.mailbox_policy must be 'hold' or 'drop', "
                f"not {cls.mailbox_policy!r}"
            )
        keys: dict[Any, str] = {}
        lazy: list[tuple[str, Any]] = []
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                for key in getattr(value, "_actorfw_handles", ()):
                    if key is _MISSING:
                        lazy.append((attr, value))
                    else:
                        keys[key] = attr
        cls._actorfw_keys = keys
        cls._actorfw_lazy = lazy
        cls._actorfw_dispatch = {}
        _ACTOR_CLASSES[actor_path(cls)] = cls

    @classmethod
    def _resolve_lazy(cls) -> None:
        # Annotations are resolved at first use, when every class they name exists.
        for attr, function in cls._actorfw_lazy:
            cls._actorfw_keys.setdefault(_annotated_type(function, cls), attr)
        cls._actorfw_lazy = []

    @classmethod
    def handler_for(cls, message_class: type) -> str | None:
        """The name of the method handling ``message_class``, or None (then :meth:`receive`)."""
        found = cls._actorfw_dispatch.get(message_class, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        if cls._actorfw_lazy:
            cls._resolve_lazy()
        method = None
        keys = cls._actorfw_keys
        for klass in message_class.__mro__:
            if klass in keys:
                method = keys[klass]
                break
        if method is None:
            name = message_name(message_class)
            if name is not None and name in keys:
                method = keys[name]
        cls._actorfw_dispatch[message_class] = method
        return method

    @classmethod
    def handled_types(cls) -> list[str]:
        """The message types this class handles, by name, for error messages."""
        if cls._actorfw_lazy:
            cls._resolve_lazy()
        out = []
        for key in cls._actorfw_keys:
            if isinstance(key, str):
                out.append(key)
            else:
                out.append(message_name(key) or key.__qualname__)
        return out

    def on_start(self) -> Any:
        """Called before the first message; may be ``async``; raising here is a failure."""

    def on_stop(self) -> Any:
        """Called after the last message, when the actor stops or before it restarts."""

    def on_restart(self, error: BaseException) -> Any:
        """Called on the fresh instance that replaces one that failed with ``error``.

        The default calls :meth:`on_start`.
        """
        return self.on_start()

    def receive(self, message: Any) -> Any:
        """Handle a message no :func:`handler` claims; the default refuses it."""
        kind = type(message)
        name = message_name(kind) or kind.__qualname__
        handled = ", ".join(type(self).handled_types()) or "none"
        raise UnhandledMessage(
            f"actor {self.context.ref.path} ({type(self).__qualname__}) has no handler for "
            f"{name} (it handles: {handled}); add a @handler for it or override receive()"
        )


def missing_actor_class(path: str, node: str) -> str:
    """Why the actor class at ``path`` is not here to spawn on ``node``, and what to do.

    Three cases: a class of the main script that this process did not
    import (it was not started from a script file), a module that is loaded
    but has no such class (a wrong name), a module that is not loaded (not
    in the node's apps).
    """
    module, _, name = path.partition(":")
    if module == "__main__":
        return (
            f"actor class {name} is defined in the main script, which node {node} did not "
            "import: run the program as a script file whose ActorSystem is under "
            "'if __name__ == \"__main__\":' (node processes import that file again), or move "
            "the class into a module and list it in the nodes' apps"
        )
    loaded = sys.modules.get(module)
    if loaded is not None:
        known = sorted(p.partition(":")[2] for p in _ACTOR_CLASSES if p.startswith(module + ":"))
        return (
            f"module {module} on node {node} has no actor class {name} (actor classes there: "
            f"{', '.join(known) or 'none'}); check the class name"
        )
    return (
        f"actor class {path} is not loaded on node {node}; import its module there: add "
        f"{module} to the node's apps (the --app option, or apps = [...])"
    )
