"""Vector clocks under bad arguments and hostile bytes: the twins agree, refusals leave nothing.

The compiled clock interns node ids in a process-wide table that only
grows; these tests hold it to its twin's contract: what is refused (a
malformed encoding, a bad counter, a bad step) adds nothing to it, steps
are exact ``int`` values up to ``2**64-1``, and the inputs the docs promise
(any contiguous bytes-like object, any iterables) are taken by both.
"""

from __future__ import annotations

import array
import gc
import tracemalloc
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import load_kernels

VC = ModuleType


def outcome(function: Callable[..., Any], *args: Any) -> Any:
    try:
        return ("ok", function(*args))
    except (TypeError, ValueError, OverflowError) as error:
        return (type(error).__name__, str(error))


def traced_growth(action: Callable[[], None]) -> int:
    """Bytes that stay allocated (through Python's allocators) after ``action``."""
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        action()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after - before


# -- increment: exact ints, the whole range -----------------------------------------------


@pytest.mark.parametrize("by", [1.9999, 1.0, 2.5, "1", None, np.int64(2)], ids=repr)
def test_increment_refuses_a_step_that_is_not_an_int(vclock: VC, by: Any) -> None:
    clock = vclock.VectorClock({"a": 1})
    with pytest.raises(TypeError, match="by must be an int"):
        clock.increment("a", by)
    assert clock.to_dict() == {"a": 1}


@pytest.mark.parametrize("by", [2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1])
def test_increment_takes_any_step_up_to_the_largest_counter(vclock: VC, by: int) -> None:
    clock = vclock.VectorClock()
    assert clock.increment("a", by) == by
    assert clock["a"] == by
    if by < 2**64 - 1:
        assert clock.increment("a", 1) == by + 1


@pytest.mark.parametrize("by", [2**64, 2**70, 10**30])
def test_increment_by_more_than_the_largest_counter_overflows(vclock: VC, by: int) -> None:
    clock = vclock.VectorClock()
    with pytest.raises(OverflowError, match="would exceed 2\\*\\*64-1"):
        clock.increment("a", by)
    assert len(clock) == 0


def test_a_bool_step_counts_as_the_int_it_is(vclock: VC) -> None:
    clock = vclock.VectorClock()
    assert clock.increment("a", True) == 1


@given(
    st.one_of(
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.sampled_from([2**63, 2**64 - 1, 2**64, 0, -1, True, False]),
    ),
    st.integers(0, 2**64 - 1),
)
def test_both_twins_increment_and_refuse_alike(by: Any, start: int) -> None:
    compiled, pure = load_kernels("compiled")["vclock"], load_kernels("pure")["vclock"]
    results = []
    for twin in (compiled, pure):
        clock = twin.VectorClock({"a": start})
        results.append((outcome(clock.increment, "a", by), clock.to_dict()))
    assert results[0] == results[1]


# -- refused input leaves nothing behind ----------------------------------------------------


def _malformed_clocks(tag: str, count: int) -> list[bytes]:
    """Encodings with a new, valid node id first, then something wrong."""
    out = []
    for i in range(count):
        name = f"{tag}-{i:08d}-" + "x" * 40
        raw = name.encode()
        entry = bytes((len(raw),)) + raw + b"\x01"
        out.append(b"\x01\x02" + entry + b"\x01" + b"~" + b"\x00")  # then a zero counter
    return out


def test_malformed_clocks_leave_no_node_id_behind(vclock: VC) -> None:
    data = _malformed_clocks("decode", 20_000)

    def decode_all() -> None:
        for item in data:
            with pytest.raises(ValueError, match="zero counter"):
                vclock.VectorClock.decode(item)

    grown = traced_growth(decode_all)
    # Interning 20,000 ids of 57 bytes would keep several MiB.
    assert grown < 256 << 10, f"{grown} bytes kept after refusing 20,000 clocks"


def test_refused_entries_and_steps_leave_no_node_id_behind(vclock: VC) -> None:
    def refuse_all() -> None:
        for i in range(10_000):
            name = f"refused-{i:08d}-" + "y" * 40
            with pytest.raises(ValueError):
                vclock.VectorClock({name: 1, "zz": -1})
            with pytest.raises(TypeError):
                vclock.VectorClock().increment(name, 1.5)
            with pytest.raises(ValueError):
                vclock.VectorClock().increment(name, 0)

    grown = traced_growth(refuse_all)
    assert grown < 256 << 10, f"{grown} bytes kept after refusing 30,000 calls"


def test_a_valid_clock_after_refused_ones_decodes_with_its_ids(vclock: VC) -> None:
    for item in _malformed_clocks("again", 10):
        with pytest.raises(ValueError):
            vclock.VectorClock.decode(item)
    names = [f"again-{i:08d}-" + "x" * 40 for i in range(10)]
    clock = vclock.VectorClock({name: i + 1 for i, name in enumerate(names)})
    assert vclock.VectorClock.decode(clock.encode()) == clock
    assert vclock.VectorClock.decode(clock.encode()).to_dict() == clock.to_dict()


