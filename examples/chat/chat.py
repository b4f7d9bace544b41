"""A chat room on a causal broadcast group, across three node processes.

Alice asks a question on node n1; once Bob (on n2) and Carol (on n3) have
seen it, both answer at the same moment. Every node's room shows both
answers after the question (causal order); the two answers are concurrent,
so rooms may show them in different orders, and each post's vector clock
says so. Run it from this directory: ``python chat.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from actorfw import Actor, handler, message
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


def main() -> None:
    """Run the room on three node processes and print what each node shows."""
    with ActorSystem(3, apps=["actorfw.services.causal"]) as system:
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


if __name__ == "__main__":  # node processes start with the spawn method
    main()
