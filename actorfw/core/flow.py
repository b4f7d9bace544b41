"""Flow control: bounded mailboxes, and credit between nodes, so a slow actor slows its senders.

Theory of operation
-------------------

1. **Mailboxes are bounded.** An actor class says how many messages may
   wait in its mailbox (``Actor.mailbox_limit``, 10,000 by default) and what
   happens past that (``Actor.mailbox_policy``). Past the bound an ask is
   refused with :class:`~actorfw.Overloaded`, whatever the policy; a tell is
   dropped and counted under ``"drop"``, and under ``"hold"`` (the default)
   it is queued and its *sender* is held back: an actor of the same node
   gets no further turn until the mailbox has room again; another node
   gets no more credit (rule 2). A timer's message always goes in.
2. **Credit between nodes.** Each node may have at most ``window`` units of
   tells in flight to each peer, a tell taking one unit and one more per
   whole 4 KiB of its body and buffers (a message larger than the window
   goes alone). The receiver gives the units back as it queues the tells,
   in grants of a quarter window (:class:`~actorfw.core.messages.Credit`,
   cumulative, so a lost grant is made good by the next); a tell that
   found its mailbox full gives its units back only when that mailbox has
   room again. Out of credit, the sender keeps further tells in its
   *backlog* for that peer (in order) and holds the sending actor back
   until the backlog has left; code outside any actor sees the backlog
   (``backlog(node)``) and is refused with ``Overloaded`` past
   ``max_backlog`` envelopes.
3. **What is never held back**: asks (refused when full instead), replies
   (each answers an ask, bounded by the asks pending), the node protocol
   (heartbeats, watches, grants: so a busy peer is not taken for a dead
   one), tells to a peer declared down (holding them would stop their
   senders for as long as the peer is away: they go while credit lasts,
   counted so that both sides agree when it is back, and past it they are
   dropped here, counted in ``stats.overloaded``, rather than sent to be
   dropped there), and tells to a node that is not in the cluster (dropped
   by the transport: nobody would ever give credit for them).
4. **Lost tells do not leak credit.** A sender held back for a heartbeat
   interval asks for credit with a :class:`~actorfw.core.messages.CreditProbe`
   saying how much it has sent in all. Travelling behind the tells on the
   same connection, it tells the receiver that whatever it has not got by
   then was lost (a reconnect, a crash): the receiver writes that off and
   answers with a grant. A peer that restarted starts from zero both ways;
   one declared down keeps its counts, and its backlog is dropped. A probe's
   and a grant's numbers must fit in 63 bits, or they are bad input.
7. **Credit is per pair of nodes.** One slow actor whose mailbox is full
   holds back every tell from the nodes that send to it to its node, and
   the asks sent after them: it is the price of a bound that does not
   depend on how many actors there are.
5. **Cycles of waiting are broken while they are small.** An actor that
   becomes held gives back at once what it owed and wakes the actors that
   waited for it, and a tell to the full mailbox of a held actor goes in
   without holding its sender (or owing its credit) until that mailbox
   holds twice its bound. So actors that tell each other in a loop (on one
   node or across nodes) do not wait for each other as long as what is in
   flight between them fits in twice their bounds and the windows; past
   that a held actor's senders are held back too (a pipeline's producer
   is slowed however long the pipeline), and a loop that keeps making more
   messages than that waits for good, as bounded queues anywhere do: give
   such actors ``mailbox_limit = None`` or the ``"drop"`` policy.
6. **A peer that ignores credit** cannot fill this node's memory: its tells
   past twice the window that this node has not given back are dropped on
   arrival, counted (``stats.overloaded``) and logged.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any, NoReturn

from actorfw.core.envelopes import Envelope
from actorfw.core.messages import Credit, CreditProbe
from actorfw.values.errors import Overloaded

if TYPE_CHECKING:
    from actorfw.core.cell import Cell
    from actorfw.core.engine import Engine
    from actorfw.values.refs import ActorRef

__all__ = [
    "MAX_PEERS",
    "UNIT_SHIFT",
    "FlowControl",
    "Incoming",
    "Outgoing",
    "carried",
    "cost_of",
]

MAX_PEERS = 4096
"""Peers whose credit is tracked each way; past that the oldest is forgotten (rule 4 heals it)."""

UNIT_SHIFT = 12
"""A credit unit per whole 4 KiB of a tell's body and buffers, beyond its one per envelope."""


def carried(body: bytes, buffers: list[Any]) -> int:
    """The bytes a message carries: its encoded body and its buffers."""
    size = len(body)
    if buffers:
        for buffer in buffers:
            size += memoryview(buffer).nbytes
    return size


