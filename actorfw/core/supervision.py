"""Supervision: what a parent does when a child's handler raises.

Theory of operation
-------------------

Every actor has a supervisor: its parent, or for a top-level actor the node
itself. When a handler (or ``on_start``) raises, the actor is suspended —
it takes no more messages, its mailbox is kept — and the supervisor's
:class:`SupervisorStrategy` decides, from the exception, one of:

- ``RESUME``: carry on with the same instance and state.
- ``RESTART``: after a back-off delay, replace the instance with a fresh one
  built from the same spawn arguments, under the same ref and with the same
  mailbox. Its children are stopped first (the fresh instance makes its own
  in ``on_start``/``on_restart``); its durable storage is untouched.
- ``STOP``: stop the actor for good (its watchers get ``Terminated``).
- ``ESCALATE``: the supervisor fails in turn with the same error, and its own
  supervisor decides about it. A top-level actor escalating to its node is
  stopped, with an error in the log: a failure never takes the node down.

Rules:

1. One-for-one strategies apply the decision to the failed child only;
   all-for-one strategies apply ``RESTART`` and ``STOP`` to all its siblings
   too.
2. At most ``max_restarts`` restarts within any ``within`` seconds; the next
   failure in that window escalates instead of restarting.
3. The ``n``-th restart within the window waits
   ``min(max_backoff, min_backoff * backoff_factor ** (n-1))`` seconds,
   stretched by a random factor in ``[1, 1 + jitter]`` drawn from the
   node's seeded random source, so that siblings failing together do not
   restart in lockstep.

An ask whose handler raised is answered with the error whatever the
directive.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections.abc import Callable

__all__ = ["AllForOne", "Directive", "OneForOne", "SupervisorStrategy", "always"]


class Directive(enum.Enum):
    """A supervisor's decision about a failed actor."""

    RESUME = "resume"
    RESTART = "restart"
    STOP = "stop"
    ESCALATE = "escalate"


def always(directive: Directive) -> Callable[[BaseException], Directive]:
    """A decider that answers ``directive`` whatever the error."""

    def decide(error: BaseException) -> Directive:
        return directive

    return decide


def _restart(error: BaseException) -> Directive:
    return Directive.RESTART


@dataclasses.dataclass(frozen=True)
class SupervisorStrategy:
    """How a parent treats failing children (see the module rules).

    Args:
        decider: maps the exception to a :class:`Directive`; by default
            ``RESTART`` for every exception.
        max_restarts: restarts allowed within ``within`` seconds (rule 2).
        within: the window, in seconds.
        min_backoff, max_backoff, backoff_factor, jitter: the delay before
            a restart (rule 3).
        all_for_one: apply restarts and stops to all siblings (rule 1).
    """

    decider: Callable[[BaseException], Directive] = _restart
    max_restarts: int = 10
    within: float = 60.0
    min_backoff: float = 0.01
    max_backoff: float = 5.0
    backoff_factor: float = 2.0
    jitter: float = 0.2
    all_for_one: bool = False

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.within <= 0:
            raise ValueError("max_restarts must be >= 0 and within > 0")
        if self.min_backoff < 0 or self.max_backoff < self.min_backoff or self.backoff_factor < 1:
            raise ValueError("need 0 <= min_backoff <= max_backoff and backoff_factor >= 1")
        if self.jitter < 0:
            raise ValueError("jitter must not be negative")

    def decide(
        self, error: BaseException, restarts: list[float], now: float, rng: random.Random
    ) -> tuple[Directive, float]:
        """The directive for a failure at ``now``, and the delay before acting on it.

        ``restarts`` holds the times of this child's earlier restarts; it is
        pruned to the window, and ``now`` is appended when the answer is a
        restart.
        """
        directive = self.decider(error)
        if not isinstance(directive, Directive):
            raise TypeError(f"a supervisor decider must return a Directive, not {directive!r}")
        if directive is not Directive.RESTART:
            return directive, 0.0
        cutoff = now - self.within
        while restarts and restarts[0] <= cutoff:
            restarts.pop(0)
        if len(restarts) >= self.max_restarts:
            return Directive.ESCALATE, 0.0
        delay = min(self.max_backoff, self.min_backoff * self.backoff_factor ** len(restarts))
        if delay > 0 and self.jitter > 0:
            delay *= 1.0 + rng.random() * self.jitter
        restarts.append(now)
        return Directive.RESTART, delay


def OneForOne(**options: object) -> SupervisorStrategy:
    """A one-for-one strategy; options as for :class:`SupervisorStrategy`."""
    return SupervisorStrategy(**options)  # type: ignore[arg-type]


def AllForOne(**options: object) -> SupervisorStrategy:
    """An all-for-one strategy; options as for :class:`SupervisorStrategy`."""
    return SupervisorStrategy(all_for_one=True, **options)  # type: ignore[arg-type]
