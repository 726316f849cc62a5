"""Evidence from a real analyzer run reaches the client and decision views unchanged.

The decisions here come from ``analyze_tables`` over simulated traffic, not from shapes a
fixture invents, so a reader that expects another shape than the engine writes fails here.
"""

from __future__ import annotations

import pytest
from markupsafe import escape

from engine.schema.decision import Decision
from tests.support.signin import sign_in


@pytest.fixture()
def db_url(sqlite_url: str) -> str:
    """Reading evidence does not depend on the database kind (the ledger tests cover both)."""
    return sqlite_url


@pytest.fixture()
def stored(service, analysis) -> list[Decision]:
    """The analyzer's decisions, stored in the ledger as the engine stores them."""
    return service.ledger.propose_many(analysis.decisions)


def one_client(stored: list[Decision]) -> Decision:
    """A decision on a single client (not a campaign) that carries sample requests."""
    found = [d for d in stored if d.evidence and not d.members]
    assert found, "the analyzer run produced no single-client decision with evidence"
    return found[0]


def test_client_view_lists_the_sample_requests_the_engine_recorded(client, tokens, stored) -> None:
    decision = one_client(stored)
    reply = client.get(f"/api/v1/clients/{decision.client}", headers=tokens.header("viewer"))
    assert reply.status_code == 200
    samples = reply.json()["sample_requests"]
    expected = decision.to_dict()["evidence"]
    assert expected and all(sample in samples for sample in expected)


def test_decision_view_carries_the_sample_requests(client, tokens, stored) -> None:
    decision = one_client(stored)
    body = client.get(f"/api/v1/decisions/{decision.id}", headers=tokens.header("viewer")).json()
    assert body["evidence"] == decision.to_dict()["evidence"]


def test_decision_page_shows_each_sample_request(client, tokens, stored) -> None:
    decision = one_client(stored)
    sign_in(client, tokens.viewer)
    page = client.get(f"/dashboard/decisions/{decision.id}").text
    for sample in decision.to_dict()["evidence"]:
        assert escape(sample["path"]) in page
        assert escape(sample["user_agent"]) in page
