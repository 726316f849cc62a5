"""API fixtures: a real ledger (SQLite file or an isolated PostgreSQL schema), the app, tokens.

``db_url`` is parametrised over SQLite and PostgreSQL like the ledger's own tests: each
PostgreSQL test gets a fresh schema (via ``search_path``) dropped afterwards.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from engine.core.clock import FakeClock
from engine.decisions import Ledger
from engine.demo.simulator import preset, simulate, view
from engine.pipeline import AnalysisResult, analyze_tables
from engine.schema.decision import Action, Decision
from engine.service import Service

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="session")
def analysis() -> AnalysisResult:
    """One real analyzer run over simulated traffic (the ALB view of the tiny preset): the
    decisions and verdicts, evidence included, exactly as the engine makes them."""
    sim = simulate(preset("tiny"), seed=7)
    return analyze_tables([view(sim.requests, "alb")])


@pytest.fixture(scope="session")
def engine_decision(analysis: AnalysisResult) -> Decision:
    """The analyzer's first decision on a single client with sample requests: the detector,
    reasons and evidence every ``make`` decision carries, so no test invents their shape."""
    found = [d for d in analysis.decisions if d.evidence and not d.members]
    assert found, "the analyzer run produced no single-client decision with evidence"
    return found[0]


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated SQLite ledger file, copied for each test (saves migrating)."""
    path = tmp_path_factory.mktemp("ledger-template") / "ledger.db"
    Ledger.open(f"sqlite:///{path}", clock=FakeClock(START)).close()
    return path


@pytest.fixture()
def sqlite_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    """A test's own empty SQLite ledger."""
    path = tmp_path / "ledger.db"
    shutil.copyfile(migrated_sqlite, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty ledger database of each kind."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture()
def ledger(db_url: str, clock: FakeClock) -> Iterator[Ledger]:
    with Ledger.open(db_url, clock=clock) as opened:
        yield opened


@pytest.fixture()
def service(ledger: Ledger, clock: FakeClock) -> Service:
    return Service(ledger, clock=clock)


@pytest.fixture()
def app(service: Service):
    return create_app(service, session_secret=SECRET)


@pytest.fixture()
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@dataclass(frozen=True)
class Tokens:
    viewer: str
    analyst: str
    admin: str

    def header(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


@pytest.fixture()
def tokens(service: Service) -> Tokens:
    made = {
        role: service.create_token(name=f"{role}-alice", role=role)[0]
        for role in ("viewer", "analyst", "admin")
    }
    return Tokens(**made)


@pytest.fixture()
def make(engine_decision: Decision) -> Callable[..., Decision]:
    """Build a proposal with sensible defaults; keyword arguments override them. Detector,
    reasons and evidence are those of a real analyzer decision (``engine_decision``)."""

    def build(client: str = "203.0.113.7", **kw: object) -> Decision:
        fields: dict[str, object] = {
            "action": Action.BLOCK,
            "ttl_s": 3600,
            "score": 0.9,
            "detector": engine_decision.detector,
            "decided_at": START,
            "reasons": engine_decision.reasons,
            "confidence": 0.8,
            "evidence": engine_decision.evidence,
        }
        fields.update(kw)
        return Decision(client=client, **fields)  # type: ignore[arg-type]

    return build


@pytest.fixture()
def proposed(service: Service, make) -> Decision:
    """One stored proposal."""
    return service.ledger.propose(make())
