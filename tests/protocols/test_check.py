"""The linearizability checker: known-bad histories rejected, good ones accepted, and its edges."""

from __future__ import annotations

import dataclasses
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest

from actorfw.check import (
    FIELDS,
    History,
    KeyValue,
    Model,
    Register,
    Status,
    Verdict,
    check,
)
from tests.protocols.test_check_store import Workload, simulate_kv_store, with_stale_read

INFO = None  # ``end`` of an operation whose outcome is unknown


def record(
    history: History,
    client: str,
    f: str,
    key: Any,
    value: Any = None,
    *,
    start: float,
    end: float | None,
    output: Any = None,
    failed: bool = False,
) -> int:
    """Record one operation: ``end=INFO`` leaves its outcome unknown."""
    op = history.invoke(client, f, key, value, start)
    if end is None:
        history.info(op)
    elif failed:
        history.fail(op, end)
    else:
        history.ok(op, output, end)
    return op


def kv(*ops: tuple[Any, ...]) -> History:
    """A history from rows ``(client, f, key, value, start, end, output)`` (end None: info)."""
    history = History()
    for client, f, key, value, start, end, output in ops:
        record(history, client, f, key, value, start=start, end=end, output=output)
    return history


def verdict(history: History, model: Model | None = None, **kwargs: Any) -> Verdict:
    return check(history, model or KeyValue(), **kwargs).verdict


# -- rejecting known-bad histories -------------------------------------------------------


def test_stale_read_after_a_newer_write_completed_is_rejected() -> None:
    history = kv(
        ("a", "put", "x", 1, 0, 1, None),
        ("a", "put", "x", 2, 2, 3, None),
        ("b", "get", "x", None, 4, 5, 1),
    )
    assert verdict(history) is Verdict.VIOLATION


def test_lost_acknowledged_write_is_rejected() -> None:
    history = kv(
        ("a", "put", "x", 1, 0, 1, None),
        ("b", "get", "x", None, 2, 3, None),
    )
    assert verdict(history) is Verdict.VIOLATION


def test_lost_acknowledged_append_is_rejected() -> None:
    history = kv(
        ("a", "append", "x", "a", 0, 1, None),
        ("b", "append", "x", "b", 2, 3, None),
        ("c", "get", "x", None, 4, 5, "b"),
    )
    assert verdict(history) is Verdict.VIOLATION


def test_read_of_a_value_never_written_is_rejected() -> None:
    history = kv(
        ("a", "put", "x", 1, 0, 1, None),
        ("b", "get", "x", None, 0, 2, 7),
    )
    assert verdict(history) is Verdict.VIOLATION


def test_two_reads_that_observe_two_writes_in_different_orders_are_rejected() -> None:
    history = kv(
        ("w1", "put", "x", 1, 0, 10, None),
        ("w2", "put", "x", 2, 0, 10, None),
        ("a", "get", "x", None, 1, 2, 1),
        ("a", "get", "x", None, 3, 4, 2),
        ("b", "get", "x", None, 1, 2, 2),
        ("b", "get", "x", None, 3, 4, 1),
    )
    assert verdict(history) is Verdict.VIOLATION


def test_cas_that_succeeded_against_the_wrong_value_is_rejected() -> None:
    history = kv(
        ("a", "put", "x", 1, 0, 1, None),
        ("b", "cas", "x", [2, 3], 2, 3, True),
    )
    assert verdict(history) is Verdict.VIOLATION


def test_cas_that_failed_although_the_value_matched_is_rejected() -> None:
    history = kv(
        ("a", "put", "x", 1, 0, 1, None),
        ("b", "cas", "x", [1, 3], 2, 3, False),
    )
    assert verdict(history) is Verdict.VIOLATION


def test_append_reporting_the_wrong_new_value_is_rejected() -> None:
    history = kv(
        ("a", "append", "x", "a", 0, 1, "a"),
        ("b", "append", "x", "b", 2, 3, "b"),
    )
    assert verdict(history) is Verdict.VIOLATION


def test_failed_write_is_not_visible() -> None:
    history = History()
    record(history, "a", "put", "x", 1, start=0, end=1, failed=True)
    record(history, "b", "get", "x", start=2, end=3, output=1)
    assert verdict(history) is Verdict.VIOLATION


