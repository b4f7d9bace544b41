"""Supervisor strategies: decisions, restart limits and back-off (sans-IO, table-driven)."""

from __future__ import annotations

import random

import pytest

from actorfw import AllForOne, Directive, OneForOne, SupervisorStrategy
from actorfw.core.supervision import always


def decide(
    strategy: SupervisorStrategy, restarts: list[float], now: float
) -> tuple[Directive, float]:
    return strategy.decide(RuntimeError("x"), restarts, now, random.Random(1))


@pytest.mark.parametrize("directive", list(Directive))
def test_the_decider_chooses_the_directive(directive: Directive) -> None:
    strategy = SupervisorStrategy(decider=always(directive))
    assert decide(strategy, [], 0.0)[0] is directive


def test_a_decider_by_exception_type() -> None:
    def decider(error: BaseException) -> Directive:
        return Directive.RESUME if isinstance(error, ValueError) else Directive.STOP

    strategy = SupervisorStrategy(decider=decider)
    rng = random.Random(0)
    assert strategy.decide(ValueError(), [], 0.0, rng)[0] is Directive.RESUME
    assert strategy.decide(KeyError(), [], 0.0, rng)[0] is Directive.STOP


def test_restarts_beyond_the_limit_within_the_window_escalate() -> None:
    strategy = SupervisorStrategy(max_restarts=2, within=10.0, jitter=0.0)
    restarts: list[float] = []
    assert decide(strategy, restarts, 0.0)[0] is Directive.RESTART
    assert decide(strategy, restarts, 1.0)[0] is Directive.RESTART
    assert decide(strategy, restarts, 2.0)[0] is Directive.ESCALATE
    assert restarts == [0.0, 1.0]


def test_restarts_older_than_the_window_no_longer_count() -> None:
    strategy = SupervisorStrategy(max_restarts=2, within=10.0, jitter=0.0)
    restarts = [0.0, 1.0]
    assert decide(strategy, restarts, 10.5)[0] is Directive.RESTART
    assert restarts == [1.0, 10.5]


def test_back_off_doubles_up_to_its_cap() -> None:
    strategy = SupervisorStrategy(
        max_restarts=10, min_backoff=0.1, max_backoff=0.5, backoff_factor=2.0, jitter=0.0
    )
    restarts: list[float] = []
    delays = [decide(strategy, restarts, float(i))[1] for i in range(5)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


def test_jitter_stretches_the_delay_within_its_bound() -> None:
    strategy = SupervisorStrategy(min_backoff=1.0, max_backoff=1.0, jitter=0.5)
    delays = [strategy.decide(RuntimeError(), [], 0.0, random.Random(s))[1] for s in range(50)]
    assert all(1.0 <= d <= 1.5 for d in delays)
    assert len(set(delays)) > 1


def test_all_for_one_and_one_for_one_constructors() -> None:
    assert AllForOne(max_restarts=1).all_for_one
    assert not OneForOne().all_for_one


@pytest.mark.parametrize(
    "options",
    [
        {"max_restarts": -1},
        {"within": 0},
        {"min_backoff": -1},
        {"min_backoff": 2, "max_backoff": 1},
        {"backoff_factor": 0.5},
        {"jitter": -0.1},
    ],
)
def test_nonsense_options_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SupervisorStrategy(**options)  # type: ignore[arg-type]


def test_a_decider_must_answer_a_directive() -> None:
    strategy = SupervisorStrategy(decider=lambda e: "restart")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="must return a Directive"):
        decide(strategy, [], 0.0)
