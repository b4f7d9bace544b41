"""The node runtime: actors in OS processes over ZeroMQ, on one machine and across hosts."""

from actorfw.node.config import NodeSettings, RootSpec, load_settings
from actorfw.node.runtime import NodeRuntime, run_node
from actorfw.node.system import ActorSystem, Client, SystemTimeout, connect

__all__ = [
    "ActorSystem",
    "Client",
    "NodeRuntime",
    "NodeSettings",
    "RootSpec",
    "SystemTimeout",
    "connect",
    "load_settings",
    "run_node",
]
