"""The node runtime: actors in OS processes over ZeroMQ, on one machine and across hosts."""

from actorfw.node.config import NodeSettings, RootSpec, load_settings
from actorfw.node.runtime import NodeRuntime, run_node
from actorfw.node.system import ActorSystem, Connection, SystemTimeout, connect

__all__ = [
    "ActorSystem",
    "Connection",
    "NodeRuntime",
    "NodeSettings",
    "RootSpec",
    "SystemTimeout",
    "connect",
    "load_settings",
    "run_node",
]


def __getattr__(name: str) -> object:
    if name == "Client":
        from actorfw.node import system

        return system.Client  # warns: renamed Connection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
