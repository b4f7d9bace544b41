"""The configuration service's state machine: one group's view, its elections and its lease.

A primary-backup group's **view** is its epoch, its primary, its backups
and which of them are in sync. It lives in a small Multi-Paxos group
(:class:`ViewMachine` replicated with :func:`~actorfw.replicate`), so that
every decision about it is made once, in one order. The machine is
deterministic: it reads no clock. Time enters through the members, by the
rule of the lease below.

Operations (lists); each answers ``["view", view]`` when it changed the
view or was allowed, ``["refused", text, view]`` when it was not (nothing
changed), and ``["error", text]`` when it is malformed (nothing changed),
``view`` being the current view as a dict (see :meth:`View.to_value`):

==========================================  =========================================
operation                                   what it does
==========================================  =========================================
``["view"]`` (read-only)                    nothing: the current view
``["report", node, epoch, position]``       ``node``'s log ends at ``position``, its
                                            last entry of ``epoch``: what elections
                                            compare
``["renew", epoch, primary]``               the primary of ``epoch`` renews its
                                            lease: the view's ``grants`` rises
``["elect", node, epoch, grants]``          ``node`` saw the view at ``epoch`` with
                                            ``grants`` and no renewal since for a
                                            lease and the drift bound: elect a new
                                            primary
``["sync", epoch, primary, grants, set]``   the primary sets the in-sync backups
``["switch", epoch, primary, grants, node]`` the primary hands over to the in-sync
                                            backup ``node`` (planned switchover)
==========================================  =========================================

The rules:

1. **Epochs only rise**, by one per election or switchover, and every
   epoch has one primary. Operations of a primary name its epoch *and the
   grants it last saw*; one that names another epoch, primary or grants is
   refused (a deposed primary learns the new view from the refusal). The
   grants are a fencing token: a ``sync`` or ``switch`` sent before a
   renewal that committed first (by an earlier incarnation of the primary,
   or held up in the log) cannot take effect after it.
2. **The lease.** The primary renews its lease with ``renew``; each
   renewal raises ``grants``. The primary counts its lease from the moment
   it *first sent* that renewal (a retry of it counts from the first send)
   and stops acknowledging writes at the lease's end less the drift bound
   (:class:`~actorfw.protocols.primary_backup.Primary`, rule 6). A member
   that wants a new primary proposes ``elect`` with the epoch and
   ``grants`` it saw, after a lease and the drift bound have passed on its
   own clock *since it saw them* with nothing newer. The machine elects
   only if the view is still exactly that (same epoch, same ``grants``):
   then no renewal committed since, and the old primary's lease, counted
   from before its last renewal committed, ended before the candidate's
   wait did. So two primaries never acknowledge at once, whatever the
   order in which ``renew`` and ``elect`` commit. A new epoch starts with
   no lease (``grants`` 0): its primary renews before it acknowledges
   anything, so a lease is never counted from the election, which the new
   primary learns of only after it committed.
3. **Who is elected.** The members known to hold every acknowledged write
   are the in-sync backups and the primary (at the first election, every
   member: nothing was acknowledged yet); and when the epoch ends without
   a single renewal, nothing was acknowledged in it, so also those known
   at its start. Of these, the ones other than the current primary are
   preferred (it is presumably gone); the one with the highest reported
   ``(epoch, position)`` wins, ties to the first name. Only if none is
   left is the current primary elected again, in a new epoch, so that a
   group whose only in-sync member is its primary waits for it rather than
   losing its writes. The new view's in-sync backups are the other
   preferred members; the old primary is out of sync until it rejoins.
4. **In sync** changes only at the primary's request (rule 1). It keeps
   its own set ahead of the view's, so that every in-sync backup of the
   view holds every write it acknowledged: to add a backup it first waits
   for that backup's acknowledgements too, then proposes the add; to drop
   one it proposes the drop and stops waiting for it only once the drop
   is in the view.
5. **Switchover** is an election the primary asks for, fenced like any of
   its operations (rule 1): it stops acknowledging, then asks; if it is
   refused it renews and goes on. The new epoch's primary is the in-sync
   backup it named.

Trust and limits: the members are trusted (a report is taken as sent; a
late report of an earlier incarnation can lower a node's position, which
in ``async`` mode may elect a node further behind). The members are fixed
when the machine is made, and the service must not be made again for a
group that exists: its epochs would start over below those the backups
have seen.
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
        self.holders: tuple[str, ...] = self.members
        """The members known, at the current epoch's start, to hold every acknowledged write."""

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

    def _current(self, epoch: Any, primary: Any, grants: Any = None) -> str | None:
        """Why a primary's (epoch, primary, grants) is not the current view's (rule 1)."""
        view = self.view
        if epoch != view.epoch or primary != view.primary or not view.primary:
            return (
                f"epoch {epoch!r} of {primary!r} is not the current one "
                f"(epoch {view.epoch}, primary {view.primary or 'none'})"
            )
        if grants is not None and grants != view.grants:
            return f"sent after {grants!r} grants, but there have been {view.grants} since"
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
        known = set(view.in_sync) | ({view.primary} if view.primary else set(self.members))
        if view.epoch and view.grants == 0:
            known |= set(self.holders)  # nothing acknowledged in this epoch (rule 3)
        candidates = known - {view.primary} or known
        chosen = max(sorted(candidates), key=lambda n: self.reports.get(n, (0, 0)))
        self.holders = tuple(sorted(known))
        return self._start(chosen, candidates - {chosen})

    def _sync(self, epoch: Any, primary: Any, grants: Any, in_sync: Any) -> list[Any]:
        why = self._current(epoch, primary, grants)
        if why is not None:
            return self._refused(why)
        if not isinstance(in_sync, list | tuple):
            raise ViewError(f"in_sync is a list of backups, not {in_sync!r}")
        backups = {self._member(b) for b in in_sync}
        if self.view.primary in backups:
            raise ViewError(f"the primary {self.view.primary} is not one of its backups")
        self.view = dataclasses.replace(self.view, in_sync=tuple(sorted(backups)))
        return self._answer()

    def _switch(self, epoch: Any, primary: Any, grants: Any, node: Any) -> list[Any]:
        why = self._current(epoch, primary, grants)
        if why is not None:
            return self._refused(why)
        node = self._member(node)
        if node not in self.view.in_sync:
            return self._refused(f"{node} is not in sync: it may lack acknowledged writes")
        self.holders = tuple(sorted({*self.view.in_sync, self.view.primary}))
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
            "holders": list(self.holders),
        }

    def restore(self, snapshot: Any) -> None:
        """Replace the state with one :meth:`snapshot` returned (checked first: all or nothing).

        Raises:
            ViewError: ``snapshot`` does not decode; nothing changed.
        """
        try:
            members = tuple(str(m) for m in snapshot["members"])
            value = snapshot["view"]
            view = View(
                int(value["epoch"]),
                str(value["primary"]),
                tuple(str(n) for n in value["in_sync"]),
                int(value["grants"]),
            )
            reports = {str(n): (int(e), int(p)) for n, e, p in snapshot["reports"]}
            holders = tuple(str(n) for n in snapshot["holders"])
        except (KeyError, TypeError, ValueError) as error:
            raise ViewError(f"not a view machine's snapshot: {error}") from None
        self.members, self.view, self.reports, self.holders = members, view, reports, holders


_ARITY = {"view": 0, "report": 3, "renew": 2, "elect": 3, "sync": 4, "switch": 4}
