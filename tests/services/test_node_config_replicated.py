"""``[[replicated]]`` in a node's TOML configuration: the Multi-Paxos roles as top-level actors."""

from __future__ import annotations

from pathlib import Path

import pytest

from actorfw.node.config import NodeSettings, RootSpec, load_settings
from actorfw.protocols.paxos.types import LeaderOptions, ReplicaOptions

TOP = """\
name = "n2"
listen = "ipc://n2.sock"
apps = ["tests.support.actors"]
"""

PEERS = """
[peers]
n3 = "ipc://n3.sock"
n1 = "ipc://n1.sock"
"""

KV = "actorfw.kv.machine:KVStateMachine"
ROLES = "actorfw.services.paxos"


def settings_of(tmp_path: Path, text: str) -> NodeSettings:
    """Node n2's settings, with peers n1 and n3, from ``text`` (top-level keys and tables)."""
    config = tmp_path / "n2.toml"
    config.write_text(TOP + text + PEERS, encoding="utf-8")
    return load_settings(config)


def test_an_empty_section_replicates_the_kv_store_on_every_node_in_name_order(
    tmp_path: Path,
) -> None:
    settings = settings_of(tmp_path, "\n[[replicated]]\n")
    members = ["n1", "n2", "n3"]
    assert settings.spawn == [
        RootSpec(f"{ROLES}:AcceptorActor", "kv-acceptor", ("kv", members)),
        RootSpec(f"{ROLES}:ReplicaActor", "kv-replica", ("kv", members, KV, None, None)),
        RootSpec(f"{ROLES}:LeaderActor", "kv-leader", ("kv", members, None, None)),
    ]
    assert settings.apps == ["tests.support.actors", ROLES, "actorfw.kv.machine"]


def test_a_full_section_gives_its_name_machine_nodes_and_options(tmp_path: Path) -> None:
    settings = settings_of(
        tmp_path,
        """
[[spawn]]
class = "tests.support.actors:Echo"
name = "echo"

[[replicated]]
name = "counter"
machine = "tests.services.test_replication:Counter"
nodes = ["n3", "n2"]
[replicated.leader]
leader_timeout = 2
initial_leader = false
window = 128
[replicated.replica]
max_batch = 8
propose_timeout = 0.25
""",
    )
    members = ["n3", "n2"]
    leader = LeaderOptions(leader_timeout=2.0, initial_leader=None, window=128)
    replica = ReplicaOptions(max_batch=8, propose_timeout=0.25)
    spawn = settings.spawn
    assert [spec.name for spec in spawn] == [
        "counter-acceptor",
        "counter-replica",
        "counter-leader",
        "echo",
    ]
    machine = "tests.services.test_replication:Counter"
    assert spawn[1].args == ("counter", members, machine, None, replica)
    assert spawn[2].args == ("counter", members, None, leader)
    assert isinstance(spawn[2].args[3].leader_timeout, float)
    assert settings.apps == ["tests.support.actors", ROLES, "tests.services.test_replication"]


def test_two_groups_each_get_their_three_roles(tmp_path: Path) -> None:
    settings = settings_of(
        tmp_path,
        '\n[[replicated]]\nname = "a"\n\n[[replicated]]\nname = "b"\nnodes = ["n1", "n2"]\n',
    )
    names = [spec.name for spec in settings.spawn]
    assert names == ["a-acceptor", "a-replica", "a-leader", "b-acceptor", "b-replica", "b-leader"]
    assert settings.apps.count(ROLES) == 1


def test_the_roles_are_those_replicate_spawns(tmp_path: Path) -> None:
    # replicate() on a runtime spawns (class, *args, name=...) on every node: record its calls.
    from actorfw.core.actor import actor_path
    from actorfw.services.replication import replicate

    class Recorder:
        def __init__(self) -> None:
            self.nodes = ["n1", "n2", "n3"]
            self.specs: list[RootSpec] = []

        def spawn(self, node: str, cls: type, *args: object, name: str) -> None:
            if node == "n2":
                self.specs.append(RootSpec(actor_path(cls), name, args))

    recorder = Recorder()
    replicate(recorder, KV, name="kv")
    settings = settings_of(tmp_path, "\n[[replicated]]\n")
    # The same actors; the configuration starts the replica before the leader.
    assert sorted(settings.spawn, key=str) == sorted(recorder.specs, key=str)


