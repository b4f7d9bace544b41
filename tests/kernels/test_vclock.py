"""Unit tests of the vector-clock kernel, run on the compiled and the pure implementation."""

from __future__ import annotations

import copy
from types import ModuleType

import pytest

from actorfw import Order

VC = ModuleType  # the kernel module under test (fixture ``vclock``)


def clock(vclock: VC, **counters: int):  # type: ignore[no-untyped-def]
    return vclock.VectorClock(counters)


# -- construction and reading ---------------------------------------------------


def test_empty_clock_has_no_nodes_and_every_counter_zero(vclock: VC) -> None:
    c = vclock.VectorClock()
    assert len(c) == 0
    assert c["anyone"] == 0
    assert "anyone" not in c
    assert list(c) == []
    assert c.to_dict() == {}


def test_clock_built_from_mapping_pairs_and_clock_alike(vclock: VC) -> None:
    from_map = vclock.VectorClock({"a": 1, "b": 2})
    from_pairs = vclock.VectorClock([("b", 2), ("a", 1)])
    from_clock = vclock.VectorClock(from_map)
    assert from_map == from_pairs == from_clock
    assert from_map.items() == [("a", 1), ("b", 2)]


def test_zero_counters_are_not_stored(vclock: VC) -> None:
    c = vclock.VectorClock({"a": 0, "b": 3})
    assert len(c) == 1
    assert "a" not in c
    assert c == vclock.VectorClock({"b": 3})


def test_later_pair_for_a_node_wins_in_construction(vclock: VC) -> None:
    assert vclock.VectorClock([("a", 5), ("a", 2)]) == vclock.VectorClock({"a": 2})
    assert vclock.VectorClock([("a", 5), ("a", 0)]) == vclock.VectorClock()


def test_iteration_and_items_are_in_node_id_order(vclock: VC) -> None:
    c = vclock.VectorClock({"n2": 1, "n10": 4, "n1": 7, "é": 2})
    assert list(c) == ["n1", "n10", "n2", "é"]
    assert list(c.to_dict()) == ["n1", "n10", "n2", "é"]


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        ({1: 1}, TypeError),
        ({"a": 1.5}, TypeError),
        ({"a": "1"}, TypeError),
        ({"": 1}, ValueError),
        ({"a": -1}, ValueError),
        ({"a": 2**64}, ValueError),
        ({"x" * 256: 1}, ValueError),
        ({"\ud800": 1}, ValueError),
    ],
    ids=[
        "int-node",
        "float-count",
        "str-count",
        "empty-node",
        "negative",
        "too-big",
        "long-node",
        "surrogate",
    ],
)
def test_bad_entries_are_refused_with_a_clear_error(vclock: VC, entries: dict, error: type) -> None:
    with pytest.raises(error):
        vclock.VectorClock(entries)


def test_node_ids_up_to_255_utf8_bytes_are_accepted(vclock: VC) -> None:
    name = "é" * 127 + "x"  # 255 bytes
    c = vclock.VectorClock({name: 1})
    assert c[name] == 1
    assert vclock.VectorClock.decode(c.encode()) == c


def test_largest_counter_is_accepted(vclock: VC) -> None:
    c = vclock.VectorClock({"a": 2**64 - 1})
    assert c["a"] == 2**64 - 1
    assert vclock.VectorClock.decode(c.encode()) == c


def test_repr_names_the_type_and_entries(vclock: VC) -> None:
    assert repr(vclock.VectorClock({"b": 2, "a": 1})) == "VectorClock({'a': 1, 'b': 2})"


def test_get_checks_the_node_id(vclock: VC) -> None:
    c = vclock.VectorClock({"a": 1})
    with pytest.raises(TypeError):
        c.get(3)
    with pytest.raises(ValueError):
        c.get("")


# -- changing ---------------------------------------------------------------------


def test_increment_adds_a_node_then_counts_it(vclock: VC) -> None:
    c = vclock.VectorClock()
    assert c.increment("a") == 1
    assert c.increment("a") == 2
    assert c.increment("b", 10) == 10
    assert c.to_dict() == {"a": 2, "b": 10}


