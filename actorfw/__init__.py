"""actorfw: an actor framework for Python whose nodes are OS processes talking over ZeroMQ.

What is here so far: the actor core (actors, refs, typed messages, the
context, supervision, durable storage), the deterministic simulator, the
compiled kernels (vector clocks, Paxos ballots and pvalues) and the
``actorfw`` command. See README.md for the road map.

The public API is what this module exports; everything else may change.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from actorfw._order import Order
from actorfw.core import (
    Actor,
    ActorfwError,
    ActorNotFound,
    ActorRef,
    AllForOne,
    AskTimeout,
    Context,
    Directive,
    MalformedMessage,
    MessageRefused,
    NoActorContext,
    NodeDown,
    OneForOne,
    RemoteError,
    ReplyTo,
    Storage,
    SupervisorStrategy,
    Terminated,
    UnhandledMessage,
    handler,
    message,
)
from actorfw.kernels import KernelsInfo
from actorfw.kernels import info as kernels_info
from actorfw.kernels import vclock as _vclock
from actorfw.sim import NetworkConfig, Simulation

__all__ = [
    "Actor",
    "ActorNotFound",
    "ActorRef",
    "ActorfwError",
    "AllForOne",
    "AskTimeout",
    "Context",
    "Directive",
    "KernelsInfo",
    "MalformedMessage",
    "MessageRefused",
    "NetworkConfig",
    "NoActorContext",
    "NodeDown",
    "OneForOne",
    "Order",
    "RemoteError",
    "ReplyTo",
    "Simulation",
    "Storage",
    "SupervisorStrategy",
    "Terminated",
    "UnhandledMessage",
    "VectorClock",
    "__version__",
    "handler",
    "kernels_info",
    "message",
]

VectorClock = _vclock.VectorClock
"""A vector clock over any set of nodes (compiled unless ``ACTORFW_PURE=1``)."""

try:
    __version__ = version("actorfw")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
