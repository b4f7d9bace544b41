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
    event_loop = "asyncio"               # or "uvloop" (pip install uvloop)


Services add sections of their own (:func:`register_section`): the
replication service reads ``[[replicated]]`` (see
:mod:`actorfw.services.replication.config`), and the node runtime itself
names no service.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actorfw.core.engine import NodeConfig
from actorfw.core.spawn import SpawnSpec
from actorfw.node.endpoints import check_endpoint
from actorfw.node.transport import CurveSettings

__all__ = [
    "EVENT_LOOPS",
    "GC_THRESHOLD",
    "NodeSettings",
    "RootSpec",
    "SectionContext",
    "SectionParser",
    "load_curve",
    "load_settings",
    "loop_factory",
    "read_toml",
    "register_section",
    "registered_sections",
]

GC_THRESHOLD: tuple[int, int, int] = (10_000, 10, 10)
"""A node process's garbage-collector thresholds by default (see ``NodeSettings.gc_threshold``)."""

EVENT_LOOPS = ("asyncio", "uvloop")
"""The event loops a node (or a client) can run on: ``NodeSettings.event_loop``."""


def loop_factory(event_loop: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes a new event loop of the kind ``event_loop`` names (one of :data:`EVENT_LOOPS`).

    ``"asyncio"`` is the standard library's loop; ``"uvloop"`` is uvloop's
    (libuv), installed with ``pip install uvloop`` (or, in the source tree,
    ``pip install -e '.[uvloop]'``). The simulator
    keeps its own loop either way.

    Raises:
        ValueError: an unknown name.
        ImportError: ``"uvloop"`` while uvloop is not installed (the message
            says how to install it).
    """
    if event_loop == "asyncio":
        return asyncio.new_event_loop
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise ImportError(
                "event_loop 'uvloop' needs the uvloop package: pip install uvloop"
            ) from None
        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    raise ValueError(f"event_loop is one of {', '.join(EVENT_LOOPS)}, not {event_loop!r}")


RootSpec = SpawnSpec
"""A top-level actor a node starts at every start (a :class:`~actorfw.core.spawn.SpawnSpec`;
from a configuration file, its ``actor_class`` is a ``module:QualName`` path)."""


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
        event_loop: the node's event loop, ``"asyncio"`` (the default) or
            ``"uvloop"`` (see :func:`loop_factory`).
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
    event_loop: str = "asyncio"

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
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError(
                f"node {self.name}: event_loop is one of {', '.join(EVENT_LOOPS)}, "
                f"not {self.event_loop!r}"
            )
        if self.storage not in _STORAGE_KINDS:
            raise ValueError(
                f"node {self.name}: storage is 'sqlite' (durable, the default) or 'memory' "
                f"(nothing survives a restart), not {self.storage!r}"
            )
        try:
            check_endpoint(self.listen, listen=True)
            for endpoint in self.peers.values():
                check_endpoint(endpoint)
        except ValueError as error:
            raise ValueError(f"node {self.name}: {error}") from None
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
        FileNotFoundError: a key file does not exist (the message names it).
        ValueError: a key file cannot be read or holds a bad key (the
            message names the file and the line), the secret file holds no
            secret key, or ``peer_keys`` is not a directory.
    """
    from actorfw.node.keys import read_key_file

    public, secret = read_key_file(_key_file(secret_file))
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
        key, _ = read_key_file(_key_file(path))
        peers[name] = key
    return CurveSettings(public_key=public, secret_key=secret, peers=peers)


def _key_file(path: str | Path) -> str:
    # Say plainly that the file is missing, rather than that it cannot be read as a key.
    if not Path(path).exists():
        raise FileNotFoundError(f"key file {path} does not exist")
    return str(path)


_STORAGE_KINDS = ("sqlite", "memory")

_TUNING_ENGINE = (
    "heartbeat_interval",
    "phi_threshold",
    "acceptable_pause",
    "min_std",
    "mailbox_batch",
    "turn_time",
    "max_backlog",
)

_TUNING_KEYS = (
    *_TUNING_ENGINE,
    "flow_window",
    "trace_dir",
    "max_message_size",
    "linger",
    "gc_threshold",
    "event_loop",
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
    "storage",
)

SectionParser = Callable[["SectionContext", Any], list["RootSpec"]]
"""Turns a service's TOML section into the top-level actors it starts on this node."""


@dataclasses.dataclass(frozen=True)
class SectionContext:
    """What a service's section parser knows of the node being configured.

    Attributes:
        path: the TOML file (for messages).
        node: this node's name.
        peers: the other nodes, by name.
        apps: the node's ``apps``; a parser appends the modules its actors need.
    """

    path: Path
    node: str
    peers: dict[str, str]
    apps: list[str]


_SECTIONS: dict[str, SectionParser] = {}


def register_section(name: str, parser: SectionParser) -> None:
    """Let a service read its own top-level section of a node's TOML file.

    The node runtime names no service: ``[[replicated]]``, say, is read by
    :mod:`actorfw.services.replication`, which registers it when imported
    (``import actorfw`` does). ``parser(context, value)`` gets the section's
    value and returns the top-level actors it starts on this node, before the
    ``[[spawn]]`` ones; it raises ``ValueError`` naming the file and the key
    for a bad value.

    Raises:
        ValueError: the name is a key of the node itself, or taken by another parser.
    """
    if name in _TOP_LEVEL_KEYS:
        raise ValueError(f"{name!r} is a key of the node's own configuration")
    if _SECTIONS.get(name, parser) is not parser:
        raise ValueError(f"the configuration section {name!r} is registered already")
    _SECTIONS[name] = parser


def registered_sections() -> tuple[str, ...]:
    """The names of the sections services registered, sorted."""
    return tuple(sorted(_SECTIONS))


def read_toml(path: Path, what: str, known: tuple[str, ...]) -> dict[str, Any]:
    """The top-level table of the TOML file at ``path``, strictly: every key must be ``known``.

    ``what`` names the file in errors (``"configuration file"``).

    Raises:
        ValueError: the file does not exist or cannot be read, is not TOML,
            or has a key not in ``known`` (the message names the file).
    """
    try:
        return _known_keys(path, tomllib.loads(path.read_text(encoding="utf-8")), known)
    except FileNotFoundError:
        raise ValueError(f"{what} {path} does not exist") from None
    except OSError as error:
        raise ValueError(f"{what} {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None


def _known_keys(path: Path, raw: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ValueError(
            f"{path}: unknown key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)} (known: {', '.join(known)})"
        )
    return raw


def load_settings(path: str | Path) -> NodeSettings:
    """Read a node's TOML configuration (see the module documentation).

    Sections that services registered (:func:`register_section`; for
    example ``[[replicated]]``) become top-level actors in ``spawn``, before
    the ``[[spawn]]`` actors, and modules in ``apps``.

    Raises:
        ValueError: a required key is missing, a key is unknown, or a value is
            malformed (the message names the file and the key).
    """
    path = Path(path)
    raw = read_toml(path, "configuration file", (*_TOP_LEVEL_KEYS, *registered_sections()))
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
    if not isinstance(tuning, dict):
        raise ValueError(f"{path}: [tuning] is a table")
    unknown = sorted(set(tuning) - set(_TUNING_KEYS))
    if unknown:
        raise ValueError(
            f"{path}: unknown key{'s' if len(unknown) > 1 else ''} in [tuning]: "
            f"{', '.join(unknown)} (known: {', '.join(_TUNING_KEYS)})"
        )
    engine = NodeConfig(**{k: tuning[k] for k in _TUNING_ENGINE if k in tuning})
    if "flow_window" in tuning:  # credit between nodes; 0 turns it off (TOML has no None)
        window = tuning["flow_window"]
        if type(window) is not int or window < 0 or 0 < window < 4:
            raise ValueError(f"{path}: [tuning] flow_window is 0 (off) or an int of at least 4")
        engine.flow_window = window or None
    if "trace_dir" in tuning:  # causal tracing; a relative path is from the file's directory
        if not (isinstance(tuning["trace_dir"], str) and tuning["trace_dir"]):
            raise ValueError(f"{path}: [tuning] trace_dir is a directory path")
        engine.trace_dir = str(path.parent / tuning["trace_dir"])
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
    context = SectionContext(path, raw["name"], peers, apps)
    services: list[RootSpec] = []
    for name in registered_sections():
        if name not in raw:
            continue
        roots = _SECTIONS[name](context, raw[name])
        taken = {spec.name for spec in roots}
        clash = sorted(spec.name for spec in spawn if spec.name in taken)
        if clash:
            raise ValueError(
                f"{path}: [[spawn]] name {', '.join(repr(c) for c in clash)} is taken by the "
                f"actors of a [[{name}]] section: rename one of them"
            )
        services.extend(roots)
    return NodeSettings(
        name=raw["name"],
        listen=raw["listen"],
        peers=peers,
        data_dir=str(path.parent / raw.get("data_dir", f"data-{raw['name']}")),
        apps=apps,
        spawn=services + spawn,
        curve=curve,
        engine=engine,
        max_message_size=int(tuning.get("max_message_size", 64 << 20)),
        linger=float(tuning.get("linger", 5.0)),
        storage=storage,
        gc_threshold=_gc_threshold(tuning.get("gc_threshold", list(GC_THRESHOLD)), path),
        event_loop=_event_loop(tuning.get("event_loop", "asyncio"), path),
    )


def _event_loop(value: Any, path: Path) -> str:
    """``[tuning] event_loop``: a name of :data:`EVENT_LOOPS`, whose package is installed."""
    if value not in EVENT_LOOPS:
        raise ValueError(
            f"{path}: [tuning] event_loop is one of {', '.join(EVENT_LOOPS)}, not {value!r}"
        )
    try:
        loop_factory(value)
    except ImportError as error:
        raise ValueError(f"{path}: [tuning] {error}") from None
    return str(value)


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
