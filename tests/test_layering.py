"""No import against the floors: every module of ``engine``, ``api``, ``models`` and
``benchmarks`` imports only from lower floors and from its own unit (issue 9 step 5).

The floors are ``ARCHITECTURE.md``'s. Every import a file spells counts — under
``TYPE_CHECKING``, inside functions — because each still says which code this one needs.
Libraries have floors too: the web stack stays in ``api/`` (and the CLI that serves it), the
AWS SDK with the stages that talk to AWS, the database driver with the two stores. Every
allowed exception is in ``EXCEPTIONS``, with its reason.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "api", "models", "benchmarks")

STAGES = (
    "engine.sources",
    "engine.parsers",
    "engine.features",
    "engine.detectors",
    "engine.decisions",
    "engine.compiler",
    "engine.enforcer",
)
# A unit may import units on lower floors and itself; units on one floor never import each
# other (the stages meet through records from ``engine.schema``, not through each other).
FLOORS: dict[str, int] = {
    "engine.core": 0,  # plumbing: clock, errors, logging, registry, addresses, lease vocabulary
    "engine.schema": 1,  # the records the stages hand each other
    **dict.fromkeys(STAGES, 2),
    "models": 2,  # estimators: read feature frames from the schema, nothing else
    "engine.notify": 2,  # notices out: webhooks and SNS (the runner tells it what happened)
    "engine.settings": 3,  # validated configuration
    "engine.status": 3,  # the status records writer and reader share
    "engine.telemetry": 4,  # ingestion counters → status records
    "engine.pipeline": 4,  # features → detectors → decisions, for one batch
    "engine.assembly": 4,  # stages built from settings
    "engine.enforcement": 4,  # the one enforcement path
    "engine.runner": 5,  # the engine loop
    "engine.spark": 5,  # the same pipeline as a Spark job (executors parse and aggregate)
    "engine.replay": 5,  # stored logs → the pipeline, in event-time order (analyze, benchmarks)
    "engine.service": 5,  # the facade the API calls
    "engine": 5,  # the package itself (its version)
    "api": 6,  # HTTP: talks to the facade and the schema only (see API_ENGINE)
    "engine.demo": 7,  # the embedded default: simulator, stand-ins, engine and API
    "engine.cli": 8,  # commands: start any of the above
    "benchmarks": 9,  # measure anything; nothing imports them
}
API_ENGINE = ("engine.service", "engine.schema")

WEB = ("fastapi", "starlette", "uvicorn", "jinja2", "markupsafe")
METRICS = ("prometheus_client",)
AWS = ("boto3", "botocore", "moto")
DATABASE = ("sqlalchemy", "alembic", "psycopg")
ML = ("sklearn",)
# Who may import each library family (a unit, or a unit's prefix).
LIBRARY_USERS: dict[tuple[str, ...], tuple[str, ...]] = {
    WEB: ("api", "engine.cli"),
    # The engine's counters live with its telemetry; the API and the CLI serve them.
    METRICS: ("api", "engine.cli", "engine.telemetry"),
    # ``wafsmith check`` makes one harmless dry call per IAM action, and the CLI turns
    # botocore's errors into one line; SNS notices go out through boto3.
    AWS: ("engine.sources", "engine.enforcer", "engine.notify", "engine.demo", "engine.cli",
          "benchmarks"),
    DATABASE: ("engine.decisions", "engine.sources", "benchmarks"),
    ML: ("models",),
}
SCHEMA_LIBRARIES = ("numpy", "pyarrow")  # engine.schema: the standard library and these
API_FORBIDDEN = ("pyarrow", "numpy")  # the API handles records, not tables

# (importing file, imported module prefix): why it is allowed.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("engine/compiler/modelcheck.py", "botocore"): (
        "the compiler checks its rendered WAFv2 requests against botocore's service model "
        "(the parameter validator, offline: no client, no call), so what is validated is "
        "exactly what the enforcer sends"
    ),
    ("engine/runner/loop.py", "botocore"): (
        "the loop retries an object whose S3/SQS read failed with a botocore error the "
        "source lets through: nothing was claimed, so nothing is lost"
    ),
}
# Imports no statement shows, listed so a reader finds them: engine.assembly loads the
# estimator's trainer by the ``module:Class`` name in ``[model] trainer`` (default
# ``models.baseline:RollingBaseline``), and engine.cli.main loads its subcommand modules by
# name; both through importlib.


def unit_of(module: str) -> str:
    """The unit a module belongs to: ``engine.x`` for anything under ``engine/x``."""
    parts = module.split(".")
    if parts[0] == "engine" and len(parts) > 1 and f"engine.{parts[1]}" in FLOORS:
        return f"engine.{parts[1]}"
    return parts[0]


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[str]:
    """Every module a file imports, absolute (relative imports resolved)."""
    module = module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            found.append(base)
    return found


def source_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violation(path: Path, name: str) -> str | None:
    """Why ``path`` may not import ``name`` (None: it may)."""
    rel = path.relative_to(ROOT).as_posix()
    if any(rel == f and _within(name, (m,)) for f, m in EXCEPTIONS):
        return None
    source = unit_of(module_of(path))
    top = name.split(".")[0]
    if top in PACKAGES:
        target = unit_of(name)
        if target == source:
            return None
        if source == "api" and not _within(name, (*API_ENGINE, "api")):
            return "api talks to the engine through engine.service and engine.schema only"
        if FLOORS[target] >= FLOORS[source]:
            return f"{target} (floor {FLOORS[target]}) is not below {source} ({FLOORS[source]})"
        return None
    if top in sys.stdlib_module_names or top == "__future__":
        return None
    if source == "engine.schema" and top not in SCHEMA_LIBRARIES:
        return "engine.schema imports only the standard library, numpy and pyarrow"
    if source == "api" and top in API_FORBIDDEN:
        return "the API handles records, not Arrow tables or arrays"
    for family, users in LIBRARY_USERS.items():
        if top in family and not _within(source, users):
            return f"{top} belongs to {', '.join(users)}"
    return None


def test_every_floor_is_known_and_every_unit_has_a_floor() -> None:
    units = {unit_of(module_of(p)) for p in source_files()}
    assert units - set(FLOORS) == set(), "give each new package a floor in FLOORS"
    assert {u for u in FLOORS if u.startswith("engine.")} <= units | {"engine"}


def test_no_module_imports_against_the_floors() -> None:
    found = [
        f"{path.relative_to(ROOT)} imports {name}: {why}"
        for path in source_files()
        for name in imports_of(path)
        if (why := violation(path, name)) is not None
    ]
    assert found == [], "\n".join(found)


def test_every_exception_is_still_needed() -> None:
    for (file, prefix), reason in EXCEPTIONS.items():
        assert reason
        names = imports_of(ROOT / file)
        assert any(_within(n, (prefix,)) for n in names), f"{file} no longer imports {prefix}"


@pytest.mark.parametrize(
    ("file", "name", "why"),
    [
        ("engine/detectors/base.py", "engine.features.feature_state", "engine.features (floor 2)"),
        ("engine/schema/rule.py", "engine.settings", "engine.settings (floor 3)"),
        ("engine/enforcer/aws_clients.py", "sqlalchemy.orm", "sqlalchemy belongs to"),
        ("engine/runner/loop.py", "api.server", "api (floor 6)"),
        ("api/routes/status.py", "engine.decisions", "api talks to the engine through"),
        ("engine/features/pane.py", "fastapi", "fastapi belongs to api"),
        ("engine/core/clock.py", "engine.schema.request", "engine.schema (floor 1)"),
        ("engine/decisions/ledger.py", "benchmarks.bench_api", "benchmarks (floor 9)"),
    ],
)
def test_the_check_refuses_imports_against_the_floors(file: str, name: str, why: str) -> None:
    """The rules bite: each of these would be reported."""
    found = violation(ROOT / file, name)
    assert found is not None and why in found, found


def test_tests_share_helpers_through_tests_support_only() -> None:
    """A test module imports helpers from ``tests.support``, never from a ``conftest`` or
    another test module (fixtures reach tests through pytest, not through imports)."""
    files = sorted((ROOT / "tests").rglob("*.py"))
    # Names a test could reach through pytest's sys.path insertion (``from features.x``).
    local = {p.stem for p in files} | {p.name for p in (ROOT / "tests").rglob("*") if p.is_dir()}
    local -= {*PACKAGES, "tests", "__init__", "conftest"}
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                found.append(f"{path.relative_to(ROOT)}: relative import from .{node.module}")
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            found += [
                f"{path.relative_to(ROOT)} imports {name}"
                for name in names
                if (name.startswith("tests") or "conftest" in name or name.split(".")[0] in local)
                and not _within(name, ("tests.support",))
            ]
    assert found == [], "\n".join(found)
