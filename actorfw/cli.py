"""The ``actorfw`` command: the project's one entry point.

Subcommands so far:

- ``actorfw info``: the version and which kernels are active.
- ``actorfw node``: run a node on this host (see ``docs/deployment.md``).
- ``actorfw keys generate``: a CURVE key pair for a node.
- ``actorfw kv``: get, put, delete, cas or append keys of a running
  replicated KV store (see ``actorfw.kv.cli``), sharded or not.
- ``actorfw shards``: show a sharded cluster's configurations and what its
  groups hold; join, leave and move (see ``actorfw.kv.shards_cli``).
- ``actorfw check``: is a recorded history (JSON lines) linearizable? The
  verdict per key and the witness of a violation.
- ``actorfw bench kernels``: compiled kernels against their pure-Python
  twins, as a table or (``--json``) as JSON.
- ``actorfw bench messaging``: actors on node processes against raw pyzmq.
- ``actorfw bench peers``: the same work on Thespian, Ray and Pykka, where
  installed, beside actorfw.
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
import os
import platform
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from actorfw.bench.commands import add_bench_commands, positive_seconds

if TYPE_CHECKING:
    from actorfw.check import Model

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


def _cmd_shards(args: argparse.Namespace) -> int:
    from actorfw.kv.shards_cli import run

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


def _cmd_demo(args: argparse.Namespace) -> int:
    from actorfw.demo import DemoOptions, render, run_demo, sharded, to_json

    try:
        if args.sharded:
            if args.nodes is not None:
                raise ValueError("the sharded demo runs 4 nodes: --nodes does not apply")
            if args.replication != "paxos" or args.mode != "sync":
                raise ValueError(
                    "the sharded demo's groups run Multi-Paxos: --replication and --mode do not "
                    "apply"
                )
            sharded_options = sharded.ShardedDemoOptions(
                duration=20.0 if args.duration is None else args.duration,
                clients=args.clients,
                seed=args.seed,
            )
        else:
            options = DemoOptions(
                nodes=3 if args.nodes is None else args.nodes,
                duration=15.0 if args.duration is None else args.duration,
                clients=args.clients,
                seed=args.seed,
                replication=args.replication,
                mode=args.mode,
            )
    except ValueError as error:
        print(f"actorfw demo: {error}", file=sys.stderr)
        return 2
    if args.history is not None:
        problem = _unwritable(args.history)
        if problem:
            print(f"actorfw demo: --history {args.history}: {problem}", file=sys.stderr)
            return 2
    out = sys.stderr if args.json else sys.stdout
    if args.sharded:
        sharded_report = sharded.run_sharded_demo(sharded_options, out, args.history)
        print(sharded.to_json(sharded_report) if args.json else sharded.render(sharded_report))
        return 1 if sharded_report.problems() else 0
    report = run_demo(options, out, args.history)
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


def _where(path: str, op: int) -> str:
    """``path`` and the line (from 1) that holds operation ``op``, its non-blank line ``op``.

    Just the path if it is not a regular file, which can be read again (a
    pipe was read once, and opening a named one again would wait for a writer).
    """
    try:
        if not os.path.isfile(path):
            return path
        with open(path, encoding="utf-8") as file:
            seen = -1
            for number, line in enumerate(file, start=1):
                if line.strip():
                    seen += 1
                    if seen == op:
                        return f"{path}, line {number}"
    except (OSError, ValueError):
        pass
    return path


def _own_model(spec: str) -> Model:
    """The model ``MODULE:CLASS`` names (``CLASS`` may be dotted), made with no arguments.

    Raises:
        ValueError: not of that form, not importable (whatever its import
            raised, or exiting), not a ``Model`` subclass, or its
            constructor failed (saying which).
    """
    import importlib

    from actorfw.check import Model

    module_name, _, class_name = spec.rpartition(":")
    if not module_name or not class_name:
        raise ValueError("give kv, register, or MODULE:CLASS (a Model subclass of your own)")
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        raise ValueError(
            f"{module_name} is a file path; give the module's name (boxes:Box for boxes.py, "
            "with PYTHONPATH=. when it is in this directory)"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ValueError(
            f"cannot import {module_name}: {error} (PYTHONPATH=. for a module in this directory)"
        ) from None
    except (Exception, SystemExit) as error:  # the user's module ran and failed
        raise ValueError(f"cannot import {module_name}: {_failure(error)}") from None
    kind: Any = module
    for part in class_name.split("."):
        kind = getattr(kind, part, None)
    if not (isinstance(kind, type) and issubclass(kind, Model)):
        raise ValueError(f"{module_name} has no Model subclass named {class_name}")
    try:
        return kind()
    except (Exception, SystemExit) as error:
        raise ValueError(f"{class_name}() failed: {_failure(error)}") from None


def _failure(error: BaseException) -> str:
    """``error`` in one line, with where it was raised (the innermost frame)."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    where = (
        f" (at {frames[-1].filename}:{frames[-1].lineno}, in {frames[-1].name})" if frames else ""
    )
    return f"{type(error).__name__}: {error}{where}"


