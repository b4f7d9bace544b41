"""Services: actors that drive the protocol cores of :mod:`actorfw.protocols`.

- :mod:`actorfw.services.paxos` — the Multi-Paxos roles as actors;
- :mod:`actorfw.services.replication` — replicated state machines for
  users: :func:`~actorfw.services.replication.replicate` and exactly-once
  clients.
"""