def test_increment_keeps_entries_in_order_whatever_the_insertion_order(vclock: VC) -> None:
    c = vclock.VectorClock()
    names = [f"order-{i}" for i in (5, 1, 9, 3, 7, 2, 8, 0, 6, 4)]
    for n in names:
        c.increment(n)
    assert c == vclock.VectorClock({n: 1 for n in names})
    assert list(c) == sorted(names)


@pytest.mark.parametrize("by", [0, -1])
def test_increment_by_less_than_one_is_refused(vclock: VC, by: int) -> None:
    with pytest.raises(ValueError):
        vclock.VectorClock().increment("a", by)


def test_increment_past_the_largest_counter_overflows_and_changes_nothing(vclock: VC) -> None:
    c = vclock.VectorClock({"a": 2**64 - 2})
    assert c.increment("a") == 2**64 - 1
    with pytest.raises(OverflowError):
        c.increment("a")
    assert c["a"] == 2**64 - 1


def test_merge_is_the_pointwise_maximum_and_leaves_operands_alone(vclock: VC) -> None:
    a = vclock.VectorClock({"a": 3, "b": 1})
    b = vclock.VectorClock({"b": 2, "c": 5})
    m = a.merge(b)
    assert m.to_dict() == {"a": 3, "b": 2, "c": 5}
    assert a.to_dict() == {"a": 3, "b": 1}
    assert b.to_dict() == {"b": 2, "c": 5}
    assert (a | b) == m


@pytest.mark.parametrize(
    ("mine", "theirs", "merged"),
    [
        ({}, {}, {}),
        ({"a": 1}, {}, {"a": 1}),
        ({}, {"a": 1}, {"a": 1}),
        ({"a": 1, "c": 1}, {"b": 2}, {"a": 1, "b": 2, "c": 1}),
        ({"b": 1}, {"a": 1, "c": 1, "d": 4}, {"a": 1, "b": 1, "c": 1, "d": 4}),
        ({"a": 5, "b": 1}, {"a": 1, "b": 5}, {"a": 5, "b": 5}),
        ({"a": 5, "b": 1, "c": 9}, {"b": 5}, {"a": 5, "b": 5, "c": 9}),
    ],
)
def test_merge_in_changes_the_clock_in_place(
    vclock: VC, mine: dict, theirs: dict, merged: dict
) -> None:
    a = vclock.VectorClock(mine)
    a.merge_in(vclock.VectorClock(theirs))
    assert a.to_dict() == merged
    b = vclock.VectorClock(mine)
    b |= vclock.VectorClock(theirs)
    assert b.to_dict() == merged


def test_merge_with_something_else_is_a_type_error(vclock: VC) -> None:
    a = vclock.VectorClock({"a": 1})
    with pytest.raises(TypeError):
        a.merge({"a": 2})
    with pytest.raises(TypeError):
        a.merge_in(None)
    with pytest.raises(TypeError):
        a | {"a": 2}


def test_prune_forgets_a_node_and_returns_its_counter(vclock: VC) -> None:
    c = vclock.VectorClock({"a": 1, "b": 2, "c": 3})
    assert c.prune("b") == 2
    assert c.prune("b") == 0
    assert c.prune("never-seen-anywhere") == 0
    assert c.to_dict() == {"a": 1, "c": 3}


def test_copy_is_independent(vclock: VC) -> None:
    a = vclock.VectorClock({"a": 1})
    for b in (a.copy(), copy.copy(a), copy.deepcopy(a)):
        b.increment("a")
        assert a["a"] == 1
        assert b["a"] == 2


def test_reduce_rebuilds_an_equal_clock(vclock: VC) -> None:
    a = vclock.VectorClock({"a": 1, "b": 9})
    make, args = a.__reduce__()
    assert make(*args) == a


# -- comparing --------------------------------------------------------------------

COMPARE_CASES = [
    ({}, {}, Order.EQUAL),
    ({"a": 1}, {"a": 1}, Order.EQUAL),
    ({}, {"a": 1}, Order.BEFORE),
    ({"a": 1}, {}, Order.AFTER),
    ({"a": 1}, {"a": 2}, Order.BEFORE),
    ({"a": 1}, {"a": 1, "b": 1}, Order.BEFORE),
    ({"a": 2, "b": 1}, {"a": 1, "b": 1}, Order.AFTER),
    ({"a": 1}, {"b": 1}, Order.CONCURRENT),
    ({"a": 2, "b": 1}, {"a": 1, "b": 2}, Order.CONCURRENT),
    ({"a": 1, "c": 1}, {"a": 1, "b": 1}, Order.CONCURRENT),
    ({"a": 1, "b": 1, "c": 1}, {"b": 1}, Order.AFTER),
    ({"b": 1}, {"a": 1, "b": 1, "c": 1}, Order.BEFORE),
]


