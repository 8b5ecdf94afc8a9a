"""The exporter's layers read one way: a module imports only from its own layer or the layers below it.

The layers are written down in docs/architecture.md; this file is their executable form. Every import is
read from the source with `ast` (imports inside functions count too), so a new arrow running back up
fails here before it reaches review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "exporter"

# Bottom to top. A module belongs to the longest prefix listed; one layer may import any layer below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    # foundation: the run-time vocabulary, the metric model and small pure helpers
    (
        "exporter",
        "exporter.run",
        "exporter.metrics",
        "exporter.sqlparams",
        "exporter.logs",
        "exporter.workers",
        "exporter.calendar",
        "exporter.tryton_rpc",
        "exporter.source",
        "exporter.signals",
    ),
    ("exporter.db", "exporter.store"),
    ("exporter.packs", "exporter.audits.model", "exporter.audits.loader"),
    ("exporter.config",),
    ("exporter.checks",),
    ("exporter.scheduler", "exporter.self_metrics", "exporter.report"),
    ("exporter.exposition", "exporter.catalog"),
    ("exporter.app",),
    ("exporter.commands.audit", "exporter.http"),
    ("exporter.cli",),
)

# Imports that run back up, each with the reason it is still there. Shrink this list, never grow it; it is
# empty since the config resolves its own pack and audit entries (exporter.config.pack_entries, audit_entries).
KNOWN_UPWARD: frozenset[tuple[str, str]] = frozenset()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    """The index of the layer that holds `module` (the longest matching prefix wins)."""
    best, best_length = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    if best < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")
    return best


def imported_modules(path: Path) -> set[str]:
    """The exporter modules `path` imports (for `from a import b`, b when it is a module of its own)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("exporter"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("exporter"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE_DIR.parent / Path(*candidate.split("."))).with_suffix(".py").exists() or (
                    PACKAGE_DIR.parent / Path(*candidate.split("."))
                ).is_dir()
                found.add(candidate if is_module else node.module)
    return found


def all_imports() -> dict[str, set[str]]:
    return {module_name(path): imported_modules(path) for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def upward_imports() -> set[tuple[str, str]]:
    return {
        (module, imported)
        for module, imports in all_imports().items()
        for imported in imports
        if layer_of(imported) > layer_of(module)
    }


def test_every_module_of_the_package_has_a_layer() -> None:
    for module in all_imports():
        layer_of(module)


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    unexpected = sorted(upward_imports() - KNOWN_UPWARD)
    assert not unexpected, "imports that run back up a layer:\n" + "\n".join(f"{a} -> {b}" for a, b in unexpected)


def test_every_known_upward_import_still_exists() -> None:
    # Once one is gone it must leave the list, or it could come back unnoticed.
    assert sorted(KNOWN_UPWARD - upward_imports()) == []


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle among the modules of `graph` (empty when there is none)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def test_no_import_cycle_between_modules() -> None:
    graph = {module: {i for i in imports if i != module} for module, imports in all_imports().items()}
    # a package's __init__ is imported on the way to any of its modules: no edge of its own
    assert find_cycle(graph) == []


@pytest.mark.parametrize(
    ("graph", "has_cycle"),
    [({"a": {"b"}, "b": {"c"}, "c": set()}, False), ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True)],
)
def test_the_cycle_finder_finds_a_cycle_exactly_when_there_is_one(graph: dict[str, set[str]], has_cycle: bool) -> None:
    assert bool(find_cycle(graph)) is has_cycle


def test_layers_order_the_modules_as_documented() -> None:
    assert layer_of("exporter.db.pool") < layer_of("exporter.checks.base")
    assert layer_of("exporter.commands.audit") > layer_of("exporter.app") > layer_of("exporter.audits.loader")
    assert layer_of("exporter.config.loader") > layer_of("exporter.packs.loader") > layer_of("exporter.source")