def cost_of(envelope: Envelope) -> int:
    """The credit units ``envelope`` takes: one, and one per whole 4 KiB it carries."""
    return 1 + (carried(envelope.body, envelope.buffers) >> UNIT_SHIFT)


class Outgoing:
    """This node's tells to one peer: what was sent and given back, and what waits.

    ``room`` is what may still leave at once: the window less what is in
    flight, or -1 while tells wait in the backlog (so one comparison tells
    whether a tell may go; the engine makes it on every tell, see
    :meth:`FlowControl.take`).
    """

    __slots__ = ("acked", "backlog", "held", "room", "sent", "since")

    def __init__(self, window: int) -> None:
        self.sent = 0  # units sent under credit, in all
        self.acked = 0  # units the peer has given back, in all (never above sent)
        self.room = window
        self.backlog: deque[tuple[Envelope, int]] = deque()
        self.held: list[Cell] = []  # senders waiting for the backlog to leave
        self.since = 0.0  # when the backlog last became non-empty


class Incoming:
    """One peer's tells to this node: what was given back, what is owed, when to grant.

    What came in all is ``released + owed``. The engine counts on it directly,
    on every tell (see ``Engine.enqueue``): ``released`` grows by the tell's
    units, and once it reaches ``due`` the units are granted.
    """

    __slots__ = ("due", "owed", "peer", "released")

    def __init__(self, peer: str, quarter: int) -> None:
        self.peer = peer
        self.released = 0  # units given back, in all
        self.owed = 0  # units of tells waiting in full mailboxes, not given back yet
        self.due = quarter  # grant when released reaches this


