"""How a node process is configured: from the command line, a TOML file, or ``ActorSystem``.

A TOML file for ``actorfw node --config node.toml``::

    name = "n1"
    listen = "tcp://0.0.0.0:7000"
    data_dir = "/var/lib/actorfw/n1"
    apps = ["mypackage.actors"]          # modules imported at start: their actors can be spawned
    storage = "sqlite"                   # or "memory": nothing survives a restart (benchmarks)

    [peers]                              # the other nodes: id = endpoint
    n2 = "tcp://10.0.0.2:7000"
    n3 = "tcp://10.0.0.3:7000"

    [keys]                               # CURVE, required for tcp:// endpoints
    secret = "/etc/actorfw/n1.key_secret"   # this node's key pair (from `actorfw keys generate`)
    peers = "/etc/actorfw/public"            # a directory of <node>.key public keys: the allow-list

    [[spawn]]                            # top-level actors started at every start
    class = "mypackage.actors:Store"
    name = "store"
    args = []

    [tuning]                             # optional
    heartbeat_interval = 0.5
    phi_threshold = 8.0
    acceptable_pause = 1.5
    max_message_size = 67108864
    linger = 5.0                         # seconds a graceful stop waits for messages to leave
    gc_threshold = [10000, 10, 10]       # the node's garbage-collector thresholds ([] leaves them)

    [[replicated]]                       # a state machine replicated by Multi-Paxos (optional)
    name = "kv"                                    # the group's name (default "kv")
    machine = "actorfw.kv.machine:KVStateMachine"  # module:QualName (default: the KV store)
    nodes = ["n1", "n2", "n3"]           # the members (default: this node and its peers, sorted)
    [replicated.leader]                  # optional: LeaderOptions fields
    leader_timeout = 1.0
    [replicated.replica]                 # optional: ReplicaOptions fields
    max_batch = 64

Each ``[[replicated]]`` section starts, on this node, the three actors that
:func:`actorfw.replication.replicate` starts on each node of a group (the
acceptor, replica and leader ``<name>-acceptor``, ``<name>-replica``,
``<name>-leader``), before the ``[[spawn]]`` actors, and adds the machine's
module and ``actorfw.paxos.actors`` to ``apps``. Every member of a group must
list the same ``nodes`` in the same order: a leader's identity in its
ballots is its index in that list.
"""

from __future__ import annotations

import dataclasses
import importlib
import tomllib
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from actorfw.core.actor import actor_path
from actorfw.core.node import NodeConfig
from actorfw.node.transport import CurveSettings

if TYPE_CHECKING:
    from actorfw.paxos.types import LeaderOptions, ReplicaOptions

__all__ = [
    "DEFAULT_GROUP",
    "DEFAULT_MACHINE",
    "GC_THRESHOLD",
    "PAXOS_APP",
    "NodeSettings",
    "RootSpec",
    "load_curve",
    "load_settings",
]

GC_THRESHOLD: tuple[int, int, int] = (10_000, 10, 10)
"""A node process's garbage-collector thresholds by default (see ``NodeSettings.gc_threshold``)."""


