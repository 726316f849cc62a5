"""No module of ``engine`` imports itself back through others (issue 9: cycles broken).

The graph counts every import a module spells, including those under ``TYPE_CHECKING`` and
inside functions: a cycle there still means two modules each need the other to be read.
``from package import name`` counts as an import of ``package.name`` when that is a module.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import engine

ROOT = Path(engine.__file__).parent
# Cycles another change is breaking; remove an entry once that change lands.
KNOWN: set[frozenset[str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, name: str, modules: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(paths)
    return {name: imports(path, name, modules) for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Cycles found one at a time, cutting one import of each, as the modules on them."""
    graph = {n: set(deps) for n, deps in graph.items()}
    found = []
    while True:
        try:
            graphlib.TopologicalSorter(graph).prepare()
        except graphlib.CycleError as exc:
            ring = exc.args[1]  # [a, b, ..., a]: each node imported by the next
            found.append(frozenset(ring))
            assert ring[0] in graph[ring[1]], "graphlib names each node imported by the next"
            graph[ring[1]].discard(ring[0])  # cut one import and look for the next cycle
        else:
            return found


def test_cycle_finder_sees_a_cycle_through_type_checking_imports(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.other import X\n"
    )
    assert imports(source, "pkg.m", {"pkg.m", "pkg.other"}) == {"pkg.other"}


def test_engine_has_no_import_cycles() -> None:
    graph = import_graph()
    assert "engine.decisions.ledger" in graph and len(graph) > 50
    found = {c for c in cycles(graph) if not any(c <= known for known in KNOWN)}
    assert not found, f"import cycles: {[sorted(c) for c in found]}"
