"""Checkers of recorded runs: linearizability of client histories, causal order of broadcasts.

Record what clients did in a :class:`History` (or load one from JSON lines),
then ask :func:`check` whether some one-at-a-time order of the operations,
consistent with their real-time order, is a legal run of a sequential model
(:class:`KeyValue`, :class:`Register`, or your own :class:`Model`)::

    from actorfw.check import History, KeyValue, check

    history = History()
    op = history.invoke("c1", "put", "x", 1, time=0.0)
    history.ok(op, None, time=0.5)
    op = history.invoke("c2", "get", "x", time=1.0)
    history.ok(op, 1, time=1.5)
    result = check(history, KeyValue(), timeout=10.0)
    print(result)   # linearizable (kv model): ...

:func:`check_causal` checks that a causal broadcast delivered every message
in causal order and exactly once, at every member.

See ``docs/check.md`` for the format, the models and the algorithms.
"""

from __future__ import annotations

from actorfw.check.causal import CausalMessage, CausalResult, CausalViolation, check_causal
from actorfw.check.history import FIELDS, Client, History, Key, Operation, Status
from actorfw.check.linearizability import TIMEOUT_SLACK, CheckResult, Verdict, check
from actorfw.check.models import UNKNOWN, KeyValue, Model, Register, freeze

__all__ = [
    "FIELDS",
    "TIMEOUT_SLACK",
    "UNKNOWN",
    "CausalMessage",
    "CausalResult",
    "CausalViolation",
    "CheckResult",
    "Client",
    "History",
    "Key",
    "KeyValue",
    "Model",
    "Operation",
    "Register",
    "Status",
    "Verdict",
    "check",
    "check_causal",
    "freeze",
]