def test_a_primary_backup_section_starts_what_replicate_spawns_on_this_node(
    tmp_path: Path,
) -> None:
    from actorfw.core.actor import actor_path
    from actorfw.protocols.primary_backup import MemberOptions, PrimaryOptions
    from actorfw.services.replication import replicate

    class Recorder:
        in_process = False  # node processes: machines go by path

        def __init__(self) -> None:
            self.nodes = ["n1", "n2", "n3"]
            self.specs: list[RootSpec] = []

        def spawn(self, node: str, cls: type, *args: object, name: str) -> None:
            if node == "n2":
                self.specs.append(RootSpec(actor_path(cls), name, args))

    recorder = Recorder()
    options = MemberOptions(
        PrimaryOptions(lag_time=0.25), snapshot_interval=100, log_tail=10, max_sessions=None
    )
    replicate(
        recorder, KV, name="orders", replication="primary-backup", member_options=options, lease=2.0
    )
    settings = settings_of(
        tmp_path,
        '\n[[replicated]]\nname = "orders"\nreplication = "primary-backup"\nlease = 2.0\n'
        "[replicated.primary]\nlag_time = 0.25\n"
        "[replicated.member]\nsnapshot_interval = 100\nlog_tail = 10\nmax_sessions = false\n",
    )
    assert settings.spawn == recorder.specs
    assert [spec.name for spec in settings.spawn] == [
        "orders-views-acceptor",
        "orders-views-replica",
        "orders-views-leader",
        "orders-replica",
        "orders-keeper",
    ]
    assert settings.apps == [
        "tests.support.actors",
        ROLES,
        "actorfw.services.primary_backup",
        "actorfw.kv.machine",
    ]


