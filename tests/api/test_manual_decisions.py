"""Manual decisions (an analyst's own ban) through the API and the dashboard: approved at
once, enforceable, audited with the analyst's name and reason; bad input refused, nothing
left half-done."""

from __future__ import annotations

import re

import pytest

from engine.schema.decision import Status
from tests.support.signin import sign_in

BAN = {"client": "198.51.100.23", "action": "block", "ttl_s": 6 * 3600, "reason": "abuse desk"}


def test_an_analyst_adds_a_ban_that_is_enforceable_and_audited(client, service, tokens) -> None:
    reply = client.post("/api/v1/decisions", json=BAN, headers=tokens.header("analyst"))
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert (body["client"], body["action"], body["status"]) == (
        "198.51.100.23",
        "block",
        "approved",
    )
    assert body["detector"] == "manual"
    assert body["ttl_s"] == 6 * 3600
    assert [d.id for d in service.ledger.enforceable(service.now())] == [body["id"]]
    audit = client.get(f"/api/v1/decisions/{body['id']}", headers=tokens.header("viewer")).json()
    moves = [(e["actor"], e["from_state"], e["to_state"], e["comment"]) for e in audit["audit"]]
    assert moves[-1] == ("analyst-alice", "proposed", "approved", "abuse desk")
    assert all(actor == "analyst-alice" for actor, *_ in moves)


def test_a_viewer_cannot_add(client, tokens) -> None:
    reply = client.post("/api/v1/decisions", json=BAN, headers=tokens.header("viewer"))
    assert reply.status_code == 403


@pytest.mark.parametrize(
    "change",
    [
        {"client": "0.0.0.0/0"},
        {"client": "fe80::1%eth0"},
        {"client": "not-an-ip"},
        {"ttl_s": 0},
        {"ttl_s": 10**12},
        {"ttl_s": 31 * 86_400},  # over the default policy's max_ttl_s (30 days)
        {"reason": ""},
        {"reason": "bad\x00reason"},
        {"action": "nuke"},
    ],
)
def test_bad_manual_decisions_are_refused_and_leave_nothing(client, service, tokens, change):
    reply = client.post("/api/v1/decisions", json=BAN | change, headers=tokens.header("analyst"))
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert service.ledger.list().total == 0


def test_an_allowlisted_client_is_refused_and_the_proposal_rejected(client, service, tokens):
    service.add_allowlist("198.51.100.0/24", by="admin-alice")
    reply = client.post("/api/v1/decisions", json=BAN, headers=tokens.header("analyst"))
    assert reply.status_code == 409
    assert service.ledger.enforceable(service.now()) == []
    assert service.ledger.list(state=Status.PROPOSED).total == 0


@pytest.fixture()
def db_url(sqlite_url: str) -> str:
    return sqlite_url


def test_the_dashboard_adds_a_manual_decision(client, service, tokens) -> None:
    sign_in(client, tokens.analyst)
    page = client.get("/dashboard/active").text
    assert 'id="manual-form"' in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = {"csrf": csrf, "client": "203.0.113.50", "action": "challenge", "ttl_s": "86400",
            "reason": "credential stuffing seen by the SOC"}  # fmt: skip
    done = client.post("/dashboard/decisions/add", data=form)
    assert done.status_code == 200
    assert "challenge on 203.0.113.50 added" in done.text
    (decision,) = service.ledger.enforceable(service.now())
    assert (decision.client, decision.action.value, decision.ttl_s) == (
        "203.0.113.50",
        "challenge",
        86400,
    )
    assert service.ledger.audit(decision.id)[-1].actor == "analyst-alice"
    # A bad one comes back as a message on the page, not an error page.
    form |= {"client": "0.0.0.0/0"}
    again = client.post("/dashboard/decisions/add", data=form)
    assert again.status_code == 200 and 'class="flash err"' in again.text
    # Without the CSRF field, or as a viewer, nothing is added.
    assert client.post("/dashboard/decisions/add", data=form | {"csrf": ""}).status_code == 403
    assert len(service.ledger.enforceable(service.now())) == 1


def test_a_viewer_sees_no_manual_form(client, tokens) -> None:
    sign_in(client, tokens.viewer)
    assert 'id="manual-form"' not in client.get("/dashboard/active").text