def test_register_stale_read_is_rejected() -> None:
    history = History()
    record(history, "a", "write", "r", 1, start=0, end=1)
    record(history, "b", "read", "r", start=2, end=3, output=0)
    assert verdict(history, Register(initial=0)) is Verdict.VIOLATION


def test_violation_names_the_failing_key_among_good_ones() -> None:
    history = kv(
        ("a", "put", "good", 1, 0, 1, None),
        ("a", "get", "good", None, 2, 3, 1),
        ("b", "put", "bad", 1, 0, 1, None),
        ("b", "get", "bad", None, 2, 3, None),
    )
    result = check(history, KeyValue())
    assert (result.key, result.violating_keys) == ("bad", ("bad",))


# -- accepting good histories ---------------------------------------------------------------


def test_sequential_history_is_accepted() -> None:
    history = kv(
        ("a", "get", "x", None, 0, 1, None),
        ("a", "put", "x", "v", 2, 3, None),
        ("b", "append", "x", "w", 4, 5, "vw"),
        ("a", "cas", "x", ["vw", "z"], 6, 7, True),
        ("b", "cas", "x", ["vw", "q"], 8, 9, False),
        ("a", "get", "x", None, 10, 11, "z"),
        ("b", "delete", "x", None, 12, 13, None),
        ("a", "get", "x", None, 14, 15, None),
        ("a", "append", "x", "s", 16, 17, None),
        ("b", "get", "x", None, 18, 19, "s"),
    )
    assert verdict(history) is Verdict.OK


def test_concurrent_overlapping_operations_with_a_valid_order_are_accepted() -> None:
    history = kv(
        ("w1", "put", "x", 1, 0, 5, None),
        ("w2", "put", "x", 2, 1, 6, None),
        ("a", "get", "x", None, 0.5, 1, None),
        ("b", "get", "x", None, 2, 3, 1),
        ("c", "get", "x", None, 7, 8, 2),
    )
    assert verdict(history) is Verdict.OK


def test_reads_may_see_concurrent_writes_in_either_order() -> None:
    history = kv(
        ("w1", "put", "x", 1, 0, 10, None),
        ("w2", "put", "x", 2, 0, 10, None),
        ("a", "get", "x", None, 1, 2, 2),
        ("b", "get", "x", None, 3, 4, 1),
    )
    assert verdict(history) is Verdict.OK


def test_touching_operations_count_as_concurrent() -> None:
    history = kv(
        ("a", "put", "x", 1, 0, 1, None),
        ("b", "get", "x", None, 1, 2, None),
    )
    assert verdict(history) is Verdict.OK


def test_info_write_that_took_effect_is_accepted() -> None:
    history = kv(
        ("a", "put", "x", 1, 0, INFO, None),
        ("b", "get", "x", None, 5, 6, 1),
    )
    assert verdict(history) is Verdict.OK


def test_info_write_that_did_not_take_effect_is_accepted() -> None:
    history = kv(
        ("a", "put", "x", 1, 0, 1, None),
        ("b", "put", "x", 2, 2, INFO, None),
        ("c", "get", "x", None, 5, 6, 1),
    )
    assert verdict(history) is Verdict.OK


def test_info_write_may_take_effect_long_after_its_invocation() -> None:
    history = kv(
        ("a", "put", "x", 1, 0, 1, None),
        ("b", "put", "x", 2, 2, INFO, None),
        ("c", "get", "x", None, 5, 6, 1),
        ("c", "get", "x", None, 100, 101, 2),
    )
    assert verdict(history) is Verdict.OK


def test_info_write_cannot_take_effect_before_its_invocation() -> None:
    history = kv(
        ("c", "get", "x", None, 0, 1, 2),
        ("b", "put", "x", 2, 2, INFO, None),
    )
    assert verdict(history) is Verdict.VIOLATION


def test_info_cas_that_did_not_take_effect_is_accepted() -> None:
    history = kv(
        ("a", "put", "x", 1, 0, 1, None),
        ("b", "cas", "x", [1, 2], 2, INFO, None),
        ("c", "get", "x", None, 5, 6, 1),
    )
    assert verdict(history) is Verdict.OK


