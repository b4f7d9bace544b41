"""The ``actorfw`` command: the project's one entry point.

Subcommands so far:

- ``actorfw info``: the version and which kernels are active.
- ``actorfw bench kernels``: compiled kernels against their pure-Python
  twins, as a table or (``--json``) as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Sequence

__all__ = ["main"]


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


def _parser() -> argparse.ArgumentParser:
    from actorfw import __version__

    parser = argparse.ArgumentParser(
        prog="actorfw",
        description="actorfw: actors in OS processes over ZeroMQ, with consensus, "
        "sharding and causality built in.",
    )
    parser.add_argument("--version", action="version", version=f"actorfw {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)

    info = commands.add_parser("info", help="show the version and the active kernels")
    info.set_defaults(run=_cmd_info)

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
        "--repeats", type=int, default=5, metavar="N", help="timed repeats per case (default 5)"
    )
    kernels.add_argument(
        "--seconds",
        type=float,
        default=0.05,
        metavar="S",
        help="length of one repeat in seconds (default 0.05)",
    )
    kernels.add_argument(
        "--quick", action="store_true", help="one very short repeat: checks that it runs"
    )
    kernels.set_defaults(run=_cmd_bench_kernels)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``actorfw`` command with ``argv`` (default: the process arguments)."""
    args = _parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
