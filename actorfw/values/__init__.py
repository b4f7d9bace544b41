"""What may cross a wire: the message registry and codec, refs, and errors.

The leaf of the package's layers (``DESIGN.md``, "Layers"): protocol cores,
the actor core, the runtimes and the services all import from here, and
nothing here imports any of them. A value defined here is plain data; it
needs no runtime to be built, compared or encoded.
"""

from actorfw.values.codec import (
    check,
    decode,
    encode,
    message,
    message_name,
    message_type,
    registered_messages,
)
from actorfw.values.errors import (
    ActorfwError,
    ActorNotFound,
    AskTimeout,
    MalformedMessage,
    MessageRefused,
    NoActorContext,
    NodeDown,
    RemoteError,
    UnhandledMessage,
)
from actorfw.values.failures import remote_exception
from actorfw.values.refs import DEFAULT_ASK_TIMEOUT, ActorRef, ReplyTo

__all__ = [
    "DEFAULT_ASK_TIMEOUT",
    "ActorNotFound",
    "ActorRef",
    "ActorfwError",
    "AskTimeout",
    "MalformedMessage",
    "MessageRefused",
    "NoActorContext",
    "NodeDown",
    "RemoteError",
    "ReplyTo",
    "UnhandledMessage",
    "check",
    "decode",
    "encode",
    "message",
    "message_name",
    "message_type",
    "registered_messages",
    "remote_exception",
]
