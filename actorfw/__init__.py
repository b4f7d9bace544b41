"""actorfw: an actor framework for Python whose nodes are OS processes talking over ZeroMQ.

Write actors (:class:`Actor`, :func:`handler`, typed :func:`message`
dataclasses), run them deterministically on a simulated cluster
(:class:`Simulation`) or as node processes (:class:`ActorSystem` on one
machine, :func:`connect` to nodes started with ``actorfw node``), and build
on the services that ship with it: :func:`replicate` makes any
deterministic state machine a Multi-Paxos group with exactly-once clients;
:class:`VectorClock` is the compiled vector clock.

The public API is what this module exports; the subpackages follow the
layers of ``docs/development.md`` and may change between releases.
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
    Overloaded,
    RemoteError,
    ReplyTo,
    Storage,
    SupervisorStrategy,
    Terminated,
    UnhandledMessage,
    handler,
    message,
)
from actorfw.core.engine import NodeConfig
from actorfw.kernels import KernelsInfo
from actorfw.kernels import info as kernels_info
from actorfw.kernels import vclock as _vclock
from actorfw.node import ActorSystem, connect
from actorfw.services import sharding_config as _sharding_config  # noqa: F401 ([[sharded]])
from actorfw.services.replication import replicate
from actorfw.sim import NetworkConfig, Simulation
from actorfw.values import remote_exception

__all__ = [
    "Actor",
    "ActorNotFound",
    "ActorRef",
    "ActorSystem",
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
    "NodeConfig",
    "NodeDown",
    "OneForOne",
    "Order",
    "Overloaded",
    "RemoteError",
    "ReplyTo",
    "Simulation",
    "Storage",
    "SupervisorStrategy",
    "Terminated",
    "UnhandledMessage",
    "VectorClock",
    "__version__",
    "connect",
    "handler",
    "kernels_info",
    "message",
    "remote_exception",
    "replicate",
]

VectorClock = _vclock.VectorClock
"""A vector clock over any set of nodes (compiled unless ``ACTORFW_PURE=1``)."""

try:
    __version__ = version("actorfw")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