def test_operation_left_pending_counts_as_info() -> None:
    history = History()
    history.invoke("a", "put", "x", 1, 0.0)  # never completed
    record(history, "b", "get", "x", start=5, end=6, output=1)
    assert verdict(history) is Verdict.OK


def test_failed_operations_are_ignored() -> None:
    history = History()
    record(history, "a", "put", "x", 1, start=0, end=1)
    record(history, "b", "put", "x", 2, start=2, end=3, failed=True)
    record(history, "c", "cas", "x", [1, 5], start=2, end=3, failed=True)
    record(history, "d", "get", "x", start=4, end=5, output=1)
    assert verdict(history) is Verdict.OK


def test_read_of_unknown_outcome_is_ignored() -> None:
    history = kv(
        ("a", "put", "x", 1, 0, 1, None),
        ("b", "get", "x", None, 2, INFO, None),
    )
    assert verdict(history) is Verdict.OK


def test_register_history_with_cas_is_accepted() -> None:
    history = History()
    record(history, "a", "write", "r", 1, start=0, end=1)
    record(history, "b", "cas", "r", [1, 2], start=2, end=4, output=True)
    record(history, "c", "read", "r", start=3, end=5, output=1)
    record(history, "c", "read", "r", start=6, end=7, output=2)
    assert verdict(history, Register(initial=0)) is Verdict.OK


def test_empty_history_is_accepted() -> None:
    assert verdict(History()) is Verdict.OK


# -- randomized histories from a linearizable store -------------------------------------------

FAULTY = Workload(operations=400, keys=3, clients=6, p_fail=0.03, p_info=0.03)


@pytest.mark.parametrize("seed", range(12))
def test_histories_of_a_linearizable_store_are_accepted(seed: int) -> None:
    assert verdict(simulate_kv_store(seed, FAULTY)) is Verdict.OK


@pytest.mark.parametrize("seed", range(12))
def test_histories_of_a_linearizable_store_with_one_stale_read_are_rejected(seed: int) -> None:
    found = with_stale_read(simulate_kv_store(seed, FAULTY), random.Random(seed))
    assert found is not None
    history, bad = found
    result = check(history, KeyValue(), minimize=False)
    assert (result.verdict, result.key) == (Verdict.VIOLATION, bad.key)


@pytest.mark.parametrize("seed", range(6))
def test_histories_with_one_read_of_a_value_never_written_are_rejected(seed: int) -> None:
    history = simulate_kv_store(seed, FAULTY)
    rng = random.Random(seed)
    read = rng.choice([op for op in history if op.f == "get" and op.status is Status.OK])
    bad = dataclasses.replace(read, output="never-written")
    ops = [bad if op is read else op for op in history]
    assert verdict(History.from_operations(ops), minimize=False) is Verdict.VIOLATION


# -- minimization and the report -------------------------------------------------------------

PUT_GET = Workload(operations=500, keys=1, clients=5, mix={"get": 0.5, "put": 0.5})


def test_stale_read_among_500_operations_on_one_key_minimizes_to_a_few() -> None:
    found = with_stale_read(simulate_kv_store(11, PUT_GET), random.Random(11))
    assert found is not None
    history, bad = found
    result = check(history, KeyValue())
    assert len(result.operations) == 500
    assert result.minimized
    assert bad in result.minimal and len(result.minimal) <= 4


def test_stale_read_witness_keeps_the_write_it_read() -> None:
    found = with_stale_read(simulate_kv_store(12, PUT_GET), random.Random(12))
    assert found is not None
    history, bad = found
    result = check(history, KeyValue())
    assert any(op.f == "put" and op.value == bad.output for op in result.minimal)


@pytest.mark.parametrize("seed", range(12))
def test_witness_of_a_stale_read_in_a_faulty_history_is_that_read_and_two_or_three_others(
    seed: int,
) -> None:
    found = with_stale_read(simulate_kv_store(seed, FAULTY), random.Random(seed))
    assert found is not None
    history, bad = found
    result = check(history, KeyValue())
    assert result.minimized and bad in result.minimal and 3 <= len(result.minimal) <= 4


