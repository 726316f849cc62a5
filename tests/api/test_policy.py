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


@pytest.mark.parametrize(
    "cidr",
    ["0.0.0.0/0", "::/0", "10.0.0.1/8", "banana", "300.1.1.1", "fe80::1%eth0", "fe80::/10%1"],
)
def test_bad_allowlist_cidr_is_422(client, tokens, cidr) -> None:
    reply = client.post("/api/v1/allowlist", json={"cidr": cidr}, headers=tokens.header("admin"))
    assert reply.status_code == 422
    assert reply.json()["error"] == "invalid_input"


def test_a_mapped_address_is_allowlisted_as_its_ipv4_address(client, service, tokens, make):
    service.ledger.propose(make(client="198.51.100.7"))
    admin = tokens.header("admin")
    added = client.post("/api/v1/allowlist", json={"cidr": "::ffff:198.51.100.7"}, headers=admin)
    assert added.status_code == 201
    assert added.json()["cidr"] == "198.51.100.7"
    # ... so neither spelling of the client can be proposed into a block any more
    assert [d.status for d in service.ledger.list().items] == [Status.REJECTED]
    again = service.ledger.propose(make(client="::ffff:198.51.100.7"))
    assert again.client == "198.51.100.7"
    assert service.ledger.allowlisted(again) == "198.51.100.7/32"


def test_allowlist_refuses_sets_covering_too_much_of_the_address_space(client, service, tokens):
    admin = tokens.header("admin")

    def add(cidr: str):
        return client.post("/api/v1/allowlist", json={"cidr": cidr}, headers=admin)

    # every internal range together fits the default share (1/64 of each family) ...
    for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"):
        assert add(cidr).status_code == 201, cidr
    # ... a /5 does not, and the two halves of the IPv4 space slip past the /0 check no more
    wide = add("8.0.0.0/5")
    assert wide.status_code == 422 and "max_allowlist_share" in wide.json()["detail"]
    policy = {**service.get_policy(), "max_allowlist_share": 0.6}
    policy.pop("version")
    assert client.put("/api/v1/policy", json=policy, headers=admin).status_code == 200
    assert add("0.0.0.0/1").status_code == 201  # 50 % of IPv4 (plus the ranges above)
    halves = add("128.0.0.0/1")
    assert halves.status_code == 422
    assert "100.0000% of the IPv4 address space" in halves.json()["detail"]
    listed = client.get("/api/v1/allowlist", headers=tokens.header("viewer")).json()["items"]
    assert "128.0.0.0/1" not in {e["cidr"] for e in listed}
    assert add("2001:db8::/32").status_code == 201  # the IPv6 budget is its own


def test_a_scoped_client_is_refused_by_the_api(client, tokens) -> None:
    reply = client.get("/api/v1/clients/fe80::1%25eth0", headers=tokens.header("viewer"))
    assert reply.status_code == 422
    assert "scoped" in reply.json()["detail"]