class FlowControl:
    """One engine's flow control (see the module documentation).

    Args:
        engine: the engine.
        window: credit units in flight to each peer; None turns credit off
            (mailbox bounds and holding local senders still apply).
        max_backlog: envelopes kept per peer while out of credit.
    """

    __slots__ = (
        "_blocked",
        "_engine",
        "ceiling",
        "counts",
        "max_backlog",
        "outgoing",
        "quarter",
        "window",
    )

    def __init__(self, engine: Engine, window: int | None, max_backlog: int) -> None:
        if window is not None and (type(window) is not int or window < 4):
            raise ValueError(f"flow_window must be an int of at least 4, or None, not {window!r}")
        if type(max_backlog) is not int or max_backlog < 1:
            raise ValueError(f"max_backlog must be a positive int, not {max_backlog!r}")
        self._engine = engine
        self.window = window
        self.max_backlog = max_backlog
        self.quarter = (window or 4) // 4
        """Units gathered before they are granted back."""
        self.ceiling = 2 * (window or 0)
        """Units a peer may have here not given back; past it its tells are dropped (rule 6)."""
        self.outgoing: dict[str, Outgoing] = {}
        """This node's tells to each peer, counted (the engine reads it on every tell)."""
        self.counts: dict[str, Incoming] = {}
        """Each peer's tells to this node, counted (the engine reads it on every tell)."""
        self._blocked: dict[str, Outgoing] = {}  # peers with a backlog

    # -- sending ---------------------------------------------------------------------------

    def take(
        self, node: str, envelope: Envelope, sender: ActorRef | None, bounded: bool = True
    ) -> bool:
        """May a tell to ``node`` leave now? Its units are taken if so; else it waits (rule 2).

        ``Outbound.send`` carries the first branch inline (it runs on every
        tell); everything else calls this. ``bounded=False`` keeps the tell
        even past ``max_backlog``: a driver's tell, checked at its call (see
        :mod:`actorfw.node.handoff`, whose queue bounds the overshoot).

        Raises:
            Overloaded: the backlog to ``node`` is full (and ``bounded``).
        """
        out = self.outgoing.get(node)
        body = envelope.body
        cost = 1 + (len(body) >> UNIT_SHIFT) if not envelope.buffers else cost_of(envelope)
        if out is not None and out.room >= cost:
            out.room -= cost
            out.sent += cost
            return True
        return self.window is None or self.admit(node, envelope, sender, bounded)

    def admit(
        self, node: str, envelope: Envelope, sender: ActorRef | None, bounded: bool = True
    ) -> bool:
        """May a tell to ``node`` leave now? If not, it is kept in the backlog (rule 2).

        The slow path of :meth:`take`: the tell did not fit in
        ``outgoing[node].room``.

        Raises:
            Overloaded: the backlog to ``node`` is full.
        """
        window = self.window
        if window is None:
            return True
        out = self.outgoing.get(node)
        if out is None:
            if node not in self._engine.liveness.known:
                return True  # no such node: Outbound made it a dead letter before this
            out = self._new_out(node, window)
        cost = cost_of(envelope)
        if not out.backlog and (cost <= out.room or out.sent == out.acked):
            out.sent += cost
            out.room = window - (out.sent - out.acked)
            return True
        engine = self._engine
        liveness = engine.liveness
        if node in liveness.peers and liveness.is_down(node):  # rule 3: never held
            outstanding = out.sent - out.acked
            if outstanding + cost > window and outstanding != 0:
                engine.stats.overloaded += 1  # past the window: dropped here, not there
                engine.rate_limited(
                    logging.INFO,
                    "node %s is down and its credit is used up: a tell to %s was dropped",
                    node,
                    envelope.target,
                )
                return False
            out.sent += cost  # counted, so both sides still agree when it is back
            out.room = -1 if out.backlog else window - (out.sent - out.acked)
            return True
        if bounded and len(out.backlog) >= self.max_backlog:
            self.refuse(node, envelope.target)
        if not out.backlog:
            out.since = engine.now()
            out.room = -1
            self._blocked[node] = out
        out.backlog.append((envelope, cost))
        if sender is not None:
            self._hold(sender, out.held)
        return False

    def admit_ask(self, node: str, envelope: Envelope) -> bool:
        """May an ask to ``node`` leave now? Not while tells wait there: it keeps their order.

        An ask takes no credit (the receiver refuses it when the mailbox is
        full), but waits in the backlog behind the tells sent before it.

        Raises:
            Overloaded: the backlog to ``node`` is full.
        """
        out = self._blocked.get(node)
        if out is None:
            return True
        if len(out.backlog) >= self.max_backlog:
            self.refuse(node, envelope.target, "ask")
        out.backlog.append((envelope, 0))
        return False

    def _new_out(self, node: str, window: int) -> Outgoing:
        table = self.outgoing
        if len(table) >= MAX_PEERS:
            for name, old in list(table.items()):
                if not old.backlog:
                    del table[name]
                    break
        out = table[node] = Outgoing(window)
        return out

    def _hold(self, sender: ActorRef, waiters: list[Cell], target: Cell | None = None) -> None:
        engine = self._engine
        if sender.node != engine.id:
            return
        cell = engine.cells.get(sender.name)
        if cell is None or cell.held or cell is target:
            return
        cell.held = True
        engine.stats.held += 1
        waiters.append(cell)
        if cell.owed is not None or cell.waiters is not None:
            self.room(cell)  # rule 5: nobody waits for an actor that waits

    def refuse(self, node: str, target: str, kind: str = "tell") -> NoReturn:
        """Count and raise the refusal of a tell (or ask) to ``node/target``: its backlog is full.

        Raises:
            Overloaded: always.
        """
        self._engine.stats.overloaded += 1
        raise Overloaded(
            f"node {self._engine.id} holds {self.backlog(node)} messages for node {node}, which "
            f"gives no credit for more (max_backlog {self.max_backlog}); the {kind} to "
            f"{node}/{target} was not sent"
        )

    def backlog(self, node: str) -> int:
        """Tells waiting for credit to ``node``."""
        out = self.outgoing.get(node)
        return 0 if out is None else len(out.backlog)

    def backlogs(self) -> dict[str, int]:
        """Every peer with tells waiting for credit, and how many."""
        return {node: len(out.backlog) for node, out in self._blocked.items()}

    def credit(self, peer: str, released: int) -> None:
        """``peer`` has given back ``released`` units in all: send what that lets go."""
        out = self.outgoing.get(peer)
        if out is None or released <= out.acked:
            return
        out.acked = min(released, out.sent)
        self._let_go(peer, out)

    def _let_go(self, peer: str, out: Outgoing) -> None:
        window = self.window or 0
        backlog = out.backlog
        if not backlog:
            out.room = window - (out.sent - out.acked)
            return
        send = self._engine.transport.send
        while backlog:
            envelope, cost = backlog[0]
            outstanding = out.sent - out.acked
            if outstanding + cost > window and outstanding != 0:
                return
            backlog.popleft()
            out.sent += cost
            send(peer, envelope)
        out.room = window - (out.sent - out.acked)
        self._blocked.pop(peer, None)
        self._wake(out.held)

    def _wake(self, cells: list[Cell]) -> None:
        if not cells:
            return
        woken = list(cells)
        cells.clear()
        schedule = self._engine.schedule
        for cell in woken:
            cell.held = False
            schedule(cell)

    def tick(self) -> None:
        """Every heartbeat: probe each peer that has held tells back for an interval (rule 4)."""
        if not self._blocked:
            return
        engine = self._engine
        now = engine.now()
        interval = engine.config.heartbeat_interval
        for peer, out in list(self._blocked.items()):
            if now - out.since >= interval:
                engine.send(engine.protocol_of(peer), CreditProbe(out.sent), None, True)

    # -- receiving -------------------------------------------------------------------------

    def incoming(self, peer: str) -> Incoming:
        """The count of ``peer``'s tells to this node (begun now if there is none)."""
        state = self.counts.get(peer)
        if state is None:
            table = self.counts
            if len(table) >= MAX_PEERS:
                del table[next(iter(table))]
            state = table[peer] = Incoming(peer, self.quarter)
        return state

    def release(self, state: Incoming, cost: int) -> None:
        """Give ``cost`` units back; grant them once a quarter window has gathered."""
        state.released += cost
        if state.released >= state.due:
            self.grant(state)

    def grant(self, state: Incoming) -> None:
        """Tell the peer every unit given back so far (if ``state`` is still its count)."""
        state.due = state.released + self.quarter
        peer = state.peer
        if self.counts.get(peer) is not state:
            return  # the peer was lost since (rule 4): its new count is another
        engine = self._engine
        engine.send(engine.protocol_of(peer), Credit(state.released), None, True)

    def probed(self, peer: str, sent: int) -> None:
        """``peer`` has sent ``sent`` units in all: write off what never came, and grant."""
        if self.window is None:
            return
        state = self.incoming(peer)
        received = state.released + state.owed
        if sent > received:
            state.released += sent - received
        elif sent < received:  # the peer began counting again (it restarted)
            # What full mailboxes hold stays owed (their cells give it back on room).
            state.released = max(0, sent - state.owed)
        self.grant(state)

    def owe(self, cell: Cell, state: Incoming, cost: int) -> bool:
        """A tell from ``state.peer`` goes into ``cell``'s full mailbox: its units wait for room.

        False: the peer has more than twice the window waiting here already,
        so it ignores its credit: the tell is dropped, counted and logged (rule 6).
        """
        if state.owed + cost > self.ceiling and state.owed != 0:
            engine = self._engine
            engine.stats.overloaded += 1
            engine.rate_limited(
                logging.WARNING,
                "node %s sent tells past its credit (%d units not given back, window %d); dropped",
                state.peer,
                state.owed,
                self.window,
            )
            return False
        state.owed += cost
        owed = cell.owed
        if owed is None:
            owed = cell.owed = {}
        owed[state] = owed.get(state, 0) + cost
        return True

    def hold_local(self, sender: ActorRef, target: Cell) -> None:
        """``sender``, an actor here, told ``target``'s full mailbox: no turn until it has room.

        Not if ``target`` is held back itself and its mailbox is under twice its
        bound (rule 5), or is the sender.
        """
        if target.held and len(target.mailbox) < 2 * target.limit:
            return
        waiters = target.waiters
        if waiters is None:
            waiters = target.waiters = []
        self._hold(sender, waiters, target)

    def room(self, cell: Cell) -> None:
        """``cell``'s mailbox has room (or the cell is gone): give back what it held up."""
        owed, cell.owed = cell.owed, None
        if owed:
            for state, cost in owed.items():
                state.owed = max(0, state.owed - cost)
                self.release(state, cost)
        waiters, cell.waiters = cell.waiters, None
        if waiters:
            self._wake(waiters)

    # -- peers -----------------------------------------------------------------------------

    def peer_lost(self, peer: str, restarted: bool) -> None:
        """``peer`` is down or restarted: its backlog is dropped and its senders go on.

        A restarted peer counts from zero, so both counts start again here. A
        peer declared down keeps its counts (it may be alive, and still
        counting): tells to it go on uncounted by credit's hold, counted in
        ``sent``, until it is up again (rule 3).
        """
        self._blocked.pop(peer, None)
        if restarted:
            self.counts.pop(peer, None)
            out = self.outgoing.pop(peer, None)
        else:
            out = self.outgoing.get(peer)
        if out is None:
            return
        window = self.window or 0
        out.room = window - (out.sent - out.acked)
        if out.backlog:
            engine = self._engine
            engine.rate_limited(
                logging.INFO,
                "node %s is lost: %d tells waiting for its credit dropped",
                peer,
                len(out.backlog),
            )
            out.backlog.clear()
        self._wake(out.held)
