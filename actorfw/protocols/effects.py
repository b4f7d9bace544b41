"""The contract between a sans-IO protocol core and the driver that runs it.

A *core* (the Paxos roles, a causal broadcast member, a shard manager, a
primary or a backup) is a plain object: messages and the time come in as
arguments, and every step returns :class:`Effects`, the list of what the
step asks of the world. It never touches a socket, a clock or a disk. A
*driver* (:class:`actorfw.services.driver.CoreActor`) carries the effects
out; written once, it gives every core the same guarantees.

The rules, stated here once for every core and every driver:

1. **Persist.** A step's ``persist`` records are written to the core's
   storage in one atomic batch before anything else of the step is done.
2. **Send after durable.** A step's ``send`` messages leave only once
   everything written so far (this step's records and every earlier
   step's) is durable, and the ``send`` of all steps leave in step order.
   This is the default for a message: one that reports state (a vote, a
   promise, an acknowledgement) must not leave before that state would
   survive a crash.
3. **Send now.** A step's ``send_now`` messages leave at the end of the
   step, without waiting for any write. A core puts a message here only if
   it is true whatever happens to the records not yet durable: a replica's
   proposal that carries the progress already durable, a note to a local
   actor of who leads.
4. **Responses now.** A step's ``responses`` (answers to clients' asks)
   are answered at the end of the step, without waiting for any write. A
   core puts a response here only when what it reports no longer depends
   on this node's unwritten records (a Paxos command is chosen, so it is
   durable on a quorum of acceptors already). A core whose answers depend
   on its own records reports them in ``outputs``.
5. **Outputs after durable.** A step's ``outputs`` (what the core reports
   to its own application: deliveries, answers that rest on its records)
   are handed to the driver with the step's ``send``, under rule 2.
6. **Refusals.** A step's ``refused`` inputs were bad (from a peer that is
   not a member, malformed beyond what the codec checks): the driver logs
   and counts them; nothing waits for them.
7. **Time.** After every step the driver asks the core for its
   ``next_deadline()`` and keeps one timer for it; when it fires the driver
   calls ``tick(now)``.
8. **Durability reports.** A core that needs to know what is durable (to
   send now only what is, rule 3) has ``made_durable(steps)``: the driver
   calls it when the records of the first ``steps`` steps that persisted
   anything (counted from the core's restore) have become durable, and
   with 0 when the records the core was restored from are (an actor
   restarted in a living process reads back writes that may not be).
9. **Restart.** A core is rebuilt from the records its driver reads back
   from storage; whatever was durable is restored, and a step whose records
   were not durable never happened.
10. **Sync now.** A driver syncs only when something waits for the sync
    (rule 2); a step whose records will soon be waited for, but whose
    ``send`` and ``outputs`` are empty, sets ``sync``: its records (and
    every earlier step's) are synced at once. A primary that ships its
    writes with ``send_now`` does, so that its own fsync runs beside its
    backups' rather than after their answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["Core", "Effects", "RecordCodec"]


@dataclass(slots=True)
class Effects:
    """What one step of a core asks of its driver (the rules of the module documentation).

    Attributes:
        persist: records to write at once, in one atomic batch (rule 1).
        send: ``(address, message)`` pairs to send once everything written
            so far is durable, in step order (rule 2).
        responses: answers to clients, answered at the end of the step (rule 4).
        send_now: ``(address, message)`` pairs sent at the end of the step (rule 3).
        outputs: reports to the core's own application, handed over with
            ``send`` (rule 5).
        refused: bad inputs, for the driver to log and count (rule 6).
        sync: sync this step's records at once, though nothing waits for them (rule 10).
    """

    persist: list[Any] = field(default_factory=list)
    send: list[tuple[str, Any]] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)
    send_now: list[tuple[str, Any]] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    refused: list[Any] = field(default_factory=list)
    sync: bool = False

    def __bool__(self) -> bool:
        return bool(
            self.persist
            or self.send
            or self.responses
            or self.send_now
            or self.outputs
            or self.refused
        )

    def extend(self, other: Effects) -> None:
        """Append ``other``'s effects after these (each rule holds for both, in order)."""
        self.persist.extend(other.persist)
        self.send.extend(other.send)
        self.responses.extend(other.responses)
        self.send_now.extend(other.send_now)
        self.outputs.extend(other.outputs)
        self.refused.extend(other.refused)
        self.sync = self.sync or other.sync


@runtime_checkable
class Core(Protocol):
    """What a driver needs of a core (see the module documentation).

    A core may also have ``start(now) -> Effects`` (the driver's first step
    after a restore) and ``made_durable(steps)`` (rule 8); the driver calls
    them only where they exist. How a core is built from its records is the
    core's own business: the driver's ``restore`` hook does it.
    """

    def handle_all(self, messages: list[Any], now: float) -> Effects:
        """Take ``messages`` (in order) at time ``now``: one step."""
        ...

    def tick(self, now: float) -> Effects:
        """Do what is due at ``now``: one step."""
        ...

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`tick` has work to do (None: only messages wake it)."""
        ...


class RecordCodec(Protocol):
    """How a core's records map to storage keys and back (rule 9)."""

    def ops(self, record: Any) -> Iterable[tuple[bytes, bytes | None]]:
        """The writes a record stands for: ``(key, value)``, a ``None`` value deleting the key."""
        ...

    def load(self, items: Iterable[tuple[bytes, bytes]]) -> list[Any]:
        """The records that storage holding ``items`` (key order) stands for."""
        ...
