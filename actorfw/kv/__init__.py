"""The replicated key-value store: a state machine replicated by Multi-Paxos, and its clients."""

from actorfw.kv.client import KV, AsyncKV
from actorfw.kv.machine import KVError, KVStateMachine

__all__ = ["KV", "AsyncKV", "KVError", "KVStateMachine"]
