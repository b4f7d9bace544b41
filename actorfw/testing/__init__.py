"""The test kit: simulated clusters in pytest, seeds that replay.

Installing actorfw registers a pytest plugin (:mod:`actorfw.testing.pytest_plugin`)
that gives tests:

- the ``simulation`` fixture: a factory of :class:`~actorfw.Simulation`
  clusters, seeded by the test's seed and closed after the test;
- the ``sim_seed`` fixture: a test that takes it runs once per seed
  (``--sim-seeds N``, or ``@pytest.mark.simulation(seeds=N)``, default 10),
  and a failing seed prints the exact command that replays it
  (``--sim-seed S``);
- the ``simulation`` marker.

See ``docs/testing.md`` for a worked example.
"""

from actorfw.testing.pytest_plugin import DEFAULT_SEEDS, replay_command

__all__ = ["DEFAULT_SEEDS", "replay_command"]
