"""``actorfw shards``: show and change a running sharded cluster's configurations.

::

    actorfw shards --cluster cluster.toml show               # the latest configuration
    actorfw shards --cluster cluster.toml show 3             # configuration 3
    actorfw shards --cluster cluster.toml status             # what each group holds and moves
    actorfw shards --cluster cluster.toml join g1=n1,n2,n3 g2=n2,n3,n4
    actorfw shards --cluster cluster.toml leave g1
    actorfw shards --cluster cluster.toml move 7 g2

It connects as a client node, like ``actorfw kv`` (the same cluster file
and options; the shard manager's group name is the file's ``sharded``,
``--manager``, or ``shards``). ``join`` starts nothing: the groups must
run already (their nodes' ``[[sharded]]`` sections start them). ``show``,
``join``, ``leave`` and ``move`` print the configuration (the new one for
a change): its number, each group's nodes and shards, and the shards
that moved from the one before; ``status`` prints, per group, the
configuration it is at, the shards it holds, those it still waits for
and those it keeps for another group. ``--json`` prints the same as JSON.

Exit codes: 0 done, 1 refused by the shard manager or no answer in time,
2 bad arguments or a bad cluster file.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from actorfw.kv.cli import (
    _REPLICA_TIMEOUT,
    DEFAULT_TIMEOUT,
    EXIT_FAILED,
    EXIT_USAGE,
    _target,
    _Usage,
)

__all__ = ["add_arguments", "run"]

DEFAULT_MANAGER = "shards"
"""The shard manager's group name when neither the cluster file nor ``--manager`` gives one."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options and commands of ``actorfw shards`` to ``parser``."""
    parser.description = (
        "Show or change the configurations of a sharded cluster's shard manager. Exit code 0 "
        "when done, 1 when refused or unanswered, 2 for bad arguments."
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--cluster", metavar="FILE", help="a cluster file (as for actorfw kv)")
    where.add_argument(
        "--node", action="append", default=[], metavar="NAME=ENDPOINT", help="a node (repeat)"
    )
    parser.add_argument(
        "--manager",
        metavar="NAME",
        help=f"the shard manager's group name (default: the file's sharded, or {DEFAULT_MANAGER})",
    )
    parser.add_argument("--key", metavar="FILE", help="the client's .key_secret (CURVE)")
    parser.add_argument("--peer-keys", metavar="DIR", help="a directory of the nodes' .key files")
    parser.add_argument("--name", help="the client's node name")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds the command may take in all (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    commands = parser.add_subparsers(dest="shards_command", metavar="COMMAND", required=True)
    show = commands.add_parser("show", help="print configuration N (default: the latest)")
    show.add_argument("num", metavar="N", type=int, nargs="?", default=-1)
    commands.add_parser("status", help="print what each group holds, waits for and keeps")
    join = commands.add_parser("join", help="join groups: GROUP=NODE,NODE,... (repeat)")
    join.add_argument("groups", metavar="GROUP=NODES", nargs="+")
    join.add_argument(
        "--weight", action="append", default=[], metavar="GROUP=W", help="a group's weight"
    )
    leave = commands.add_parser("leave", help="take groups out; their shards move to the others")
    leave.add_argument("groups", metavar="GROUP", nargs="+")
    move = commands.add_parser("move", help="move one shard to a group")
    move.add_argument("shard", metavar="SHARD", type=int)
    move.add_argument("to_group", metavar="GROUP")


def _join_groups(items: list[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for item in items:
        group, sep, nodes = item.partition("=")
        members = [n for n in nodes.split(",") if n]
        if not sep or not group or not members:
            raise _Usage(f"join {item!r} is not GROUP=NODE,NODE,...")
        groups[group] = members
    return groups


def _weights(items: list[str]) -> dict[str, int] | None:
    weights: dict[str, int] = {}
    for item in items:
        group, _, weight = item.partition("=")
        if not group or not weight.isdigit():
            raise _Usage(f"--weight {item!r} is not GROUP=W (W a whole number)")
        weights[group] = int(weight)
    return weights or None


def _operation(args: argparse.Namespace) -> list[Any]:
    command = args.shards_command
    if command == "show":
        return ["query", args.num]
    if command == "join":
        weights = _weights(args.weight)
        op: list[Any] = ["join", _join_groups(args.groups)]
        return op if weights is None else [*op, weights]
    if command == "leave":
        return ["leave", args.groups]
    if command == "move":
        return ["move", args.shard, args.to_group]
    return ["query", -1]  # status starts from the latest configuration


def run(args: argparse.Namespace) -> int:
    """Run ``actorfw shards`` with parsed arguments; the exit code."""
    args.group = None
    args.sharded = args.manager
    try:
        target = _target(args)
        operation = _operation(args)
    except _Usage as error:
        print(f"actorfw shards: {error}", file=sys.stderr)
        return EXIT_USAGE
    manager = target.group if target.sharded else DEFAULT_MANAGER
    from actorfw.node import SystemTimeout, connect
    from actorfw.protocols.sharding import Configuration
    from actorfw.services.replication import GroupClient, Unavailable
    from actorfw.values.errors import ActorfwError

    client = connect(target.nodes, curve=target.curve, name=target.name)
    timeout = min(_REPLICA_TIMEOUT, args.timeout)
    try:
        admin = GroupClient(client, manager, list(target.nodes), None, timeout, args.timeout)
        answer = admin.call(operation)
        if isinstance(answer, list) and answer[:1] == ["error"]:
            print(f"actorfw shards: refused: {answer[1]}", file=sys.stderr)
            return EXIT_FAILED
        config = Configuration.from_value(answer)
        previous = None
        if config.num > 0:
            before = admin.call(["query", config.num - 1])
            previous = None if isinstance(before, list) else Configuration.from_value(before)
        if args.shards_command == "status":
            statuses = {}
            # The groups of the configuration before too: one that just left may still
            # keep shards for the groups that took them.
            groups = dict(previous.groups) if previous is not None else {}
            groups.update(config.groups)
            for group, nodes in sorted(groups.items()):
                reader = GroupClient(client, group, list(nodes), None, timeout, args.timeout)
                statuses[group] = reader.read(["status"])[1]
            _print_status(config, statuses, args.json)
        else:
            _print_config(config, previous, args.json)
        return 0
    except (Unavailable, SystemTimeout) as error:
        print(f"actorfw shards: no answer in {args.timeout:g}s: {error}", file=sys.stderr)
        return EXIT_FAILED
    except ActorfwError as error:
        print(f"actorfw shards: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        client.close()


def _moved(config: Any, previous: Any) -> list[tuple[int, str | None, str | None]]:
    if previous is None:
        return []
    return [
        (s, old, new)
        for s, (old, new) in enumerate(zip(previous.shards, config.shards, strict=True))
        if old != new
    ]


def _print_config(config: Any, previous: Any, as_json: bool) -> None:
    moved = _moved(config, previous)
    if as_json:
        value = config.to_value()
        value["moved"] = [{"shard": s, "from": old, "to": new} for s, old, new in moved]
        print(json.dumps(value))
        return
    print(f"configuration {config.num}: {len(config.shards)} shards")
    for group, nodes in sorted(config.groups.items()):
        shards = config.shards_of(group)
        weight = config.weights.get(group)
        extra = f", weight {weight}" if weight is not None else ""
        print(f"  {group} on {', '.join(nodes)}{extra}: {len(shards)} shards {_ranges(shards)}")
    unassigned = [s for s, g in enumerate(config.shards) if g is None]
    if unassigned:
        print(f"  unassigned: {len(unassigned)} shards {_ranges(unassigned)}")
    if moved:
        print(f"  moved from configuration {config.num - 1}: {len(moved)} shards")
        for shard, old, new in moved:
            print(f"    shard {shard}: {old or '-'} -> {new or '-'}")


def _print_status(config: Any, statuses: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"latest": config.num, "groups": statuses}))
        return
    print(f"latest configuration: {config.num}")
    for group, status in statuses.items():
        behind = "" if status["num"] == config.num else " (behind)"
        if group not in config.groups:
            behind += " (left)"
        print(
            f"  {group} at configuration {status['num']}{behind}: holds {_ranges(status['held'])}"
        )
        for shard, source, num, _ in status["pulling"]:
            print(f"    waits for shard {shard} from {source} (as of configuration {num})")
        for num, shard in status["outgoing"]:
            print(f"    keeps shard {shard} of configuration {num} for its new owner")


def _ranges(shards: Any) -> str:
    """``[0-3, 7]`` for 0, 1, 2, 3, 7."""
    parts: list[str] = []
    run: list[int] = []
    for shard in [*shards, None]:
        if run and shard == run[-1] + 1:
            run.append(shard)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [shard] if shard is not None else []
    return f"[{', '.join(parts)}]"
