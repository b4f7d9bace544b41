"""A replica group's share of a sharded state machine: serving, fencing and moving shards.

A sharded service runs one replicated group per set of nodes; each group's
replicas apply the same :class:`ShardedMachine`, which holds the shards
the group owns (each shard an instance of the application's own state
machine, e.g. the KV store's) and carries out the shard manager's
configurations. Everything it does goes through the group's log, so every
replica of a group changes at the same point. It is deterministic, like
any replicated machine; the actor that feeds it configurations and moves
shards between groups is :mod:`actorfw.services.sharding`, and what it
should do next is :func:`next_actions`.

Operations (lists; results are lists whose first item says what happened):

======================================  ==============================================
operation                               result
======================================  ==============================================
``["op", client, shard, seq, op]``      ``["ok", result]``: ``op`` ran on its key's
                                        shard (or ran before: its first result);
                                        ``["wrong_group", n]``: this group does not own
                                        the key's shard in configuration ``n``;
                                        ``["not_ready", n]``: it owns it, but the shard
                                        has not arrived yet; ``["expired", n]``: the
                                        client's session on that shard was dropped
``["config", configuration]``           ``["taken", n]`` or ``["skipped", n]`` (not the
                                        next one, or shards still to arrive)
``["adopt", configuration]``            ``["taken", n]`` or ``["skipped", n]``: a new
                                        group starts from a later configuration
``["install", k, shard, payload]``      ``["installed", n]`` or ``["skipped", n]``;
                                        ``k``: the configuration that gave it away
``["export", n, shard]`` (read-only)    ``["shard", payload]``, ``["not_yet", n]`` or
                                        ``["gone", n]``
``["delete", k, shard]``                ``["deleted", n]`` or ``["not_yet", n]``
``["confirmed", n, shard]``             ``["confirmed", n]``
``["status"]`` (read-only)              see :func:`next_actions`
======================================  ==============================================

``n`` in a result is the group's configuration number when it answered.
``shard`` in ``op`` is the shard the client routed the operation by; an
operation whose key is in another shard here is refused (the client and
the machine must agree on :meth:`ShardedMachine.key_of`). Anything
malformed is refused with ``["error", text]`` and changes nothing.

The rules:

1. **One configuration at a time, in order.** The group takes
   configuration ``n + 1`` only while at ``n`` and only when every shard it
   owns at ``n`` is here: a configuration is finished before the next one
   starts.
2. **Fencing.** A client's operation runs only on a shard the group owns in
   its current configuration and holds. From the command that takes a
   configuration in which a shard leaves, the group refuses that shard's
   keys (``wrong_group``); a shard that comes in is refused
   (``not_ready``) until its ``install``. So for each configuration at most
   one group serves a key, and every write a group acknowledged for a
   shard is in what it hands over.
3. **Handing over.** A shard that leaves is frozen, as of the configuration
   that moved it, with the exactly-once state of its clients (their
   sessions), and kept for the new owner to ``export``. The new owner
   installs it through its own log, then tells the old owner to
   ``delete`` it; once the old owner answers ``deleted`` (it is gone
   there), the new owner stops telling (``confirmed``). The old owner
   deletes a shard only once a configuration it has taken gives the
   shard to another group: a ``delete`` before that (or from anyone
   else) is answered ``not_yet`` and deletes nothing.
4. **Where a shard is.** Each group follows, from the sequence of
   configurations, which group last gave each shard away and at which
   configuration: a shard that comes in is pulled from there. A shard that
   had no owner before starts empty; one that was unassigned for a while
   (every group left) is pulled from the group that held it last, which
   keeps it until then. The nodes of that group are those it had when it
   gave the shard away; a mover asks the ones of the latest configuration
   instead when the group is still in it.
6. **Starting late.** A group that holds nothing and is at configuration
   0 may ``adopt`` a later configuration that gives it no shard (when the
   shard manager has forgotten the earlier ones); it learns where each
   unassigned shard waits from that configuration's ``holders``.
5. **Exactly once across moves.** Clients number their operations per
   shard (1, 2, ...); a shard keeps, per client, the last number and its
   result, and hands them over with its data, so a retry after a move gets
   the first answer. A shard keeps ``max_sessions`` clients at most
   (least recently active dropped first); an operation numbered above 1
   of a client it has no session for is refused (``expired``), as it
   may have run before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actorfw.protocols.sharding.keys import shard_of
from actorfw.protocols.sharding.manager import Configuration, ShardingError

__all__ = ["Action", "ShardedMachine", "next_actions"]


class _Shard:
    """One shard held here: the application's machine and its clients' sessions."""

    __slots__ = ("machine", "sessions")

    def __init__(self, machine: Any, sessions: dict[str, tuple[int, Any]]) -> None:
        self.machine = machine
        self.sessions = sessions  # client -> (last seq, result), least recently active first


class ShardedMachine:
    """One group's part of a sharded state machine (see the module documentation).

    Subclasses say what a shard is and where an operation's key is:
    :meth:`new_shard` and :meth:`key_of`.

    Args:
        group: this group's name, as the shard manager knows it.
        shards: the number of shards of the cluster (as the shard manager's).
        max_sessions: clients' sessions kept per shard (rule 5).
    """

    def __init__(self, group: str, shards: int = 64, max_sessions: int = 1000) -> None:
        if not isinstance(group, str) or not group:
            raise ValueError(f"a group is named by a non-empty str, not {group!r}")
        if type(max_sessions) is not int or max_sessions < 1:
            raise ValueError(f"max_sessions must be an int >= 1, not {max_sessions!r}")
        self.group = group
        self.max_sessions = max_sessions
        self.config = Configuration(0, (None,) * shards)
        """The configuration this group is at."""
        self.held: dict[int, _Shard] = {}
        """The shards this group owns and holds."""
        self.pulling: dict[int, tuple[str, int, tuple[str, ...]]] = {}
        """Shards owned but not here yet: shard -> (group, configuration, nodes) to pull from."""
        self.outgoing: dict[tuple[int, int], _Shard] = {}
        """Shards given away: (configuration, shard) -> the shard as that configuration froze it."""
        self.claimed: set[tuple[int, int]] = set()
        """Those of :attr:`outgoing` that a taken configuration gave to another group."""
        self.confirming: dict[tuple[int, int], tuple[str, tuple[str, ...]]] = {}
        """Shards installed here: (configuration, shard) -> (group, nodes) to tell to delete it."""
        self._shards: dict[str, int] = {}  # key -> shard: a cache of shard_of, bounded
        self.last_holder: dict[int, tuple[str, int, tuple[str, ...]]] = {}
        """Shard -> (group, configuration, nodes): who last gave it away, and when (rule 4)."""

    # -- what a subclass says ---------------------------------------------------------

    def new_shard(self) -> Any:
        """A fresh, empty machine for one shard (with ``apply``, ``snapshot``, ``restore``)."""
        raise NotImplementedError

    @staticmethod
    def key_of(operation: Any) -> str | bytes | int:
        """The key ``operation`` acts on (raise ``ValueError`` or ``TypeError`` if none).

        A static method: clients route by it too (the sharded client takes it
        as its ``key_of``), and must put every operation in the shard the
        machine does.
        """
        raise NotImplementedError

    # -- the state machine --------------------------------------------------------------

    def apply(self, operation: Any) -> Any:
        """Apply one operation (see the module documentation); ``["error", text]`` if malformed."""
        try:
            return self._apply(operation)
        except ShardingError as error:
            return ["error", str(error)]
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as error:
            # A malformed value the checks above missed: every replica refuses it the
            # same way, rather than failing on it at every replay of the log.
            return ["error", f"{operation!r:.200} is malformed: {type(error).__name__}: {error}"]

    def is_read_only(self, operation: Any) -> bool:
        """``export`` and ``status`` only read."""
        return isinstance(operation, list | tuple) and operation[:1] in (
            ["export"],
            ["status"],
            ("export",),
            ("status",),
        )

    def query(self, operation: Any) -> Any:
        """Run a read-only operation; what :meth:`apply` would return."""
        return self.apply(operation)

    def _apply(self, operation: Any) -> Any:
        if type(operation) is list and len(operation) == 5 and operation[0] == "op":
            return self._op(*operation[1:])  # the common case, first
        if not isinstance(operation, list | tuple) or not operation:
            raise ShardingError(f"an operation is [name, ...], not {operation!r}")
        name, args = operation[0], list(operation[1:])
        handler = _OPERATIONS.get(name) if isinstance(name, str) else None
        if handler is None:
            raise ShardingError(
                f"a sharded group has no operation {name!r}; it knows {', '.join(_OPERATIONS)}"
            )
        low, high = _ARITY[name]
        if not low <= len(args) <= high:
            raise ShardingError(f"{name} takes {low} arguments, not {len(args)}: {args!r}")
        return getattr(self, handler)(*args)  # by name: a subclass may extend one

    def _op(self, client: Any, routed: Any, seq: Any, op: Any) -> list[Any]:
        num = self.config.num
        if not isinstance(client, str) or not client:
            raise ShardingError(f"a client id is a non-empty str, not {client!r}")
        if type(seq) is not int or seq < 1:
            raise ShardingError(f"a sequence number is an int >= 1, not {seq!r}")
        try:
            key = self.key_of(op)
            shard = self._shards.get(key) if type(key) is str else None
            if shard is None:
                shard = shard_of(key, len(self.config.shards))
                if type(key) is str:
                    if len(self._shards) >= _SHARD_CACHE:
                        self._shards.clear()  # a bound; refilled by the keys in use
                    self._shards[key] = shard
        except (TypeError, ValueError, IndexError, KeyError) as error:
            raise ShardingError(f"no key in operation {op!r}: {error}") from None
        if routed != shard:
            raise ShardingError(
                f"the client routed {op!r:.100} by shard {routed!r}, but its key is in shard "
                f"{shard} here: give the client the machine's key_of"
            )
        if self.config.shards[shard] != self.group:
            return ["wrong_group", num]
        held = self.held.get(shard)
        if held is None:
            return ["not_ready", num]
        sessions = held.sessions
        session = sessions.get(client)
        if session is not None:
            if seq < session[0]:
                raise ShardingError(
                    f"client {client} sent operation {seq} after {session[0]} on shard {shard}"
                )
            if seq == session[0]:
                return ["ok", session[1]]  # ran before (here, or at the group it came from)
            del sessions[client]  # back in at the end: the most recently active
        elif seq != 1:
            return ["expired", num]
        result = held.machine.apply(op)
        if len(sessions) >= self.max_sessions:
            del sessions[next(iter(sessions))]
        sessions[client] = (seq, result)
        return ["ok", result]

    def _config(self, value: Any) -> Configuration:
        config = Configuration.from_value(value)
        if len(config.shards) != len(self.config.shards):
            raise ShardingError(
                f"configuration {config.num} has {len(config.shards)} shards, this group "
                f"{len(self.config.shards)}"
            )
        return config

    def _take(self, value: Any) -> list[Any]:
        config = self._config(value)
        current = self.config
        if config.num != current.num + 1 or self.pulling:
            return ["skipped", current.num]
        me, num = self.group, config.num
        for shard, (old, new) in enumerate(zip(current.shards, config.shards, strict=True)):
            holder = self.last_holder.get(shard)
            if old is None and holder is not None and holder[0] == me and new not in (None, me):
                self.claimed.add((holder[1], shard))  # unassigned here, now given to another
            if old == new:
                continue
            if old is not None:
                # Who holds it from now on (rule 4): the group that gives it away.
                holder = self.last_holder[shard] = (old, num, tuple(current.groups[old]))
            if old == me:
                self.outgoing[(num, shard)] = self.held.pop(shard)
                if new is not None:
                    self.claimed.add((num, shard))
            elif new == me:
                if holder is None:
                    self.held[shard] = _Shard(self.new_shard(), {})  # never had an owner
                elif holder[0] == me:
                    # Unassigned since this group gave it away: it is still here.
                    self.held[shard] = self.outgoing.pop((holder[1], shard))
                else:
                    self.pulling[shard] = holder
        self.config = config
        return ["taken", num]

    def _adopt(self, value: Any) -> list[Any]:
        config = self._config(value)
        fresh = not (self.held or self.outgoing or self.pulling or self.confirming)
        if self.config.num != 0 or not fresh or self.group in config.shards:
            return ["skipped", self.config.num]
        self.config = config
        self.last_holder = dict(config.holders)
        return ["taken", config.num]

    def _install(self, num: Any, shard: Any, payload: Any) -> list[Any]:
        # ``num`` is the configuration that gave the shard away (its key at the group
        # that held it), which is this group's current one unless the shard was
        # unassigned for a while.
        source = self.pulling.get(shard) if type(shard) is int else None
        if source is None or source[1] != num:
            return ["skipped", self.config.num]  # a late or repeated install
        try:
            if payload["num"] != num or payload["shard"] != shard:
                raise ValueError(
                    f"it is shard {payload['shard']} of configuration {payload['num']}"
                )
            machine = self.new_shard()
            machine.restore(payload["state"])
            sessions = {str(c): (int(seq), result) for c, seq, result in payload["sessions"]}
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ShardingError(
                f"shard {shard} of configuration {num} does not decode: {error}"
            ) from None
        del self.pulling[shard]
        self.held[shard] = _Shard(machine, sessions)
        self.confirming[(num, shard)] = (source[0], source[2])
        return ["installed", self.config.num]

    def _export(self, num: Any, shard: Any) -> list[Any]:
        key = _position(num, shard)
        held = self.outgoing.get(key)
        if held is not None:
            state = held.machine.snapshot()
            sessions = [[c, seq, result] for c, (seq, result) in held.sessions.items()]
            return ["shard", {"num": num, "shard": shard, "state": state, "sessions": sessions}]
        if num > self.config.num:
            return ["not_yet", self.config.num]
        return ["gone", self.config.num]

    def _delete(self, num: Any, shard: Any) -> list[Any]:
        key = _position(num, shard)
        if num > self.config.num or (key in self.outgoing and key not in self.claimed):
            return ["not_yet", self.config.num]  # no taken configuration gave it away yet
        self.outgoing.pop(key, None)
        self.claimed.discard(key)
        return ["deleted", self.config.num]

    def _confirmed(self, num: Any, shard: Any) -> list[Any]:
        self.confirming.pop(_position(num, shard), None)
        return ["confirmed", self.config.num]

    def _status(self) -> list[Any]:
        return [
            "status",
            {
                "num": self.config.num,
                "pulling": [
                    [shard, group, num, list(nodes)]
                    for shard, (group, num, nodes) in sorted(self.pulling.items())
                ],
                "confirming": [
                    [num, shard, group, list(nodes)]
                    for (num, shard), (group, nodes) in sorted(self.confirming.items())
                ],
                "held": sorted(self.held),
                "outgoing": [[num, shard] for num, shard in sorted(self.outgoing)],
            },
        ]

    # -- snapshots ------------------------------------------------------------------------

    def snapshot(self) -> Any:
        """The whole state as a message value."""

        def shard(held: _Shard) -> list[Any]:
            return [held.machine.snapshot(), [[c, s, r] for c, (s, r) in held.sessions.items()]]

        return {
            "config": self.config.to_value(),
            "held": [[s, shard(h)] for s, h in self.held.items()],
            "pulling": [[s, g, n, list(nodes)] for s, (g, n, nodes) in self.pulling.items()],
            "outgoing": [[n, s, shard(h)] for (n, s), h in self.outgoing.items()],
            "confirming": [
                [n, s, g, list(nodes)] for (n, s), (g, nodes) in self.confirming.items()
            ],
            "claimed": sorted([n, s] for n, s in self.claimed),
            "last_holder": [
                [s, g, n, list(nodes)] for s, (g, n, nodes) in self.last_holder.items()
            ],
        }

    def restore(self, snapshot: Any) -> None:
        """Replace the state with one :meth:`snapshot` returned."""

        def shard(value: list[Any]) -> _Shard:
            machine = self.new_shard()
            machine.restore(value[0])
            return _Shard(machine, {c: (s, r) for c, s, r in value[1]})

        self.config = Configuration.from_value(snapshot["config"])
        self.held = {s: shard(h) for s, h in snapshot["held"]}
        self.pulling = {s: (g, n, tuple(nodes)) for s, g, n, nodes in snapshot["pulling"]}
        self.outgoing = {(n, s): shard(h) for n, s, h in snapshot["outgoing"]}
        self.confirming = {(n, s): (g, tuple(nodes)) for n, s, g, nodes in snapshot["confirming"]}
        self.last_holder = {s: (g, n, tuple(nodes)) for s, g, n, nodes in snapshot["last_holder"]}
        self.claimed = {(n, s) for n, s in snapshot["claimed"]}


_SHARD_CACHE = 65_536
"""Keys whose shard a group remembers (BLAKE2b per operation costs more than a lookup)."""

_ARITY = {
    "op": (4, 4),
    "config": (1, 1),
    "adopt": (1, 1),
    "install": (3, 3),
    "export": (2, 2),
    "delete": (2, 2),
    "confirmed": (2, 2),
    "status": (0, 0),
}

_OPERATIONS: dict[str, str] = {
    "op": "_op",
    "config": "_take",
    "adopt": "_adopt",
    "install": "_install",
    "export": "_export",
    "delete": "_delete",
    "confirmed": "_confirmed",
    "status": "_status",
}


def _position(num: Any, shard: Any) -> tuple[int, int]:
    if type(num) is not int or type(shard) is not int:
        raise ShardingError(
            f"a shard is named by (configuration, shard) ints, not {num!r}, {shard!r}"
        )
    return num, shard


Action = tuple[Any, ...]
"""One thing a group's shard mover should do (see :func:`next_actions`)."""


def next_actions(status: Mapping[str, Any]) -> list[Action]:
    """What moves a group's shards on, given its ``["status"]`` result's dict.

    - ``("pull", group, nodes, n, shard)``: export ``(n, shard)`` from
      ``group`` and install it here;
    - ``("delete", group, nodes, n, shard)``: tell ``group`` to delete
      ``(n, shard)``, then confirm it here;
    - ``("next", n)``: fetch configuration ``n`` from the shard manager and
      take it here (only when nothing is left to pull, rule 1).
    """
    actions: list[Action] = []
    for shard, group, num, nodes in status["pulling"]:
        actions.append(("pull", group, tuple(nodes), num, shard))
    for num, shard, group, nodes in status["confirming"]:
        actions.append(("delete", group, tuple(nodes), num, shard))
    if not status["pulling"]:
        actions.append(("next", status["num"] + 1))
    return actions
