"""Shared fixtures: a moto server on 127.0.0.1 spoken to over HTTP, boto3 clients, clocks.

The moto server runs once per test session on an ephemeral port and is reset before every
test that uses it, so tests never see each other's buckets, queues or web ACLs.
"""

from __future__ import annotations

import os
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg
import pytest
from hypothesis import settings
from moto.server import ThreadedMotoServer

from engine.core.clock import FakeClock

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "data" / "fixtures"
REGION = "us-east-1"
POSTGRES_URL = os.environ.get(
    "WAFSMITH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

# boto3 must never reach real AWS from a test, whatever the developer's environment holds.
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_var, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = REGION

# `pytest --hypothesis-profile=stress` runs every property with many more examples: a
# property that holds only on the default 100 draws fails in CI on an unlucky seed.
settings.register_profile("stress", max_examples=2000, deadline=None)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``data/fixtures``: samples and corpus excerpts, provenance in its README."""
    return FIXTURES


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """Start a moto server on 127.0.0.1 with an ephemeral port; yield its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def aws_endpoint(moto_server: str) -> str:
    """The moto endpoint, reset to an empty account for this test."""
    req = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    return moto_server


@pytest.fixture()
def boto_session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


@pytest.fixture()
def s3(aws_endpoint: str, boto_session):
    return boto_session.client("s3", endpoint_url=aws_endpoint)


@pytest.fixture()
def sqs(aws_endpoint: str, boto_session):
    return boto_session.client("sqs", endpoint_url=aws_endpoint)


@pytest.fixture()
def wafv2(aws_endpoint: str, boto_session):
    return boto_session.client("wafv2", endpoint_url=aws_endpoint)


@pytest.fixture()
def fake_clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose ``search_path`` is a fresh schema, dropped afterwards, so tests
    never share rows."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    libpq = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        admin = psycopg.connect(libpq, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is needed by this test: {exc}")
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in POSTGRES_URL else "?"
        try:
            yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