def test_minimized_witness_is_itself_not_linearizable() -> None:
    found = with_stale_read(simulate_kv_store(13, FAULTY), random.Random(13))
    assert found is not None
    result = check(found[0], KeyValue())
    assert verdict(History.from_operations(result.minimal)) is Verdict.VIOLATION


def test_violation_report_shows_the_witness_and_why_the_read_cannot_be_placed() -> None:
    history = kv(
        ("a", "put", "x", 1, 0, 1, None),
        ("a", "put", "x", 2, 2, 3, None),
        ("b", "get", "x", None, 4, 5, 1),
    )
    text = str(check(history, KeyValue()))
    assert "not linearizable" in text and "key 'x'" in text
    assert "get('x') -> 1: not legal when the state is 2" in text


def test_ok_report_says_linearizable() -> None:
    history = kv(("a", "put", "x", 1, 0, 1, None))
    assert str(check(history, KeyValue())).startswith("linearizable (kv model)")


# -- the time budget ---------------------------------------------------------------------------


def pathological(writes: int = 24) -> History:
    """Many overlapping writes and a read of a value none wrote: ~writes * 2**writes states."""
    history = History()
    for n in range(writes):
        record(history, f"w{n}", "put", "x", n, start=0, end=10)
    record(history, "r", "get", "x", start=0, end=10, output="never-written")
    return history


def test_timeout_zero_gives_unknown() -> None:
    assert verdict(pathological(), timeout=0) is Verdict.UNKNOWN


def test_budget_running_out_gives_unknown_not_a_verdict() -> None:
    result = check(pathological(), KeyValue(), timeout=0.05)
    assert (result.verdict, result.unknown_keys) == (Verdict.UNKNOWN, ("x",))


def test_many_operations_of_unknown_outcome_that_never_took_effect_are_decided_at_once() -> None:
    # A five-node simulation whose clients were cut off for seconds: 84 of its 181
    # operations have no outcome. Tried in time order, each of them doubled the
    # search (undecided after minutes); tried after the completed ones, none is needed.
    history = History.from_jsonl(
        Path(__file__).parent.parent / "testdata" / "check" / "clients-cut-off.jsonl"
    )
    assert sum(op.status is Status.INFO for op in history.operations) == 84
    assert check(history, KeyValue(), timeout=60.0).verdict is Verdict.OK


def test_an_operation_of_unknown_outcome_is_still_taken_when_a_read_needs_it() -> None:
    history = History()
    record(history, "a", "put", "x", 1, start=0, end=1)
    for n in range(2, 40):
        record(history, f"w{n}", "put", "x", n, start=2, end=INFO)  # outcome unknown
    record(history, "r", "get", "x", start=3, end=4, output=39)  # only w39 explains it
    record(history, "r", "get", "x", start=5, end=6, output=39)
    assert check(history, KeyValue(), timeout=60.0).verdict is Verdict.OK


def test_operations_of_unknown_outcome_do_not_hide_a_violation() -> None:
    history = History()
    record(history, "a", "put", "x", 1, start=0, end=1)
    for n in range(2, 5):
        record(history, f"w{n}", "put", "x", n, start=2, end=INFO)
    record(history, "r", "get", "x", start=3, end=4, output=4)
    record(history, "r", "get", "x", start=5, end=6, output=1)  # nothing writes 1 again
    assert check(history, KeyValue(), timeout=60.0).verdict is Verdict.VIOLATION


def test_negative_timeout_is_rejected() -> None:
    with pytest.raises(ValueError, match="timeout must be"):
        check(History(), KeyValue(), timeout=-1)


# -- models: misuse --------------------------------------------------------------------------


def test_unknown_operation_is_rejected_naming_what_the_model_knows() -> None:
    history = kv(("a", "incr", "x", 1, 0, 1, None))
    with pytest.raises(ValueError, match=r"no operation 'incr'; it knows get, put, delete, cas"):
        check(history, KeyValue())


def test_register_operation_given_to_the_kv_model_points_to_register() -> None:
    history = kv(("a", "read", "x", None, 0, 1, None))
    with pytest.raises(ValueError, match=r"the register model: Register\(\), or --model register"):
        check(history, KeyValue())


def test_cas_value_must_be_an_expected_new_pair() -> None:
    history = kv(("a", "cas", "x", 5, 0, 1, True))
    with pytest.raises(ValueError, match=r"operation 0 .*value \[expected, new\]"):
        check(history, KeyValue())


