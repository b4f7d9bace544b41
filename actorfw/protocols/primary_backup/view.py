"""The configuration service's state machine: one group's view, its elections and its lease.

A primary-backup group's **view** is its epoch, its primary, its backups
and which of them are in sync. It lives in a small Multi-Paxos group
(:class:`ViewMachine` replicated with :func:`~actorfw.replicate`), so that
every decision about it is made once, in one order. The machine is
deterministic: it reads no clock. Time enters through the members, by the
rule of the lease below.

Operations (lists); each answers ``["view", view]`` when it changed the
view or was allowed, and ``["refused", text, view]`` when it was not
(nothing changed), ``view`` being the current view as a dict (see
:meth:`View.to_value`):

======================================  =============================================
operation                               what it does
======================================  =============================================
``["view"]`` (read-only)                nothing: the current view
``["report", node, epoch, position]``   ``node``'s log ends at ``position``, its last
                                        entry of ``epoch``: what elections compare
``["renew", epoch, primary]``           the primary of ``epoch`` renews its lease:
                                        the view's ``grants`` counter rises
``["elect", node, epoch, grants]``      ``node`` saw the view at ``epoch`` with
                                        ``grants`` and no renewal since for a lease
                                        and the drift bound: elect a new primary
``["sync", epoch, primary, in_sync]``   the primary of ``epoch`` sets the in-sync
                                        backups (drops a lagging one, adds one that
                                        caught up)
``["switch", epoch, primary, node]``    the primary of ``epoch`` hands over to the
                                        in-sync backup ``node`` (planned switchover)
======================================  =============================================

The rules:

1. **Epochs only rise**, by one per election or switchover, and every
   epoch has one primary. Operations of a primary name its epoch; one that
   names another epoch or primary is refused (a deposed primary learns the
   new view from the refusal).
2. **The lease.** The primary renews its lease with ``renew``; each
   renewal raises ``grants``. The primary counts its lease from the moment
   it *sent* the renewal and stops acknowledging writes at the lease's end
   less the drift bound (:class:`~actorfw.protocols.primary_backup.Primary`,
   rule 6). A member that wants a new primary proposes ``elect`` with the
   epoch and ``grants`` it saw, after a lease and the drift bound have
   passed on its own clock *since it saw them* with nothing newer. The
   machine elects only if the view is still exactly that (same epoch, same
   ``grants``): then no renewal committed since, and the old primary's
   lease, counted from before its last renewal committed, ended before the
   candidate's wait did. So two primaries never acknowledge at once,
   whatever the order in which ``renew`` and ``elect`` commit. A new
   epoch starts with no lease (``grants`` 0): its primary renews before it
   acknowledges anything, so a lease is never counted from the election,
   which the new primary learns of only after it committed.
3. **Who is elected**: of the in-sync members (the backups in sync, and
   the primary too at start-up, when there is none), the one with the
   highest reported ``(epoch, position)``, ties broken by node name. In
   ``sync`` mode every in-sync backup holds every acknowledged write; the
   highest one has the fewest entries to copy. The new view's in-sync
   backups are the other in-sync members; the old primary is out of sync
   until it rejoins. With no in-sync member the election is refused: no
   member is known to hold every acknowledged write.
4. **In sync** changes only at the primary's request, in its epoch, and
   only to backups of the group. A backup leaves the set before the
   primary acknowledges anything without it (the primary waits for the
   ``view`` answer), and joins it once it has caught up.
5. **Switchover** is an election the primary asks for: it names an in-sync
   backup, and stops acknowledging before it asks (its lease is of no use
   after the new epoch starts). The new epoch's primary is that backup.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

__all__ = ["View", "ViewError", "ViewMachine"]


class ViewError(ValueError):
    """A malformed view operation."""


@dataclasses.dataclass(frozen=True)
class View:
    """A primary-backup group's view (see the module documentation).

    Attributes:
        epoch: the epoch (0: none elected yet).
        primary: its primary ("" before the first election).
        in_sync: the backups in sync, sorted.
        grants: the lease renewals of this epoch so far.
    """

    epoch: int
    primary: str
    in_sync: tuple[str, ...]
    grants: int

    def to_value(self) -> dict[str, Any]:
        """The view as a message value."""
        return {
            "epoch": self.epoch,
            "primary": self.primary,
            "in_sync": list(self.in_sync),
            "grants": self.grants,
        }


class ViewMachine:
    """One group's view as a deterministic state machine (see the module documentation).

    Args:
        members: the group's nodes; every one starts in sync, none primary.
    """

    def __init__(self, members: Iterable[str]) -> None:
        names = list(members)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"a group's members are non-empty strs, not {names!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"a group names a member twice: {names!r}")
        self.members = tuple(sorted(names))
        self.view = View(0, "", self.members, 0)
        self.reports: dict[str, tuple[int, int]] = {}
        """Each member's last reported (epoch, position) of its log's end."""

    # -- the state machine --------------------------------------------------------------

    def apply(self, operation: Any) -> Any:
        """Apply one operation; ``["view", view]``, ``["refused", text, view]`` or an error."""
        try:
            return self._apply(operation)
        except ViewError as error:
            return ["error", str(error)]

    def is_read_only(self, operation: Any) -> bool:
        """``view`` only reads."""
        return isinstance(operation, list | tuple) and operation[:1] in (["view"], ("view",))

    def query(self, operation: Any) -> Any:
        """Run a read-only operation."""
        return self.apply(operation)

    def _apply(self, operation: Any) -> Any:
        if not isinstance(operation, list | tuple) or not operation:
            raise ViewError(f"an operation is [name, ...], not {operation!r}")
        name, args = operation[0], list(operation[1:])
        arity = _ARITY.get(name) if isinstance(name, str) else None
        if arity is None:
            raise ViewError(f"no operation {name!r}; known: {', '.join(_ARITY)}")
        if len(args) != arity:
            raise ViewError(f"{name} takes {arity} arguments, not {len(args)}: {args!r}")
        handler = getattr(self, f"_{name}")
        result: Any = handler(*args)
        return result

    def _answer(self) -> list[Any]:
        return ["view", self.view.to_value()]

    def _refused(self, text: str) -> list[Any]:
        return ["refused", text, self.view.to_value()]

    def _member(self, node: Any) -> str:
        if node not in self.members:
            raise ViewError(f"{node!r} is not a member ({', '.join(self.members)})")
        return str(node)

    def _count(self, value: Any, what: str) -> int:
        if type(value) is not int or value < 0:
            raise ViewError(f"{what} is an int >= 0, not {value!r}")
        return value

    def _current(self, epoch: Any, primary: Any) -> str | None:
        """Why (epoch, primary) is not the current view's (None: it is; rule 1)."""
        view = self.view
        if epoch != view.epoch or primary != view.primary or not view.primary:
            return (
                f"epoch {epoch!r} of {primary!r} is not the current one "
                f"(epoch {view.epoch}, primary {view.primary or 'none'})"
            )
        return None

    # -- operations -------------------------------------------------------------------

    def _view(self) -> list[Any]:
        return self._answer()

    def _report(self, node: Any, epoch: Any, position: Any) -> list[Any]:
        node = self._member(node)
        self.reports[node] = (self._count(epoch, "an epoch"), self._count(position, "a position"))
        return self._answer()

    def _renew(self, epoch: Any, primary: Any) -> list[Any]:
        why = self._current(epoch, primary)
        if why is not None:
            return self._refused(why)
        self.view = dataclasses.replace(self.view, grants=self.view.grants + 1)
        return self._answer()

    def _elect(self, node: Any, epoch: Any, grants: Any) -> list[Any]:
        self._member(node)
        view = self.view
        if epoch != view.epoch or grants != view.grants:
            return self._refused(
                f"the view changed since {node} saw epoch {epoch!r} with {grants!r} grants"
            )
        candidates = set(view.in_sync)
        if not view.primary:
            candidates |= set(self.members)  # the first election: everyone is in sync
        candidates.discard(view.primary)
        if not candidates:
            return self._refused("no in-sync backup to elect: none is known to hold every write")
        chosen = max(sorted(candidates), key=lambda n: self.reports.get(n, (0, 0)))
        return self._start(chosen, candidates - {chosen})

    def _sync(self, epoch: Any, primary: Any, in_sync: Any) -> list[Any]:
        why = self._current(epoch, primary)
        if why is not None:
            return self._refused(why)
        if not isinstance(in_sync, list | tuple):
            raise ViewError(f"in_sync is a list of backups, not {in_sync!r}")
        backups = {self._member(b) for b in in_sync}
        if self.view.primary in backups:
            raise ViewError(f"the primary {self.view.primary} is not one of its backups")
        self.view = dataclasses.replace(self.view, in_sync=tuple(sorted(backups)))
        return self._answer()

    def _switch(self, epoch: Any, primary: Any, node: Any) -> list[Any]:
        why = self._current(epoch, primary)
        if why is not None:
            return self._refused(why)
        node = self._member(node)
        if node not in self.view.in_sync:
            return self._refused(f"{node} is not in sync: it may lack acknowledged writes")
        return self._start(node, set(self.view.in_sync) - {node})

    def _start(self, primary: str, in_sync: set[str]) -> list[Any]:
        # A new epoch with no lease yet: its primary renews before it acknowledges
        # anything, and counts its lease from sending that renewal (rule 2).
        self.view = View(self.view.epoch + 1, primary, tuple(sorted(in_sync)), 0)
        return self._answer()

    # -- snapshots ------------------------------------------------------------------------

    def snapshot(self) -> Any:
        """The whole state as a message value."""
        return {
            "members": list(self.members),
            "view": self.view.to_value(),
            "reports": [[n, e, p] for n, (e, p) in sorted(self.reports.items())],
        }

    def restore(self, snapshot: Any) -> None:
        """Replace the state with one :meth:`snapshot` returned."""
        self.members = tuple(snapshot["members"])
        view = snapshot["view"]
        self.view = View(view["epoch"], view["primary"], tuple(view["in_sync"]), view["grants"])
        self.reports = {n: (e, p) for n, e, p in snapshot["reports"]}


_ARITY = {"view": 0, "report": 3, "renew": 2, "elect": 3, "sync": 3, "switch": 3}
