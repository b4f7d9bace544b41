"""The actor API: handler dispatch, lifecycle hooks, and misuse caught at the call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from actorfw import (
    Actor,
    ActorRef,
    NoActorContext,
    RemoteError,
    Simulation,
    UnhandledMessage,
    handler,
    message,
)


@message(name="test.api.Base")
@dataclass(frozen=True)
class Base:
    n: int


@message(name="test.api.Derived")
@dataclass(frozen=True)
class Derived(Base):
    pass


@message(name="test.api.ByName")
@dataclass(frozen=True)
class ByName:
    pass


@message(name="test.api.Other")
@dataclass(frozen=True)
class Other:
    pass


class Dispatch(Actor):
    @handler
    def base(self, msg: Base) -> str:
        return "base"

    @handler("test.api.ByName")
    def by_name(self, msg: Any) -> str:
        return "by-name"

    @handler(dict, list)
    def data(self, msg: Any) -> str:
        return f"data:{type(msg).__name__}"

    @handler
    async def later(self, msg: str) -> str:
        return f"async:{msg}"


class DispatchChild(Dispatch):
    def base(self, msg: Base) -> str:  # overrides the handler method, keeps its registration
        return "overridden"

    def receive(self, msg: Any) -> str:
        return f"fallback:{type(msg).__name__}"


@pytest.fixture
def sim() -> Any:
    with Simulation(nodes=2, seed=3) as s:
        yield s


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (Base(1), "base"),
        (Derived(1), "base"),  # subclasses match their base's handler
        (ByName(), "by-name"),
        ({"a": 1}, "data:dict"),
        ([1], "data:list"),
        ("hi", "async:hi"),
    ],
)
def test_handlers_are_chosen_by_type_annotation_name_or_base(
    sim: Any, msg: Any, expected: str
) -> None:
    ref = sim.spawn("n1", Dispatch, name="d")
    assert sim.ask(ref, msg, on="n2") == expected


def test_subclasses_inherit_handlers_and_may_override_them(sim: Any) -> None:
    ref = sim.spawn("n1", DispatchChild, name="d")
    assert sim.ask(ref, Base(1)) == "overridden"
    assert sim.ask(ref, ByName()) == "by-name"
    assert sim.ask(ref, Other()) == "fallback:Other"


def test_without_a_handler_or_receive_the_message_is_refused(sim: Any) -> None:
    ref = sim.spawn("n1", Dispatch, name="d")
    with pytest.raises(UnhandledMessage, match=r"no handler for test.api.Other \(it handles: "):
        sim.ask(ref, Other())
    assert sim.node("n1").stats.unhandled == 1
    assert sim.node("n1").stats.failures == 0  # not a failure: the actor carries on
    assert sim.ask(ref, Base(1)) == "base"


def test_a_handler_without_a_type_is_refused_when_first_used(sim: Any) -> None:
    class Untyped(Actor):
        @handler
        def h(self, msg):  # type: ignore[no-untyped-def]
            return msg

    ref = sim.spawn("n1", Untyped, name="u")
    with pytest.raises(RemoteError, match="needs a type: annotate its message parameter"):
        sim.ask(ref, Base(1))


def test_handler_rejects_what_is_not_a_type_or_name() -> None:
    with pytest.raises(TypeError, match="takes message classes or registered names"):

        class Bad(Actor):
            @handler(3)  # type: ignore[call-overload]
            def h(self, msg: Any) -> None:
                pass


class Hooks(Actor):
    log: ClassVar[list[str]] = []

    def __init__(self, tag: str) -> None:
        self.tag = tag
        Hooks.log.append(f"init {tag} on {self.context.node}")

    async def on_start(self) -> None:
        Hooks.log.append(f"start {self.tag}")

    def on_stop(self) -> None:
        Hooks.log.append(f"stop {self.tag}")

    def on_restart(self, error: BaseException) -> None:
        Hooks.log.append(f"restart {self.tag} after {type(error).__name__}")

    @handler
    def boom(self, msg: Base) -> None:
        if msg.n:
            raise LookupError("boom")
        self.context.stop()

    @handler
    def other(self, msg: Other) -> str:
        Hooks.log.append(f"message {self.tag}")
        return "ok"


def test_hooks_run_in_order_and_may_be_async(sim: Any) -> None:
    Hooks.log = []
    ref = sim.spawn("n1", Hooks, "h", name="h")
    assert sim.ask(ref, Other()) == "ok"
    with pytest.raises(RemoteError):
        sim.ask(ref, Base(1))
    assert sim.ask(ref, Other()) == "ok"
    sim.ask(ref, Base(0))
    assert Hooks.log == [
        "init h on n1",
        "start h",
        "message h",
        "stop h",  # the failed instance is stopped before it is replaced
        "init h on n1",
        "restart h after LookupError",
        "message h",
        "stop h",
    ]


def test_refs_refuse_to_send_outside_any_actor_or_driver() -> None:
    with pytest.raises(NoActorContext, match="no actor context here"):
        ActorRef("n1", "x").tell("hello")


@pytest.mark.parametrize("name", ["", "a/b", "$sys", 5])
def test_spawn_refuses_bad_names(sim: Any, name: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        sim.spawn("n1", Dispatch, name=name)


def test_spawn_refuses_a_taken_name_and_a_non_actor(sim: Any) -> None:
    sim.spawn("n1", Dispatch, name="d")
    with pytest.raises(ValueError, match="already runs on node n1"):
        sim.spawn("n1", Dispatch, name="d")
    with pytest.raises(TypeError, match="takes an Actor subclass"):
        sim.spawn("n1", dict, name="x")  # type: ignore[arg-type]


class Misuse(Actor):
    def on_start(self) -> None:
        self.outcome = "nothing yet"

    @handler
    def tell_case(self, msg: Base) -> None:
        try:
            self.context.reply_later()
        except RuntimeError as error:
            self.outcome = str(error)

    @handler
    def timer_case(self, msg: Other) -> str:
        for delay, repeat in ((-1, False), (0, True), (float("nan"), False)):
            try:
                self.context.start_timer("k", "x", delay, repeat=repeat)
            except ValueError:
                continue
            return f"accepted {delay}"
        return "all refused"

    @handler
    def get(self, msg: ByName) -> str:
        return self.outcome


def test_reply_later_on_a_tell_is_refused(sim: Any) -> None:
    ref = sim.spawn("n1", Misuse, name="m")
    sim.tell(ref, Base(1))
    assert sim.ask(ref, ByName()) == (
        "reply_later() in n1/m: the current message is a tell, not an ask; "
        "there is nobody to answer"
    )


def test_bad_timer_delays_are_refused(sim: Any) -> None:
    ref = sim.spawn("n1", Misuse, name="m")
    assert sim.ask(ref, Other()) == "all refused"


class Chatty(Actor):
    @handler
    def speak(self, msg: Other) -> None:
        self.context.log.warning("hello from %s", self.context.name)


def test_the_context_logger_tags_lines_with_time_node_and_actor(
    sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ref = sim.spawn("n2", Chatty, name="chatty")
    sim.tell(ref, Other())
    sim.run_for(0.1)
    lines = [r.getMessage() for r in caplog.records if "hello from" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith("[t=") and lines[0].endswith("n2/chatty] hello from chatty")


class Shadowing(Actor):
    """Handlers looked up on the instance first, as Python looks attributes up."""

    def __init__(self) -> None:
        self.base = lambda msg: "instance"  # shadows the handler method below

    @handler
    def base(self, msg: Base) -> str:
        return "class"


class Becoming(Actor):
    """The "become" idiom: the fallback replaced per instance, at start and later."""

    def __init__(self) -> None:
        self.receive = self.first  # type: ignore[method-assign]

    def first(self, msg: Any) -> str:
        self.receive = self.second  # type: ignore[method-assign]
        return "first"

    def second(self, msg: Any) -> str:
        return "second"


def test_an_instance_attribute_overrides_a_handler_and_receive_may_be_replaced(
    sim: Any,
) -> None:
    assert sim.ask(sim.spawn("n1", Shadowing, name="s"), Base(1)) == "instance"
    becoming = sim.spawn("n1", Becoming, name="b")
    assert sim.ask(becoming, Other()) == "first"
    assert sim.ask(becoming, ByName()) == "second"  # a type first seen after the swap
