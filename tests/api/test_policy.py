"""Policy and allowlist routes (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from engine.schema.decision import Status


def test_policy_starts_at_the_default_and_admin_replaces_it(client, service, tokens) -> None:
    default = client.get("/api/v1/policy", headers=tokens.header("viewer")).json()
    assert default["version"] == 0
    changed = {**default, "max_new_entries_per_push": 7}
    changed.pop("version")
    reply = client.put("/api/v1/policy", json=changed, headers=tokens.header("admin"))
    assert reply.status_code == 200
    assert reply.json()["version"] == 1
    assert reply.json()["max_new_entries_per_push"] == 7
    assert service.ledger.policy().max_new_entries_per_push == 7
    events = service.ledger.admin_audit()
    assert events[0].subject == "policy" and events[0].actor == "admin-alice"


@pytest.mark.parametrize(
    "body",
    [
        {"max_blocked_share": 0},
        {"unknown_knob": 1},
        {"escalation": [{"offences": 2, "action": "block", "ttl_s": 60}]},
        {"auto_approve": [{"name": "a", "detectors": ["*"]}, {"name": "a", "detectors": ["x"]}]},
    ],
)
def test_invalid_policy_is_422_and_changes_nothing(client, service, tokens, body) -> None:
    reply = client.put("/api/v1/policy", json=body, headers=tokens.header("admin"))
    assert reply.status_code == 422
    assert service.ledger.policy().version == 0


def test_allowlist_add_list_remove(client, service, tokens, proposed) -> None:
    admin = tokens.header("admin")
    added = client.post(
        "/api/v1/allowlist", json={"cidr": "203.0.113.0/24", "comment": "office"}, headers=admin
    )
    assert added.status_code == 201
    assert added.json()["created_by"] == "admin-alice"
    # the open proposal inside the range was rejected by the allowlisting
    assert service.ledger.get(proposed.id).status is Status.REJECTED
    listed = client.get("/api/v1/allowlist", headers=tokens.header("viewer")).json()["items"]
    assert [e["cidr"] for e in listed] == ["203.0.113.0/24"]
    gone = client.delete("/api/v1/allowlist", params={"cidr": "203.0.113.0/24"}, headers=admin)
    assert gone.status_code == 204
    again = client.delete("/api/v1/allowlist", params={"cidr": "203.0.113.0/24"}, headers=admin)
    assert again.status_code == 404


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0", "10.0.0.1/8", "banana", "300.1.1.1"])
def test_bad_allowlist_cidr_is_422(client, tokens, cidr) -> None:
    reply = client.post("/api/v1/allowlist", json={"cidr": cidr}, headers=tokens.header("admin"))
    assert reply.status_code == 422
    assert reply.json()["error"] == "invalid_input"
