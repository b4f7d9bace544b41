"""The ``actorfw`` command: the project's one entry point.

Subcommands so far:

- ``actorfw info``: the version and which kernels are active.
- ``actorfw node``: run a node on this host (see ``docs/deployment.md``).
- ``actorfw keys generate``: a CURVE key pair for a node.
- ``actorfw kv``: get, put, delete, cas or append keys of a running
  replicated KV store (see ``actorfw.kv.cli``).
- ``actorfw check``: is a recorded history (JSON lines) linearizable? The
  verdict per key and the witness of a violation.
- ``actorfw bench kernels``: compiled kernels against their pure-Python
  twins, as a table or (``--json``) as JSON.
- ``actorfw bench messaging``: actors on node processes against raw pyzmq.
- ``actorfw bench causal``: causal broadcast groups on node processes against
  the same traffic as plain tells.
- ``actorfw bench paxos``: the replicated KV store on node processes:
  committed commands per second and latency, beside a raw pyzmq round trip.
- ``actorfw bench check``: the linearizability checker's time to a verdict
  and to a minimized witness, compiled search kernel beside its pure twin.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


def _os_error(error: OSError) -> str:
    """An OSError as one line naming the path: ``history.jsonl does not exist``."""
    if error.filename is None or not error.strerror:
        return str(error)
    if isinstance(error, FileNotFoundError):
        return f"{error.filename} does not exist"
    return f"{error.filename}: {error.strerror}"


def _cmd_info(args: argparse.Namespace) -> int:
    import actorfw

    info = actorfw.kernels_info()
    print(f"actorfw {actorfw.__version__} on Python {platform.python_version()}")
    print(f"kernels: {info.implementation} (selected by {info.selected_by})")
    for name, path in info.modules.items():
        print(f"  {name}: {path}")
    return 0


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


def _cmd_keys_generate(args: argparse.Namespace) -> int:
    from actorfw.node.keys import generate_keys

    try:
        public, secret = generate_keys(args.name, args.dir, overwrite=args.overwrite)
    except ValueError as error:
        print(f"actorfw keys generate: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.filename is None:  # the key files are there already
            reason = str(error)
        else:
            reason = f"cannot write the key pair into {args.dir}: {error.strerror}"
        print(f"actorfw keys generate: {reason}", file=sys.stderr)
        return 2
    print(f"public key: {public}  (copy to every other node)")
    print(f"secret key: {secret}  (keep on this host only)")
    return 0


def _cmd_kv(args: argparse.Namespace) -> int:
    from actorfw.kv.cli import run

    return run(args)


def _peer_pairs(items: list[str], what: str, form: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"{what} {item!r} is not {form}")
        out[name] = value
    return out


def _cmd_node(args: argparse.Namespace) -> int:
    import dataclasses
    import logging

    from actorfw.node.config import NodeSettings, load_curve, load_settings
    from actorfw.node.runtime import run_node

    try:
        if args.config:
            settings = load_settings(args.config)
        else:
            if not args.name or not args.listen:
                raise ValueError("give --config FILE, or at least --name and --listen")
            curve = None
            if args.key:
                peer_keys: Any = (
                    _peer_pairs(args.peer_key, "--peer-key", "NAME=FILE")
                    if args.peer_key
                    else args.peer_keys
                )
                if not peer_keys:
                    raise ValueError(
                        "--key needs the peers' public keys: --peer-keys DIR or --peer-key N=FILE"
                    )
                curve = load_curve(args.key, peer_keys)
            settings = NodeSettings(
                name=args.name,
                listen=args.listen,
                peers=_peer_pairs(args.peer, "--peer", "NAME=ENDPOINT"),
                data_dir=args.data_dir or f"data-{args.name}",
                apps=list(args.app),
                curve=curve,
            )
        if args.storage:
            settings = dataclasses.replace(settings, storage=args.storage)
    except ValueError as error:
        print(f"actorfw node: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"actorfw node: {_os_error(error)}", file=sys.stderr)
        return 2
    level = getattr(logging, args.log_level.upper())
    try:
        run_node(settings, standalone=True, log_level=level)
    except KeyboardInterrupt:
        return 130
    except ImportError as error:
        print(
            f"actorfw node: {error}, imported for the node's apps ({', '.join(settings.apps)}): "
            "is it installed, or on PYTHONPATH?",
            file=sys.stderr,
        )
        return 2
    except (ValueError, LookupError, OSError) as error:
        print(f"actorfw node: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a ZeroMQ error binding or connecting, say
        print(f"actorfw node: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    logging.getLogger("actorfw").info("[%s] node stopped", settings.name)
    return 0


def _cmd_bench_messaging(args: argparse.Namespace) -> int:
    from actorfw import __version__
    from actorfw.bench.messaging import render, run_messaging

    def progress(text: str) -> None:
        if not args.json:
            print(f"measuring {text} ...", file=sys.stderr, flush=True)

    transports = tuple(args.transport) if args.transport else ("ipc", "tcp")
    results = run_messaging("quick" if args.quick else "full", transports, progress)
    if args.json:
        doc = {
            "actorfw": __version__,
            "python": platform.python_version(),
            "scale": "quick" if args.quick else "full",
            "results": [r.as_dict() for r in results],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"actorfw {__version__} messaging between node processes, beside raw pyzmq "
            "in the same run (ratio = actorfw / raw)\n"
        )
        print(render(results))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from actorfw.demo import DemoOptions, render, run_demo, to_json

    try:
        options = DemoOptions(
            nodes=args.nodes, duration=args.duration, clients=args.clients, seed=args.seed
        )
    except ValueError as error:
        print(f"actorfw demo: {error}", file=sys.stderr)
        return 2
    if args.history is not None:
        problem = _unwritable(args.history)
        if problem:
            print(f"actorfw demo: --history {args.history}: {problem}", file=sys.stderr)
            return 2
    report = run_demo(options, sys.stderr if args.json else sys.stdout, args.history)
    if args.json:
        print(to_json(report))
    else:
        print(render(report))
    return 1 if report.problems() else 0


def _unwritable(path: str) -> str | None:
    """Why a file cannot be written at ``path`` (None: it can), without writing it."""
    import os
    from pathlib import Path

    target = Path(path)
    folder = target.parent
    if target.is_dir():
        return "is a directory"
    if not folder.is_dir():
        return f"the directory {folder} does not exist"
    if not os.access(target if target.exists() else folder, os.W_OK):
        return "permission denied"
    return None


CHECK_EXIT = {"ok": 0, "violation": 1, "unknown": 3}
"""``actorfw check``'s exit codes by verdict (2: bad arguments or an unreadable history)."""


