"""``api/`` talks to the engine only through ``engine.service`` and ``engine.schema``."""

from __future__ import annotations

import ast
from pathlib import Path

import api

ALLOWED_ENGINE = ("engine.service", "engine.schema")
FORBIDDEN = ("boto3", "botocore", "pyarrow", "sqlalchemy", "models", "numpy")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_api_imports_only_the_facade_and_the_schema() -> None:
    root = Path(api.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        for name in imported_modules(path):
            top = name.split(".")[0]
            assert top not in FORBIDDEN, f"{path.name} imports {name}"
            if top == "engine":
                assert name.startswith(ALLOWED_ENGINE), f"{path.name} imports {name}"
