"""The key-value state machine: what the replicated KV store applies, in slot order.

Operations are ``[f, key, value]`` lists (or tuples), the same shapes the
linearizability checker's :class:`~actorfw.check.KeyValue` model knows:

=========  ====================  ==================================================
``f``      ``value``             result
=========  ====================  ==================================================
``get``    (ignored)             the value, or None when the key is absent
``put``    the new value         None
``delete`` (ignored)             None
``cas``    ``[expected, new]``   True (and the key now holds ``new``) iff the key
                                 held ``expected`` (None: absent); else False
``append`` a string              the new string (absent counts as ``""``)
=========  ====================  ==================================================

Values are message values; ``put`` or ``cas`` to None is refused (None means
absent). A malformed operation is refused with an error result rather than
an exception: the state machine is deterministic, and every replica must
refuse the same operation the same way.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KVError", "KVStateMachine"]


class KVError(ValueError):
    """A malformed key-value operation."""


class KVStateMachine:
    """A deterministic key-value map (see the module documentation)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def apply(self, operation: Any) -> Any:
        """Apply one operation; return its result (``["error", text]`` if malformed)."""
        try:
            return self._apply(operation)
        except KVError as error:
            return ["error", str(error)]

    def _apply(self, operation: Any) -> Any:
        if not isinstance(operation, (list, tuple)) or len(operation) not in (2, 3):
            raise KVError(f"an operation is [f, key, value], not {operation!r}")
        f, key = operation[0], operation[1]
        value = operation[2] if len(operation) == 3 else None
        if not isinstance(key, str):
            raise KVError(f"keys are strings, not {type(key).__name__}")
        data = self.data
        if f == "get":
            return data.get(key)
        if f == "put":
            if value is None:
                raise KVError("put None: use delete")
            data[key] = value
            return None
        if f == "delete":
            data.pop(key, None)
            return None
        if f == "cas":
            if not (isinstance(value, (list, tuple)) and len(value) == 2) or value[1] is None:
                raise KVError("cas takes [expected, new] with new not None")
            expected, new = value
            if data.get(key) == expected:
                data[key] = new
                return True
            return False
        if f == "append":
            if not isinstance(value, str):
                raise KVError("append takes a string")
            current = data.get(key, "")
            if not isinstance(current, str):
                raise KVError(f"key {key!r} does not hold a string")
            data[key] = current + value
            return data[key]
        raise KVError(f"unknown operation {f!r} (get, put, delete, cas, append)")

    def is_read_only(self, operation: Any) -> bool:
        """Whether ``operation`` is a ``get`` (which :meth:`query` may serve by lease)."""
        return isinstance(operation, (list, tuple)) and operation[:1] in (["get"], ("get",))

    def query(self, operation: Any) -> Any:
        """Run a read-only operation without changing anything; what :meth:`apply` would return."""
        return self.apply(operation)  # a get changes nothing

    def snapshot(self) -> dict[str, Any]:
        """The whole map, as a message value."""
        return dict(self.data)

    def restore(self, snapshot: Any) -> None:
        """Replace the map with a snapshot."""
        self.data = dict(snapshot)