@dataclasses.dataclass(frozen=True)
class RootSpec:
    """A top-level actor a node starts at every start."""

    actor_class: str
    """``module:QualName`` of an actor class in one of the node's apps."""
    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class NodeSettings:
    """Everything a node process needs to start.

    Attributes:
        name: the node id, unique in the cluster.
        listen: the endpoint its ROUTER binds (``ipc://path`` or ``tcp://host:port``).
        peers: the other nodes' ids and endpoints (heartbeated; reachable).
        data_dir: where its durable storage and incarnation counter live.
        apps: modules to import at start (so their actor classes can be spawned here).
        spawn: top-level actors to start at every start.
        curve: CURVE keys; required when any endpoint is TCP.
        engine: engine tunables (heartbeats, failure detection, supervision of top-level actors).
        max_message_size: bytes a message may carry; larger ones are refused.
        linger: seconds a graceful stop waits for outgoing messages.
        gc_threshold: the cyclic garbage collector's thresholds in the node
            process (``gc.set_threshold``), set once the node is up, after
            the objects made at start are frozen out of collections
            (``gc.freeze``); None leaves the interpreter's settings alone.
            The default collects the youngest generation every 10,000
            allocations instead of 700: a node allocates a few container
            objects per message, and with Python's default a busy node spent
            about a third of its time in the collector.
        storage: ``"sqlite"`` (the default: durable, a sync completes once
            its writes are fsynced in ``data_dir``) or ``"memory"`` (a sync
            completes at once and nothing survives a restart: for benchmarks
            and throwaway clusters, never for data a quorum must remember).
    """

    name: str
    listen: str
    peers: dict[str, str]
    data_dir: str
    apps: list[str] = dataclasses.field(default_factory=list)
    spawn: list[RootSpec] = dataclasses.field(default_factory=list)
    curve: CurveSettings | None = None
    engine: NodeConfig = dataclasses.field(default_factory=NodeConfig)
    max_message_size: int = 64 << 20
    linger: float = 5.0
    storage: str = "sqlite"
    gc_threshold: tuple[int, int, int] | None = GC_THRESHOLD

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("$"):
            raise ValueError(
                f"a node name must be non-empty, without '/', not starting with '$': {self.name!r}"
            )
        if self.gc_threshold is not None and not (
            type(self.gc_threshold) is tuple
            and len(self.gc_threshold) == 3
            and all(type(t) is int and t > 0 for t in self.gc_threshold)
        ):
            raise ValueError(
                f"node {self.name}: gc_threshold is three positive ints (or None), "
                f"not {self.gc_threshold!r}"
            )
        if self.storage not in _STORAGE_KINDS:
            raise ValueError(
                f"node {self.name}: storage is 'sqlite' (durable, the default) or 'memory' "
                f"(nothing survives a restart), not {self.storage!r}"
            )
        for endpoint in [self.listen, *self.peers.values()]:
            if not endpoint.startswith(("ipc://", "tcp://", "inproc://")):
                raise ValueError(f"endpoint {endpoint!r} is not ipc://, tcp:// or inproc://")
        uses_tcp = any(e.startswith("tcp://") for e in [self.listen, *self.peers.values()])
        if uses_tcp and self.curve is None:
            raise ValueError(
                f"node {self.name} uses TCP endpoints but has no CURVE keys: generate them with "
                "`actorfw keys generate` and set [keys] (or --key/--peer-keys)"
            )
        if self.curve is not None:
            missing = [
                peer
                for peer, endpoint in self.peers.items()
                if endpoint.startswith("tcp://") and peer not in self.curve.peers
            ]
            if missing:
                raise ValueError(
                    f"node {self.name} has no public key for {', '.join(sorted(missing))}: put "
                    f"{', '.join(sorted(m + '.key' for m in missing))} among its peer keys"
                )


def load_curve(
    secret_file: str | Path, peer_keys: str | Path | dict[str, str | Path]
) -> CurveSettings:
    """CURVE settings from a secret key file and the peers' public keys.

    Args:
        secret_file: this node's ``<name>.key_secret`` (written by ``actorfw keys generate``).
        peer_keys: a directory of ``<node>.key`` public key files, or a mapping
            of node id to such a file.

    Raises:
        ValueError: a key file cannot be read or holds a bad key (the
            message names the file and the line), or the secret file holds
            no secret key.
    """
    from actorfw.node.keys import read_key_file

    public, secret = read_key_file(secret_file)
    if secret is None:
        raise ValueError(f"{secret_file} holds no secret key; pass the .key_secret file")
    if isinstance(peer_keys, dict):
        files = {name: Path(path) for name, path in peer_keys.items()}
    else:
        folder = Path(peer_keys)
        if not folder.is_dir():
            raise ValueError(f"peer keys: {folder} is not a directory of <node>.key files")
        files = {p.stem: p for p in sorted(folder.glob("*.key"))}
    peers = {}
    for name, path in files.items():
        key, _ = read_key_file(path)
        peers[name] = key
    return CurveSettings(public_key=public, secret_key=secret, peers=peers)


_STORAGE_KINDS = ("sqlite", "memory")

_TUNING_ENGINE = (
    "heartbeat_interval",
    "phi_threshold",
    "acceptable_pause",
    "min_std",
    "mailbox_batch",
)

_TOP_LEVEL_KEYS = (
    "name",
    "listen",
    "data_dir",
    "apps",
    "peers",
    "keys",
    "spawn",
    "tuning",
    "replicated",
    "storage",
)

DEFAULT_GROUP = "kv"
"""The group name of a ``[[replicated]]`` section that gives none."""

DEFAULT_MACHINE = "actorfw.kv.machine:KVStateMachine"
"""The state machine of a ``[[replicated]]`` section that gives none: the KV store."""

PAXOS_APP = "actorfw.paxos.actors"
"""The module of the Multi-Paxos role actors, added to ``apps`` by ``[[replicated]]``."""

_REPLICATED_KEYS = ("name", "machine", "nodes", "leader", "replica")


