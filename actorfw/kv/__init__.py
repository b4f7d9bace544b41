"""The replicated key-value store: a state machine replicated by Multi-Paxos."""

from actorfw.kv.machine import KVError, KVStateMachine

__all__ = ["KVError", "KVStateMachine"]