# -- what decode and the batch calls take ---------------------------------------------------


def _forms(data: bytes) -> list[Any]:
    forms: list[Any] = [
        array.array("B", data),
        array.array("b", data),
        np.frombuffer(data, dtype=np.uint8),
        np.frombuffer(data, dtype=np.uint8).reshape(1, len(data)).copy(),
        memoryview(data).cast("B", (1, len(data))),
    ]
    if len(data) % 2 == 0:  # items of two bytes: still read as raw bytes
        forms.append(np.frombuffer(data, dtype="<u2"))
        forms.append(array.array("H", data))
    return forms


def test_decode_takes_any_contiguous_bytes_like_object(vclock: VC) -> None:
    clock = vclock.VectorClock({"a": 1, "b": 300})
    data = clock.encode()
    for form in _forms(data):
        assert vclock.VectorClock.decode(form) == clock, type(form)


def test_decode_refuses_a_buffer_that_is_not_contiguous(vclock: VC) -> None:
    data = vclock.VectorClock({"a": 1}).encode()
    strided = np.frombuffer(bytes(b for pair in zip(data, data, strict=True) for b in pair), "u1")
    with pytest.raises(TypeError, match="contiguous"):
        vclock.VectorClock.decode(strided[::2])


@given(st.binary(max_size=24), st.sampled_from(["B", "b", "numpy", "numpy2d", "bytearray"]))
def test_both_twins_decode_every_buffer_alike(data: bytes, form: str) -> None:
    compiled, pure = load_kernels("compiled")["vclock"], load_kernels("pure")["vclock"]
    if form in ("B", "b"):
        given_data: Any = array.array(form, data)
    elif form == "numpy":
        given_data = np.frombuffer(data, dtype=np.uint8)
    elif form == "numpy2d":
        given_data = np.frombuffer(data, dtype=np.uint8).reshape(1, len(data))
    else:
        given_data = bytearray(data)
    got = [outcome(twin.VectorClock.decode, given_data) for twin in (compiled, pure)]
    got = [(kind, value.to_dict() if kind == "ok" else value) for kind, value in got]
    assert got[0] == got[1]


def test_deliverable_many_and_compare_many_take_generators(vclock: VC) -> None:
    here = vclock.VectorClock({"a": 1, "b": 2})
    messages = [vclock.VectorClock({"a": 2, "b": 2}), vclock.VectorClock({"a": 3})]
    senders = ["a", "a"]
    expected = here.deliverable_many(list(messages), list(senders))
    assert expected == b"\x01\x00"
    assert here.deliverable_many((m for m in messages), (s for s in senders)) == expected
    assert here.deliverable_many(iter(messages), tuple(senders)) == expected
    assert here.compare_many(m for m in messages) == here.compare_many(messages)
    with pytest.raises(ValueError, match="one sender per message"):
        here.deliverable_many((m for m in messages), iter(["a"]))


_FILL_THE_TABLE = """
from actorfw._cext import vclock

limit = vclock.MAX_NODE_IDS
clock = vclock.VectorClock()
known = vclock.VectorClock({"seen": 1})
encoded_new = vclock.VectorClock({"never-seen-before": 1}).encode()
filled = 0
while True:  # new ids until the table is full
    try:
        vclock.VectorClock({f"x{filled}": 1})
    except ValueError:
        break
    filled += 1
    assert filled <= limit, "the table took more ids than its limit"
names = vclock.VectorClock({"x0": 5, f"x{filled - 1}": 1})
for step in ("increment", "decode", "init"):
    try:
        if step == "increment":
            clock.increment("one-too-many")
        elif step == "decode":
            vclock.VectorClock.decode(vclock.VectorClock({"another-new-one": 2}).encode())
        else:
            vclock.VectorClock({"and-another": 3})
    except ValueError as error:
        assert "interned the limit of 65536 distinct node ids" in str(error), error
    else:
        raise AssertionError(step + " took a node id past the table's limit")
assert vclock.VectorClock.decode(encoded_new).get("never-seen-before") == 1  # known ids work
assert known.merge(names).get("x0") == 5
print("refused past", limit, filled > limit - 10)
"""


def test_the_compiled_intern_table_is_bounded_and_refuses_new_ids_when_full() -> None:
    # In a process of its own: filling the process-wide table would starve every
    # later test of this one.
    import subprocess
    import sys

    pytest.importorskip("actorfw._cext.vclock")
    done = subprocess.run(
        [sys.executable, "-c", _FILL_THE_TABLE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refused past 65536 True"
