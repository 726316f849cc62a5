"""A rule-level decision in the analyst's queue: one decision with its scope, limit and
backtest (API and dashboard), approved like any other."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from engine.core.clock import FakeClock
from engine.decisions import Backtester, Ledger
from engine.decisions.history import RequestHistory
from engine.decisions.rule_answers import rule_answers
from engine.pipeline import analyze_tables
from engine.schema.decision import Decision, Status
from engine.service import Service
from tests.support.rule_answers import residential_stuffing
from tests.support.signin import sign_in

SECRET = b"rule-level-decisions-test-secret"


@pytest.fixture()
def scene(tmp_path, sqlite_url) -> Iterator[tuple[TestClient, Service, Decision, str]]:
    """The residential-proxy stuffing scene, its rule-level proposal stored in the ledger, a
    service that backtests over its history."""
    table = residential_stuffing().table()
    clock = FakeClock(table["event_time"][-1].as_py() + timedelta(seconds=1))
    history = RequestHistory(tmp_path / "history", clock=clock)
    history.append(table)
    (proposal,) = [d for d in rule_answers(analyze_tables([table]).decisions, history) if d.is_rule]
    with Ledger.open(sqlite_url, clock=clock) as ledger:
        service = Service(ledger, clock=clock, backtester=Backtester(history))
        stored = ledger.propose(proposal)
        token = service.create_token(name="analyst-ana", role="analyst")[0]
        with TestClient(create_app(service, session_secret=SECRET)) as client:
            yield client, service, stored, token


def test_api_lists_one_decision_with_its_scope_limit_and_backtest(scene) -> None:
    client, service, stored, token = scene
    headers = {"Authorization": f"Bearer {token}"}
    page = client.get("/api/v1/decisions?state=proposed", headers=headers).json()
    (item,) = [d for d in page["items"] if d["rule"] is not None]
    assert item["id"] == stored.id and item["client"] == "rule POST /login"
    assert item["rule"]["scope"] == "POST /login" and item["rule"]["window_s"] == 300
    assert item["rule"]["limit"] == stored.rule.limit and len(item["members"]) == 300
    bt = client.post("/api/v1/backtest", json={"decision_id": stored.id}, headers=headers)
    assert bt.status_code == 200, bt.text
    body = bt.json()
    assert (
        body["client"] == "rule POST /login" and body["requests"] > body["over_limit"]["requests"]
    )
    assert body["over_limit"]["clients"] > 0

    reply = client.post(f"/api/v1/decisions/{stored.id}/approve", json={}, headers=headers)
    assert reply.status_code == 200 and reply.json()["rule"]["kind"] == "rate_based"
    assert service.ledger.get(stored.id).status is Status.APPROVED


def test_dashboard_queue_shows_the_rule_and_what_it_would_have_acted_on(scene) -> None:
    client, _service, stored, token = scene
    sign_in(client, token)
    queue = client.get("/dashboard/queue")
    assert queue.status_code == 200
    assert f'id="rule-{stored.id}"' in queue.text
    assert "One WAF rule on <b>POST /login</b>" in queue.text
    assert f"at most <b>{stored.rule.limit}</b> requests per 300 s" in queue.text
    assert "a campaign of 300 address(es)" in queue.text
    assert "Past its limit it would have acted on" in queue.text

    page = client.get(f"/dashboard/decisions/{stored.id}")
    assert page.status_code == 200
    assert f"rate_based on POST /login: at most {stored.rule.limit} requests per 300 s" in page.text
    assert "Past its limit:" in page.text
