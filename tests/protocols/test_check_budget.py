"""The checker's budget: keys share the time, a violation ends the search, the deadline holds."""

from __future__ import annotations

import time
from typing import Any

import pytest

from actorfw.check import History, KeyValue, Verdict, check
from actorfw.check import search as search_module
from actorfw.check.linearizability import TIMEOUT_SLACK
from actorfw.check.search import Outcome, prepare, search


def _hard_key(history: History, key: str, puts: int) -> None:
    """Overlapping puts, then a read of a value none of them wrote: refuting it means
    trying every order of the puts."""
    for i in range(puts):
        op = history.invoke(f"{key}-w{i}", "put", key, i, time=0.0)
        history.ok(op, None, time=10.0)
    op = history.invoke(f"{key}-r", "get", key, time=11.0)
    history.ok(op, 99, time=12.0)


def _stale_key(history: History, key: str) -> None:
    op = history.invoke(f"{key}-w", "put", key, 1, time=0.0)
    history.ok(op, None, time=1.0)
    op = history.invoke(f"{key}-r", "get", key, time=2.0)
    history.ok(op, 2, time=3.0)


def _good_key(history: History, key: str) -> None:
    op = history.invoke(f"{key}-w", "put", key, 1, time=0.0)
    history.ok(op, None, time=1.0)
    op = history.invoke(f"{key}-r", "get", key, time=2.0)
    history.ok(op, 1, time=3.0)


@pytest.mark.parametrize("hard_first", [True, False])
def test_one_hard_key_does_not_hide_a_violation_on_another(hard_first: bool) -> None:
    history = History()
    if hard_first:
        _hard_key(history, "a", 20)
        _stale_key(history, "b")
    else:
        _stale_key(history, "b")
        _hard_key(history, "a", 20)
    result = check(history, KeyValue(), timeout=2)
    assert (result.verdict, result.key) == (Verdict.VIOLATION, "b")
    assert result.verdicts["b"] is Verdict.VIOLATION


def test_without_a_timeout_a_violation_on_an_easy_key_still_ends_the_check() -> None:
    history = History()
    _hard_key(history, "a", 40)  # would not finish in any lifetime
    _stale_key(history, "b")
    result = check(history, KeyValue(), timeout=None)
    assert (result.verdict, result.key) == (Verdict.VIOLATION, "b")


def test_every_key_gets_its_own_verdict_and_a_hard_one_is_named_unknown() -> None:
    history = History()
    _hard_key(history, "a", 40)
    _good_key(history, "b")
    _good_key(history, "c")
    result = check(history, KeyValue(), timeout=0.3)
    assert result.verdict is Verdict.UNKNOWN
    assert result.unknown_keys == ("a",)
    assert dict(result.verdicts) == {"a": Verdict.UNKNOWN, "b": Verdict.OK, "c": Verdict.OK}
    assert "('a')" in str(result)


def test_a_search_stops_early_enough_to_free_its_memo_table_by_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history = History()
    _hard_key(history, "a", 30)
    ops = [prepare(op, True) for op in history]
    monkeypatch.setattr(search_module.time, "monotonic", lambda: 0.0)  # time stands still
    # Only the memo table's own cost of freeing can bring this deadline near.
    deadline = 10_000 * search_module.FREE_COST
    result = search(ops, KeyValue(), deadline)
    assert result.outcome is Outcome.TIMEOUT
    assert result.steps < 100_000  # it stopped once about 10,000 entries were remembered


def test_check_returns_within_its_timeout_and_the_stated_slack() -> None:
    history = History()
    _hard_key(history, "a", 40)
    timeout = 1.0
    started = time.monotonic()
    result = check(history, KeyValue(), timeout=timeout)
    elapsed = time.monotonic() - started
    assert result.verdict is Verdict.UNKNOWN
    # The slack is stated for an idle machine; a shared one may add scheduling delays.
    assert elapsed <= timeout + 5 * TIMEOUT_SLACK, f"{elapsed:.2f} s for a {timeout} s timeout"


def test_the_verdict_does_not_wait_for_the_witness() -> None:
    history = History()
    _stale_key(history, "b")
    for i in range(30):  # more on the key, to shrink
        op = history.invoke(f"x{i}", "get", "b", time=20.0 + i)
        history.ok(op, 1, time=20.5 + i)
    result = check(history, KeyValue(), minimize_timeout=0)
    assert result.verdict is Verdict.VIOLATION
    assert not result.minimized and len(result.minimal) == len(result.operations)
    assert check(history, KeyValue()).minimized


@pytest.mark.parametrize("max_memo", [0, 10, None])
def test_a_memo_bound_changes_no_verdict(max_memo: int | None) -> None:
    stale, good = History(), History()
    _stale_key(stale, "b")
    _hard_key(stale, "a", 6)
    _good_key(good, "c")
    for i in range(6):
        op = good.invoke(f"w{i}", "put", "d", i, time=0.0)
        good.ok(op, None, time=1.0)
    assert check(stale, KeyValue(), max_memo=max_memo).verdict is Verdict.VIOLATION
    assert check(good, KeyValue(), max_memo=max_memo).verdict is Verdict.OK


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"minimize_timeout": -1}, "minimize_timeout must be"),
        ({"max_memo": -1}, "max_memo must be"),
        ({"max_memo": 1.5}, "max_memo must be"),
    ],
)
def test_bad_budget_arguments_are_refused(kwargs: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        check(History(), KeyValue(), **kwargs)


def test_a_step_budget_gives_the_same_verdict_however_long_the_steps_take(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history = History()
    _hard_key(history, "a", 12)
    _good_key(history, "b")
    small = check(history, KeyValue(), max_steps=2_000)
    assert small.verdict is Verdict.UNKNOWN and small.unknown_keys == ("a",)
    assert small.verdicts["b"] is Verdict.OK
    ticks = iter(range(10**9))  # a clock racing ahead changes nothing without a timeout
    monkeypatch.setattr(search_module.time, "monotonic", lambda: float(next(ticks)))
    again = check(history, KeyValue(), max_steps=2_000)
    assert (again.verdict, again.unknown_keys) == (small.verdict, small.unknown_keys)
    assert check(history, KeyValue(), max_steps=10**8).verdict is Verdict.VIOLATION


def test_a_bad_step_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="max_steps must be"):
        check(History(), KeyValue(), max_steps=-5)


def test_a_key_whose_operations_all_failed_is_ok_even_when_another_key_violates() -> None:
    history = History()
    refused = history.invoke("a", "put", "gone", 1, time=0.0)
    history.fail(refused, time=1.0)
    put = history.invoke("b", "put", "x", 1, time=2.0)
    history.ok(put, None, time=3.0)
    stale = history.invoke("c", "get", "x", time=4.0)
    history.ok(stale, None, time=5.0)
    result = check(history, KeyValue(), timeout=0)
    assert result.verdicts == {"gone": Verdict.OK, "x": Verdict.UNKNOWN}
    result = check(history, KeyValue())
    assert result.verdicts == {"gone": Verdict.OK, "x": Verdict.VIOLATION}
