"""What a runtime needs to start a top-level actor, and to start it again after a restart.

A :class:`SpawnSpec` names the actor's class (the class itself, or its
``module:QualName`` path for a class imported on the node), its name and
its constructor's arguments. Every runtime keeps its nodes' top-level actors
as specs and starts them at each start of the node: the simulator remembers
the ones running when a node crashes (:func:`root_specs`), an
:class:`~actorfw.node.ActorSystem` the ones spawned through it, a node
process the ones its configuration lists.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from actorfw.core.actor import Actor, actor_class, missing_actor_class
from actorfw.values.refs import ActorRef

if TYPE_CHECKING:
    from actorfw.core.engine import Engine

__all__ = ["SpawnSpec", "root_specs"]


@dataclasses.dataclass(frozen=True)
class SpawnSpec:
    """A top-level actor to start on a node, at every start of the node."""

    actor_class: type[Actor] | str
    """The class, or ``module:QualName`` of an actor class in one of the node's apps."""
    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def resolve(self, node: str) -> type[Actor]:
        """The actor class (looked up by path among the modules imported on ``node``).

        Raises:
            LookupError: no such class is loaded here (the message says what to import).
        """
        if isinstance(self.actor_class, str):
            cls = actor_class(self.actor_class)
            if cls is None:
                raise LookupError(missing_actor_class(self.actor_class, node))
            return cls
        return self.actor_class

    def start(self, engine: Engine) -> ActorRef:
        """Spawn the actor on ``engine``; its ref.

        Raises:
            LookupError, TypeError, ValueError: as :meth:`resolve` and ``Engine.spawn`` do.
        """
        cls = self.resolve(engine.id)
        return engine.spawn(cls, *self.args, name=self.name, **self.kwargs)


def root_specs(engine: Engine) -> list[SpawnSpec]:
    """The top-level actors running on ``engine``, as specs to start them again, oldest first."""
    return [
        SpawnSpec(cell.actor_class, name, cell.args, cell.kwargs)
        for name, cell in engine.roots.items()
    ]
