"""Stages meet through records: ``engine/schema`` stands alone (its one project import is the
address rules, ``engine.core.netaddr``, a leaf itself), detectors and models read feature
frames from it and never reach into the features stage."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def offenders(package: str, allowed) -> list[str]:
    files = sorted((ROOT / package).rglob("*.py")) if package.endswith("/") else [ROOT / package]
    assert files, package
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in sorted(imports_of(path))
        if not allowed(name)
    ]


def _under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _low_floor(*extra: str):
    def allowed(name: str) -> bool:
        top = name.split(".")[0]
        return top in sys.stdlib_module_names or top in ("numpy", "pyarrow") or _under(name, *extra)

    return allowed


def test_schema_imports_only_the_standard_library_numpy_pyarrow_and_the_address_rules():
    assert offenders("engine/schema/", _low_floor("engine.schema", "engine.core.netaddr")) == []
    assert offenders("engine/core/netaddr.py", _low_floor("engine.core.errors")) == []


def test_detectors_import_only_schema_core_and_themselves():
    def allowed(name: str) -> bool:
        return not name.startswith(("engine", "models", "benchmarks", "api")) or _under(
            name, "engine.schema", "engine.core", "engine.detectors"
        )

    assert offenders("engine/detectors/", allowed) == []


def test_models_never_import_engine_stages():
    def allowed(name: str) -> bool:
        return not name.startswith("engine") or _under(name, "engine.schema", "engine.core")

    assert offenders("models/", allowed) == []