ERRORS = [
    ("replicated = 1", r"'replicated' must be an array of tables"),
    ("[replicated]\nname = 'kv'", r"'replicated' must be an array of tables"),
    ("[[replicated]]\nmachin = 'x:Y'", r"\[\[replicated\]\] #1: unknown key 'machin'"),
    ("[[replicated]]\nname = ''", r"#1: name must be a non-empty string"),
    ("[[replicated]]\nname = 'a/b'", r"#1: name must be a non-empty string without '/'"),
    ("[[replicated]]\nname = 3", r"#1: name must be"),
    ("[[replicated]]\n[[replicated]]", r'#2 \(name = "kv"\): the group \'kv\' is also section #1'),
    ("[[replicated]]\nmachine = 'KVStateMachine'", r"machine 'KVStateMachine' is not 'module:Qual"),
    ("[[replicated]]\nmachine = 'a b:C'", r"is not 'module:QualName'"),
    ("[[replicated]]\nmachine = 7", r"machine must be a 'module:QualName' string"),
    ("[[replicated]]\nmachine = 'no_such_module_x:M'", r"cannot import no_such_module_x"),
    (
        "[[replicated]]\nmachine = 'actorfw.kv.machine:Nope'",
        r"module actorfw.kv.machine has no Nope",
    ),
    ("[[replicated]]\nmachine = 'actorfw.kv.machine:KVError'", r"is not a state machine class"),
    ("[[replicated]]\nmachine = 'actorfw.kv:__doc__'", r"is not a state machine class"),
    ("[[replicated]]\nnodes = 'n1'", r"nodes must be a list of node names"),
    ("[[replicated]]\nnodes = []", r"nodes is empty"),
    ("[[replicated]]\nnodes = ['n1', 'n2', 'n1']", r"nodes lists n1 more than once"),
    ("[[replicated]]\nnodes = ['n1', 'n3']", r"does not include this node \(n2\)"),
    ("[[replicated]]\nnodes = ['n2', 'n9']", r"nodes n9 is neither this node nor one of its"),
    ("[[replicated]]\nleader = 1", r"leader must be a table of LeaderOptions fields"),
    ("[[replicated]]\n[replicated.leader]\ntimeout = 1", r"leader: unknown option 'timeout'"),
    ("[[replicated]]\n[replicated.replica]\nbatch = 1", r"replica: unknown option 'batch'"),
    (
        "[[replicated]]\n[replicated.leader]\nleader_timeout = 'fast'",
        r"leader\.leader_timeout must be a number, not 'fast'",
    ),
    (
        "[[replicated]]\n[replicated.replica]\nmax_batch = 1.5",
        r"replica\.max_batch must be an integer, not 1\.5",
    ),
    (
        "[[replicated]]\n[replicated.replica]\nmax_batch = true",
        r"replica\.max_batch must be an integer, not True",
    ),
    (
        "[[replicated]]\n[replicated.leader]\ninitial_leader = true",
        r"leader\.initial_leader \(false: none\) must be an integer",
    ),
    (
        "[[replicated]]\n[replicated.replica]\nmax_batch = 0",
        r"replica: ReplicaOptions\.max_batch must be positive, not 0",
    ),
    (
        "[[replicated]]\n[replicated.leader]\nbackoff_base = 2.0\nbackoff_max = 1.0",
        r"leader: backoff_max must be at least backoff_base",
    ),
    (
        "[[spawn]]\nclass = 'tests.support.actors:Echo'\nname = 'kv-leader'\n[[replicated]]",
        r"'kv-leader'",
    ),
    ("replikated = []", r"unknown key 'replikated'"),
    ("[[replicated]]\nreplication = 'raft'", r"replication is one of 'paxos', 'primary-backup'"),
    ("[[replicated]]\nlease = 2.0", r"'lease' only apply with replication = \"primary-backup\""),
    (
        "[[replicated]]\nreplication = 'primary-backup'\nlease = 0",
        r"lease must be a positive number of seconds",
    ),
    (
        "[[replicated]]\nreplication = 'primary-backup'\n[replicated.primary]\nmode = 'semi'",
        r"primary: mode is 'sync' or 'async', not 'semi'",
    ),
    (
        "[[replicated]]\nreplication = 'primary-backup'\n"
        "machine = 'tests.support.actors:PlainMachine'\n[replicated.primary]\nmode = 'async'",
        r"an 'async' group needs a state machine with snapshot\(\) and restore\(\)",
    ),
    (
        "[[replicated]]\nreplication = 'primary-backup'\n[replicated.primary]\nlag = 1",
        r"primary: unknown option 'lag'",
    ),
    (
        "[[replicated]]\nreplication = 'primary-backup'\n[replicated.member]\nlog_tail = -1",
        r"member: log_tail must be a non-negative int",
    ),
    (
        "[[replicated]]\nreplication = 'primary-backup'\n[replicated.member]\nprimary = 1",
        r"member: the primary's options go in \[replicated.primary\]",
    ),
    ("[[replicated]]\n[replicated.member]\nmax_queue = 9", r"'member' only apply with"),
    (
        "[[replicated]]\nreplication = 'primary-backup'\nviews = ['n9']",
        r"views: nodes n9 is neither this node",
    ),
    (
        "[[replicated]]\nreplication = 'primary-backup'\nlease = 0.1\n[replicated.primary]\n"
        "drift = 0.5",
        r"the drift bound \(0\.5 s\) must be below the lease",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[e[1][:40] for e in ERRORS])
def test_a_bad_replicated_section_is_a_value_error_naming_the_file_and_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as error:
        settings_of(tmp_path, "\n" + text + "\n")
    assert str(error.value).startswith(str(tmp_path / "n2.toml") + ": ")


def test_the_node_command_prints_a_configuration_error_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from actorfw.cli import main

    config = tmp_path / "n2.toml"
    config.write_text(TOP + "\n[[replicated]]\nnodes = ['n1']\n" + PEERS, encoding="utf-8")
    assert main(["node", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"actorfw node: {config}: [[replicated]] #1")
    assert "does not include this node (n2)" in err


def test_the_section_in_the_deployment_guide_loads(tmp_path: Path) -> None:
    import re

    guide = Path(__file__).resolve().parent.parent.parent / "docs" / "deployment.md"
    blocks = re.findall(r"```toml\n(\[\[replicated\]\].*?)```", guide.read_text("utf-8"), re.S)
    assert len(blocks) == 2
    settings = settings_of(tmp_path, "\n" + blocks[0])
    assert [spec.name for spec in settings.spawn] == ["kv-acceptor", "kv-replica", "kv-leader"]
    assert settings.spawn[2].args[3] == LeaderOptions(leader_timeout=1.0)
    assert settings.spawn[1].args[4] == ReplicaOptions(max_batch=64)
    primary_backup = settings_of(tmp_path, "\n" + blocks[1])
    assert [spec.name for spec in primary_backup.spawn][-2:] == ["orders-replica", "orders-keeper"]
    member_options = primary_backup.spawn[-2].args[3]
    assert (member_options.primary.lag_time, member_options.primary.drift) == (0.5, 0.1)


def test_storage_is_read_from_the_file_and_checked(tmp_path: Path) -> None:
    assert settings_of(tmp_path, 'storage = "memory"\n').storage == "memory"
    assert settings_of(tmp_path, "").storage == "sqlite"
    with pytest.raises(ValueError, match=r"n2\.toml: storage is 'sqlite' .* not 'tape'"):
        settings_of(tmp_path, 'storage = "tape"\n')
