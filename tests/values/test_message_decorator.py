"""@message makes a plain class a frozen, slotted dataclass; stacking on @dataclass still works."""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

import pytest

from actorfw import message
from actorfw.values import codec
from actorfw.values.codec import _DIRECT, _SLOTTED
from tests.conftest import load_kernels


@message(name="test.decorator.Plain")
class Plain:
    name: str
    count: int = 0


@message(name="test.decorator.Stacked")
@dataclasses.dataclass(frozen=True)
class Stacked:
    name: str


@message(name="test.decorator.Identity", eq=False)
class Identity:
    name: str


@message(name="test.decorator.Checked")
class Checked:
    count: int

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("count must be >= 0")


def test_a_plain_class_becomes_a_frozen_slotted_dataclass() -> None:
    assert dataclasses.is_dataclass(Plain) and Plain.__dataclass_params__.frozen  # type: ignore[attr-defined]
    value = Plain("a", 2)
    assert not hasattr(value, "__dict__") and Plain.__slots__ == ("name", "count")
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.name = "b"  # type: ignore[misc]
    assert Plain("a", 2) == value and hash(Plain("a", 2)) == hash(value)


def test_stacking_on_a_frozen_dataclass_still_works() -> None:
    assert hasattr(Stacked("x"), "__dict__") and Stacked in _DIRECT
    with pytest.raises(TypeError, match="must be a frozen dataclass"):

        @message(name="test.decorator.Unfrozen")
        @dataclasses.dataclass
        class Unfrozen:
            name: str


def test_eq_false_compares_by_identity() -> None:
    assert Identity("a") != Identity("a")


@pytest.fixture(params=["compiled", "pure"])
def wire(request: pytest.FixtureRequest) -> ModuleType:
    module = load_kernels(request.param)["wire"]
    codec.bind_kernel(module)
    return module


@pytest.mark.parametrize(
    "value", [Plain("a", 2), Stacked("s"), [Plain("x"), {"k": (Plain("y", 3),)}], Checked(4)]
)
def test_messages_round_trip_through_both_twins(wire: ModuleType, value: Any) -> None:
    body, buffers, plain = wire.encode_value(value)
    decoded = wire.decode_value(body, buffers, plain)
    assert decoded == value and type(decoded) is type(value)


def test_a_slotted_message_is_rebuilt_without_calling_init(wire: ModuleType) -> None:
    assert Plain in _SLOTTED and Checked not in _SLOTTED  # __post_init__: it is called
    body, buffers, plain = wire.encode_value(Plain("a", 2))
    decoded = wire.decode_value(body, buffers, plain)
    assert (decoded.name, decoded.count) == ("a", 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.count = 3


def test_a_message_whose_init_refuses_its_fields_is_malformed(wire: ModuleType) -> None:
    body = b'{"$m":["test.decorator.Checked",{"count":-1}]}'
    with pytest.raises(codec.MalformedMessage):
        wire.decode_value(body, [], False)
