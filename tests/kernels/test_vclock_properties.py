"""Property tests of vector clocks: the laws, a naive dict reference, and compiled against pure."""

from __future__ import annotations

from types import ModuleType

from hypothesis import given
from hypothesis import strategies as st

from actorfw import Order

# Node ids chosen to hit the codec's corners: ids that sort differently as
# numbers and as text (n2 < n10 as numbers only), non-ASCII, and long ids
# sharing their first 8 bytes (the compiled codec sorts by an 8-byte prefix).
NODES = (
    [f"n{i}" for i in range(12)]
    + ["é", "ñode", "z", "a"]
    + [f"shared-prefix-{i}" for i in range(4)]
    + ["shared-p", "shared-prefix-1x"]
)
counters = st.one_of(st.integers(1, 4), st.integers(1, 2**64 - 1))
dicts = st.dictionaries(st.sampled_from(NODES), counters, max_size=len(NODES))


# -- the naive reference ----------------------------------------------------------


def ref_compare(a: dict[str, int], b: dict[str, int]) -> Order:
    keys = a.keys() | b.keys()
    lower = any(a.get(k, 0) < b.get(k, 0) for k in keys)
    higher = any(a.get(k, 0) > b.get(k, 0) for k in keys)
    if lower and higher:
        return Order.CONCURRENT
    return Order.BEFORE if lower else Order.AFTER if higher else Order.EQUAL


def ref_merge(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: max(a.get(k, 0), b.get(k, 0)) for k in a.keys() | b.keys()}


def ref_deliverable(v: dict[str, int], m: dict[str, int], sender: str) -> bool:
    return m.get(sender, 0) == v.get(sender, 0) + 1 and all(
        m[k] <= v.get(k, 0) for k in m if k != sender
    )


# -- each implementation against the reference and the laws -----------------------


@given(a=dicts, b=dicts)
def test_compare_agrees_with_the_naive_reference(vclock: ModuleType, a: dict, b: dict) -> None:
    assert vclock.VectorClock(a).compare(vclock.VectorClock(b)) is ref_compare(a, b)


@given(a=dicts, b=dicts)
def test_compare_is_antisymmetric(vclock: ModuleType, a: dict, b: dict) -> None:
    mirror = {
        Order.EQUAL: Order.EQUAL,
        Order.BEFORE: Order.AFTER,
        Order.AFTER: Order.BEFORE,
        Order.CONCURRENT: Order.CONCURRENT,
    }
    x, y = vclock.VectorClock(a), vclock.VectorClock(b)
    assert y.compare(x) is mirror[x.compare(y)]


@given(a=dicts, b=dicts)
def test_compare_is_consistent_with_merge_as_the_join(vclock: ModuleType, a: dict, b: dict) -> None:
    x, y = vclock.VectorClock(a), vclock.VectorClock(b)
    assert (x <= y) == (x.merge(y) == y)
    assert (x == y) == (x.compare(y) is Order.EQUAL)
    assert x <= x.merge(y) and y <= x.merge(y)


@given(a=dicts, b=dicts)
def test_merge_agrees_with_the_naive_reference(vclock: ModuleType, a: dict, b: dict) -> None:
    x, y = vclock.VectorClock(a), vclock.VectorClock(b)
    assert x.merge(y).to_dict() == ref_merge(a, b)
    x.merge_in(y)
    assert x.to_dict() == ref_merge(a, b)


@given(a=dicts, b=dicts, c=dicts)
def test_merge_is_commutative_associative_and_idempotent(
    vclock: ModuleType, a: dict, b: dict, c: dict
) -> None:
    x, y, z = vclock.VectorClock(a), vclock.VectorClock(b), vclock.VectorClock(c)
    assert x.merge(y) == y.merge(x)
    assert x.merge(y).merge(z) == x.merge(y.merge(z))
    assert x.merge(x) == x


@given(v=dicts, m=dicts, sender=st.sampled_from(NODES))
def test_deliverable_agrees_with_the_naive_reference(
    vclock: ModuleType, v: dict, m: dict, sender: str
) -> None:
    assert vclock.VectorClock(v).deliverable(vclock.VectorClock(m), sender) == ref_deliverable(
        v, m, sender
    )