def test_completed_cas_must_return_a_bool() -> None:
    history = kv(("a", "cas", "x", [1, 2], 0, 1, "yes"))
    with pytest.raises(ValueError, match="returns True or False"):
        check(history, KeyValue())


def test_model_class_instead_of_instance_is_rejected() -> None:
    with pytest.raises(TypeError, match=r"not the class KeyValue: call it \(KeyValue\(\)\)"):
        check(History(), KeyValue)  # type: ignore[arg-type]


# -- recording: misuse -----------------------------------------------------------------------


def test_completing_an_operation_twice_is_rejected() -> None:
    history = History()
    op = history.invoke("a", "put", "x", 1, 0.0)
    history.ok(op, None, 1.0)
    with pytest.raises(ValueError, match="already completed ok"):
        history.fail(op, 2.0)


def test_completing_an_operation_marked_info_is_rejected() -> None:
    history = History()
    op = history.invoke("a", "put", "x", 1, 0.0)
    history.info(op)
    with pytest.raises(ValueError, match="already marked info"):
        history.ok(op, None, 2.0)


def test_completion_before_invocation_is_rejected() -> None:
    history = History()
    op = history.invoke("a", "put", "x", 1, 5.0)
    with pytest.raises(ValueError, match="before its invocation"):
        history.ok(op, None, 4.0)


def test_without_times_each_call_comes_after_the_ones_before() -> None:
    # Recorded without times, put 1, put 2, get -> 1 used to be all at t=0, all
    # concurrent, and so linearizable: a stale read passed unseen.
    history = History()
    for f, value, output in [("put", 1, None), ("put", 2, None), ("get", None, 1)]:
        op = history.invoke("c", f, "x", value)
        history.ok(op, output)
    assert [(op.invoke, op.complete) for op in history.operations] == [
        (0.0, 1.0),
        (2.0, 3.0),
        (4.0, 5.0),
    ]
    assert check(history, KeyValue()).verdict is Verdict.VIOLATION


def test_a_history_gives_every_event_a_time_or_none() -> None:
    # A time omitted after times given would have to be placed on the caller's clock,
    # in its units: 1.0 after the latest is a second, a nanosecond, or nothing at all
    # on a clock counting from 1e18.
    timed = History()
    op = timed.invoke("a", "put", "x", 1, time=100.0)
    with pytest.raises(ValueError, match="have times: give this one a time too"):
        timed.ok(op, None)
    timed.ok(op, None, time=101.0)
    untimed = History()
    op = untimed.invoke("a", "put", "x", 1)
    with pytest.raises(ValueError, match=r"recorded without times .* without a time too"):
        untimed.invoke("b", "get", "x", time=0.5)
    untimed.fail(op)
    assert [(o.invoke, o.complete) for o in untimed.operations] == [(0.0, 1.0)]


def test_a_model_whose_states_are_not_hashable_is_told_so() -> None:
    class Listed(Model):
        name = "listed"

        def init(self) -> Any:
            return []

        def step(self, state: Any, f: str, value: Any, output: Any) -> tuple[bool, Any]:
            return True, [*state, value]

    history = History()
    history.ok(history.invoke("c", "add", None, 1))
    with pytest.raises(TypeError, match=r"listed model made a state that is not hashable, \[\]"):
        check(history, Listed())


def test_unknown_operation_id_is_rejected() -> None:
    with pytest.raises(KeyError, match=r"pass the id that History\.invoke returned"):
        History().ok(3, None, 1.0)


def test_infinite_completion_time_is_rejected_pointing_to_info() -> None:
    history = History()
    op = history.invoke("a", "put", "x", 1, 0.0)
    with pytest.raises(ValueError, match=r"History.info"):
        history.ok(op, None, float("inf"))


def test_unhashable_key_is_rejected() -> None:
    with pytest.raises(TypeError, match="key must be a str, an int or None"):
        History().invoke("a", "get", ["x"], None, 0.0)  # type: ignore[arg-type]


# -- JSON lines ----------------------------------------------------------------------------