@pytest.mark.parametrize(("a", "b", "order"), COMPARE_CASES)
def test_compare_decides_the_causal_order(vclock: VC, a: dict, b: dict, order: Order) -> None:
    x, y = vclock.VectorClock(a), vclock.VectorClock(b)
    assert x.compare(y) is order
    assert x.happened_before(y) == (order is Order.BEFORE)
    assert x.concurrent_with(y) == (order is Order.CONCURRENT)
    assert (x < y) == (order is Order.BEFORE)
    assert (x <= y) == (order in (Order.BEFORE, Order.EQUAL))
    assert (x > y) == (order is Order.AFTER)
    assert (x >= y) == (order in (Order.AFTER, Order.EQUAL))
    assert (x == y) == (order is Order.EQUAL)
    assert (x != y) == (order is not Order.EQUAL)


def test_compare_with_something_else_is_a_type_error(vclock: VC) -> None:
    with pytest.raises(TypeError):
        vclock.VectorClock().compare({})
    with pytest.raises(TypeError):
        vclock.VectorClock() < {}  # noqa: B015
    assert vclock.VectorClock() != {}


def test_equal_clocks_hash_alike_and_dedupe_in_sets(vclock: VC) -> None:
    a = vclock.VectorClock({"a": 1, "b": 2})
    b = vclock.VectorClock([("b", 2), ("a", 1)])
    c = vclock.VectorClock({"a": 1})
    c.increment("b", 2)
    assert hash(a) == hash(b) == hash(c)
    assert len({a, b, c, vclock.VectorClock({"a": 2})}) == 2


def test_compare_many_matches_compare_one_by_one(vclock: VC) -> None:
    me = vclock.VectorClock({"a": 2, "b": 2})
    others = [vclock.VectorClock(b) for _, b, _ in COMPARE_CASES] + [me.copy()]
    result = me.compare_many(others)
    assert isinstance(result, bytes)
    assert [Order(r) for r in result] == [me.compare(o) for o in others]
    assert me.compare_many(tuple(others)) == result
    assert me.compare_many(iter(others)) == result
    assert me.compare_many([]) == b""


def test_compare_many_refuses_a_non_clock_and_names_its_position(vclock: VC) -> None:
    me = vclock.VectorClock({"a": 1})
    with pytest.raises(TypeError):
        me.compare_many([me, {"a": 1}])


# -- causal delivery --------------------------------------------------------------

# (local clock v, message clock m, sender, deliverable?)
DELIVERY_CASES = [
    ({}, {"s": 1}, "s", True),
    ({}, {"s": 2}, "s", False),  # a gap: message 1 from s is missing
    ({"s": 1}, {"s": 1}, "s", False),  # a duplicate
    ({"s": 1}, {"s": 2}, "s", True),
    ({}, {"s": 1, "o": 1}, "s", False),  # depends on an undelivered message of o
    ({"o": 1}, {"s": 1, "o": 1}, "s", True),
    ({"o": 3}, {"s": 1, "o": 1}, "s", True),
    ({"s": 4, "o": 3, "p": 9}, {"s": 5, "o": 3}, "s", True),
    ({"s": 4, "o": 3}, {"s": 5, "o": 3, "p": 1}, "s", False),
    ({}, {"o": 1}, "s", False),  # the sender has no entry at all
    ({}, {}, "s", False),
    ({"s": 1}, {"s": 2}, "unknown-sender-node", False),
]


@pytest.mark.parametrize(("local", "message", "sender", "expected"), DELIVERY_CASES)
def test_deliverable_is_the_birman_schiper_stephenson_condition(
    vclock: VC, local: dict, message: dict, sender: str, expected: bool
) -> None:
    v, m = vclock.VectorClock(local), vclock.VectorClock(message)
    assert v.deliverable(m, sender) is expected