def load_settings(path: str | Path) -> NodeSettings:
    """Read a node's TOML configuration (see the module documentation).

    ``[[replicated]]`` sections become top-level actors in ``spawn`` (the
    Multi-Paxos roles of each group, before the ``[[spawn]]`` actors) and
    modules in ``apps``; the machine's module is imported to check the path.

    Raises:
        ValueError: a required key is missing, a key is unknown, or a value is
            malformed (the message names the file and the key).
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    unknown = sorted(set(raw) - set(_TOP_LEVEL_KEYS))
    if unknown:
        raise ValueError(
            f"{path}: unknown key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)} (known: {', '.join(_TOP_LEVEL_KEYS)})"
        )
    for key in ("name", "listen"):
        if key not in raw:
            raise ValueError(f"{path}: missing {key!r}")
    keys = raw.get("keys")
    curve = None
    if keys is not None:
        if "secret" not in keys or "peers" not in keys:
            raise ValueError(f"{path}: [keys] needs 'secret' and 'peers'")
        base = path.parent
        secret = base / keys["secret"]
        peers_keys = keys["peers"]
        peer_source: Any = (
            {n: base / f for n, f in peers_keys.items()}
            if isinstance(peers_keys, dict)
            else base / peers_keys
        )
        curve = load_curve(secret, peer_source)
    tuning = raw.get("tuning", {})
    engine = NodeConfig(**{k: tuning[k] for k in _TUNING_ENGINE if k in tuning})
    peers = dict(raw.get("peers", {}))
    apps = list(raw.get("apps", []))
    spawn = [
        RootSpec(
            actor_class=item["class"],
            name=item["name"],
            args=tuple(item.get("args", ())),
            kwargs=dict(item.get("kwargs", {})),
        )
        for item in raw.get("spawn", [])
    ]
    storage = raw.get("storage", "sqlite")
    if storage not in _STORAGE_KINDS:
        raise ValueError(
            f"{path}: storage is 'sqlite' (durable, the default) or 'memory' (nothing survives "
            f"a restart), not {storage!r}"
        )
    replicated = _replicated_roots(path, raw.get("replicated", []), raw["name"], peers, apps)
    taken = {spec.name for spec in replicated}
    clash = sorted(spec.name for spec in spawn if spec.name in taken)
    if clash:
        raise ValueError(
            f"{path}: [[spawn]] name {', '.join(repr(c) for c in clash)} is taken by the actors "
            "of a [[replicated]] group: rename one of them"
        )
    return NodeSettings(
        name=raw["name"],
        listen=raw["listen"],
        peers=peers,
        data_dir=str(path.parent / raw.get("data_dir", f"data-{raw['name']}")),
        apps=apps,
        spawn=replicated + spawn,
        curve=curve,
        engine=engine,
        max_message_size=int(tuning.get("max_message_size", 64 << 20)),
        linger=float(tuning.get("linger", 5.0)),
        storage=storage,
        gc_threshold=_gc_threshold(tuning.get("gc_threshold", list(GC_THRESHOLD)), path),
    )


def _gc_threshold(value: Any, path: Path) -> tuple[int, int, int] | None:
    """``[tuning] gc_threshold``: three ints, or an empty list to leave the interpreter's."""
    if value == []:
        return None
    if not (type(value) is list and len(value) == 3 and all(type(v) is int for v in value)):
        raise ValueError(
            f"{path}: [tuning] gc_threshold is a list of three ints (or [] to keep Python's "
            f"own), not {value!r}"
        )
    return (value[0], value[1], value[2])


# -- [[replicated]] ----------------------------------------------------------------------------


def _replicated_roots(
    path: Path, sections: Any, node: str, peers: dict[str, str], apps: list[str]
) -> list[RootSpec]:
    """The top-level actors of every ``[[replicated]]`` section; adds their modules to ``apps``."""
    if not isinstance(sections, list) or not all(isinstance(s, dict) for s in sections):
        raise ValueError(
            f"{path}: 'replicated' must be an array of tables: write each group as [[replicated]]"
        )
    roots: list[RootSpec] = []
    groups: dict[str, int] = {}
    for number, section in enumerate(sections, start=1):
        where = f"{path}: [[replicated]] #{number}"
        unknown = sorted(set(section) - set(_REPLICATED_KEYS))
        if unknown:
            raise ValueError(
                f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(k) for k in unknown)} (known: {', '.join(_REPLICATED_KEYS)})"
            )
        group = section.get("name", DEFAULT_GROUP)
        if not isinstance(group, str) or not group or "/" in group or group.startswith("$"):
            raise ValueError(
                f"{where}: name must be a non-empty string without '/', not starting with '$' "
                f"(it prefixes the group's actor names), not {group!r}"
            )
        where = f'{where} (name = "{group}")'
        if group in groups:
            raise ValueError(f"{where}: the group {group!r} is also section #{groups[group]}")
        groups[group] = number
        machine, module = _machine(where, section.get("machine", DEFAULT_MACHINE))
        members = _members(where, section.get("nodes"), node, peers)
        from actorfw.paxos.types import LeaderOptions, ReplicaOptions
        from actorfw.replication.group import group_roles

        leader = _options(where, "leader", LeaderOptions, section.get("leader"))
        replica = _options(where, "replica", ReplicaOptions, section.get("replica"))
        for app in (PAXOS_APP, module):
            if app not in apps:
                apps.append(app)
        roots.extend(
            RootSpec(actor_path(cls), name, args)
            for cls, args, name in group_roles(group, members, machine, leader, replica)
        )
    return roots


