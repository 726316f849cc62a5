"""Hostile inputs over HTTP: NUL bytes, control characters, integer overflow, absurd policy
values. Each one is refused with a named 422, never a 500, on SQLite and PostgreSQL (which
refuses NUL in text and would otherwise raise from the driver)."""

from __future__ import annotations

import pytest

from engine.schema.decision import Status

BIG = "9" * 40


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/decisions?cursor=" + BIG, None),
        ("get", "/api/v1/decisions?cursor=99999999999999999999", None),
        ("get", "/api/v1/decisions?cursor=-1", None),
        ("get", "/api/v1/decisions?cursor=1%00", None),
        ("get", "/api/v1/decisions/abc%00", None),
        ("get", "/api/v1/decisions/" + "a" * 65, None),
        ("post", "/api/v1/decisions/abc%00/approve", None),
        ("post", "/api/v1/decisions/abc%01/reject", None),
        ("post", "/api/v1/backtest", {"decision_id": "a\x00"}),
        ("post", "/api/v1/allowlist", {"cidr": "10.0.0.0/8", "comment": "ok\x00"}),
        ("post", "/api/v1/allowlist", {"cidr": "10.0.0.0/8\x00"}),
        ("delete", "/api/v1/allowlist?cidr=10.0.0.0/8%00", None),
        ("get", "/api/v1/clients/1.2.3.4%00", None),
    ],
)
def test_nul_bytes_and_overflowing_numbers_are_refused_with_422(
    client, tokens, method, path, body
) -> None:
    kwargs = {} if body is None else {"json": body}
    reply = client.request(method.upper(), path, headers=tokens.header("admin"), **kwargs)
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"]


def test_a_comment_with_nul_is_refused_and_the_decision_is_untouched(
    client, service, tokens, proposed
) -> None:
    reply = client.post(
        f"/api/v1/decisions/{proposed.id}/approve",
        json={"comment": "looks bad\x00; DROP"},
        headers=tokens.header("analyst"),
    )
    assert reply.status_code == 422
    assert "U+0000" in str(reply.json()["detail"])
    assert service.ledger.get(proposed.id).status is Status.PROPOSED
    # an ordinary multi-line comment still goes through
    reply = client.post(
        f"/api/v1/decisions/{proposed.id}/approve",
        json={"comment": "confirmed\nby the on-call"},
        headers=tokens.header("analyst"),
    )
    assert reply.status_code == 200


def test_a_cursor_handed_out_by_a_page_still_works(client, service, tokens, make) -> None:
    for i in range(3):
        service.ledger.propose(make(client=f"203.0.113.{i}"))
    first = client.get("/api/v1/decisions?limit=2", headers=tokens.header("viewer")).json()
    assert first["next_cursor"]
    rest = client.get(
        f"/api/v1/decisions?limit=2&cursor={first['next_cursor']}", headers=tokens.header("viewer")
    )
    assert rest.status_code == 200
    assert len(rest.json()["items"]) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"max_ttl_s": 10**30},
        {"max_ttl_s": 10 * 365 * 86_400},
        {"offence_window_s": 10**15},
        {"blast_radius_floor": 2**70},
        {"max_new_entries_per_push": 10**9},
        {"auto_approve": [{"name": "r", "detectors": ["flood\x00"]}]},
        {"auto_approve": [{"name": f"r{i}", "detectors": ["*"]} for i in range(101)]},
        {
            "escalation": [
                {"offences": 0, "action": "block", "ttl_s": 3600},
                {"offences": 10**12, "action": "block", "ttl_s": 3600},
            ]
        },
    ],
)
def test_policy_values_beyond_their_bounds_are_refused(client, service, tokens, change) -> None:
    before = service.get_policy()
    document = {k: v for k, v in before.items() if k != "version"} | change
    reply = client.put("/api/v1/policy", json=document, headers=tokens.header("admin"))
    assert reply.status_code == 422, reply.text
    assert service.get_policy() == before
