"""Refs and reply handles are immutable values: equal by content, hashable, copyable."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from actorfw import ActorRef
from actorfw.values.refs import ReplyTo


@dataclasses.dataclass(frozen=True)
class Holder:
    ref: ActorRef
    reply: ReplyTo


@pytest.mark.parametrize("value", [ActorRef("n1", "a"), ReplyTo("n2", 7)])
def test_refs_survive_copies_and_pickles(value: object) -> None:
    for again in (copy.copy(value), copy.deepcopy(value), pickle.loads(pickle.dumps(value))):
        assert again == value and hash(again) == hash(value)
    holder = Holder(ActorRef("n1", "a"), ReplyTo("n2", 7))
    assert dataclasses.asdict(holder) == {"ref": holder.ref, "reply": holder.reply}


@pytest.mark.parametrize(
    ("value", "attribute"), [(ActorRef("n1", "a"), "node"), (ReplyTo("n2", 7), "corr")]
)
def test_refs_cannot_be_changed(value: object, attribute: str) -> None:
    before = hash(value)
    with pytest.raises(AttributeError, match="immutable"):
        setattr(value, attribute, "other")
    with pytest.raises(AttributeError, match="immutable"):
        delattr(value, attribute)
    assert hash(value) == before


def test_a_ref_names_an_actor() -> None:
    with pytest.raises(TypeError, match="non-empty str"):
        ActorRef("n1", "")
    ref = ActorRef("n1", "a")
    assert (ref.node, ref.name, ref.path) == ("n1", "a", "n1/a")