def _machine(where: str, value: Any) -> tuple[str, str]:
    """Check a ``module:QualName`` state machine path by importing it; (path, module)."""
    if not isinstance(value, str):
        raise ValueError(f"{where}: machine must be a 'module:QualName' string, not {value!r}")
    module_name, colon, qualname = value.partition(":")
    dotted = [*module_name.split("."), *qualname.split(".")]
    if not colon or not all(part.isidentifier() for part in dotted):
        raise ValueError(
            f"{where}: machine {value!r} is not 'module:QualName' (e.g. {DEFAULT_MACHINE!r})"
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"{where}: machine {value!r}: cannot import {module_name} ({error}); install the "
            "application on this node or put it on PYTHONPATH"
        ) from None
    for part in qualname.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{where}: machine {value!r}: module {module_name} has no {qualname}")
        target = getattr(target, part)
    if not isinstance(target, type) or not callable(getattr(target, "apply", None)):
        raise ValueError(
            f"{where}: machine {value!r} is not a state machine class (a class with "
            "apply(operation))"
        )
    return value, module_name


def _members(where: str, value: Any, node: str, peers: dict[str, str]) -> list[str]:
    """The group's members: as listed, or this node and its peers sorted by name."""
    known = {node, *peers}
    if value is None:
        return sorted(known)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where}: nodes must be a list of node names, not {value!r}")
    if not value:
        raise ValueError(f"{where}: nodes is empty; list the group's members")
    doubled = sorted({v for v in value if value.count(v) > 1})
    if doubled:
        raise ValueError(f"{where}: nodes lists {', '.join(doubled)} more than once")
    if node not in value:
        raise ValueError(
            f"{where}: nodes {value} does not include this node ({node}): a node runs only "
            "the groups it is a member of"
        )
    strangers = [v for v in value if v not in known]
    if strangers:
        raise ValueError(
            f"{where}: nodes {', '.join(strangers)} {'is' if len(strangers) == 1 else 'are'} "
            "neither this node nor one of its [peers]"
        )
    from actorfw.paxos.types import Config

    try:
        Config.colocated(value)
    except ValueError as error:
        raise ValueError(f"{where}: nodes: {error}") from None
    return list(value)


_Options = TypeVar("_Options", "LeaderOptions", "ReplicaOptions")


def _options(where: str, key: str, cls: type[_Options], table: Any) -> _Options | None:
    """A Multi-Paxos options dataclass from a TOML table (None: the table is absent)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ValueError(
            f"{where}: {key} must be a table of {cls.__name__} fields ([replicated.{key}])"
        )
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    values: dict[str, Any] = {}
    for name, value in table.items():
        if name not in fields:
            raise ValueError(
                f"{where}: {key}: unknown option {name!r} ({cls.__name__} has: {', '.join(fields)})"
            )
        values[name] = _option_value(f"{where}: {key}.{name}", hints[name], value)
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{where}: {key}: {error}") from None


def _option_value(where: str, hint: Any, value: Any) -> Any:
    """``value`` as the type ``hint`` of an options field; ``false`` stands for None."""
    arguments = typing.get_args(hint)
    if type(None) in arguments:
        if value is False:
            return None
        others = [a for a in arguments if a is not type(None)]
        hint = others[0] if len(others) == 1 else hint
        where = f"{where} (false: none)"
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(hint, type):
        ok = isinstance(value, hint)
    else:  # a field of a shape TOML does not name: its own checks decide
        ok = True
    if not ok:
        raise ValueError(f"{where} must be {_HINT_WORDS.get(hint, hint)}, not {value!r}")
    return value


_HINT_WORDS: dict[Any, str] = {bool: "true or false", int: "an integer", float: "a number"}
