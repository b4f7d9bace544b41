"""The actor core: actors, refs, messages, the context, supervision, storage, the engine.

Layer 3 of the design: it runs on any runtime (the simulator, node
processes) and imports neither sockets nor wall clocks.
"""

from actorfw.core.actor import Actor, handler
from actorfw.core.context import Context
from actorfw.core.messages import Terminated
from actorfw.core.storage import Storage
from actorfw.core.supervision import AllForOne, Directive, OneForOne, SupervisorStrategy
from actorfw.values.codec import message
from actorfw.values.errors import (
    ActorfwError,
    ActorNotFound,
    AskTimeout,
    MalformedMessage,
    MessageRefused,
    NoActorContext,
    NodeDown,
    Overloaded,
    RemoteError,
    UnhandledMessage,
)
from actorfw.values.refs import ActorRef, ReplyTo

__all__ = [
    "Actor",
    "ActorNotFound",
    "ActorRef",
    "ActorfwError",
    "AllForOne",
    "AskTimeout",
    "Context",
    "Directive",
    "MalformedMessage",
    "MessageRefused",
    "NoActorContext",
    "NodeDown",
    "OneForOne",
    "Overloaded",
    "RemoteError",
    "ReplyTo",
    "Storage",
    "SupervisorStrategy",
    "Terminated",
    "UnhandledMessage",
    "handler",
    "message",
]