def _cmd_check(args: argparse.Namespace) -> int:
    from actorfw.check import History, KeyValue, Register, check
    from actorfw.check.jepsen import read_jepsen_log

    if args.model is None:  # a Jepsen log is of a register; a history file, of a map
        args.model = "register" if args.format == "jepsen" else "kv"
    if args.format == "jepsen" and args.model != "register":
        print("actorfw check: a Jepsen log is of a register: use --model register", file=sys.stderr)
        return 2
    try:
        if args.format == "jepsen":
            history = read_jepsen_log(args.history)
        else:
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
    if args.model not in ("kv", "register"):
        try:
            model = _own_model(args.model)
        except ValueError as error:
            print(f"actorfw check: --model {args.model}: {error}", file=sys.stderr)
            return 2
    elif args.model == "register":
        try:
            initial = None if args.initial is None else json.loads(args.initial)
        except ValueError as error:
            print(f"actorfw check: --initial must be JSON: {error}", file=sys.stderr)
            return 2
        model = Register(initial=initial)
    own = not isinstance(model, KeyValue | Register)
    # A model of the user's may raise anything; the built-in ones raise what is documented,
    # and anything else from them is a bug of the checker's, left to show its traceback.
    failed = Exception if own else ValueError
    if args.format != "jepsen":
        for op in history.operations:  # what the model cannot interpret, by its line
            try:
                model.validate(op)
            except failed as error:
                said = str(error) if isinstance(error, ValueError) else _failure(error)
                print(f"actorfw check: {_where(args.history, op.id)}: {said}", file=sys.stderr)
                return 2
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
    except Exception as error:
        if not own:
            raise
        print(f"actorfw check: the {model.name} model raised {_failure(error)}", file=sys.stderr)
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