def _cmd_check(args: argparse.Namespace) -> int:
    from actorfw.check import History, KeyValue, Model, Register, check

    try:
        history = History.from_jsonl(args.history)
    except OSError as error:
        print(f"actorfw check: cannot read the history: {_os_error(error)}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"actorfw check: cannot read the history: {error}", file=sys.stderr)
        return 2
    if args.initial is not None and args.model != "register":
        print("actorfw check: --initial is for --model register", file=sys.stderr)
        return 2
    model: Model = KeyValue()
    if args.model == "register":
        try:
            initial = None if args.initial is None else json.loads(args.initial)
        except ValueError as error:
            print(f"actorfw check: --initial must be JSON: {error}", file=sys.stderr)
            return 2
        model = Register(initial=initial)
    try:
        result = check(
            history,
            model,
            timeout=args.timeout,
            minimize=not args.no_minimize,
            minimize_timeout=args.minimize_timeout,
        )
    except (TypeError, ValueError) as error:
        print(f"actorfw check: {error}", file=sys.stderr)
        return 2
    if args.json:
        doc = {
            "verdict": result.verdict.value,
            "model": result.model,
            "operations_checked": result.operations_checked,
            "elapsed": result.elapsed,
            "key": result.key,
            "keys": [{"key": k, "verdict": v.value} for k, v in result.verdicts.items()],
            "witness": [op.to_json() for op in result.minimal],
            "minimized": result.minimized,
        }
        print(json.dumps(doc, indent=2, default=repr))
    else:
        print(result)
        if len(result.verdicts) > 1:
            counts: dict[str, int] = {}
            for verdict in result.verdicts.values():
                counts[verdict.value] = counts.get(verdict.value, 0) + 1
            shown = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
            print(f"\nkeys: {shown}")
    return CHECK_EXIT[result.verdict.value]


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"seconds must be >= 0, not {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _more_than_zero_seconds(text: str) -> float:
    value = _positive_seconds(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"seconds must be > 0, not {text}")
    return value


def _cmd_bench_causal(args: argparse.Namespace) -> int:
    from actorfw import __version__
    from actorfw.bench.causal import render, run_causal

    def progress(text: str) -> None:
        if not args.json:
            print(f"measuring {text} ...", file=sys.stderr, flush=True)

    kernels = tuple(args.kernels) if args.kernels else ("compiled", "pure")
    results = run_causal("quick" if args.quick else "full", kernels, progress)
    if args.json:
        doc = {
            "actorfw": __version__,
            "python": platform.python_version(),
            "scale": "quick" if args.quick else "full",
            "results": [r.as_dict() for r in results],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"actorfw {__version__} causal broadcast on node processes, beside the same "
            "traffic as plain tells in the same run (ratio = causal / tells)\n"
        )
        print(render(results))
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


def _cmd_bench_check(args: argparse.Namespace) -> int:
    from actorfw import __version__, kernels
    from actorfw.bench.check import check_cases, measure_check, render_check

    try:
        modules = {impl: kernels.load(impl)["search"] for impl in ("compiled", "pure")}
    except ImportError as exc:
        print(f"actorfw bench check: {exc}", file=sys.stderr)
        return 2
    scale = "full" if args.full else "quick"
    cases = [c for c in check_cases(scale) if args.filter is None or args.filter in c.name]
    if not cases:
        print(f"actorfw bench check: no case matches {args.filter!r}", file=sys.stderr)
        return 2

    def progress(name: str) -> None:
        if not args.json:
            print(f"measuring {name} ...", file=sys.stderr, flush=True)

    results = measure_check(cases, modules, args.repeats, args.timeout, progress)
    if args.json:
        doc = {
            "actorfw": __version__,
            "python": platform.python_version(),
            "scale": scale,
            "repeats": args.repeats,
            "timeout": args.timeout,
            "statistic": "best repeat",
            "results": [m.as_dict() for m in results],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"actorfw {__version__} linearizability checker, compiled search kernel beside its "
            f"pure twin in the same run (best of {args.repeats}; ratio = pure / compiled)\n"
        )
        print(render_check(results))
    return 0


def _parser() -> argparse.ArgumentParser:
    from actorfw import __version__

    parser = argparse.ArgumentParser(
        prog="actorfw",
        description="actorfw: actors in OS processes over ZeroMQ, a deterministic simulator, "
        "and state machines replicated by Multi-Paxos.",
    )
    parser.add_argument("--version", action="version", version=f"actorfw {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)

    info = commands.add_parser("info", help="show the version and the active kernels")
    info.set_defaults(run=_cmd_info)

    demo = commands.add_parser(
        "demo",
        help="a replicated KV store survives the SIGKILL of its leader (about 20 s)",
        description="Start node processes with a replicated KV store on durable storage, run "
        "clients against it, SIGKILL the leader mid-run and restart it, then check the whole "
        "history for linearizability and print a summary. Exits 1 if anything is wrong.",
    )
    demo.add_argument("--nodes", type=int, default=3, help="node processes (default 3)")
    demo.add_argument(
        "--duration", type=float, default=15.0, help="seconds of workload (default 15)"
    )
    demo.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    demo.add_argument("--seed", type=int, help="the workload's random seed")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.add_argument(
        "--history",
        metavar="FILE",
        help="write the recorded history as JSON lines (see docs/check.md)",
    )
    demo.set_defaults(run=_cmd_demo)

    node = commands.add_parser(
        "node",
        help="run a node on this host",
        description="Run one node: bind its endpoint, connect to its peers, host actors "
        "until SIGTERM or Ctrl-C, then stop gracefully.",
    )
    node.add_argument(
        "--config", metavar="FILE", help="a TOML configuration (see docs/deployment.md)"
    )
    node.add_argument("--name", help="this node's id")
    node.add_argument(
        "--listen", metavar="ENDPOINT", help="e.g. tcp://0.0.0.0:7000 or ipc:///run/n1.sock"
    )
    node.add_argument(
        "--peer", action="append", default=[], metavar="NAME=ENDPOINT", help="another node (repeat)"
    )
    node.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="MODULE",
        help="a module of actors to import (repeat)",
    )
    node.add_argument("--data-dir", metavar="DIR", help="durable storage (default: ./data-NAME)")
    node.add_argument(
        "--storage",
        choices=["sqlite", "memory"],
        help="sqlite: durable (default); memory: nothing survives a restart (overrides --config)",
    )
    node.add_argument(
        "--key", metavar="FILE", help="this node's .key_secret (CURVE, needed for tcp)"
    )
    node.add_argument("--peer-keys", metavar="DIR", help="a directory of the peers' .key files")
    node.add_argument(
        "--peer-key",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="one peer's .key file (repeat)",
    )
    node.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    node.set_defaults(run=_cmd_node)

    keys = commands.add_parser("keys", help="CURVE keys for nodes")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="command", required=True)
    generate = key_commands.add_parser("generate", help="write a key pair for a node")
    generate.add_argument("--name", required=True, help="the node's id")
    generate.add_argument("--dir", default=".", help="where to write NAME.key and NAME.key_secret")
    generate.add_argument("--overwrite", action="store_true", help="replace existing files")
    generate.set_defaults(run=_cmd_keys_generate)

    from actorfw.kv.cli import add_arguments as add_kv_arguments

    kv = commands.add_parser(
        "kv", help="get, put, delete, cas or append keys of a running replicated KV store"
    )
    add_kv_arguments(kv)
    kv.set_defaults(run=_cmd_kv)

    checker = commands.add_parser(
        "check",
        help="is a recorded history linearizable? (see docs/check.md)",
        description="Check a history in the JSON-lines format of docs/check.md for "
        "linearizability: the verdict, every key's verdict, and the smallest witness of a "
        "violation. Exit status: 0 linearizable, 1 not linearizable, 3 unknown (the time "
        "ran out), 2 bad arguments or an unreadable history.",
    )
    checker.add_argument("history", help="the history file (JSON lines)")
    checker.add_argument(
        "--model",
        choices=("kv", "register"),
        default="kv",
        help="the sequential model: a key-value map (get/put/delete/cas/append) or "
        "read/write/cas registers (default kv)",
    )
    checker.add_argument(
        "--initial", metavar="JSON", help="with --model register: every register's first value"
    )
    checker.add_argument(
        "--timeout", type=_positive_seconds, metavar="S", help="seconds for the whole check"
    )
    checker.add_argument(
        "--minimize-timeout",
        type=_positive_seconds,
        metavar="S",
        help="seconds for shrinking a violation to its witness, at most",
    )
    checker.add_argument(
        "--no-minimize", action="store_true", help="report the failing key whole, unshrunk"
    )
    checker.add_argument("--json", action="store_true", help="print the result as JSON")
    checker.set_defaults(run=_cmd_check)

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
        type=_positive_int,
        default=5,
        metavar="N",
        help="timed repeats per case (default 5)",
    )
    kernels.add_argument(
        "--seconds",
        type=_more_than_zero_seconds,
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
        "processes, each beside raw pyzmq doing the same work in the same run.",
    )
    messaging.add_argument("--json", action="store_true", help="print the figures as JSON")
    messaging.add_argument(
        "--transport", action="append", choices=["ipc", "tcp"], help="only this transport (repeat)"
    )
    messaging.add_argument("--quick", action="store_true", help="tiny amounts: checks that it runs")
    messaging.set_defaults(run=_cmd_bench_messaging)
    causal = suites.add_parser(
        "causal",
        help="causal broadcast groups on node processes against plain tells",
        description="Deliveries per second of causal broadcast groups of 3, 5 and 8 members "
        "on node processes, each beside the same traffic as plain tells in the same run, on "
        "the compiled kernels and on their pure twins.",
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
        "--repeats",
        type=_positive_int,
        default=3,
        metavar="N",
        help="checks per kernel and figure; the best is kept (default 3)",
    )
    checks.add_argument(
        "--timeout",
        type=_more_than_zero_seconds,
        default=60.0,
        metavar="S",
        help="each check's timeout in seconds (default 60)",
    )
    checks.set_defaults(run=_cmd_bench_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``actorfw`` command with ``argv`` (default: the process arguments)."""
    args = _parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
