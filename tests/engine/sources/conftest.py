"""Fixtures for the sources tests: a processed-objects store on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from engine.sources import ProcessedStore

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    """The test database; unreachable is a failure when the URL was set explicitly."""
    url = os.environ.get("WAFSMITH_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        engine = sa.create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
    except sa.exc.OperationalError as exc:
        if "WAFSMITH_TEST_POSTGRES_URL" in os.environ:
            pytest.fail(f"PostgreSQL at {url} is not reachable: {exc}")
        pytest.skip(f"PostgreSQL at {url} is not reachable")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path, fake_clock) -> Iterator[ProcessedStore]:
    """A processed-objects store on each backend; PostgreSQL tables are dropped afterwards."""
    if request.param == "postgres":
        url, prefix = postgres_url(), f"t{uuid.uuid4().hex[:10]}_ingest_"
    else:
        url, prefix = f"sqlite:///{tmp_path / 'ingest.db'}", "ingest_"
    created = ProcessedStore(url, table_prefix=prefix, clock=fake_clock)
    yield created
    if request.param == "postgres":
        created.drop_tables()
    created.close()


@pytest.fixture()
def sqlite_store(tmp_path, fake_clock) -> Iterator[ProcessedStore]:
    created = ProcessedStore(f"sqlite:///{tmp_path / 'ingest.db'}", clock=fake_clock)
    yield created
    created.close()