def _cmd_trace(args: argparse.Namespace) -> int:
    from actorfw.check.trace import TraceError, load_trace

    try:
        trace = load_trace(args.paths)
        if args.before:
            a, b = args.before
            verdict = trace.happened_before(a, b)
            after = trace.happened_before(b, a)
            relation = (
                "happened before"
                if verdict
                else "happened after"
                if after
                else ("is concurrent with" if a != b else "is")
            )
            print(f"{a} {relation} {b}")
            return 0 if verdict else 1
        shown = None
        if args.concurrent:
            shown = trace.concurrent(args.concurrent)
        elif args.past:
            shown = trace.causal_past(args.past)
    except TraceError as error:
        print(f"actorfw trace: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"actorfw trace: cannot read the trace: {_os_error(error)}", file=sys.stderr)
        return 2
    if shown is not None:
        for event in shown:
            print(f"{event.id}  {event.describe()}")
        return 0
    if args.shiviz:
        try:
            with open(args.shiviz, "w", encoding="utf-8") as out:
                out.write(trace.to_shiviz())
        except OSError as error:
            print(f"actorfw trace: cannot write {args.shiviz}: {_os_error(error)}", file=sys.stderr)
            return 2
        print(f"wrote {len(trace)} events to {args.shiviz} (open it in ShiViz)")
    else:
        for event in trace.events:
            print(f"{event.id}  {event.describe()}")
    problems = trace.gaps()
    if problems:
        print(f"warning: {len(problems)} gaps, e.g. {problems[0]}", file=sys.stderr)
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
    demo.add_argument("--nodes", type=int, help="node processes (default 3)")
    demo.add_argument(
        "--duration", type=float, help="seconds of workload (default 15; 20 with --sharded)"
    )
    demo.add_argument(
        "--sharded",
        action="store_true",
        help="instead: 4 groups of a sharded KV store on 4 nodes; a group joins and another "
        "leaves under load, a node is SIGKILLed during a move",
    )
    demo.add_argument(
        "--replication",
        choices=["paxos", "primary-backup"],
        default="paxos",
        help="how the store is replicated: Multi-Paxos (default) or primary-backup "
        "(its primary is killed and restarted)",
    )
    demo.add_argument(
        "--mode",
        choices=["sync", "async"],
        default="sync",
        help="primary-backup's mode (default sync); async counts the acknowledged writes the "
        "failover lost",
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

    from actorfw.kv.shards_cli import add_arguments as add_shards_arguments

    shards = commands.add_parser(
        "shards", help="show or change a sharded cluster's configurations (join, leave, move)"
    )
    add_shards_arguments(shards)
    shards.set_defaults(run=_cmd_shards)

    checker = commands.add_parser(
        "check",
        help="is a recorded history linearizable? (see docs/check.md)",
        description="Check a history in the JSON-lines format of docs/check.md for "
        "linearizability: the verdict, every key's verdict, and the smallest witness of a "
        "violation. Exit status: 0 linearizable, 1 not linearizable, 3 unknown (the time "
        "ran out), 2 bad arguments or an unreadable history.",
    )
    checker.add_argument("history", help="the history file (JSON lines, or see --format)")
    checker.add_argument(
        "--format",
        choices=("jsonl", "jepsen"),
        default="jsonl",
        help="jsonl (default): the format of docs/check.md; jepsen: the operation log a "
        "Jepsen register test prints (lines like 'INFO  jepsen.util - 3<TAB>:invoke<TAB>:read"
        "<TAB>nil'), checked against the register model",
    )
    checker.add_argument(
        "--model",
        default=None,
        metavar="MODEL",
        help="the sequential model: kv, a key-value map (get/put/delete/cas/append); "
        "register, read/write/cas registers; or MODULE:CLASS, a Model subclass of your "
        "own, importable (PYTHONPATH=. for a module in this directory) and made with no "
        "arguments (default kv; register with --format jepsen)",
    )
    checker.add_argument(
        "--initial", metavar="JSON", help="with --model register: every register's first value"
    )
    checker.add_argument(
        "--timeout", type=positive_seconds, metavar="S", help="seconds for the whole check"
    )
    checker.add_argument(
        "--minimize-timeout",
        type=positive_seconds,
        metavar="S",
        help="seconds for shrinking a violation to its witness, at most",
    )
    checker.add_argument(
        "--no-minimize", action="store_true", help="report the failing key whole, unshrunk"
    )
    checker.add_argument("--json", action="store_true", help="print the result as JSON")
    checker.set_defaults(run=_cmd_check)

    tracer = commands.add_parser(
        "trace",
        help="question a causal trace (see docs/causality.md)",
        description="Read the causal trace a run recorded (NodeConfig.trace_dir: one "
        "<node>.trace.jsonl per node) and list its events, or answer one question. Event "
        "ids are node:counter. Exit status: 0 (and for --before: A happened before B), "
        "1 (--before: it did not), 2 bad arguments or an unreadable trace.",
    )
    tracer.add_argument("paths", nargs="+", help="trace files, or directories of them")
    asked = tracer.add_mutually_exclusive_group()
    asked.add_argument(
        "--before", nargs=2, metavar=("A", "B"), help="did event A happen before event B?"
    )
    asked.add_argument("--concurrent", metavar="A", help="the events concurrent with A")
    asked.add_argument("--past", metavar="A", help="the causal past of A")
    asked.add_argument(
        "--shiviz", metavar="FILE", help="write the trace in ShiViz's log format to FILE"
    )
    tracer.set_defaults(run=_cmd_trace)

    add_bench_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``actorfw`` command with ``argv`` (default: the process arguments)."""
    args = _parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
