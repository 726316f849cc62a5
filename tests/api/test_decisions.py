"""Decision routes against a real ledger (SQLite and PostgreSQL)."""

from __future__ import annotations

from engine.schema.decision import Action, Status


def test_approve_changes_state_and_audits_the_analyst(client, service, tokens, proposed) -> None:
    reply = client.post(
        f"/api/v1/decisions/{proposed.id}/approve",
        json={"comment": "credential stuffing, confirmed"},
        headers=tokens.header("analyst"),
    )
    assert reply.status_code == 200
    assert reply.json()["status"] == "approved"
    assert service.ledger.get(proposed.id).status is Status.APPROVED

    detail = client.get(f"/api/v1/decisions/{proposed.id}", headers=tokens.header("viewer"))
    audit = detail.json()["audit"]
    assert [(e["from_state"], e["to_state"]) for e in audit] == [
        (None, "proposed"),
        ("proposed", "approved"),
    ]
    assert audit[-1]["actor"] == "analyst-alice"
    assert audit[-1]["comment"] == "credential stuffing, confirmed"


def test_reject_then_approve_is_an_illegal_transition(client, service, tokens, proposed) -> None:
    headers = tokens.header("analyst")
    assert client.post(f"/api/v1/decisions/{proposed.id}/reject", headers=headers).is_success
    reply = client.post(f"/api/v1/decisions/{proposed.id}/approve", headers=headers)
    assert reply.status_code == 409
    assert reply.json()["error"] == "illegal_transition"
    assert "rejected" in reply.json()["detail"]
    assert service.ledger.get(proposed.id).status is Status.REJECTED


def test_revoke_lifts_an_approved_block(client, service, tokens, proposed) -> None:
    headers = tokens.header("analyst")
    client.post(f"/api/v1/decisions/{proposed.id}/approve", headers=headers)
    reply = client.post(
        f"/api/v1/decisions/{proposed.id}/revoke", json={"comment": "customer"}, headers=headers
    )
    assert reply.status_code == 200
    assert reply.json()["status"] == "revoked"
    assert service.ledger.enforceable() == []


def test_approving_an_allowlisted_client_is_a_conflict(client, service, tokens, make) -> None:
    decision = service.ledger.propose(make(client="10.1.2.3"))
    # allowlisting rejects open proposals itself; a member inside it is caught on approve
    service.add_allowlist("192.0.2.0/24", by="admin")
    inside = service.ledger.propose(make(client="10.9.0.0/16", members=("192.0.2.9",)))
    reply = client.post(f"/api/v1/decisions/{inside.id}/approve", headers=tokens.header("admin"))
    assert reply.status_code == 409
    assert reply.json()["error"] == "conflict"
    assert service.ledger.get(decision.id).status is Status.PROPOSED


def test_unknown_decision_is_404(client, tokens) -> None:
    for path in ("/api/v1/decisions/nope", "/api/v1/decisions/nope/approve"):
        method = "POST" if path.endswith("approve") else "GET"
        reply = client.request(method, path, headers=tokens.header("analyst"))
        assert reply.status_code == 404
        assert reply.json()["error"] == "not_found"


def test_decision_reply_carries_evidence_and_time_left(client, clock, tokens, proposed) -> None:
    clock.advance(600)
    body = client.get(f"/api/v1/decisions/{proposed.id}", headers=tokens.header("viewer")).json()
    assert body["client"] == "203.0.113.7"
    assert body["action"] == "block"
    assert body["seconds_left"] == 3000
    assert body["reasons"] == list(proposed.reasons)
    assert body["evidence"] == [e.to_dict() for e in proposed.evidence]
    assert body["evidence"][0]["path"] == proposed.evidence[0].path


def test_list_pages_through_every_decision_newest_first(client, service, tokens, make) -> None:
    ids = [service.ledger.propose(make(client=f"203.0.113.{i}")).id for i in range(7)]
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/decisions", params=params, headers=tokens.header("viewer"))
        assert page.status_code == 200
        body = page.json()
        assert len(body["items"]) <= 3
        assert body["total"] == 7
        seen += [d["id"] for d in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]


def test_list_filters_by_state(client, service, tokens, make) -> None:
    first = service.ledger.propose(make(client="203.0.113.1"))
    service.ledger.propose(make(client="203.0.113.2", action=Action.CHALLENGE))
    service.approve(first.id, by="bob")
    reply = client.get(
        "/api/v1/decisions", params={"state": "approved"}, headers=tokens.header("viewer")
    )
    assert [d["id"] for d in reply.json()["items"]] == [first.id]


def test_list_validation_errors_are_422(client, tokens) -> None:
    headers = tokens.header("viewer")
    for params in ({"state": "bogus"}, {"limit": 0}, {"limit": 100000}, {"cursor": "x"}):
        reply = client.get("/api/v1/decisions", params=params, headers=headers)
        assert reply.status_code == 422, params
        assert reply.json()["error"] in {"invalid_request", "invalid_input"}


def test_comment_must_be_an_object_with_known_fields(client, tokens, proposed) -> None:
    reply = client.post(
        f"/api/v1/decisions/{proposed.id}/approve",
        json={"comment": "x", "by": "someone-else"},
        headers=tokens.header("analyst"),
    )
    assert reply.status_code == 422
