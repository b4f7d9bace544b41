"""``actorfw kv``: read and write a running replicated KV store from a shell.

::

    actorfw kv --cluster cluster.toml put colour blue
    actorfw kv --cluster cluster.toml get colour            # "blue"
    actorfw kv --node n1=ipc:///run/n1.sock cas hits 3 4    # true or false

The command connects to the cluster as a client node (:func:`actorfw.node.connect`)
and runs one operation through :class:`actorfw.kv.KV` over an exactly-once
:class:`actorfw.services.replication.GroupClient`, which finds the leader by itself.

A cluster file tells it where the nodes are::

    group = "kv"                       # optional; --group overrides it (default "kv")
    sharded = "shards"                 # optional: a sharded store, by its shard manager's name

    [nodes]                            # every node of the group: id = endpoint
    n1 = "tcp://10.0.0.1:7000"
    n2 = "tcp://10.0.0.2:7000"
    n3 = "tcp://10.0.0.3:7000"

    [keys]                             # CURVE, required for tcp:// endpoints
    secret = "ops.key_secret"          # the client's key pair; its stem is the client's name
    peers = "public"                   # a directory of the nodes' <node>.key files

Relative paths are taken from the folder of the file.

Values: ``VALUE``, ``EXPECTED`` and ``NEW`` are read as JSON when they parse
as JSON (``42``, ``true``, ``null``, ``"42"``, ``[1, 2]``, ``{"a": 1}``), and
taken as the string given otherwise (``blue``); ``--string`` takes them as
strings always. Against a sharded KV store (``sharded`` in the cluster
file, or ``--sharded NAME``: the shard manager's group name, see
``docs/sharding.md``) the commands are the same; each operation goes to
the group that owns its key, following the shards when they move.
Output: ``get`` prints the value as JSON (``null`` when the key is
absent), ``cas`` prints ``true`` or ``false``, ``append`` prints the
new string as JSON, ``put`` and ``delete`` print nothing.

Exit codes: 0 when the operation ran (also a ``cas`` that found another
value: its answer is the output), 1 when it did not (no quorum or no node
reachable within ``--timeout``, or the store refused the operation), 2 for
bad arguments or a bad cluster file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actorfw.node.endpoints import ENDPOINT_FORMS, check_endpoint
from actorfw.node.transport import CurveSettings

if TYPE_CHECKING:
    from actorfw.node.system import Connection

__all__ = [
    "EXIT_FAILED",
    "EXIT_USAGE",
    "ClusterFile",
    "add_arguments",
    "load_cluster",
    "parse_value",
    "run",
]

EXIT_FAILED = 1
"""The exit code of an operation that did not run: no quorum in time, or refused by the store."""

EXIT_USAGE = 2
"""The exit code of bad arguments or a bad cluster file."""

DEFAULT_TIMEOUT = 10.0
"""Seconds an operation may take in all by default (``--timeout``)."""

_REPLICA_TIMEOUT = 1.0
# Seconds to wait for one replica before trying the next one.

_CLUSTER_KEYS = ("group", "sharded", "nodes", "keys")


_JSON_EXAMPLES = '(42, 2.5, true, null, "42", [1, 2], {"a": 1})'

_VALUES_HELP = (
    f"VALUE, EXPECTED and NEW are read as JSON when they parse as JSON {_JSON_EXAMPLES} and "
    "taken as the string given otherwise (blue); --string takes them as strings always. "
    "EXPECTED null means: the key is absent. Each command's --help shows its own arguments."
)

_PUT_HELP = (
    f"VALUE is read as JSON when it parses as JSON {_JSON_EXAMPLES} and taken as the string "
    "given otherwise (blue); --string takes it as a string always."
)

_CAS_HELP = (
    f"EXPECTED and NEW are read as JSON when they parse as JSON {_JSON_EXAMPLES} and taken as "
    "the strings given otherwise (blue); --string takes them as strings always. EXPECTED null "
    "means: the key is absent."
)


class _Usage(Exception):
    """Bad arguments or a bad cluster file (exit code 2)."""


@dataclass(frozen=True)
class ClusterFile:
    """What a cluster file says (see the module documentation).

    Attributes:
        group: the group's name, or None when the file gives none.
        nodes: node id to endpoint.
        sharded: the shard manager's group name of a sharded store, or None.
        curve: the client's CURVE key pair and the nodes' public keys, if given.
        name: the client's name (the stem of its secret key file), if keys are given.
    """

    group: str | None
    nodes: dict[str, str]
    curve: CurveSettings | None
    name: str | None
    sharded: str | None = None


def load_cluster(path: str | Path) -> ClusterFile:
    """Read a cluster file (TOML; see the module documentation).

    Raises:
        ValueError: the file is missing or malformed, a key is unknown, or a
            key file cannot be read (the message names the file and the key).
    """
    from actorfw.node.config import load_curve, read_toml

    path = Path(path)
    raw = read_toml(path, "cluster file", tuple(_CLUSTER_KEYS))
    group = raw.get("group")
    if group is not None and (not isinstance(group, str) or not group):
        raise ValueError(f"{path}: group must be a non-empty string, not {group!r}")
    sharded = raw.get("sharded")
    if sharded is not None and (not isinstance(sharded, str) or not sharded):
        raise ValueError(
            f"{path}: sharded must be the shard manager's group name (a non-empty string), "
            f"not {sharded!r}"
        )
    nodes = raw.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        raise ValueError(f'{path}: [nodes] must list the group\'s nodes: n1 = "tcp://HOST:PORT"')
    for node, endpoint in nodes.items():
        if not isinstance(endpoint, str):
            raise ValueError(f"{path}: [nodes] {node} must be an endpoint string, not {endpoint!r}")
    keys = raw.get("keys")
    curve = None
    name = None
    if keys is not None:
        if not isinstance(keys, dict) or set(keys) != {"secret", "peers"}:
            raise ValueError(
                f"{path}: [keys] needs exactly 'secret' (the client's .key_secret) and 'peers' "
                "(a directory of the nodes' .key files)"
            )
        secret, peers = keys["secret"], keys["peers"]
        if not isinstance(secret, str) or not isinstance(peers, (str, dict)):
            raise ValueError(f"{path}: [keys] secret and peers are paths")
        base = path.parent
        peer_source: Any = (
            {n: base / str(f) for n, f in peers.items()}
            if isinstance(peers, dict)
            else base / peers
        )
        try:
            curve = load_curve(base / secret, peer_source)
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: [keys]: {error}") from None
        name = _key_name(secret)
    return ClusterFile(group, dict(nodes), curve, name, sharded)


def _key_name(secret_file: str | Path) -> str:
    """The name a secret key file stands for: its stem (``ops`` for ``ops.key_secret``)."""
    return Path(secret_file).stem


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a float")
    return value


def parse_value(text: str, as_string: bool = False) -> Any:
    """A command-line value: its JSON reading when it parses as JSON, else the text itself.

    ``NaN``, ``Infinity`` and floats out of range (``1e400``) stay strings. With
    ``as_string``, the text is taken as it is.

    Example::

        parse_value("42")                   # 42
        parse_value('"42"')                 # "42"
        parse_value("blue")                 # "blue"
        parse_value("42", as_string=True)   # "42"
    """
    if as_string:
        return text
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except ValueError:
        return text


def _json_default(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)  # a numpy array or scalar a Python client stored
    if callable(tolist):
        return tolist()
    raise TypeError(
        f"a {type(value).__name__} has no JSON form; read this key with the Python client"
    )


def _as_json(value: Any) -> str:
    """``value`` as one line of JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        raise TypeError(f"{value} has no JSON form; read this key with the Python client")
    return json.dumps(value, ensure_ascii=False, default=_json_default, allow_nan=False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options and commands of ``actorfw kv`` to ``parser``."""
    parser.description = (
        "Run one operation on a replicated KV store of a running cluster: exactly once, "
        "through whichever node leads. Exit code 0 when it ran, 1 when it did not (no "
        "quorum or no node reachable in time, or refused by the store), 2 for bad "
        "arguments."
    )
    parser.epilog = _VALUES_HELP
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--cluster",
        metavar="FILE",
        help="a cluster file (TOML: group, [nodes], [keys]; see docs/deployment.md)",
    )
    where.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="NAME=ENDPOINT",
        help="a node of the group (repeat for each)",
    )
    parser.add_argument(
        "--group", metavar="NAME", help="the group's name (default: the cluster file's, or kv)"
    )
    parser.add_argument(
        "--sharded",
        metavar="MANAGER",
        help="a sharded KV store, by its shard manager's group name (default: the cluster "
        "file's sharded, if any)",
    )
    parser.add_argument(
        "--key", metavar="FILE", help="the client's .key_secret (CURVE, needed for tcp://)"
    )
    parser.add_argument("--peer-keys", metavar="DIR", help="a directory of the nodes' .key files")
    parser.add_argument(
        "--name",
        help="the client's node name (default: the stem of its key file, or a generated one)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds the operation may take in all (default {DEFAULT_TIMEOUT:g})",
    )
    commands = parser.add_subparsers(dest="kv_command", metavar="COMMAND", required=True)
    get = commands.add_parser(
        "get",
        help="print the value of KEY as JSON (null when absent)",
        description="Print the value of KEY as one line of JSON; null when the key is absent.",
    )
    get.add_argument("kv_key", metavar="KEY")
    put = commands.add_parser(
        "put",
        help="set KEY to VALUE",
        description="Set KEY to VALUE; print nothing.",
        epilog=_PUT_HELP,
    )
    put.add_argument("kv_key", metavar="KEY")
    put.add_argument("kv_value", metavar="VALUE")
    put.add_argument("--string", action="store_true", help="take VALUE as a string")
    delete = commands.add_parser(
        "delete", help="remove KEY", description="Remove KEY (absent or not); print nothing."
    )
    delete.add_argument("kv_key", metavar="KEY")
    cas = commands.add_parser(
        "cas",
        help="set KEY to NEW if it holds EXPECTED; print true if it did, false if not",
        description="Set KEY to NEW if it holds EXPECTED; print true if it did, false if not "
        "(exit code 0 either way).",
        epilog=_CAS_HELP,
    )
    cas.add_argument("kv_key", metavar="KEY")
    cas.add_argument("kv_expected", metavar="EXPECTED")
    cas.add_argument("kv_new", metavar="NEW")
    cas.add_argument("--string", action="store_true", help="take EXPECTED and NEW as strings")
    append = commands.add_parser(
        "append",
        help="append TEXT to the string at KEY (absent: empty); print the new string as JSON",
        description="Append TEXT, always taken as a string, to the string at KEY (an absent "
        "key counts as empty); print the new string as JSON.",
    )
    append.add_argument("kv_key", metavar="KEY")
    append.add_argument("kv_text", metavar="TEXT")


def _pairs(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, endpoint = item.partition("=")
        if not sep or not name or not endpoint:
            raise _Usage(f"--node {item!r} is not NAME=ENDPOINT")
        if name in out:
            raise _Usage(f"--node {name} is given twice")
        out[name] = endpoint
    return out


@dataclass(frozen=True)
class _Target:
    """Where and as whom to connect."""

    group: str
    nodes: dict[str, str]
    curve: CurveSettings | None
    name: str | None
    sharded: bool = False


def _target(args: argparse.Namespace) -> _Target:
    """The group, nodes, keys and client name from the arguments (raises _Usage)."""
    from actorfw.node.config import load_curve
    from actorfw.services.replication.config import DEFAULT_GROUP

    if args.cluster:
        try:
            cluster = load_cluster(args.cluster)
        except ValueError as error:
            raise _Usage(str(error)) from None
    elif args.node:
        cluster = ClusterFile(None, _pairs(args.node), None, None)
    else:
        raise _Usage("give the cluster: --cluster FILE, or --node NAME=ENDPOINT for each node")
    curve, name = cluster.curve, cluster.name
    if args.key or args.peer_keys:
        if not (args.key and args.peer_keys):
            raise _Usage(
                "--key and --peer-keys go together (the client's key pair, the nodes' keys)"
            )
        try:
            curve = load_curve(args.key, args.peer_keys)
        except (OSError, ValueError) as error:
            raise _Usage(f"keys: {error}") from None
        name = _key_name(args.key)
    if args.name is not None:
        if not args.name or "/" in args.name or args.name.startswith("$"):
            raise _Usage(
                f"--name must be non-empty, without '/', not starting with '$': {args.name!r}"
            )
        name = args.name
    manager = getattr(args, "sharded", None) or cluster.sharded
    if manager is not None and args.group:
        raise _Usage("--group names an unsharded store's group; --sharded a shard manager")
    group = manager or args.group or cluster.group or DEFAULT_GROUP
    if "/" in group or group.startswith("$"):
        raise _Usage(f"a group name has no '/' and does not start with '$': {group!r}")
    for node, endpoint in cluster.nodes.items():
        if "/" in node or node.startswith("$"):
            raise _Usage(f"a node name has no '/' and does not start with '$': {node!r}")
        if not endpoint.startswith(("tcp://", "ipc://")):
            raise _Usage(f"node {node}: endpoint {endpoint!r} is not {ENDPOINT_FORMS}")
        try:
            check_endpoint(endpoint)
        except ValueError as error:
            raise _Usage(f"node {node}: {error}") from None
    secure = [n for n, e in cluster.nodes.items() if e.startswith("tcp://")]
    if secure and curve is None:
        raise _Usage(
            f"{', '.join(secure)} {'is' if len(secure) == 1 else 'are'} reached over tcp://, "
            "which needs CURVE keys: [keys] in the cluster file, or --key and --peer-keys"
        )
    missing = [n for n in secure if curve is not None and n not in curve.peers]
    if missing:
        raise _Usage(
            f"no public key for {', '.join(missing)}: put "
            f"{', '.join(m + '.key' for m in missing)} among the peer keys"
        )
    if not args.timeout > 0 or not math.isfinite(args.timeout):
        raise _Usage(f"--timeout must be a positive number of seconds, not {args.timeout:g}")
    return _Target(group, cluster.nodes, curve, name, manager is not None)


def run(args: argparse.Namespace) -> int:
    """Run ``actorfw kv`` with parsed arguments (see :func:`add_arguments`); the exit code."""
    try:
        target = _target(args)
        operation = _operation(args)
    except _Usage as error:
        print(f"actorfw kv: {error}", file=sys.stderr)
        return EXIT_USAGE
    from actorfw.node import connect

    client = connect(target.nodes, curve=target.curve, name=target.name)
    try:
        return _call(client, target, operation, args)
    finally:
        client.close()


def _operation(args: argparse.Namespace) -> tuple[str, tuple[Any, ...]]:
    """The KV method to call and its arguments."""
    command: str = args.kv_command
    as_string = getattr(args, "string", False)
    if command == "put":
        return command, (args.kv_key, parse_value(args.kv_value, as_string))
    if command == "cas":
        expected = parse_value(args.kv_expected, as_string)
        return command, (args.kv_key, expected, parse_value(args.kv_new, as_string))
    if command == "append":
        return command, (args.kv_key, args.kv_text)
    return command, (args.kv_key,)


def _call(
    client: Connection,
    target: _Target,
    operation: tuple[str, tuple[Any, ...]],
    args: argparse.Namespace,
) -> int:
    """Run the operation through ``client``; print its result; the exit code."""
    from actorfw.kv import KV, KVError
    from actorfw.node import SystemTimeout
    from actorfw.services.replication import GroupClient as ReplicatedClient
    from actorfw.services.replication import Unavailable
    from actorfw.values.errors import ActorfwError, MessageRefused

    command, arguments = operation
    replicated: Any
    if target.sharded:
        from actorfw.services.sharding import ShardedClient

        replicated = ShardedClient(
            client,
            target.group,
            list(target.nodes),
            timeout=min(_REPLICA_TIMEOUT, args.timeout),
            deadline=args.timeout,
        )
    else:
        replicated = ReplicatedClient(
            client,
            target.group,
            list(target.nodes),
            timeout=min(_REPLICA_TIMEOUT, args.timeout),
            deadline=args.timeout,
        )
    kv = KV(replicated)
    try:
        result = getattr(kv, command)(*arguments)
    except KVError as error:
        print(f"actorfw kv: {command} {arguments[0]}: refused: {error}", file=sys.stderr)
        return EXIT_FAILED
    except MessageRefused as error:
        print(f"actorfw kv: {command} {arguments[0]}: cannot send it: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (Unavailable, SystemTimeout):
        found = _probe(client, target, _PROBE_TIMEOUT)
        if True not in found.values() and False in found.values():
            # Nodes answer, and none runs the group: the name or the configuration is wrong.
            reason = _explain(found, target)
            print(f"actorfw kv: {command} {arguments[0]}: {reason}", file=sys.stderr)
            return EXIT_FAILED
        maybe = "" if command == "get" else " (it may or may not have run)"
        print(
            f"actorfw kv: {command} {arguments[0]}: no answer from group {target.group!r} "
            f"within {args.timeout:g}s{maybe}",
            file=sys.stderr,
        )
        print(f"actorfw kv: {_explain(found, target)}", file=sys.stderr)
        return EXIT_FAILED
    except ActorfwError as error:
        print(f"actorfw kv: {command} {arguments[0]}: {error}", file=sys.stderr)
        return EXIT_FAILED
    if command in ("put", "delete"):
        return 0
    try:
        text = _as_json(result)
    except (TypeError, ValueError) as error:
        print(f"actorfw kv: {command} {arguments[0]}: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        print(text)
    except UnicodeEncodeError:  # a terminal that cannot show the characters: escape them
        print(json.dumps(json.loads(text)))
    return 0


_PROBE_TIMEOUT = 1.0
# Seconds the diagnosis of a failed operation waits for each node.


def _probe(client: Connection, target: _Target, timeout: float) -> dict[str, bool | None]:
    """Ask every node at once whether it hosts the group's replica (None: no answer in time)."""
    from actorfw.core.engine import NODE_TARGET
    from actorfw.core.messages import LookupRequest
    from actorfw.node import SystemTimeout
    from actorfw.values.errors import ActorfwError
    from actorfw.values.refs import ActorRef

    replica = _replica_name(target.group)
    nodes = list(target.nodes)

    async def probe(node: str) -> bool | None:
        try:
            found = await ActorRef(node, NODE_TARGET).ask(LookupRequest(replica), timeout)
        except ActorfwError:
            return None
        return found is True

    async def probe_all() -> list[bool | None]:
        return list(await asyncio.gather(*(probe(node) for node in nodes)))

    try:
        return dict(zip(nodes, client.run(probe_all, timeout=timeout + 5.0), strict=True))
    except (ActorfwError, SystemTimeout):
        return dict.fromkeys(nodes)


def _replica_name(group: str) -> str:
    from actorfw.protocols.paxos.messages import Role
    from actorfw.services.paxos import role_name

    return role_name(group, Role.REPLICA)


def _explain(found: dict[str, bool | None], target: _Target) -> str:
    """Why no replica answers, from what :func:`_probe` found on each node."""
    replica = _replica_name(target.group)
    nodes = list(found)
    silent = [n for n, f in found.items() if f is None]
    without = [n for n, f in found.items() if f is False]
    having = [n for n, f in found.items() if f is True]
    if not having and not without:
        return (
            f"no node answered ({', '.join(silent)}): are the nodes running, and are the "
            "endpoints, the keys and the client's name on the nodes' allow-list right?"
        )
    if not having:
        return (
            f"no node runs group {target.group!r} (no actor {replica} on {', '.join(without)}): "
            "is --group right, and is the group in the nodes' [[replicated]] configuration?"
        )
    if len(having) > len(nodes) // 2:
        return (
            f"{replica} answers on {', '.join(having)}: the group may be electing a leader, "
            "or busy; try again, or with a longer --timeout"
        )
    parts = [f"{replica} is on {', '.join(having)}"]
    if without:
        parts.append(f"not on {', '.join(without)}")
    if silent:
        parts.append(f"{', '.join(silent)} did not answer")
    return "; ".join(parts) + ": a majority of the group's nodes must be up and reachable"
