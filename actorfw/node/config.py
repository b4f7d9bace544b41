"""How a node process is configured: from the command line, a TOML file, or ``ActorSystem``.

A TOML file for ``actorfw node --config node.toml``::

    name = "n1"
    listen = "tcp://0.0.0.0:7000"
    data_dir = "/var/lib/actorfw/n1"
    apps = ["mypackage.actors"]          # modules imported at start: their actors can be spawned

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
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from actorfw.core.node import NodeConfig
from actorfw.node.transport import CurveSettings

__all__ = ["NodeSettings", "RootSpec", "load_curve", "load_settings"]


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

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("$"):
            raise ValueError(
                f"a node name must be non-empty, without '/', not starting with '$': {self.name!r}"
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
    """
    import zmq.auth

    public, secret = zmq.auth.load_certificate(str(secret_file))
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
        key, _ = zmq.auth.load_certificate(str(path))
        peers[name] = key
    return CurveSettings(public_key=public, secret_key=secret, peers=peers)


_TUNING_ENGINE = (
    "heartbeat_interval",
    "phi_threshold",
    "acceptable_pause",
    "min_std",
    "mailbox_batch",
)


def load_settings(path: str | Path) -> NodeSettings:
    """Read a node's TOML configuration (see the module documentation).

    Raises:
        ValueError: a required key is missing or a value is malformed (the message names it).
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
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
    spawn = [
        RootSpec(
            actor_class=item["class"],
            name=item["name"],
            args=tuple(item.get("args", ())),
            kwargs=dict(item.get("kwargs", {})),
        )
        for item in raw.get("spawn", [])
    ]
    return NodeSettings(
        name=raw["name"],
        listen=raw["listen"],
        peers=dict(raw.get("peers", {})),
        data_dir=str(path.parent / raw.get("data_dir", f"data-{raw['name']}")),
        apps=list(raw.get("apps", [])),
        spawn=spawn,
        curve=curve,
        engine=engine,
        max_message_size=int(tuning.get("max_message_size", 64 << 20)),
        linger=float(tuning.get("linger", 5.0)),
    )
