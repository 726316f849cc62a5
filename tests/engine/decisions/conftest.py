"""Ledger fixtures: every ledger test runs against SQLite and against PostgreSQL.

Each PostgreSQL test gets a fresh schema (selected through ``search_path`` in the URL) that
is dropped afterwards, so tests never share rows; each SQLite test gets its own file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.core.clock import FakeClock
from engine.decisions import Ledger
from engine.schema.decision import Action, Decision
from tests.support.ledger import START


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL of an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    yield request.getfixturevalue("pg_url")


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture()
def ledger(db_url: str, clock: FakeClock) -> Iterator[Ledger]:
    with Ledger.open(db_url, clock=clock) as opened:
        yield opened


@pytest.fixture()
def make() -> Callable[..., Decision]:
    """Build a proposal with sensible defaults; keyword arguments override them."""

    def build(client: str = "203.0.113.7", **kw: object) -> Decision:
        fields: dict[str, object] = {
            "action": Action.BLOCK,
            "ttl_s": 600,
            "score": 0.9,
            "detector": "request_rate",
            "decided_at": START,
            "reasons": ("520 requests/min",),
            "confidence": 0.8,
        }
        fields.update(kw)
        return Decision(client=client, **fields)  # type: ignore[arg-type]

    return build
