"""Checkers of the Multi-Paxos invariants, for tests and for simulation runs.

Theory of operation
-------------------

:class:`Invariants` watches a run from outside the roles: after every step
of a role core, the driver (a test harness, or an actor wrapper in the
simulator, where every node lives in one process) hands it the core and
the ``Effects`` the step returned. It keeps its own record of what
acceptors accepted, what leaders proposed and what replicas applied, and
raises :class:`InvariantViolation` the moment one of these breaks:

1. An acceptor's promise never decreases, not even across a crash and
   restart from its persisted records.
2. An acceptor accepts only at or above the promise it held before the step
   (and its promise afterwards covers what it accepted).
3. Under one ballot, at most one batch is ever proposed (p2a) for a slot,
   and an acceptor accepts only a batch that was proposed for that ballot
   and slot.
4. A leader sends p2a under a ballot only once a quorum of acceptors has
   promised that ballot or a higher one (phase 2 follows phase 1).
5. Chosen is forever (Paxos's P2): a batch is *chosen* for a slot when a
   quorum of acceptors accepted it under one ballot. Once chosen at ballot
   ``b``, every pvalue accepted or proposed for that slot at a ballot above
   ``b`` carries the same batch; so at most one batch is chosen per slot.
6. Decided means chosen, and is unique: every batch a leader or replica
   announces as decided for a slot, and every batch a replica applies
   there, is the chosen one; no two replicas ever hold different batches
   for one slot (the central safety property).
7. Replicas apply in slot order with no gaps: ``slot_out`` equals the
   log's first slot (``log_base``) plus the length of the log, never moves
   back (a restart replays the persisted log, which may lack the unsynced
   tail), and each applied slot holds the decided batch. ``slot_out`` may
   jump over slots only by installing a snapshot (rule 11).
8. ``slot_out <= slot_in <= slot_out + window`` at every replica.
9. A leader's ballot never decreases, and each ballot it persists before a
   scout is strictly above the previous one (it never reuses a ballot,
   across crashes either); every ballot it sends carries its own index.
10. Replicas answer alike: the same ``(client, seq)`` gets the same result
    from every replica that answers it through the log (commands run once,
    in one order). Reads served by lease (``Response.by_lease``) are exempt:
    their result is the state when served.
11. Snapshots agree: every snapshot of one slot, taken, persisted or sent
    by any replica, holds the same state and the same sessions; a replica
    jumps over slots only to the slot of a snapshot it persisted in that
    step (or a later one, taken in that step after it).
12. Collection is safe: an acceptor's floor never rises above a slot that
    a majority of replicas had applied (the highest ``slot_out`` seen per
    replica), so every collected slot is decided.
13. A lease is exclusive: a leader grants a read index
    (``ReadIndexReply.granted``) only while fewer than a quorum of
    acceptors promised a ballot above its own. This holds in real time,
    so it is checked only where every node reads one clock (the harness,
    the simulator); skewed clocks beyond ``max_drift`` break it on purpose.

Durability. A driver whose storage may lose writes not yet synced at a
crash (the simulator's, like a real disk) creates the checker with
``lossy_storage=True`` and reports, with :meth:`Invariants.acceptor_sent`,
the messages an acceptor actually sent (once its step's records were
durable), and with :meth:`Invariants.leader_sent` a leader's. A role may
then legally forget, in a crash, what it held only in memory and never
told anyone: rule 1 across a restart compares with the highest promise
the acceptor *revealed*, a vote counts towards "chosen" (rules 5, 6) once
its p2b left, and rule 9 across a restart (:meth:`Invariants.leader_restarted`)
compares with the highest ballot the leader sent. Without it (the
harness, whose writes are durable at once) all count from the step.

Checking costs a Python loop over the slots of each step: meant for tests
and simulations, not for production paths or benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from actorfw.kernels import ballot as kb
from actorfw.protocols.paxos.types import InvariantViolation

if TYPE_CHECKING:
    from actorfw.protocols.paxos.acceptor import Acceptor
    from actorfw.protocols.paxos.leader import Leader
    from actorfw.protocols.paxos.messages import Batch
    from actorfw.protocols.paxos.replica import Replica
    from actorfw.protocols.paxos.types import Config, Effects

__all__ = ["Choices", "InvariantViolation", "Invariants", "format_ballot"]


def format_ballot(ballot: int) -> str:
    """A ballot as ``round.leader`` (``-`` for ``NO_BALLOT``), for messages and scenario files."""
    if ballot == kb.NO_BALLOT:
        return "-"
    return f"{ballot >> kb.LEADER_BITS}.{ballot & kb.MAX_LEADER}"


class Invariants:
    """Watches a run and raises :class:`InvariantViolation` when a rule of the module breaks.

    Args:
        config: the configuration the roles run with.
        replica_window: the replicas' ``window`` (rule 8).
        strict: require every decided batch to be seen chosen by a quorum
            of acceptors (rule 6). Turn off when the checker did not watch
            the acceptors from the start of the run.
        lossy_storage: the driver's storage may lose unsynced writes at a
            crash, and it reports what acceptors sent with
            :meth:`acceptor_sent` (see the module documentation).

    Example::

        checker = Invariants(config, replica_window=options.window)
        effects = acceptor.handle(message)
        checker.acceptor_step("n1", acceptor, effects)
    """

    def __init__(
        self,
        config: Config,
        replica_window: int,
        *,
        strict: bool = True,
        lossy_storage: bool = False,
    ) -> None:
        self.config = config
        self.window = replica_window
        self.strict = strict
        self.lossy_storage = lossy_storage
        self._revealed: dict[str, int] = {}
        self._leader_revealed: dict[str, int] = {}
        self._promised: dict[str, int] = {}
        self._choices = Choices(config.quorum, strict=strict)
        self._slot_out: dict[str, int] = {}
        self._leader_ballot: dict[str, int] = {}
        self._scout_ballot: dict[str, int] = {}
        self._answers: dict[tuple[str, int], Any] = {}
        self._phase2_ballots: set[int] = set()
        self._snapshots: dict[int, tuple[Any, Any]] = {}
        self._applied_max: dict[str, int] = {}
        self._floors: dict[str, int] = {}
        self.steps = 0
        """How many steps were checked."""

    # -- views ---------------------------------------------------------------------------

    def chosen(self) -> dict[int, tuple[int, Batch]]:
        """Slot -> ``(ballot, batch)`` of the first quorum seen accepting it."""
        return dict(self._choices.chosen)

    def decided(self) -> dict[int, Batch]:
        """Slot -> the batch announced or applied as decided there."""
        return dict(self._choices.decided)

    def answers(self) -> dict[tuple[str, int], Any]:
        """``(client, seq)`` -> the result replicas answered."""
        return dict(self._answers)

    # -- acceptors -----------------------------------------------------------------------

    def acceptor_step(self, name: str, acceptor: Acceptor, effects: Effects) -> None:
        """Check one acceptor step (rules 1, 2, 3, 5, 12)."""
        from actorfw.protocols.paxos.records import Accepted, Collected

        self.steps += 1
        before = self._promised.get(name, kb.NO_BALLOT)
        after = acceptor.promised
        if after < before:
            raise InvariantViolation(
                f"rule 1: acceptor {name} lowered its promise from {format_ballot(before)} "
                f"to {format_ballot(after)}"
            )
        self._promised[name] = after
        for record in effects.persist:
            if isinstance(record, Collected):
                self._check_floor(name, record.floor)
                continue
            if not isinstance(record, Accepted):
                continue
            ballot = record.ballot
            if ballot < before:
                raise InvariantViolation(
                    f"rule 2: acceptor {name} accepted slots {record.slots.tolist()[:8]} at "
                    f"ballot {format_ballot(ballot)} below its promise {format_ballot(before)}"
                )
            if after < ballot:
                raise InvariantViolation(
                    f"rule 2: acceptor {name} accepted at {format_ballot(ballot)} but promises "
                    f"only {format_ballot(after)}"
                )
            for slot, batch in zip(record.slots.tolist(), record.batches, strict=True):
                self._choices.accepted(name, ballot, slot, batch, vote=not self.lossy_storage)

    def acceptor_sent(self, name: str, messages: Iterable[Any]) -> None:
        """Messages acceptor ``name`` actually sent, its step's records durable (``lossy_storage``).

        Records the promises they reveal (p1b, p2b, lease grants) and counts
        the votes of its p2b (rules 1, 5, 6).
        """
        from actorfw.protocols.paxos.messages import LeaseGrant, P1b, P2b

        revealed = self._revealed.get(name, kb.NO_BALLOT)
        for message in messages:
            kind = type(message)
            if kind is P1b or kind is P2b or kind is LeaseGrant:
                revealed = max(revealed, message.ballot)
            if kind is P2b and self.lossy_storage:
                ballot = message.ballot
                for slot in message.slots.tolist():
                    batch = self._choices.proposed_batches.get((slot, ballot))
                    if batch is not None:  # (rule 3 was checked when it accepted)
                        self._choices.vote(name, ballot, slot, batch)
        self._revealed[name] = revealed

    def acceptor_restarted(self, name: str, acceptor: Acceptor) -> None:
        """Check an acceptor rebuilt from its records: it must promise what it promised (rule 1).

        With ``lossy_storage``: at least what it revealed before the crash.
        """
        if self.lossy_storage:
            before = self._revealed.get(name, kb.NO_BALLOT)
        else:
            before = self._promised.get(name, kb.NO_BALLOT)
        if acceptor.promised < before:
            raise InvariantViolation(
                f"rule 1: acceptor {name} restarted with promise "
                f"{format_ballot(acceptor.promised)}, below the {format_ballot(before)} it "
                "promised before the crash"
            )
        self._promised[name] = acceptor.promised

    def _check_floor(self, name: str, floor: int) -> None:
        """Rule 12: a floor only below what a majority of replicas applied."""
        majority = len(self.config.replicas) // 2 + 1
        applied = sorted(self._applied_max.values(), reverse=True)
        safe = applied[majority - 1] if len(applied) >= majority else 0
        if floor > safe:
            raise InvariantViolation(
                f"rule 12: acceptor {name} collected below {floor}, but a majority of replicas "
                f"applied only below {safe} (replicas' slot_out: {self._applied_max})"
            )
        previous = self._floors.get(name, 0)
        if self.strict:
            for slot in range(max(previous, 1), floor):
                if slot not in self._choices.decided:
                    raise InvariantViolation(
                        f"rule 12: acceptor {name} collected slot {slot}, which was never decided"
                    )
        self._floors[name] = max(previous, floor)

    # -- leaders -------------------------------------------------------------------------

    def leader_step(self, name: str, leader: Leader, effects: Effects) -> None:
        """Check one leader step (rules 3, 4, 5, 6, 9, 13)."""
        from actorfw.protocols.paxos.messages import Decision, P1a, P2a, ReadIndexReply
        from actorfw.protocols.paxos.records import LeaderBallot

        self.steps += 1
        index = self.config.leader_index(name)
        last = self._leader_ballot.get(name, kb.NO_BALLOT)
        if leader.ballot < last:
            raise InvariantViolation(
                f"rule 9: leader {name}'s ballot went down from {format_ballot(last)} to "
                f"{format_ballot(leader.ballot)}"
            )
        self._leader_ballot[name] = leader.ballot
        for record in effects.persist:
            if isinstance(record, LeaderBallot):
                previous = self._scout_ballot.get(name, kb.NO_BALLOT)
                if record.ballot <= previous:
                    raise InvariantViolation(
                        f"rule 9: leader {name} reuses ballot {format_ballot(record.ballot)} "
                        f"(it used {format_ballot(previous)} before)"
                    )
                self._scout_ballot[name] = record.ballot
        seen: set[int] = set()
        for _, message in effects.send:
            if id(message) in seen:
                continue
            kind = type(message)
            if kind is P2a:
                seen.add(id(message))
                self._check_own_ballot(name, index, message.ballot)
                self._check_phase2(name, message.ballot)
                for slot, batch in zip(message.slots.tolist(), message.batches, strict=True):
                    self._choices.proposed(name, message.ballot, slot, batch)
            elif kind is P1a:
                seen.add(id(message))
                self._check_own_ballot(name, index, message.ballot)
            elif kind is Decision:
                seen.add(id(message))
                for slot, batch in zip(message.slots.tolist(), message.batches, strict=True):
                    self._choices.decide(slot, batch, f"leader {name} announced")
            elif kind is ReadIndexReply and message.granted:
                self._check_lease(name, leader.ballot)

    def _check_lease(self, name: str, ballot: int) -> None:
        """Rule 13: no quorum promised a higher ballot while a lease is used."""
        above = sorted(a for a, p in self._promised.items() if p > ballot)
        if len(above) >= self.config.quorum:
            raise InvariantViolation(
                f"rule 13: leader {name} granted a read by lease at {format_ballot(ballot)}, but "
                f"acceptors {above} promised higher ballots (quorum {self.config.quorum})"
            )

    def leader_sent(self, name: str, messages: Iterable[Any]) -> None:
        """Messages leader ``name`` actually sent, its records durable (``lossy_storage``).

        Records the highest ballot it used in them (rule 9 across a restart).
        """
        from actorfw.protocols.paxos.messages import LeaseRequest, P1a, P2a

        revealed = self._leader_revealed.get(name, kb.NO_BALLOT)
        for message in messages:
            kind = type(message)
            if kind is P1a or kind is P2a or kind is LeaseRequest:
                revealed = max(revealed, message.ballot)
        self._leader_revealed[name] = revealed

    def leader_restarted(self, name: str, leader: Leader) -> None:
        """Check a leader rebuilt from its records: no ballot below one it used (rule 9).

        With ``lossy_storage``: below one it sent; a ballot whose record was
        lost before any message used it may be used again.
        """
        if self.lossy_storage:
            before = self._leader_revealed.get(name, kb.NO_BALLOT)
        else:
            before = self._leader_ballot.get(name, kb.NO_BALLOT)
        if leader.ballot < before:
            raise InvariantViolation(
                f"rule 9: leader {name} restarted with ballot {format_ballot(leader.ballot)}, "
                f"below the {format_ballot(before)} it used before the crash"
            )
        self._leader_ballot[name] = leader.ballot
        self._scout_ballot[name] = leader.ballot

    def _check_own_ballot(self, name: str, index: int, ballot: int) -> None:
        if ballot & kb.MAX_LEADER != index:
            raise InvariantViolation(
                f"rule 9: leader {name} (index {index}) sent ballot {format_ballot(ballot)}"
            )
        if ballot > self._scout_ballot.get(name, kb.NO_BALLOT) and self.strict:
            raise InvariantViolation(
                f"rule 9: leader {name} sent ballot {format_ballot(ballot)} it never persisted"
            )

    def _check_phase2(self, name: str, ballot: int) -> None:
        if ballot in self._phase2_ballots:
            return
        promised = sum(1 for p in self._promised.values() if p >= ballot)
        if promised < self.config.quorum and self.strict:
            raise InvariantViolation(
                f"rule 4: leader {name} sent p2a at {format_ballot(ballot)} but only {promised} "
                f"acceptors promised it (quorum {self.config.quorum})"
            )
        self._phase2_ballots.add(ballot)

    # -- replicas ------------------------------------------------------------------------

    def replica_step(self, name: str, replica: Replica, effects: Effects) -> None:
        """Check one replica step (rules 6, 7, 8, 10, 11)."""
        from actorfw.protocols.paxos.messages import CatchUpReply, InstallSnapshot
        from actorfw.protocols.paxos.records import Snapshotted
        from actorfw.protocols.paxos.types import FIRST_SLOT

        self.steps += 1
        slot_in, slot_out = replica.slot_in, replica.slot_out
        log, base = replica.log, replica.log_base
        if slot_out != base + len(log):
            raise InvariantViolation(
                f"rule 7: replica {name} has slot_out {slot_out} but {len(log)} applied slots "
                f"from {base}"
            )
        before = self._slot_out.get(name, FIRST_SLOT)
        if slot_out < before:
            raise InvariantViolation(
                f"rule 7: replica {name}'s slot_out went back from {before} to {slot_out}"
            )
        persisted = [r for r in effects.persist if isinstance(r, Snapshotted)]
        for record in persisted:
            self._snapshot(record.slot, record.state, record.sessions, f"replica {name} persisted")
        first, applied = replica.last_applied
        if first + len(applied) != slot_out:
            raise InvariantViolation(
                f"rule 7: replica {name} applied {len(applied)} slots from {first} in a step "
                f"but has slot_out {slot_out}"
            )
        if first < before:
            raise InvariantViolation(
                f"rule 7: replica {name} re-applied slots from {first}, below its slot_out {before}"
            )
        if first > before and not any(r.slot >= first for r in persisted):
            # (An install may be followed, in the same step, by a later snapshot:
            # only the latest one is persisted.)
            raise InvariantViolation(
                f"rule 11: replica {name} jumped from slot {before} to {first} without "
                "persisting a snapshot covering it"
            )
        for index, batch in enumerate(applied):
            self._choices.decide(first + index, batch, f"replica {name} applied")
        self._slot_out[name] = slot_out
        self._applied_max[name] = max(self._applied_max.get(name, FIRST_SLOT), slot_out)
        if not slot_out <= slot_in <= slot_out + self.window:
            raise InvariantViolation(
                f"rule 8: replica {name} has slot_out {slot_out}, slot_in {slot_in}, "
                f"window {self.window}"
            )
        for _, message in effects.send:
            kind = type(message)
            if kind is CatchUpReply:
                for slot, batch in zip(message.slots.tolist(), message.batches, strict=True):
                    self._choices.decide(slot, batch, f"replica {name} passed on")
            elif kind is InstallSnapshot:
                who = f"replica {name} sent"
                self._snapshot(message.slot, message.state, message.sessions, who)
        for response in effects.responses:
            if response.by_lease:
                continue
            key = (response.client, response.seq)
            if key in self._answers:
                if self._answers[key] != response.result:
                    raise InvariantViolation(
                        f"rule 10: replica {name} answered {key} with {response.result!r}, "
                        f"another replica with {self._answers[key]!r}"
                    )
            else:
                self._answers[key] = response.result

    def replica_restarted(self, name: str, replica: Replica) -> None:
        """Check a replica rebuilt from its snapshot and log: it holds decided batches (rule 7)."""
        log, base = replica.log, replica.log_base
        if replica.slot_out != base + len(log):
            raise InvariantViolation(
                f"rule 7: replica {name} restarted with slot_out {replica.slot_out} but "
                f"{len(log)} applied slots from {base}"
            )
        for index, batch in enumerate(log):
            self._choices.decide(base + index, batch, f"replica {name} restored")
        self._slot_out[name] = replica.slot_out

    def _snapshot(self, slot: int, state: Any, sessions: Any, who: str) -> None:
        """Rule 11: one state and one session table per slot, everywhere."""
        known = self._snapshots.get(slot)
        if known is None:
            self._snapshots[slot] = (state, dict(sessions))
            return
        if known[0] != state or known[1] != sessions:
            raise InvariantViolation(
                f"rule 11: {who} a snapshot of slot {slot} that differs from another one of that "
                f"slot: {state!r} / {sessions!r} vs {known[0]!r} / {known[1]!r}"
            )


class Choices:
    """What was proposed, voted, chosen and decided per slot; rules 3, 5 and 6 checked as it grows.

    The part of :class:`Invariants` about slots rather than roles.

    Args:
        quorum: the acceptors' quorum.
        strict: see :class:`Invariants`.
    """

    def __init__(self, quorum: int, *, strict: bool) -> None:
        self._quorum = quorum
        self.strict = strict
        self.proposed_batches: dict[tuple[int, int], Batch] = {}
        """``(slot, ballot)`` -> the batch proposed there."""
        self._votes: dict[tuple[int, int], set[str]] = {}
        self.chosen: dict[int, tuple[int, Batch]] = {}
        """Slot -> ``(ballot, batch)`` of the first quorum seen accepting it."""
        self.decided: dict[int, Batch] = {}
        """Slot -> the batch announced or applied as decided there."""

    def accepted(self, name: str, ballot: int, slot: int, batch: Batch, *, vote: bool) -> None:
        """Acceptor ``name`` accepted ``batch`` at ``(slot, ballot)``; ``vote``: count it now."""
        key = (slot, ballot)
        proposed = self.proposed_batches.get(key)
        if proposed is None:
            if self.strict:
                raise InvariantViolation(
                    f"rule 3: acceptor {name} accepted slot {slot} at {format_ballot(ballot)}, "
                    "which no leader proposed"
                )
            self.proposed_batches[key] = batch
        elif proposed is not batch and proposed != batch:
            raise InvariantViolation(
                f"rule 3: acceptor {name} accepted {batch!r} for slot {slot} at "
                f"{format_ballot(ballot)}, but {proposed!r} was proposed"
            )
        self._check_against_chosen(slot, ballot, batch, f"acceptor {name} accepted")
        if vote:
            self.vote(name, ballot, slot, batch)

    def vote(self, name: str, ballot: int, slot: int, batch: Batch) -> None:
        """Acceptor ``name``'s durable vote for ``batch`` at ``(slot, ballot)`` (rules 5, 6)."""
        key = (slot, ballot)
        voters = self._votes.setdefault(key, set())
        voters.add(name)
        if len(voters) >= self._quorum:
            chosen = self.chosen.get(slot)
            if chosen is None:
                self.chosen[slot] = (ballot, batch)
                known = self.decided.get(slot)
                if known is not None and known != batch:
                    raise InvariantViolation(
                        f"rule 6: slot {slot} was decided as {known!r} before {batch!r} was chosen"
                    )
            elif chosen[1] is not batch and chosen[1] != batch:
                raise InvariantViolation(
                    f"rule 5: two batches chosen for slot {slot}: {chosen[1]!r} at "
                    f"{format_ballot(chosen[0])} and {batch!r} at {format_ballot(ballot)}"
                )

    def _check_against_chosen(self, slot: int, ballot: int, batch: Batch, who: str) -> None:
        chosen = self.chosen.get(slot)
        if chosen is not None and ballot >= chosen[0] and chosen[1] is not batch:
            if chosen[1] != batch:
                raise InvariantViolation(
                    f"rule 5: {who} {batch!r} for slot {slot} at {format_ballot(ballot)}, but "
                    f"{chosen[1]!r} was chosen there at {format_ballot(chosen[0])}"
                )

    def proposed(self, name: str, ballot: int, slot: int, batch: Batch) -> None:
        """Leader ``name`` sent a p2a of ``batch`` at ``(slot, ballot)`` (rules 3, 5)."""
        key = (slot, ballot)
        known = self.proposed_batches.get(key)
        if known is None:
            self.proposed_batches[key] = batch
        elif known is not batch and known != batch:
            raise InvariantViolation(
                f"rule 3: leader {name} proposed two batches for slot {slot} at "
                f"{format_ballot(ballot)}: {known!r} and {batch!r}"
            )
        self._check_against_chosen(slot, ballot, batch, f"leader {name} proposed")

    def decide(self, slot: int, batch: Batch, who: str) -> None:
        """``who`` announced, passed on or applied ``batch`` as decided at ``slot`` (rule 6)."""
        known = self.decided.get(slot)
        if known is None:
            chosen = self.chosen.get(slot)
            if chosen is None:
                if self.strict:
                    raise InvariantViolation(
                        f"rule 6: {who} {batch!r} for slot {slot}, which no quorum accepted"
                    )
            elif chosen[1] is not batch and chosen[1] != batch:
                raise InvariantViolation(
                    f"rule 6: {who} {batch!r} for slot {slot}, but {chosen[1]!r} was chosen"
                )
            self.decided[slot] = batch
        elif known is not batch and known != batch:
            raise InvariantViolation(
                f"rule 6: {who} {batch!r} for slot {slot}, but {known!r} was decided there"
            )
