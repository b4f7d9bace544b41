"""Actor behaviour, on every runtime (the ``cluster`` fixture): asks, errors, supervision, watch.

These tests observe actors only through tells and asks, so that they hold
the same on the simulator and on node processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from actorfw import (
    ActorNotFound,
    ActorRef,
    AskTimeout,
    MessageRefused,
    NodeDown,
    RemoteError,
    UnhandledMessage,
    VectorClock,
)
from tests.support.actors import (
    Asker,
    Bank,
    CancelTimer,
    Deferred,
    Echo,
    Fail,
    Get,
    Lookup,
    Overdraw,
    Overdrawn,
    Parent,
    Put,
    Recorder,
    Send,
    SendAll,
    Sleep,
    SpawnChild,
    Spawner,
    SpawnOn,
    StartTimer,
    StopSelf,
    Teller,
    Timed,
    TryOverdraw,
    Unwatch,
    Watch,
    Watcher,
)


@dataclass(frozen=True)
class Unregistered:
    x: int


# -- asking and telling --------------------------------------------------------------------


def test_ask_returns_what_the_handler_returned(cluster) -> None:
    ref = cluster.spawn("n1", Recorder, "r")
    assert cluster.ask(ref, Put("a")) == 1
    assert cluster.ask(ref, Put("b"), on="n2") == 2
    assert cluster.ask(ref, Get())["items"] == [["a", None], ["b", None]]


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        -(2**63),
        2**64 - 1,
        1.5,
        "é",
        [1, [2]],
        (1, (2, "x")),
        {"k": {"$x": 1}},
        b"\x00\xff",
        {},
        VectorClock({"n1": 3, "n2": 1}),
        {"clocks": [VectorClock(), VectorClock({"é": 2**64 - 1})]},
    ],
    ids=[
        "none",
        "bool",
        "int-min",
        "int-max",
        "float",
        "str",
        "list",
        "tuple",
        "dict",
        "bytes",
        "empty",
        "vector-clock",
        "clocks-inside",
    ],
)
def test_message_values_arrive_as_themselves_across_nodes(cluster, value) -> None:
    ref = cluster.spawn("n1", Echo, name="echo")
    reply = cluster.ask(ref, value, on="n2")
    assert reply == value and type(reply) is type(value)


def test_a_handler_error_reaches_the_asker_with_its_type_name(cluster) -> None:
    ref = cluster.spawn("n1", Recorder, name="r")
    with pytest.raises(RemoteError) as caught:
        cluster.ask(ref, Fail("KeyError", "missing"), on="n2")
    error = caught.value
    assert isinstance(error, KeyError)  # built-in remote types are caught as themselves
    assert error.type_name == "KeyError"
    assert "missing" in error.message
    assert "raise getattr(builtins, msg.error)(msg.text)" in error.remote_traceback
    assert error.actor == "n1/r"


def test_the_same_mistake_gets_the_same_error_on_every_runtime(cluster) -> None:
    with pytest.raises(TypeError, match=r"spawn takes an Actor subclass, not <class 'dict'>"):
        cluster.spawn("n1", dict, name="d")
    hint = r"needs an ActorRef to send to, not str \(for the actor 'target' on node 'n2': "
    with pytest.raises(TypeError, match="ask " + hint):
        cluster.ask("n2/target", Get())
    with pytest.raises(TypeError, match="tell " + hint):
        cluster.tell("n2/target", Get())


def test_an_ask_to_a_node_not_in_the_cluster_fails_at_once(cluster) -> None:
    stranger = ActorRef("n9", "anyone")
    with pytest.raises(ActorNotFound, match="no node 'n9' in this cluster"):
        cluster.ask(stranger, Get(), timeout=30.0)  # not after 30 s: at once
    asker = cluster.spawn("n1", Asker, name="asker")
    with pytest.raises(ActorNotFound, match="no node 'n9'"):
        cluster.ask(asker, Send(stranger, Get()), timeout=30.0)


def test_a_registered_exception_reaches_an_asker_as_itself(cluster) -> None:
    bank = cluster.spawn("n1", Bank, name="bank")
    teller = cluster.spawn("n2", Teller, name="teller")
    assert cluster.ask(teller, TryOverdraw(bank, "alice", 30)) == ["caught", "alice", 30, "n1/bank"]
    with pytest.raises(Overdrawn) as caught:  # a driver's ask too
        cluster.ask(bank, Overdraw("bob", 5), on="n2")
    assert (caught.value.account, caught.value.missing) == ("bob", 5)


def test_the_node_survives_a_handler_error_and_the_actor_answers_again(cluster) -> None:
    ref = cluster.spawn("n1", Recorder, name="r")
    with pytest.raises(RemoteError):
        cluster.ask(ref, Fail())
    assert cluster.poll(ref, Put(1), until=lambda n: n == 1) == 1


def test_ask_to_an_actor_that_never_answers_times_out(cluster) -> None:
    ref = cluster.spawn("n1", Deferred, name="d")
    with pytest.raises(AskTimeout, match=r"no reply from n1/d within 0\.5s"):
        cluster.ask(ref, Get(), timeout=0.5, on="n2")


def test_ask_to_an_unknown_actor_fails_with_a_diagnosis(cluster) -> None:
    cluster.spawn("n2", Recorder, name="known")
    with pytest.raises(ActorNotFound, match=r"'ghost' is not on node n2 \(known there: known\)"):
        cluster.ask(ActorRef("n2", "ghost"), Get(), on="n1")


def test_unhandled_message_is_refused_with_the_handled_types(cluster) -> None:
    ref = cluster.spawn("n1", Watcher, name="w")
    with pytest.raises(UnhandledMessage, match=r"has no handler for test\.Put"):
        cluster.ask(ref, Put(1), on="n3")


def test_a_message_that_cannot_be_serialized_is_refused_at_tell(cluster) -> None:
    ref = cluster.spawn("n1", Recorder, name="r")
    with pytest.raises(MessageRefused, match=r"message.value is a set"):
        cluster.tell(ref, Put({1, 2}))
    with pytest.raises(MessageRefused, match="a dataclass that is not registered"):
        cluster.tell(ref, Put(Unregistered(1)))
    assert cluster.ask(ref, Get())["items"] == []


def test_reply_later_answers_every_held_ask(cluster) -> None:
    ref = cluster.spawn("n1", Deferred, name="d")

    async def main() -> tuple[object, object, int]:
        # One client, so d gets the two asks, then the answer, in this order.
        first = ref.ask(Get())
        second = ref.ask(Get())
        answered = await ref.ask(Put("late"))
        return await first, await second, answered

    assert cluster.run(main, on="n2") == ("late", "late", 2)


def test_reply_later_can_answer_with_an_error(cluster) -> None:
    ref = cluster.spawn("n1", Deferred, name="d")

    async def main() -> int:
        held = ref.ask(Get())
        answered = await ref.ask(Fail(text="bad"))
        with pytest.raises(RemoteError, match="ValueError: bad"):
            await held
        return answered

    assert cluster.run(main, on="n2") == 1


def test_an_actor_can_ask_another_from_an_async_handler(cluster) -> None:
    target = cluster.spawn("n3", Recorder, name="t")
    asker = cluster.spawn("n1", Asker, name="a")
    assert cluster.ask(asker, Send(target, Put("x"))) == 1
    assert cluster.ask(target, Get())["items"] == [["x", "n1/a"]]


def test_refs_sent_in_messages_work_on_the_other_node(cluster) -> None:
    recorder = cluster.spawn("n3", Recorder, name="rec")
    forwarder = cluster.spawn("n1", Recorder, name="fwd")
    cluster.tell(forwarder, Send(recorder, Put("via n1")))
    items = cluster.poll(recorder, Get(), until=lambda s: len(s["items"]) == 1)["items"]
    assert items == [["via n1", "n1/fwd"]]


def test_messages_from_one_sender_arrive_in_order(cluster) -> None:
    recorder = cluster.spawn("n2", Recorder, name="rec")
    sender = cluster.spawn("n1", Recorder, name="snd")
    for i in range(50):
        cluster.tell(sender, Send(recorder, Put(i)))
    items = cluster.poll(recorder, Get(), until=lambda s: len(s["items"]) == 50)["items"]
    assert [v for v, _ in items] == list(range(50))


def test_tell_all_reaches_every_target_in_order_here_and_on_other_nodes(cluster) -> None:
    sender = cluster.spawn("n1", Recorder, name="snd")
    targets = (
        cluster.spawn("n1", Recorder, name="here"),
        cluster.spawn("n2", Recorder, name="there"),
        cluster.spawn("n3", Recorder, name="far"),
        cluster.spawn("n3", Recorder, name="far2"),
    )
    for i in range(30):
        cluster.tell(sender, SendAll(targets, Put((i, b"\x00" * (i % 3)))))
    for target in targets:
        items = cluster.poll(target, Get(), until=lambda s: len(s["items"]) == 30)["items"]
        assert items == [[(i, b"\x00" * (i % 3)), "n1/snd"] for i in range(30)]


def test_tell_all_refuses_a_bad_message_before_sending_anything(cluster) -> None:
    sender = cluster.spawn("n1", Recorder, name="snd")
    targets = (cluster.spawn("n1", Recorder, name="here"), cluster.spawn("n2", Recorder, name="t"))
    for bad in (Put({1, 2}), Put(Unregistered(1))):
        with pytest.raises(MessageRefused):
            cluster.ask(sender, SendAll(targets, bad))
        with pytest.raises(MessageRefused):
            cluster.ask(sender, SendAll(targets[:1], bad))  # only a local target
    cluster.tell(sender, SendAll(targets, Put("ok")))
    for target in targets:
        items = cluster.poll(target, Get(), until=lambda s: len(s["items"]) >= 1)["items"]
        assert items == [["ok", "n1/snd"]]


def test_an_async_handler_finishes_before_the_next_message_starts(cluster) -> None:
    ref = cluster.spawn("n1", Recorder, name="r")
    cluster.tell(ref, Sleep(0.5))  # one sender: the Put waits behind the sleeping handler
    cluster.tell(ref, Put("after"))
    state = cluster.poll(ref, Get(), until=lambda s: len(s["items"]) == 2)
    assert [v for v, _ in state["items"]] == ["slept", "after"]


def test_spawn_on_starts_an_actor_on_another_node_by_class_path(cluster) -> None:
    spawner = cluster.spawn("n1", Spawner, name="s")
    ref = cluster.ask(spawner, SpawnOn("n3", "remote"))
    assert ref == ActorRef("n3", "remote")
    assert cluster.ask(ref, Put(1), on="n2") == 1
    assert cluster.ask(ref, Get())["label"] == "remote"


def test_spawn_on_reports_a_taken_name(cluster) -> None:
    spawner = cluster.spawn("n1", Spawner, name="s")
    cluster.spawn("n2", Recorder, name="taken")
    with pytest.raises(RemoteError, match="already runs on node n2"):
        cluster.ask(spawner, SpawnOn("n2", "taken"))


def test_lookup_finds_an_actor_here_on_a_named_node_or_anywhere(cluster) -> None:
    spawner = cluster.spawn("n1", Spawner, name="s")
    cluster.spawn("n3", Recorder, name="needle")
    assert cluster.ask(spawner, Lookup("s")) == ActorRef("n1", "s")
    assert cluster.ask(spawner, Lookup("needle", "n3")) == ActorRef("n3", "needle")
    assert cluster.ask(spawner, Lookup("needle")) == ActorRef("n3", "needle")
    assert cluster.ask(spawner, Lookup("needle", "n2")) is None
    assert cluster.ask(spawner, Lookup("hay")) is None


def test_lookup_on_a_named_node_that_is_down_says_so_rather_than_no_such_actor(cluster) -> None:
    spawner = cluster.spawn("n1", Spawner, name="s")
    cluster.spawn("n3", Recorder, name="needle")
    cluster.crash("n3")
    with pytest.raises((NodeDown, AskTimeout)):
        cluster.ask(spawner, Lookup("needle", "n3"), timeout=30.0)
    assert cluster.ask(spawner, Lookup("needle"), timeout=30.0) is None  # anywhere: passed over


# -- supervision -------------------------------------------------------------------------


def test_restart_keeps_the_ref_and_the_mailbox_and_renews_the_instance(cluster) -> None:
    parent = cluster.spawn("n1", Parent, "restart", name="p")
    child = cluster.ask(parent, SpawnChild("c"))
    assert child == ActorRef("n1", "p/c")
    before = cluster.ask(child, Get())["instance"]
    cluster.tell(child, Put("kept-before"))
    cluster.tell(child, Fail())
    cluster.tell(child, Put("queued-behind-the-failure"))
    state = cluster.poll(child, Get(), until=lambda s: s["items"])
    assert state["instance"] != before
    assert [v for v, _ in state["items"]] == ["queued-behind-the-failure"]


def test_resume_keeps_the_instance_and_its_state(cluster) -> None:
    parent = cluster.spawn("n1", Parent, "resume", name="p")
    child = cluster.ask(parent, SpawnChild("c"))
    cluster.ask(child, Put("x"))
    with pytest.raises(RemoteError):
        cluster.ask(child, Fail())
    assert cluster.ask(child, Get())["items"] == [["x", None]]


def test_stop_directive_stops_the_child(cluster) -> None:
    parent = cluster.spawn("n1", Parent, "stop", name="p")
    child = cluster.ask(parent, SpawnChild("c"))
    with pytest.raises(RemoteError):
        cluster.ask(child, Fail())
    assert cluster.poll(parent, Get(), until=lambda names: names == []) == []
    with pytest.raises(ActorNotFound):
        cluster.ask(child, Get())


def test_all_for_one_restarts_the_siblings_too(cluster) -> None:
    parent = cluster.spawn("n1", Parent, "restart", True, name="p")
    a = cluster.ask(parent, SpawnChild("a"))
    b = cluster.ask(parent, SpawnChild("b"))
    b_before = cluster.ask(b, Get())["instance"]
    with pytest.raises(RemoteError):
        cluster.ask(a, Fail())
    assert cluster.poll(b, Get(), until=lambda s: s["instance"] != b_before)


def test_escalate_fails_the_parent_whose_restart_stops_the_children(cluster) -> None:
    top = cluster.spawn("n1", Parent, "restart", name="top")
    middle = cluster.ask(top, SpawnChild("mid", kind="Parent", directive="escalate"))
    leaf = cluster.ask(middle, SpawnChild("leaf"))
    assert cluster.ask(middle, Get()) == ["top/mid/leaf"]
    with pytest.raises(RemoteError):
        cluster.ask(leaf, Fail())
    # The leaf's failure escalated to mid, which top restarted: a fresh mid, no children.
    assert cluster.poll(middle, Get(), until=lambda names: names == []) == []
    assert cluster.ask(top, Get()) == ["top/mid"]
    with pytest.raises(ActorNotFound):
        cluster.ask(leaf, Get())


def test_restart_limit_within_the_window_escalates(cluster) -> None:
    parent = cluster.spawn("n1", Parent, "restart", False, 2, name="p")
    child = cluster.ask(parent, SpawnChild("c"))
    for _ in range(2):
        with pytest.raises(RemoteError):
            cluster.ask(child, Fail())
        cluster.poll(child, Get(), until=lambda s: True)  # answered again: restarted
    # The third failure within the window escalates: the parent fails, its
    # supervisor (the node) restarts it, and that restart stops its children.
    with pytest.raises(RemoteError):
        cluster.ask(child, Fail())
    assert cluster.poll(parent, Get(), until=lambda names: names == []) == []


def test_a_top_level_actor_past_its_restart_limit_is_stopped_and_the_node_lives_on(cluster) -> None:
    # The cluster fixture lets a node restart a top-level actor 3 times a minute.
    ref = cluster.spawn("n1", Recorder, name="r")
    other = cluster.spawn("n1", Recorder, name="other")
    for _ in range(3):
        with pytest.raises(RemoteError):
            cluster.ask(ref, Fail())
        cluster.poll(ref, Get(), until=lambda s: True)
    with pytest.raises(RemoteError):
        cluster.ask(ref, Fail())
    with pytest.raises(ActorNotFound):
        cluster.ask(ref, Get())
    assert cluster.ask(other, Put(1)) == 1


# -- lifecycle and watch ---------------------------------------------------------------


def test_watch_fires_when_the_watched_actor_stops(cluster) -> None:
    target = cluster.spawn("n2", Recorder, name="t")
    watcher = cluster.spawn("n1", Watcher, name="w")
    cluster.ask(watcher, Watch(target))
    # Sent by the watcher, the stop travels behind the watch request (FIFO between
    # two nodes), so the watch is in place when the target stops.
    cluster.tell(watcher, Send(target, StopSelf()))
    events = cluster.poll(watcher, Get(), until=lambda e: e)
    assert events == [["n2/t", "stopped"]]


def test_watch_of_a_missing_actor_fires_at_once(cluster) -> None:
    watcher = cluster.spawn("n1", Watcher, name="w")
    cluster.ask(watcher, Watch(ActorRef("n2", "never-spawned")))
    assert cluster.poll(watcher, Get(), until=lambda e: e) == [["n2/never-spawned", "not-found"]]


def test_unwatch_stops_the_notification(cluster) -> None:
    target = cluster.spawn("n1", Recorder, name="t")
    watcher = cluster.spawn("n1", Watcher, name="w")
    cluster.ask(watcher, Watch(target))
    cluster.ask(watcher, Unwatch(target))
    cluster.ask(target, StopSelf())
    other = cluster.spawn("n1", Recorder, name="t2")
    cluster.ask(watcher, Watch(other))
    cluster.tell(other, StopSelf())
    # Only the second watch fires; the first would have come first.
    assert cluster.poll(watcher, Get(), until=lambda e: e) == [["n1/t2", "stopped"]]


def test_watch_fires_when_the_watched_actors_node_crashes(cluster) -> None:
    target = cluster.spawn("n2", Recorder, name="t")
    watcher = cluster.spawn("n1", Watcher, name="w")
    cluster.ask(watcher, Watch(target))
    cluster.crash("n2")
    events = cluster.poll(watcher, Get(), until=lambda e: e, timeout=30.0)
    assert events[0][0] == "n2/t" and events[0][1] in ("node-down", "node-restarted")


def test_a_stopped_actor_answers_asks_with_not_found(cluster) -> None:
    ref = cluster.spawn("n1", Recorder, name="r")
    cluster.ask(ref, StopSelf())
    with pytest.raises(ActorNotFound, match="'r' is not on node n1"):
        cluster.ask(ref, Get(), on="n2")


# -- timers -------------------------------------------------------------------------------


def test_a_one_shot_timer_delivers_once(cluster) -> None:
    ref = cluster.spawn("n1", Timed, name="t")
    cluster.ask(ref, StartTimer("once", 0.2))
    ticks = cluster.poll(ref, Get(), until=lambda t: t)
    assert [k for k, _ in ticks] == ["once"]


def test_a_cancelled_timer_never_delivers(cluster) -> None:
    ref = cluster.spawn("n1", Timed, name="t")
    cluster.ask(ref, StartTimer("never", 0.3))
    cluster.ask(ref, CancelTimer("never"))
    cluster.ask(ref, StartTimer("later", 0.6))
    ticks = cluster.poll(ref, Get(), until=lambda t: t)
    assert [k for k, _ in ticks] == ["later"]


def test_a_repeating_timer_keeps_delivering_until_cancelled(cluster) -> None:
    ref = cluster.spawn("n1", Timed, name="t")
    cluster.ask(ref, StartTimer("beat", 0.1, True))
    cluster.poll(ref, Get(), until=lambda t: len(t) >= 3)
    cluster.ask(ref, CancelTimer("beat"))
    count = len(cluster.ask(ref, Get()))
    cluster.ask(ref, StartTimer("marker", 0.5))
    ticks = cluster.poll(ref, Get(), until=lambda t: t[-1][0] == "marker")
    assert [k for k, _ in ticks].count("beat") == count