def test_deliverable_many_matches_one_by_one(vclock: VC) -> None:
    v = vclock.VectorClock({"s": 1, "o": 2})
    msgs = [vclock.VectorClock(m) for _, m, _, _ in DELIVERY_CASES]
    senders = [s for _, _, s, _ in DELIVERY_CASES]
    flags = v.deliverable_many(msgs, senders)
    assert list(flags) == [int(v.deliverable(m, s)) for m, s in zip(msgs, senders, strict=True)]


def test_deliverable_many_needs_one_sender_per_message(vclock: VC) -> None:
    v = vclock.VectorClock()
    with pytest.raises(ValueError):
        v.deliverable_many([v, v], ["a"])


def test_deliverable_checks_its_arguments(vclock: VC) -> None:
    v = vclock.VectorClock()
    with pytest.raises(TypeError):
        v.deliverable({"s": 1}, "s")
    with pytest.raises(TypeError):
        v.deliverable(v, 7)


# -- the wire ---------------------------------------------------------------------


def test_encoding_matches_the_documented_layout(vclock: VC) -> None:
    c = vclock.VectorClock({"b": 300, "a": 1})
    assert c.encode() == b"\x01\x02\x01a\x01\x01b\xac\x02"
    assert vclock.VectorClock().encode() == b"\x01\x00"


def test_encoding_is_canonical_whatever_the_history(vclock: VC) -> None:
    a = vclock.VectorClock()
    for n in ("n10", "n2", "n1", "n33", "n3"):
        a.increment(n)
    b = vclock.VectorClock({"n1": 1, "n2": 1, "n3": 1, "n10": 1, "n33": 1})
    assert a.encode() == b.encode()


def test_decode_accepts_any_bytes_like(vclock: VC) -> None:
    c = vclock.VectorClock({"a": 1, "b": 2})
    data = c.encode()
    for form in (data, bytearray(data), memoryview(data), memoryview(b"xx" + data)[2:]):
        assert vclock.VectorClock.decode(form) == c


@pytest.mark.parametrize("data", ["\x01\x00", 5, None, [1, 0]])
def test_decode_refuses_what_is_not_bytes(vclock: VC, data: object) -> None:
    with pytest.raises(TypeError):
        vclock.VectorClock.decode(data)


MALFORMED = {
    "empty": b"",
    "bad-version": b"\x02\x00",
    "truncated-count": b"\x01\x80",
    "count-too-large": b"\x01\x05\x01a\x01",
    "huge-count": b"\x01\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
    "empty-node-id": b"\x01\x01\x00\x01\x01",
    "truncated-node-id": b"\x01\x01\x05ab\x01",
    "truncated-counter": b"\x01\x01\x01a\x80",
    "missing-counter": b"\x01\x01\x01a",
    "zero-counter": b"\x01\x01\x01a\x00",
    "overlong-varint": b"\x01\x01\x01a\x81\x00",
    "overlong-count": b"\x01\x81\x00\x01a\x01",
    "counter-over-64-bits": b"\x01\x01\x01a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02",
    "varint-too-long": b"\x01\x01\x01a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x01",
    "trailing-bytes": b"\x01\x01\x01a\x01\x00",
    "out-of-order": b"\x01\x02\x01b\x01\x01a\x01",
    "repeated-node": b"\x01\x02\x01a\x01\x01a\x02",
    "prefix-after-longer": b"\x01\x02\x02ab\x01\x01a\x01",
    "invalid-utf8": b"\x01\x01\x02\xc3\x28\x01",
    "encoded-surrogate": b"\x01\x01\x03\xed\xa0\x80\x01",
}


@pytest.mark.parametrize("data", list(MALFORMED.values()), ids=list(MALFORMED))
def test_decode_rejects_malformed_bytes_with_a_value_error(vclock: VC, data: bytes) -> None:
    with pytest.raises(ValueError, match="malformed vector clock"):
        vclock.VectorClock.decode(data)


def test_decode_accepts_the_largest_counter_in_ten_bytes(vclock: VC) -> None:
    data = b"\x01\x01\x01a" + b"\xff" * 9 + b"\x01"
    assert vclock.VectorClock.decode(data)["a"] == 2**64 - 1


def test_module_constants_are_the_documented_limits(vclock: VC) -> None:
    assert vclock.MAX_COUNTER == 2**64 - 1
    assert vclock.MAX_NODE_ID_BYTES == 255
    assert vclock.ENCODING_VERSION == 1
    assert vclock.Order is Order
