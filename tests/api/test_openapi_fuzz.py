"""Schemathesis against the OpenAPI document, in-process over ASGI with an admin token.

Bounded (a few examples per operation) so it stays well under a minute; it must find no 5xx
and every reply must match the documented status codes, content types and schemas.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

MAX_EXAMPLES = 12
# JSON Schema cannot say "an IP or CIDR without host bits, never /0", so a schema-valid
# string may rightly get a 422; every other check (5xx, status codes, schemas) stays on.
EXCLUDED = [positive_data_acceptance]


@pytest.fixture()
def db_url(sqlite_url: str) -> str:
    return sqlite_url


def test_api_conforms_and_never_errors(app, service, tokens, make) -> None:
    for i in range(3):
        service.ledger.propose(make(client=f"203.0.113.{i}"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = tokens.header("admin")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case) -> None:
            case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)

        exercise()
