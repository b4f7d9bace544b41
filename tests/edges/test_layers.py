"""The package's layers hold: no module imports a layer above its own.

The list below is the one of ``docs/development.md`` ("Layers"), bottom
up. A module may import its own layer and the layers below it; the two
runtimes (``sim``, ``node``) may not import each other. Every import counts,
also one inside a function or under ``TYPE_CHECKING``: a lazy import is
still a dependency.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import actorfw

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kernels", ("actorfw._cext", "actorfw._pure", "actorfw.kernels", "actorfw._order")),
    ("values", ("actorfw.values",)),
    ("protocols", ("actorfw.protocols", "actorfw.check")),
    ("core", ("actorfw.core",)),
    ("runtimes", ("actorfw.sim", "actorfw.node")),
    ("services", ("actorfw.services",)),
    ("applications", ("actorfw.kv",)),
    (
        "edges",
        (
            "actorfw.bench",
            "actorfw.cli",
            "actorfw.demo",
            "actorfw.testing",
            "actorfw.__main__",
            # re-exports of moved modules, kept for one release
            "actorfw.paxos",
            "actorfw.replication",
            # the public surface re-exports from every layer
            "actorfw",
        ),
    ),
)
"""Layer name and the module prefixes it holds, bottom up."""

APART: tuple[tuple[str, str], ...] = (
    ("actorfw.sim", "actorfw.node"),
    ("actorfw.node", "actorfw.sim"),
)
"""Pairs (importer, imported) of the same layer that must not depend on each other."""


def _owner(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of the layer holding ``module`` (most specific prefix)."""
    best, length = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _owner(module, prefix) and len(prefix) > length:
                best, length = index, len(prefix)
    if best < 0:
        raise LookupError(f"module {module} is in no layer: add its package to LAYERS")
    return best


@dataclass(frozen=True)
class Violation:
    """One import that goes up the layer list (or across runtimes)."""

    module: str
    line: int
    imported: str

    def __str__(self) -> str:
        mine, theirs = LAYERS[layer_of(self.module)][0], LAYERS[layer_of(self.imported)][0]
        return f"{self.module}:{self.line} ({mine}) imports {self.imported} ({theirs})"


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(root: Path, module: str, path: Path, tree: ast.AST) -> list[tuple[int, str]]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            # "from actorfw import core" imports actorfw.core, not only actorfw
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.append((node.lineno, candidate if _is_module(root, candidate) else target))
    return [(line, name) for line, name in found if _owner(name, "actorfw")]


def _is_module(root: Path, name: str) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def violations(root: Path) -> list[Violation]:
    """Every upward import in the ``actorfw`` package found under ``root``."""
    found: list[Violation] = []
    for path in sorted((root / "actorfw").rglob("*.py")):
        module = _module_name(root, path)
        mine = layer_of(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, imported in _imports(root, module, path, tree):
            theirs = layer_of(imported)
            apart = any(_owner(module, a) and _owner(imported, b) for a, b in APART)
            if theirs > mine or apart:
                found.append(Violation(module, line, imported))
    return found


PACKAGE_ROOT = Path(actorfw.__file__).parent.parent


def test_no_module_imports_a_layer_above_its_own() -> None:
    found = violations(PACKAGE_ROOT)
    assert not found, "imports that go up the layers:\n" + "\n".join(map(str, found))


def test_every_module_of_the_package_is_in_a_layer() -> None:
    for path in (PACKAGE_ROOT / "actorfw").rglob("*.py"):
        layer_of(_module_name(PACKAGE_ROOT, path))  # raises LookupError naming it


@pytest.mark.parametrize(
    ("planted_in", "source"),
    [
        ("values/planted.py", "from actorfw.core import Actor\n"),
        ("protocols/planted.py", "def f():\n    import actorfw.node.transport\n"),
        ("core/planted.py", "from ..services import paxos\n"),
        ("sim/planted.py", "from actorfw.node import config\n"),
    ],
)
def test_a_planted_upward_import_is_found(tmp_path: Path, planted_in: str, source: str) -> None:
    tree = tmp_path / "actorfw"
    for package in ("values", "protocols", "core", "sim", "node", "services"):
        (tree / package).mkdir(parents=True)
        (tree / package / "__init__.py").write_text("")
    (tree / "__init__.py").write_text("")
    (tree / planted_in).write_text(source)
    assert violations(tmp_path) != []
    (tree / planted_in).unlink()
    assert violations(tmp_path) == []


def test_the_layers_are_the_ones_docs_development_md_shows() -> None:
    text = (PACKAGE_ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    names = [name for name, _ in LAYERS]
    positions = [text.find(f"**{name}**") for name in names]
    assert -1 not in positions, f"docs/development.md should name each layer in bold: {names}"
    assert positions == sorted(positions), "docs/development.md lists the layers in another order"
