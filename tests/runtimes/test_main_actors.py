"""Actors and messages defined in the main script run on node processes (issue: point 6)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actorfw.core.actor import missing_actor_class

SCRIPT = textwrap.dedent(
    """
    from actorfw import Actor, ActorSystem, handler, message

    @message
    class Work:
        n: int

    class Worker(Actor):
        @handler
        def work(self, job: Work) -> int:
            return job.n * job.n

    class Boss(Actor):
        def on_start(self) -> None:
            self.worker = self.context.spawn(Worker, name="worker")

        @handler
        async def work(self, job: Work) -> int:
            return await self.worker.ask(job)

    if __name__ == "__main__":
        with ActorSystem(nodes=2) as system:
            boss = system.spawn("n1", Boss, name="boss")
            print(system.ask(boss, Work(7)), system.ask(boss, Work(3), on="n2"))
    """
)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=90, check=False
    )


def test_actors_and_messages_of_a_script_file_run_on_node_processes(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(SCRIPT)
    done = _run(["app.py"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["49", "9"]


def test_actors_of_a_script_without_a_file_fail_naming_the_real_fix(tmp_path: Path) -> None:
    done = _run(["-c", SCRIPT.replace('if __name__ == "__main__":', "if True:")], tmp_path)
    assert done.returncode != 0
    assert "is defined in the main script" in done.stderr
    assert "run the program as a script file" in done.stderr


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("__main__:Boss", "defined in the main script"),
        ("actorfw.core.actor:Nope", "module actorfw.core.actor on node n1 has no actor class Nope"),
        ("not.imported.anywhere:Thing", "add not.imported.anywhere to the node's apps"),
    ],
)
def test_a_missing_actor_class_is_explained_by_what_is_missing(path: str, says: str) -> None:
    assert says in missing_actor_class(path, "n1")


def test_a_wrong_class_name_in_spawn_is_named_as_such(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        'name = "n1"\nlisten = "ipc://' + str(tmp_path / "n1.sock") + '"\n'
        'apps = ["tests.support.actors"]\n'
        '[[spawn]]\nclass = "tests.support.actors:Recordr"\nname = "r"\n'
    )
    root = Path(__file__).resolve().parent.parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "actorfw", "node", "--config", str(config)],
        cwd=root,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "has no actor class Recordr" in done.stderr and "Recorder" in done.stderr
