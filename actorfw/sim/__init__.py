"""The deterministic simulation runtime: a cluster in one process, on virtual time."""

from actorfw.sim.cluster import SimNode, Simulation, SimulationTimeout, TraceEvent, causal_traces
from actorfw.sim.loop import SimulationIdle, SimulationStuck, VirtualTimeLoop
from actorfw.sim.network import NetworkConfig, SimNetwork

__all__ = [
    "NetworkConfig",
    "SimNetwork",
    "SimNode",
    "Simulation",
    "SimulationIdle",
    "SimulationStuck",
    "SimulationTimeout",
    "TraceEvent",
    "VirtualTimeLoop",
    "causal_traces",
]
