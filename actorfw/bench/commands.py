"""The ``actorfw bench`` subcommands: each suite's figures, as a table or as JSON.

Each suite measures actorfw beside its baseline in the same run and reports
the ratio (see ``docs/benchmarks.md``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_bench_commands", "more_than_zero_seconds", "positive_int", "positive_seconds"]


def positive_seconds(text: str) -> float:
    """An argument type: seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"seconds must be >= 0, not {text}")
    return value


def positive_int(text: str) -> int:
    """An argument type: a whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def more_than_zero_seconds(text: str) -> float:
    """An argument type: seconds, more than 0."""
    value = positive_seconds(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"seconds must be > 0, not {text}")
    return value


def _cmd_bench_kernels(args: argparse.Namespace) -> int:
    from actorfw import __version__, kernels
    from actorfw.bench import kernel_cases, measure, render_table

    try:
        modules = {impl: kernels.load(impl) for impl in ("compiled", "pure")}
    except ImportError as exc:
        print(f"actorfw bench kernels: {exc}", file=sys.stderr)
        return 2
    cases = [c for c in kernel_cases() if args.filter is None or args.filter in c.name]
    if not cases:
        print(f"actorfw bench kernels: no case matches {args.filter!r}", file=sys.stderr)
        return 2
    repeats, per_repeat = (1, 0.002) if args.quick else (args.repeats, args.seconds)

    def progress(case: object) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\r\033[Kmeasuring {getattr(case, 'name', case)} ...", end="", file=sys.stderr)

    results = measure(
        cases, modules, repeats=repeats, seconds_per_repeat=per_repeat, progress=progress
    )
    if not args.json and sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr)
    if args.json:
        doc = {
            "actorfw": __version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "repeats": repeats,
            "seconds_per_repeat": per_repeat,
            "statistic": "best repeat",
            "results": [m.as_dict() for m in results],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"actorfw {__version__} kernels, compiled vs pure Python "
            f"(best of {repeats} repeats; ratio = pure / compiled)\n"
        )
        print(render_table(results))
    return 0


def _cmd_bench_messaging(args: argparse.Namespace) -> int:
    from actorfw import __version__
    from actorfw.bench.messaging import render, run_messaging

    def progress(text: str) -> None:
        if not args.json:
            print(f"measuring {text} ...", file=sys.stderr, flush=True)

    from actorfw.bench import flow

    transports = tuple(args.transport) if args.transport else ("ipc", "tcp")
    scale = "quick" if args.quick else "full"
    results = (
        run_messaging(scale, transports, progress, args.event_loop) if not args.flow_only else []
    )
    slow, credit = flow.run_flow(scale, progress)
    if args.json:
        doc = {
            "actorfw": __version__,
            "python": platform.python_version(),
            "scale": scale,
            "event_loop": args.event_loop,
            "results": [r.as_dict() for r in results],
            "slow_receiver": [r.as_dict() for r in slow],
            "credit": [r.as_dict() for r in credit],
        }
        print(json.dumps(doc, indent=2))
    else:
        if results:
            print(
                f"actorfw {__version__} messaging between node processes ({args.event_loop} "
                "loop), beside raw pyzmq (or the baseline named) in the same run (ratio = "
                "actorfw / baseline)\n"
            )
            print(render(results))
        print(
            f"\nflow control: a flood into a {flow.HANDLER_SECONDS * 1000:g} ms handler (peak "
            "RSS of both nodes; rate over the handler's capacity), then credit on against off, "
            "two clusters side by side in the same run\n"
        )
        print(flow.render(slow, credit))
    return 0


def _cmd_bench_peers(args: argparse.Namespace) -> int:
    from actorfw import __version__
    from actorfw.bench.peers import PEERS, render, run_peers

    def progress(text: str) -> None:
        if not args.json:
            print(f"measuring {text} ...", file=sys.stderr, flush=True)

    scale = "quick" if args.quick else "full"
    results, skipped = run_peers(scale, tuple(args.peer) if args.peer else PEERS, progress)
    if args.json:
        doc = {
            "actorfw": __version__,
            "python": platform.python_version(),
            "scale": scale,
            "results": [r.as_dict() for r in results],
            "skipped": skipped,
        }
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"actorfw {__version__} beside the actor frameworks installed here, the same work "
            "in interleaved rounds of one run (how many times faster actorfw is)\n"
        )
        print(render(results, skipped))
    return 0


def _cmd_bench_causal(args: argparse.Namespace) -> int:
    from actorfw import __version__
    from actorfw.bench import tracing
    from actorfw.bench.causal import render, run_causal

    def progress(text: str) -> None:
        if not args.json:
            print(f"measuring {text} ...", file=sys.stderr, flush=True)

    kernels = tuple(args.kernels) if args.kernels else ("compiled", "pure")
    results = run_causal("quick" if args.quick else "full", kernels, progress)
    traced = tracing.run_tracing("quick" if args.quick else "full", progress)
    if args.json:
        doc = {
            "actorfw": __version__,
            "python": platform.python_version(),
            "scale": "quick" if args.quick else "full",
            "results": [r.as_dict() for r in results],
            "tracing": [r.as_dict() for r in traced],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"actorfw {__version__} causal broadcast on node processes, beside the same "
            "traffic as plain tells in the same run (ratio = causal / tells)\n"
        )
        print(render(results))
        print("\ncausal tracing on and off, two clusters side by side in the same run\n")
        print(tracing.render(traced))
    return 0


def _cmd_bench_paxos(args: argparse.Namespace) -> int:
    from actorfw import __version__
    from actorfw.bench.paxos import check_targets, render, run_paxos

    def progress(text: str) -> None:
        if not args.json:
            print(f"measuring {text} ...", file=sys.stderr, flush=True)

    scale = "quick" if args.quick else "full"
    nodes = tuple(args.nodes) if args.nodes else (3, 5)
    storages = tuple(args.storage) if args.storage else ("sqlite", "memory")
    batches = tuple(args.batch) if args.batch else (1, 64)
    try:
        results = run_paxos(scale, nodes, storages, batches, args.clients, progress)
    except ValueError as error:
        print(f"actorfw bench paxos: {error}", file=sys.stderr)
        return 2
    if args.json:
        doc = {
            "actorfw": __version__,
            "python": platform.python_version(),
            "scale": scale,
            "results": [r.as_dict() for r in results],
            "targets": [c.as_dict() for c in check_targets(results)],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"actorfw {__version__} replicated KV store on node processes (ipc), beside a raw "
            "pyzmq round trip in the same run (ratio = latency / raw round trip)\n"
        )
        print(render(results))
    return 0


def _cmd_bench_shards(args: argparse.Namespace) -> int:
    from actorfw import __version__
    from actorfw.bench.shards import MOVE_SIZES, render, run_shards

    def progress(text: str) -> None:
        if not args.json:
            print(f"measuring {text} ...", file=sys.stderr, flush=True)

    scale = "quick" if args.quick else "full"
    groups = tuple(args.groups) if args.groups else (0, 1, 2, 3)
    sizes = tuple(m << 20 for m in args.move_mib) if args.move_mib else MOVE_SIZES
    if any(g < 0 for g in groups) or any(s <= 0 for s in sizes):
        print("actorfw bench shards: --groups >= 0 and --move-mib > 0", file=sys.stderr)
        return 2
    by_groups, moves = run_shards(scale, groups, sizes, progress)
    if args.json:
        doc = {
            "actorfw": __version__,
            "python": platform.python_version(),
            "scale": scale,
            "groups": [g.as_dict() for g in by_groups],
            "moves": [m.as_dict() for m in moves],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"actorfw {__version__} sharded KV store on 3 node processes (ipc, sqlite): groups "
            "side by side beside the unsharded store, and shard moves beside raw pyzmq\n"
        )
        print(render(by_groups, moves))
    return 0


def _cmd_bench_replication(args: argparse.Namespace) -> int:
    from actorfw import __version__
    from actorfw.bench.replication import compare, render, run_replication

    def progress(text: str) -> None:
        if not args.json:
            print(f"measuring {text} ...", file=sys.stderr, flush=True)

    scale = "quick" if args.quick else "full"
    try:
        results = run_replication(scale, args.rounds, progress)
    except ValueError as error:
        print(f"actorfw bench replication: {error}", file=sys.stderr)
        return 2
    if args.json:
        doc = {
            "actorfw": __version__,
            "python": platform.python_version(),
            "scale": scale,
            "results": [r.as_dict() for r in results],
            "comparison": compare(results).as_dict(),
        }
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"actorfw {__version__} primary-backup (sync, async) beside Multi-Paxos: the KV store "
            "on 3 node processes (ipc, sqlite), each scheme on fresh clusters, alternating\n"
        )
        print(render(results))
    return 0


def _cmd_bench_check(args: argparse.Namespace) -> int:
    from actorfw import __version__, kernels
    from actorfw.bench.check import check_cases, measure_check, render_check

    try:
        modules = {impl: kernels.load(impl)["search"] for impl in ("compiled", "pure")}
    except ImportError as exc:
        print(f"actorfw bench check: {exc}", file=sys.stderr)
        return 2
    if args.jepsen is not None:
        return _bench_jepsen_logs(args, modules)
    scale = "full" if args.full else "quick"
    cases = [c for c in check_cases(scale) if args.filter is None or args.filter in c.name]
    if not cases:
        print(f"actorfw bench check: no case matches {args.filter!r}", file=sys.stderr)
        return 2

    def progress(name: str) -> None:
        if not args.json:
            print(f"measuring {name} ...", file=sys.stderr, flush=True)

    results = measure_check(cases, modules, args.repeats, args.timeout, progress)
    title = (
        f"actorfw {__version__} linearizability checker, compiled search kernel beside its "
        f"pure twin in the same run (best of {args.repeats}; ratio = pure / compiled)"
    )
    return _check_report(args, {"scale": scale}, "best repeat", results, title, render_check)


def _check_report(
    args: argparse.Namespace,
    source: dict[str, Any],
    statistic: str,
    results: Any,
    title: str,
    render: Any,
) -> int:
    """Print ``bench check``'s figures: JSON with ``source`` and ``statistic``, or the table."""
    from actorfw import __version__

    if args.json:
        doc = {
            "actorfw": __version__,
            "python": platform.python_version(),
            **source,
            "repeats": args.repeats,
            "timeout": args.timeout,
            "statistic": statistic,
            "results": [m.as_dict() for m in results],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(title + "\n")
        print(render(results))
    return 0


def _bench_jepsen_logs(args: argparse.Namespace, modules: dict[str, Any]) -> int:
    """``actorfw bench check --jepsen DIR``: the register logs in DIR, on both kernels."""
    from actorfw import __version__
    from actorfw.bench.check import measure_logs, render_logs

    folder = Path(args.jepsen)
    paths = sorted(str(p) for p in folder.glob("*.log")) if folder.is_dir() else []
    if args.filter is not None:
        paths = [p for p in paths if args.filter in Path(p).name]
    if not paths:
        print(f"actorfw bench check: no *.log file in {folder}", file=sys.stderr)
        return 2

    def progress(name: str) -> None:
        if not args.json:
            print(f"checking {name} ...", file=sys.stderr, flush=True)

    try:
        results = measure_logs(paths, modules, args.repeats, args.timeout, progress)
    except (OSError, ValueError) as exc:
        print(f"actorfw bench check: {exc}", file=sys.stderr)
        return 2
    title = (
        f"actorfw {__version__} linearizability checker on {len(results)} Jepsen register "
        f"logs from {folder} (Register(); best of {args.repeats} per log, summed)"
    )
    source = {"logs": str(folder)}
    return _check_report(args, source, "best repeat per log", results, title, render_logs)


def add_bench_commands(commands: Any) -> None:
    """Add ``bench`` and its suites to the command line's subcommands."""
    bench = commands.add_parser("bench", help="run a benchmark suite and print its table")
    suites = bench.add_subparsers(dest="suite", metavar="suite", required=True)
    kernels = suites.add_parser(
        "kernels",
        help="compiled kernels against their pure-Python twins",
        description="Time every kernel operation compiled and pure, in the same run, and "
        "print the time per call of each and their ratio.",
    )
    kernels.add_argument("--json", action="store_true", help="print the figures as JSON")
    kernels.add_argument("--filter", metavar="TEXT", help="only cases whose name contains TEXT")
    kernels.add_argument(
        "--repeats",
        type=positive_int,
        default=5,
        metavar="N",
        help="timed repeats per case (default 5)",
    )
    kernels.add_argument(
        "--seconds",
        type=more_than_zero_seconds,
        default=0.05,
        metavar="S",
        help="length of one repeat in seconds (default 0.05)",
    )
    kernels.add_argument(
        "--quick", action="store_true", help="one very short repeat: checks that it runs"
    )
    kernels.set_defaults(run=_cmd_bench_kernels)
    messaging = suites.add_parser(
        "messaging",
        help="actors on node processes against raw pyzmq",
        description="Tell throughput, fan-in, ask round trips and numpy payloads between node "
        "processes, each beside raw pyzmq doing the same work in the same run; tells and asks "
        "from the driver's thread (tells beside the same tells inside system.run); then flow "
        "control: a slow receiver flooded for 60 s (both nodes' peak memory, the rate it "
        "achieved), and tells and asks with credit on against off.",
    )
    messaging.add_argument("--json", action="store_true", help="print the figures as JSON")
    messaging.add_argument(
        "--transport", action="append", choices=["ipc", "tcp"], help="only this transport (repeat)"
    )
    messaging.add_argument(
        "--event-loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="the nodes' and the client's event loop (default asyncio)",
    )
    messaging.add_argument("--quick", action="store_true", help="tiny amounts: checks that it runs")
    messaging.add_argument("--flow-only", action="store_true", help="only the flow-control cases")
    messaging.set_defaults(run=_cmd_bench_messaging)
    peers = suites.add_parser(
        "peers",
        help="the same work on Thespian, Ray, Pykka and PySyncObj, where installed",
        description="Tells across processes and driver asks on Thespian and Ray, tells and asks "
        "within one process on Pykka, a replicated key-value store of 3 nodes in memory on "
        "PySyncObj, each beside actorfw doing the same work in interleaved rounds of the same "
        "run; a peer that is not installed is skipped with the reason (pip install thespian "
        "ray pykka pysyncobj installs them all).",
    )
    peers.add_argument("--json", action="store_true", help="print the figures as JSON")
    peers.add_argument(
        "--peer",
        action="append",
        choices=["thespian", "ray", "pykka", "pysyncobj"],  # actorfw.bench.peers.PEERS
        help="only this (repeat)",
    )
    peers.add_argument("--quick", action="store_true", help="tiny amounts: checks that it runs")
    peers.set_defaults(run=_cmd_bench_peers)
    causal = suites.add_parser(
        "causal",
        help="causal broadcast groups on node processes against plain tells",
        description="Deliveries per second of causal broadcast groups of 3, 5 and 8 members "
        "on node processes, each beside the same traffic as plain tells in the same run, on "
        "the compiled kernels and on their pure twins; then causal tracing on against off "
        "(tell rate and ask p50, two clusters side by side).",
    )
    causal.add_argument("--json", action="store_true", help="print the figures as JSON")
    causal.add_argument(
        "--kernels", action="append", choices=["compiled", "pure"], help="only these (repeat)"
    )
    causal.add_argument("--quick", action="store_true", help="tiny amounts: checks that it runs")
    causal.set_defaults(run=_cmd_bench_causal)
    paxos = suites.add_parser(
        "paxos",
        help="the replicated KV store on node processes",
        description="Committed commands per second (many concurrent clients) and one client's "
        "latency p50/p99 of the Multi-Paxos replicated KV store on node processes, for each "
        "number of nodes, storage and batch size, beside a raw pyzmq round trip measured in "
        "the same run. A full run takes a few minutes.",
    )
    paxos.add_argument("--json", action="store_true", help="print the figures as JSON")
    paxos.add_argument(
        "--nodes",
        action="append",
        type=int,
        metavar="N",
        help="cluster size (repeat; default 3, 5)",
    )
    paxos.add_argument(
        "--storage",
        action="append",
        choices=["sqlite", "memory"],
        help="the nodes' storage (repeat; default both)",
    )
    paxos.add_argument(
        "--batch",
        action="append",
        type=int,
        metavar="N",
        help="commands at most per slot, ReplicaOptions.max_batch (repeat; default 1, 64)",
    )
    paxos.add_argument(
        "--clients",
        type=int,
        metavar="N",
        help="concurrent clients for throughput (default 1024; 4 with --quick)",
    )
    paxos.add_argument("--quick", action="store_true", help="tiny amounts: checks that it runs")
    paxos.set_defaults(run=_cmd_bench_paxos)
    shards = suites.add_parser(
        "shards",
        help="the sharded KV store: 1-3 groups on the same nodes, and shard moves",
        description="Commands per second, node CPU per command and one client's p50/p99 of "
        "the sharded KV store with 1, 2 and 3 groups on the same 3 node processes, beside "
        "the unsharded store in the same run; then the move of a shard of 1, 10 and 100 MiB "
        "(time until the new owner holds it, the longest read wait) beside raw pyzmq sending "
        "the same bytes. A full run takes a few minutes.",
    )
    shards.add_argument("--json", action="store_true", help="print the figures as JSON")
    shards.add_argument(
        "--groups",
        action="append",
        type=int,
        metavar="N",
        help="groups (repeat; 0 is the unsharded store; default 0, 1, 2, 3)",
    )
    shards.add_argument(
        "--move-mib",
        action="append",
        type=int,
        metavar="MIB",
        help="the size of a moved shard in MiB (repeat; default 1, 10, 100)",
    )
    shards.add_argument("--quick", action="store_true", help="tiny amounts: checks that it runs")
    shards.set_defaults(run=_cmd_bench_shards)
    replication = suites.add_parser(
        "replication",
        help="primary-backup beside Multi-Paxos on the same node processes",
        description="The KV store replicated by primary-backup (sync mode) and by "
        "Multi-Paxos on 3 node processes with durable storage, fresh clusters in alternating "
        "rounds: commands per second of many clients, node and client CPU per command, one "
        "client's p50/p99, and the time from a SIGKILL of the primary (or leader) to the "
        "first command answered by another node; then primary-backup's figures over "
        "Multi-Paxos'. A full run takes a few minutes.",
    )
    replication.add_argument("--json", action="store_true", help="print the figures as JSON")
    replication.add_argument(
        "--rounds", type=int, metavar="N", help="rounds of both schemes (default 3; 1 with --quick)"
    )
    replication.add_argument(
        "--quick", action="store_true", help="tiny amounts: checks that it runs"
    )
    replication.set_defaults(run=_cmd_bench_replication)
    checks = suites.add_parser(
        "check",
        help="the linearizability checker, compiled kernel against its pure twin",
        description="Generate histories (linearizable, and with a planted stale read; with "
        "and without operations of unknown outcome; hard ones with many overlapping writes of "
        "one key), check each with the compiled search kernel and its pure twin in the same "
        "run, and print the time to the verdict and to the minimized witness, and the ratio. "
        "The default cases take seconds; --full spans 100 to 100,000 operations, 1 to 100 "
        "keys and 2 to 50 clients, and takes minutes.",
    )
    checks.add_argument("--json", action="store_true", help="print the figures as JSON")
    checks.add_argument(
        "--full", action="store_true", help="the large cases too (minutes, not seconds)"
    )
    checks.add_argument("--filter", metavar="TEXT", help="only cases whose name contains TEXT")
    checks.add_argument(
        "--jepsen",
        metavar="DIR",
        help="instead of generated histories, the Jepsen register test logs DIR/*.log "
        "(lines like 'INFO  jepsen.util - 3\\t:invoke\\t:cas\\t[3 0]'), each checked with "
        "Register(); prints the verdicts and the total and slowest times",
    )
    checks.add_argument(
        "--repeats",
        type=positive_int,
        default=3,
        metavar="N",
        help="checks per kernel and figure; the best is kept (default 3)",
    )
    checks.add_argument(
        "--timeout",
        type=more_than_zero_seconds,
        default=60.0,
        metavar="S",
        help="each check's timeout in seconds (default 60)",
    )
    checks.set_defaults(run=_cmd_bench_check)