def mixed_history() -> History:
    history = History()
    record(history, "a", "put", "x", {"nested": [1, 2.5, None]}, start=0, end=1)
    record(history, 7, "cas", 3, [None, "ü"], start=0.25, end=2, output=True)
    record(history, "b", "append", None, "s", start=1, end=INFO)
    record(history, "c", "delete", "x", start=1, end=3, failed=True)
    history.invoke("d", "get", "x", None, 4.0)  # pending
    return history


def test_jsonl_round_trip_through_a_file_object_keeps_every_operation() -> None:
    history = mixed_history()
    buffer = io.StringIO()
    history.to_jsonl(buffer)
    buffer.seek(0)
    assert History.from_jsonl(buffer).operations == history.operations


def test_jsonl_round_trip_through_a_path_keeps_every_operation(tmp_path: Path) -> None:
    history = mixed_history()
    history.to_jsonl(tmp_path / "history.jsonl")
    assert History.from_jsonl(tmp_path / "history.jsonl").operations == history.operations


def test_jsonl_lines_have_the_documented_fields_in_order() -> None:
    buffer = io.StringIO()
    mixed_history().to_jsonl(buffer)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert all(tuple(line) == FIELDS for line in lines)
    assert lines[2]["status"] == "info" and lines[2]["complete"] is None
    assert [line["status"] for line in lines] == ["ok", "ok", "info", "fail", "info"]


def test_unserializable_value_is_rejected_when_writing_jsonl() -> None:
    history = History()
    record(history, "a", "put", "x", object(), start=0, end=1)
    with pytest.raises(ValueError, match=r"operation 0 .*cannot be written as JSON"):
        history.to_jsonl(io.StringIO())


GOOD = '{"client":"a","operation":"put","key":"x","value":1,"invoke":0,"complete":1,"output":null,"status":"ok"}'  # noqa: E501


def line(**changes: Any) -> str:
    obj = json.loads(GOOD)
    for name, value in changes.items():
        if value is ...:
            del obj[name]
        else:
            obj[name] = value
    return json.dumps(obj)


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (line(status=...), "missing field(s) 'status'"),
        (line(time=3), "unknown field(s) 'time'"),
        (line(status="done"), 'status must be "ok", "fail" or "info"'),
        (line(client=1.5), "client must be a string or an integer"),
        (line(key=["x"]), "key must be a string, an integer or null"),
        (line(invoke="0"), "invoke must be a number"),
        (line(complete=None), "complete must be a number for an operation with status ok"),
        (line(complete=-1), "before its invocation"),
        (line(status="info"), "an info operation has complete: null"),
        (line(status="fail", output=3), "an operation with status fail has output: null"),
        (line(operation=""), "operation must be a non-empty string"),
    ],
)
def test_malformed_jsonl_is_rejected_naming_the_line(bad: str, problem: str) -> None:
    source = io.StringIO(GOOD + "\n\n" + bad + "\n" + GOOD + "\n")
    with pytest.raises(ValueError, match=r"line 3: ") as error:
        History.from_jsonl(source)
    assert problem in str(error.value)


def test_jsonl_from_a_path_names_the_file_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(GOOD + "\n{\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl, line 2: not valid JSON"):
        History.from_jsonl(path)


def test_history_read_from_jsonl_checks_like_the_original() -> None:
    history = simulate_kv_store(5, FAULTY)
    buffer = io.StringIO()
    history.to_jsonl(buffer)
    buffer.seek(0)
    assert verdict(History.from_jsonl(buffer)) is Verdict.OK


def test_a_state_whose_comparison_raises_is_not_called_unhashable() -> None:
    class Touchy:
        def __hash__(self) -> int:
            return 0

        def __eq__(self, other: object) -> bool:
            raise TypeError("cannot compare a Touchy")

    class Model2(Model):
        name = "touchy"

        def init(self) -> Any:
            return 0

        def step(self, state: Any, f: str, value: Any, output: Any) -> tuple[bool, Any]:
            return True, Touchy()

    history = History()
    history.ok(history.invoke("c", "add", None, 1), None)
    history.ok(history.invoke("c", "add", None, 2), None)
    with pytest.raises(TypeError) as raised:
        check(history, Model2())
    assert str(raised.value) == "cannot compare a Touchy"  # not "a state that is not hashable"
