"""A chat room on a causal broadcast group, across three node processes.

Alice asks a question on node n1; once Bob (on n2) and Carol (on n3) have
seen it, both answer at the same moment. Every node's room shows both
answers after the question (causal order); the two answers are concurrent,
so rooms may show them in different orders, and each post's vector clock
says so. Run it from this directory: ``python chat.py``.

``python chat.py --trace DIR`` also records the run's causal trace (one
file per node in DIR), writes it in ShiViz's format to ``DIR/chat.shiviz``
(paste or upload it at the ShiViz site to see the space-time diagram) and
prints which events were concurrent with bob's reply leaving n2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from actorfw import Actor, NodeConfig, handler, message
from actorfw.check.trace import load_trace
from actorfw.node import ActorSystem
from actorfw.protocols.causal import Delivery
from actorfw.services.causal import Broadcast, Broadcasted, causal_group


@message(name="chat.Transcript")
class Transcript:
    """Asked of a room: its posts, in the order its node delivered them."""


class Room(Actor):
    """One node's view of the room: each post once, in causal order."""

    def __init__(self) -> None:
        self.posts: list[Delivery] = []
        self.seen: set[tuple[str, int]] = set()

    @handler
    def delivered(self, post: Delivery) -> None:
        # After a restart a member reports again what it kept: keep each post once.
        if (post.sender, post.seq) not in self.seen:
            self.seen.add((post.sender, post.seq))
            self.posts.append(post)

    @handler
    def transcript(self, msg: Transcript) -> list[Delivery]:
        return list(self.posts)


def line(post: Delivery) -> str:
    """One post as the room shows it."""
    return f"{post.payload['who']}: {post.payload['text']}"


def main(trace_dir: str | None = None) -> None:
    """Run the room on three node processes and print what each node shows."""
    config = NodeConfig(trace_dir=os.path.abspath(trace_dir) if trace_dir else None)
    with ActorSystem(3, apps=["actorfw.services.causal"], node_config=config) as system:
        rooms = {node: system.spawn(node, Room, name="room") for node in system.nodes}
        chat = causal_group(system, "chat", subscribers=rooms)
        question = chat.broadcast("n1", {"who": "alice", "text": "lunch at noon?"})
        for node in ("n2", "n3"):  # bob and carol both see the question
            system.poll(rooms[node], Transcript(), until=lambda posts: len(posts) >= 1)

        async def both_reply() -> list[Broadcasted]:
            # At the same moment: neither has seen the other's reply.
            bob = {"who": "bob", "text": "yes, see you there"}
            carol = {"who": "carol", "text": "can't, meeting"}
            return list(
                await asyncio.gather(
                    chat.member("n2").ask(Broadcast(bob)), chat.member("n3").ask(Broadcast(carol))
                )
            )

        answer, aside = system.run(both_reply)
        views: dict[str, Any] = {
            node: system.poll(room, Transcript(), until=lambda posts: len(posts) == 3)
            for node, room in rooms.items()
        }
        for node, posts in views.items():
            print(f"{node}: " + " | ".join(line(post) for post in posts))
        assert question.clock < answer.clock and question.clock < aside.clock
        for posts in views.values():
            order = [post.payload["who"] for post in posts]
            assert order[0] == "alice"  # both replies follow the question, everywhere
        if answer.clock.concurrent_with(aside.clock):
            print("bob's and carol's replies are concurrent: each room may order them its own way")
        else:
            print("one reply had seen the other: every room shows them in that order")
    if trace_dir:  # the nodes have stopped: every event is written
        export(trace_dir)


def export(trace_dir: str) -> None:
    """Write the trace for ShiViz, and show what was concurrent with bob's reply."""
    trace = load_trace([trace_dir])
    path = os.path.join(trace_dir, "chat.shiviz")
    with open(path, "w", encoding="utf-8") as out:
        out.write(trace.to_shiviz())
    print(f"trace: {len(trace)} events on {', '.join(trace.nodes)}, for ShiViz in {path}")
    # The member on n2 broadcasting bob's reply: its first send after the question came.
    bob = next(
        e
        for e in trace.events
        if e.node == "n2" and e.kind == "send" and e.what in ("causal.Data", "causal.DataRun")
    )
    carol = [e for e in trace.concurrent(bob.id) if e.node == "n3" and e.kind == "send"]
    print(f"bob's reply leaves n2 at {bob.id}; {len(carol)} sends on n3 are concurrent with it")


if __name__ == "__main__":  # node processes start with the spawn method
    parser = argparse.ArgumentParser(description="a chat room on a causal broadcast group")
    parser.add_argument("--trace", metavar="DIR", help="record the causal trace in DIR")
    main(parser.parse_args().trace)
