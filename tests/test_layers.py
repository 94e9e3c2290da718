"""The package is layered: every import points down, and no two modules import each other.

Layers, bottom up (a module may import its own layer and the layers below it, never a layer
above it, nor a sibling on its own level):

    rank  layer     modules                              may import
    0     base      jsontext, ids, prices,               nothing of turnscope
                    store/engine, store/models
    1     records   records, content                     base
    2     contract  sinks, config                        records, base
    3     analysis  analysis/                            contract, records, base
    4     store     store/ (but engine, models)          analysis, contract, records, base
    5     capture   exporter/, otlp/                     store and below (not viewer/)
    5     viewer    viewer/                              store and below (not exporter/, otlp/)
    5     repro     repro/                               store and below (not exporter/, otlp/)
    6     app       cli/, demo/                          all of the above
    7     face      turnscope/__init__.py                anything (instrument() is the way in)

and ``turnscope.otlp`` is imported only from exporter/, otlp/, cli/ and the face.
store/engine.py (database URLs, engines, migrations) and store/models.py (the tables) import
nothing of turnscope, so they sit at the bottom: config.py reads and checks the database URL
with the engine module, which creates a new SQLite file's tables from the models.

What counts as an import: every ``import``/``from ... import`` in a module, at the top or
inside a function (a lazy import still ties the two modules together). Imports under
``if TYPE_CHECKING:`` never run, so they cannot close an import circle and are left out of
the circle check; they must still respect the layers (a type named from a layer above is a
dependency pointing the wrong way). Reading ``turnscope.__version__`` (``from turnscope
import __version__``, ``import turnscope``) is not an import of the face: Python runs
``turnscope/__init__.py`` before any module of the package anyway.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "turnscope"  # this checkout's

# (layer, rank, modules): the first row whose module or package matches wins
LAYERS: list[tuple[str, int, tuple[str, ...]]] = [
    (
        "base",
        0,
        (
            "turnscope.jsontext",
            "turnscope.ids",
            "turnscope.store.engine",
            "turnscope.store.models",
            "turnscope.prices",
        ),
    ),
    ("records", 1, ("turnscope.records", "turnscope.content")),
    ("contract", 2, ("turnscope.sinks", "turnscope.config")),
    ("analysis", 3, ("turnscope.analysis",)),
    ("store", 4, ("turnscope.store",)),
    ("capture", 5, ("turnscope.exporter", "turnscope.otlp")),
    ("viewer", 5, ("turnscope.viewer",)),
    ("repro", 5, ("turnscope.repro",)),
    ("app", 6, ("turnscope.cli", "turnscope.demo")),
]
FACE = "turnscope"
# modules that only these may import (besides themselves)
ONLY_FROM = {
    # "turnscope.cli": the package, so any of its command modules
    "turnscope.otlp": ("turnscope.otlp", "turnscope.exporter", "turnscope.cli", FACE),
}
# imports that break the layers today, each with the reason it is tolerated; the test fails
# once one is gone, so that it is taken off this list
KNOWN = {
    ("turnscope.store.writer", "turnscope.exporter.safe"): (
        "DbSink describes data that changed after it was made JSON-safe with exporter/safe.py's "
        "jsonable (a lazy import on a failure path); safe.py belongs beneath both"
    ),
}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _part_of(module: str, prefix: str) -> bool:
    """Whether a module is ``prefix`` or in it; the face is only itself."""
    return module == prefix if prefix == FACE else _within(module, prefix)


def layer_of(module: str) -> tuple[str, int]:
    """The layer of a module of the package, and its rank."""
    if module == FACE:
        return "face", 7
    for name, rank, prefixes in LAYERS:
        if any(_within(module, p) for p in prefixes):
            return name, rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def module_name(path: Path) -> str:
    """``turnscope/store/writer.py`` -> ``turnscope.store.writer`` (a package: its name)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(
    source: str, module: str, is_package: bool, known: set[str]
) -> list[tuple[str, bool]]:
    """The package modules ``module`` imports, each with whether only for type checking."""
    found: list[tuple[str, bool]] = []
    base = module if is_package else module.rpartition(".")[0]

    def target(name: str) -> str | None:
        while name and name not in known:  # a name inside a module: the module
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _within(alias.name, FACE) and alias.name != FACE:
                    found.append((target(alias.name) or FACE, typing_only))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base.rsplit(".", node.level - 1)[0] if node.level > 1 else base
                source_module = f"{parent}.{node.module}" if node.module else parent
            else:
                source_module = node.module or ""
            if _within(source_module, FACE):
                for alias in node.names:
                    if source_module == FACE and alias.name == "__version__":
                        continue
                    name = target(f"{source_module}.{alias.name}") or FACE
                    found.append((name, typing_only))
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(ast.parse(source), False)
    return found


