"""The liveness of peer nodes: heartbeats out, the failure detector's verdicts in.

Every ``heartbeat_interval`` the engine sends each peer a
:class:`~actorfw.core.messages.Heartbeat` with its incarnation, and runs
the failure detector (:mod:`actorfw.protocols.failure_detector`). Any
traffic from a peer is evidence that it lives (:meth:`Liveness.heard_from`).
A peer declared down, or seen with a new incarnation (it restarted), is
*lost*: every ask to it ends with :class:`~actorfw.NodeDown` and every
watch of its actors with :class:`~actorfw.Terminated`.

A heartbeat round more than ``acceptable_pause`` seconds overdue means
this node's own loop stood still (a handler or a driver coroutine that
blocked it, a stopped process): the peers were not silent, this node was
deaf. It is noticed at the first thing the node does after the stall, the
input that waited (read before the overdue round) or the round itself,
and the failure detector is told (rule 6 of
:mod:`actorfw.protocols.failure_detector`) before that input counts, so no
peer is declared down for the stall and the stall does not enter the
detector's statistics; it is counted (``stats.stalls``) and logged.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING

from actorfw.core.arguments import no_such_node
from actorfw.core.messages import Heartbeat
from actorfw.protocols.failure_detector import Membership, MembershipEvent
from actorfw.values.errors import NodeDown
from actorfw.values.refs import ActorRef

if TYPE_CHECKING:
    from actorfw.core.engine import Engine

__all__ = ["Liveness"]

log = logging.getLogger("actorfw")


class Liveness:
    """An engine's peers and what it believes of them (see the module documentation).

    A client (which hosts no actors, and which nodes do not heartbeat) watches
    the nodes it reaches by *probing* them instead: it asks each node's
    protocol a :class:`~actorfw.core.messages.Heartbeat` every interval, and
    the answer is the evidence that the node lives. So a client's asks to a
    node that died end with :class:`~actorfw.NodeDown` too, as an actor's do.

    Args:
        engine: the engine.
        peers: the other nodes, heartbeated and watched.
        reachable: nodes it may send to without watching them (a client's).
        probed: of ``reachable``, the nodes to watch by probing (a client's).
    """

    __slots__ = ("_beat_due", "_beat_handle", "_engine", "_probed", "known", "membership", "peers")

    def __init__(
        self,
        engine: Engine,
        peers: tuple[str, ...],
        reachable: tuple[str, ...],
        probed: tuple[str, ...] = (),
    ) -> None:
        config = engine.config
        self._engine = engine
        self.membership = Membership(
            threshold=config.phi_threshold,
            acceptable_pause=config.acceptable_pause,
            min_std=config.min_std,
            first_interval=config.heartbeat_interval,
            join_timeout=config.join_timeout,
        )
        self.peers: list[str] = []
        """The peers, in the order they were added."""
        self.known: set[str] = set(reachable) - {engine.id}
        """Every node an ask may go to: the peers and the reachable nodes."""
        self._beat_handle: asyncio.TimerHandle | None = None
        self._beat_due = 0.0  # when the next heartbeat round is due, by the engine's clock
        self._probed = frozenset(probed) - {engine.id}
        self.known.update(self._probed)
        for peer in (*peers, *sorted(self._probed)):
            self.add(peer)

    def add(self, peer: str) -> None:
        """Track ``peer``: heartbeat it and watch its liveness."""
        engine = self._engine
        if peer != engine.id and peer not in self.peers:
            self.peers.append(peer)
            self.known.add(peer)
            self.membership.add(peer, engine.now())

    def start(self) -> None:
        """Begin heartbeating the peers."""
        if self.peers:
            self._beat_due = self._engine.now()
            self._beat_handle = self._engine.loop.call_later(0.0, self._beat)

    def stop(self) -> None:
        """Stop heartbeating (the engine crashed)."""
        if self._beat_handle is not None:
            self._beat_handle.cancel()
            self._beat_handle = None

    def is_down(self, peer: str) -> bool:
        """Is ``peer`` declared down?"""
        return self.membership.is_down(peer)

    def silence(self, peer: str) -> float:
        """Seconds since ``peer`` was last heard from (infinite if never)."""
        last = self.membership.last_heartbeat(peer)
        return math.inf if last is None else self._engine.now() - last

    def unreachable(self, target: ActorRef, even_if_down: bool = False) -> BaseException | None:
        """Why an ask to ``target``, on another node, cannot be sent now (None: it can)."""
        node = target.node
        if node not in self.known:
            return no_such_node(target, [self._engine.id, *self.peers], "ask")
        if not even_if_down and self.is_down(node):
            return NodeDown(
                f"node {node} is declared down (no heartbeat for "
                f"{self.silence(node):.1f}s); the ask to {target.path} was not sent"
            )
        return None

    def heard_from(self, peer: str) -> None:
        """Traffic came from ``peer``: evidence it is alive."""
        now = self._engine.now()  # one reading, and the clock the detector is judged by
        if self._beat_handle is not None:
            self._stalled(now)
        self.membership.seen(peer, now)

    def _stalled(self, now: float) -> None:
        """Forgive a stall of this node's own, if the heartbeat round is that overdue (rule 6)."""
        engine = self._engine
        late = now - self._beat_due
        if late <= engine.config.acceptable_pause:
            return
        self._beat_due = now  # forgiven once: the round, when it runs, is not late again
        engine.stats.stalls += 1
        self.membership.paused(late, now)
        log.warning(
            "[%s] this node's event loop stood still for %.1fs (a handler or driver that "
            "blocks it?); its peers are not judged on that silence",
            engine.id,
            late,
        )

    def heartbeat(self, peer: str, incarnation: int) -> None:
        """``peer`` sent a heartbeat as incarnation ``incarnation``."""
        if peer not in self.peers:
            return  # not a peer of ours (a client, say): its liveness is not tracked
        engine = self._engine
        for event in self.membership.heartbeat(peer, incarnation, engine.now()):
            if event is MembershipEvent.RESTARTED:
                if peer in self._probed:
                    # A probe learns of a restart late, maybe after asks went to the new
                    # incarnation: those will be answered. Asks to the old one time out.
                    log.info(
                        "[%s] node %s restarted (incarnation %d)", engine.id, peer, incarnation
                    )
                    engine.flow.peer_lost(peer, True)  # it counts credit from zero again
                else:
                    self._lost(peer, "node-restarted")
            elif event is MembershipEvent.UP:
                log.info("[%s] node %s is up (incarnation %d)", engine.id, peer, incarnation)

    def _beat(self) -> None:
        engine = self._engine
        if not engine.alive:
            return
        now = engine.now()
        config = engine.config
        self._stalled(now)
        beat = Heartbeat(engine.incarnation)
        probed = self._probed
        for peer in self.peers:
            if peer in probed:
                self._probe(peer, beat)
            else:
                engine.send(engine.protocol_of(peer), beat, None)
        for peer, _ in self.membership.tick(now):
            self._lost(peer, "node-down")
        engine.flow.tick()
        self._beat_due = now + config.heartbeat_interval
        self._beat_handle = engine.loop.call_later(config.heartbeat_interval, self._beat)

    def _probe(self, peer: str, beat: Heartbeat) -> None:
        """Ask ``peer``'s protocol for a heartbeat: its answer is traffic from it."""
        engine = self._engine
        # Even to a node declared down: its answer is how the client learns it is back.
        timeout = max(4 * engine.config.heartbeat_interval, 1.0)
        future = engine.ask(engine.protocol_of(peer), beat, timeout, None, even_if_down=True)
        future.add_done_callback(lambda answered: self._probed_answer(peer, answered))

    def _probed_answer(self, peer: str, answered: asyncio.Future[object]) -> None:
        if answered.cancelled() or answered.exception() is not None:
            return  # a lost probe is what the failure detector counts, not an error
        incarnation = answered.result()
        if type(incarnation) is int and self._engine.alive:
            self.heartbeat(peer, incarnation)  # the node's answer is its heartbeat

    def _lost(self, peer: str, reason: str) -> None:
        engine = self._engine
        log.warning(
            "[%s] node %s is %s", engine.id, peer, "down" if reason == "node-down" else "restarted"
        )
        engine.flow.peer_lost(peer, reason == "node-restarted")
        engine.asks.node_lost(peer, reason.removeprefix("node-"))
        engine.watches.node_lost(peer, reason)