@given(v=dicts, sender=st.sampled_from(NODES), others=st.lists(dicts, max_size=5))
def test_the_next_message_of_a_sender_is_deliverable_exactly_once(
    vclock: ModuleType, v: dict, sender: str, others: list
) -> None:
    # The sender's next event, having seen at most what we have seen.
    local = vclock.VectorClock(v)
    message = local.copy()
    for o in others:
        message.merge_in(vclock.VectorClock({k: c for k, c in o.items() if c <= v.get(k, 0)}))
    if v.get(sender, 0) == 2**64 - 1:
        return
    message.increment(sender)
    assert local.deliverable(message, sender)
    local.merge_in(message)
    assert not local.deliverable(message, sender)


@given(me=dicts, others=st.lists(dicts, max_size=20))
def test_compare_many_agrees_with_compare(vclock: ModuleType, me: dict, others: list) -> None:
    x = vclock.VectorClock(me)
    ys = [vclock.VectorClock(o) for o in others]
    assert list(x.compare_many(ys)) == [ref_compare(me, o) for o in others]


@given(a=dicts, ops=st.lists(st.tuples(st.sampled_from(["inc", "prune"]), st.sampled_from(NODES))))
def test_increment_and_prune_agree_with_a_dict(vclock: ModuleType, a: dict, ops: list) -> None:
    x = vclock.VectorClock(a)
    model = dict(a)
    for op, node in ops:
        if op == "prune":
            assert x.prune(node) == model.pop(node, 0)
        elif model.get(node, 0) < 2**64 - 1:
            model[node] = model.get(node, 0) + 1
            assert x.increment(node) == model[node]
    assert x.to_dict() == dict(sorted(model.items()))
    assert len(x) == len(model)
    assert x == vclock.VectorClock(model)
    assert hash(x) == hash(vclock.VectorClock(model))


@given(a=dicts)
def test_encode_decode_round_trips(vclock: ModuleType, a: dict) -> None:
    x = vclock.VectorClock(a)
    assert vclock.VectorClock.decode(x.encode()) == x


# -- compiled against pure ---------------------------------------------------------


@given(a=dicts, b=dicts, sender=st.sampled_from(NODES))
def test_compiled_and_pure_agree_on_every_operation(
    compiled: dict, pure: dict, a: dict, b: dict, sender: str
) -> None:
    C, P = compiled["vclock"].VectorClock, pure["vclock"].VectorClock
    ca, cb, pa, pb = C(a), C(b), P(a), P(b)
    assert ca.compare(cb) is pa.compare(pb)
    assert ca.merge(cb).to_dict() == pa.merge(pb).to_dict()
    assert ca.deliverable(cb, sender) == pa.deliverable(pb, sender)
    assert ca.items() == pa.items()
    assert list(ca) == list(pa)
    assert repr(ca) == repr(pa)
    assert ca.compare_many([cb, ca]) == pa.compare_many([pb, pa])
    assert ca.deliverable_many([cb], [sender]) == pa.deliverable_many([pb], [sender])


@given(a=dicts)
def test_compiled_and_pure_encode_identically_and_decode_each_other(
    compiled: dict, pure: dict, a: dict
) -> None:
    C, P = compiled["vclock"].VectorClock, pure["vclock"].VectorClock
    data = C(a).encode()
    assert P(a).encode() == data
    assert P.decode(data).to_dict() == C.decode(data).to_dict() == dict(sorted(a.items()))


def _decode_outcome(cls: type, data: bytes) -> object:
    try:
        return cls.decode(data).to_dict()
    except ValueError:
        return ValueError


@given(data=st.binary(max_size=64))
def test_compiled_and_pure_agree_on_arbitrary_bytes(
    compiled: dict, pure: dict, data: bytes
) -> None:
    C, P = compiled["vclock"].VectorClock, pure["vclock"].VectorClock
    assert _decode_outcome(C, data) == _decode_outcome(P, data)


@given(
    a=dicts,
    edits=st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete"]), st.integers(0, 400), st.integers(0, 255)
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_compiled_and_pure_agree_on_mutated_encodings(
    compiled: dict, pure: dict, a: dict, edits: list
) -> None:
    C, P = compiled["vclock"].VectorClock, pure["vclock"].VectorClock
    data = bytearray(C(a).encode())
    for kind, where, byte in edits:
        at = where % (len(data) + 1)
        if kind == "insert":
            data.insert(at, byte)
        elif data and kind == "flip":
            data[at % len(data)] ^= byte or 1
        elif data:
            del data[at % len(data)]
    outcome = _decode_outcome(C, bytes(data))
    assert outcome == _decode_outcome(P, bytes(data))
    if outcome is not ValueError:
        # Whatever decodes is canonical: it encodes back to the same bytes.
        assert C.decode(bytes(data)).encode() == bytes(data)