@functools.cache
def package_imports() -> dict[str, list[tuple[str, bool]]]:
    """Every module of the package -> the package modules it imports."""
    paths = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(p) for p in paths}
    return {
        module_name(p): imports_of(
            p.read_text(encoding="utf-8"), module_name(p), p.name == "__init__.py", known
        )
        for p in paths
    }


def layer_violations(graph: dict[str, list[tuple[str, bool]]]) -> set[tuple[str, str]]:
    """(importer, imported) pairs that point up or sideways, or into a guarded module."""
    bad: set[tuple[str, str]] = set()
    for module, targets in graph.items():
        layer, rank = layer_of(module)
        for imported, _typing_only in targets:
            if imported == module:
                continue
            their_layer, their_rank = layer_of(imported)
            if their_rank > rank or (their_rank == rank and their_layer != layer):
                bad.add((module, imported))
            for guarded, allowed in ONLY_FROM.items():
                if _within(imported, guarded) and not any(_part_of(module, a) for a in allowed):
                    bad.add((module, imported))
    return bad


def circles(graph: dict[str, list[tuple[str, bool]]]) -> list[list[str]]:
    """Import circles among the imports that run (strongly connected components > 1)."""
    edges = {
        m: sorted({t for t, typing_only in ts if not typing_only and t != m})
        for m, ts in graph.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, []):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def test_no_import_circles() -> None:
    assert circles(package_imports()) == []


def test_every_import_points_down_the_layers() -> None:
    bad = layer_violations(package_imports())
    unexpected = sorted(bad - set(KNOWN))
    assert not unexpected, "imports against the layers (see this file's docstring):\n" + "\n".join(
        f"  {a} -> {b}" for a, b in unexpected
    )
    gone = sorted(set(KNOWN) - bad)
    assert not gone, f"no longer imported, take them off KNOWN: {gone}"


@pytest.mark.parametrize(
    ("module", "source", "culprit"),
    [
        (
            "turnscope.records",
            "from turnscope.store.writer import DbSink\n",
            "turnscope.store.writer",
        ),
        (
            "turnscope.store.queries",
            "def f():\n    from turnscope.exporter import pipeline\n",
            "turnscope.exporter.pipeline",
        ),
        (
            "turnscope.viewer.format",
            "import turnscope.exporter.processor\n",
            "turnscope.exporter.processor",
        ),
        (
            "turnscope.config",
            "if TYPE_CHECKING:\n    from turnscope.analysis.verdict import analyze\n",
            "turnscope.analysis.verdict",
        ),
        ("turnscope.demo.workflows", "from turnscope.otlp import sink\n", "turnscope.otlp.sink"),
        ("turnscope.analysis.turns", "from turnscope import instrument\n", FACE),
    ],
)
def test_an_import_against_the_layers_is_caught(module: str, source: str, culprit: str) -> None:
    known = set(package_imports()) | {"turnscope.otlp", "turnscope.otlp.sink"}
    graph = {module: imports_of(source, module, False, known)}
    assert layer_violations(graph) == {(module, culprit)}


def test_a_circle_is_caught() -> None:
    graph = {
        "turnscope.exporter.a": [("turnscope.exporter.b", False)],
        "turnscope.exporter.b": [("turnscope.exporter.a", False)],
        "turnscope.exporter.c": [("turnscope.exporter.a", True)],  # typing only: no circle
        "turnscope.exporter.d": [("turnscope.exporter.c", False)],
    }
    graph["turnscope.exporter.a"].append(("turnscope.exporter.d", True))
    assert circles(graph) == [["turnscope.exporter.a", "turnscope.exporter.b"]]
