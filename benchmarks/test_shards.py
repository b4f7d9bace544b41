"""The sharded KV store on node processes: groups side by side, and shard moves.

Run with ``pytest benchmarks/test_shards.py --benchmark-enable -s`` (the
tables print at the end), or ``actorfw bench shards``. With benchmarks
disabled (the normal test run) each case runs at a tiny scale, only to check
that it runs and that its figures are sane. The figures are in each case's
``extra_info``; pytest-benchmark's own time is that of the whole case
(cluster start included), not a figure to read.
"""

from __future__ import annotations

import pytest

from actorfw.bench.shards import (
    MOVE_SIZES,
    GroupsResult,
    MoveResult,
    measure_groups,
    measure_move,
    render,
)

GROUPS: list[GroupsResult] = []
MOVES: list[MoveResult] = []


@pytest.mark.parametrize("groups", [0, 1, 2, 3], ids=lambda g: f"{g}-groups")
def test_groups_on_the_same_nodes(benchmark, groups: int) -> None:  # type: ignore[no-untyped-def]
    scale = "quick" if benchmark.disabled else "full"
    results: list[GroupsResult] = []
    benchmark.group = "sharded KV, groups on 3 nodes"
    benchmark.pedantic(lambda: results.append(measure_groups(groups, scale)), rounds=1)
    (result,) = results
    benchmark.extra_info.update(result.as_dict())
    assert result.commands >= result.clients and 0 < result.p50_us <= result.p99_us
    GROUPS.append(result)


@pytest.mark.parametrize("size", MOVE_SIZES, ids=lambda s: f"{s >> 20}-MiB")
def test_a_shard_move(benchmark, size: int) -> None:  # type: ignore[no-untyped-def]
    scale = "quick" if benchmark.disabled else "full"
    results: list[MoveResult] = []
    benchmark.group = "sharded KV, a shard move"
    benchmark.pedantic(lambda: results.append(measure_move(size, scale)), rounds=1)
    (result,) = results
    benchmark.extra_info.update(result.as_dict())
    assert result.raw_s > 0
    if result.held_s is None:
        assert "not movable" in result.note
    else:
        assert result.held_s > 0 and result.unavailable_s is not None
    MOVES.append(result)


def teardown_module() -> None:
    if GROUPS or MOVES:
        print("\n" + render(GROUPS, MOVES))
