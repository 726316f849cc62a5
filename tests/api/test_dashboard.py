"""The dashboard over HTTP: sign-in, session cookie, CSRF, roles, pages and charts."""

from __future__ import annotations

import json
import re

import pytest
from markupsafe import escape

from api.auth import SESSION_COOKIE
from api.reasons import read_reason
from engine.schema.decision import Status
from engine.status import EngineStatus, IngestStatus, TrafficSeries, publish
from tests.support.signin import sign_in


@pytest.fixture()
def db_url(sqlite_url: str) -> str:
    """Dashboard behaviour does not depend on the database kind (the API tests cover both)."""
    return sqlite_url


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "page has no CSRF field"
    return found.group(1)


def test_pages_need_a_session(client) -> None:
    for path in ("/dashboard", "/dashboard/queue", "/dashboard/active"):
        reply = client.get(path, follow_redirects=False)
        assert reply.status_code == 303
        assert reply.headers["location"] == "/login"


def test_bad_token_does_not_sign_in(client) -> None:
    reply = sign_in(client, "wsm_wrong")
    assert reply.status_code == 401
    assert "Unknown or revoked token" in reply.text
    assert SESSION_COOKIE not in reply.cookies


def test_session_cookie_is_httponly_strict_and_signed(client, tokens) -> None:
    reply = sign_in(client, tokens.analyst)
    assert reply.status_code == 303
    cookie = reply.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert tokens.analyst not in cookie  # the token itself never goes into the cookie
    # a tampered cookie is refused
    value = client.cookies[SESSION_COOKIE]
    client.cookies.set(SESSION_COOKIE, value[:-2] + ("A" if value[-2] != "A" else "B") + "x")
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_analyst_approves_from_the_queue(client, service, tokens, proposed) -> None:
    sign_in(client, tokens.analyst)
    queue = client.get("/dashboard/queue")
    assert queue.status_code == 200
    assert "203.0.113.7" in queue.text
    assert escape(read_reason(proposed.reasons[0]).text) in queue.text
    for sample in proposed.evidence:  # the sample requests behind it, a row each
        assert f"<td>{sample.method}</td><td><code>{escape(sample.path)}</code></td>" in queue.text
    assert "Backtest over the last" in queue.text
    reply = client.post(
        f"/dashboard/decisions/{proposed.id}/approve",
        data={"csrf": csrf_of(queue.text), "comment": "seen it", "back": "/dashboard/queue"},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    assert service.ledger.get(proposed.id).status is Status.APPROVED
    assert service.ledger.audit(proposed.id)[-1].actor == "analyst-alice"
    active = client.get("/dashboard/active")
    assert f'id="a-{proposed.id}"' in active.text
    assert "1 h 0 min" in active.text  # time left: a 1 h block decided at this very moment


def test_post_without_the_csrf_token_is_refused(client, service, tokens, proposed) -> None:
    sign_in(client, tokens.analyst)
    for data in ({}, {"csrf": "forged"}):
        reply = client.post(f"/dashboard/decisions/{proposed.id}/approve", data=data)
        assert reply.status_code == 403
    assert service.ledger.get(proposed.id).status is Status.PROPOSED


def test_viewer_sees_the_queue_but_cannot_approve(client, service, tokens, proposed) -> None:
    sign_in(client, tokens.viewer)
    queue = client.get("/dashboard/queue")
    assert "203.0.113.7" in queue.text
    assert "/approve" not in queue.text
    reply = client.post(
        f"/dashboard/decisions/{proposed.id}/approve", data={"csrf": csrf_of(queue.text)}
    )
    assert reply.status_code == 403
    assert service.ledger.get(proposed.id).status is Status.PROPOSED


def test_illegal_transition_is_shown_not_crashed(client, service, tokens, proposed) -> None:
    service.reject(proposed.id, by="bob")
    sign_in(client, tokens.analyst)
    csrf = csrf_of(client.get("/dashboard/queue").text)
    reply = client.post(f"/dashboard/decisions/{proposed.id}/approve", data={"csrf": csrf})
    assert reply.status_code == 200
    assert "cannot become approved" in reply.text


def test_revoking_the_token_ends_its_sessions(client, service, tokens) -> None:
    sign_in(client, tokens.analyst)
    assert client.get("/dashboard", follow_redirects=False).status_code == 200
    service.revoke_token("analyst-alice")
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_sessions_expire(client, clock, tokens) -> None:
    sign_in(client, tokens.viewer)
    clock.advance(9 * 3600)
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_logout_needs_csrf_and_clears_the_cookie(client, tokens) -> None:
    sign_in(client, tokens.viewer)
    page = client.get("/dashboard")
    assert client.post("/logout", data={}).status_code == 403
    reply = client.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert reply.status_code == 303
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_overview_without_engine_data_says_so(client, tokens) -> None:
    sign_in(client, tokens.viewer)
    page = client.get("/dashboard").text
    assert "no engine has reported yet" in page
    assert "no data yet" in page
    assert "<svg" not in page


def test_overview_draws_charts_from_the_published_series(client, service, tokens) -> None:
    t0 = 1_772_366_400
    traffic = TrafficSeries(
        interval_s=60,
        t=tuple(t0 + 60 * i for i in range(5)),
        requests=(600, 1200, 6000, 1200, 600),
        blocked=(0, 0, 4800, 600, 0),
        allowed=(600, 1200, 1200, 600, 600),
    )
    publish(service.ledger, traffic)
    publish(service.ledger, EngineStatus(ingest=IngestStatus(lag_s=3.0), active_clients=42))
    sign_in(client, tokens.viewer)
    page = client.get("/dashboard").text
    assert page.count("<svg") == 2
    assert "max 100.0" in page  # 6000 requests per 60 s
    assert "<title>blocked</title>" in page and "<title>allowed</title>" in page
    assert "3.0 s" in page and ">42<" in page
    assert '<b id="report-age">0 s ago</b>' in page


def test_decision_page_shows_the_audit_trail(client, service, tokens, proposed) -> None:
    service.approve(proposed.id, by="analyst-bob", comment="clear attack")
    sign_in(client, tokens.viewer)
    page = client.get(f"/dashboard/decisions/{proposed.id}")
    assert page.status_code == 200
    assert "analyst-bob" in page.text and "clear attack" in page.text
    assert client.get("/dashboard/decisions/nope").status_code == 404


def test_back_link_cannot_redirect_off_site(client, tokens, proposed) -> None:
    sign_in(client, tokens.analyst)
    csrf = csrf_of(client.get("/dashboard/queue").text)
    reply = client.post(
        f"/dashboard/decisions/{proposed.id}/reject",
        data={"csrf": csrf, "back": "https://evil.example/"},
        follow_redirects=False,
    )
    assert reply.headers["location"].startswith("/dashboard/queue?")


def test_pages_forbid_framing_and_foreign_scripts(client, tokens) -> None:
    sign_in(client, tokens.viewer)
    for path in ("/login", "/dashboard", "/dashboard/queue"):
        headers = client.get(path).headers
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["cache-control"] == "no-store"


def test_static_assets_are_served_locally(client) -> None:
    reply = client.get("/static/app.css")
    assert reply.status_code == 200
    assert "text/css" in reply.headers["content-type"]


def test_page_messages_cannot_be_forged_through_the_url(client, app, tokens) -> None:
    sign_in(client, tokens.viewer)
    for query in ("?message=Call+0800+now", "?error=x", "?flash=abc.def"):
        assert 'class="flash' not in client.get(f"/dashboard/queue{query}").text
    sealed = app.state.signer.seal("flash", {"message": "Decision d1 approved."})
    page = client.get("/dashboard/queue", params={"flash": sealed}).text
    assert "Decision d1 approved." in page
    session_value = client.cookies["wafsmith_session"]
    assert app.state.signer.unseal("flash", session_value) == {}  # purposes never mix


def test_admin_edits_policy_and_allowlist_from_the_dashboard(client, service, tokens) -> None:
    sign_in(client, tokens.admin)
    page = client.get("/dashboard/policy")
    assert 'id="policy-form"' in page.text
    csrf = csrf_of(page.text)
    document = json.dumps({"max_new_entries_per_push": 9})
    saved = client.post("/dashboard/policy", data={"csrf": csrf, "document": document})
    assert "Policy version 1 saved." in saved.text
    assert service.ledger.policy().max_new_entries_per_push == 9
    bad = client.post("/dashboard/policy", data={"csrf": csrf, "document": "{nope"})
    assert "not valid JSON" in bad.text
    refused = client.post("/dashboard/policy", data={"csrf": csrf, "document": '{"x": 1}'})
    assert "Policy refused" in refused.text
    assert service.ledger.policy().version == 1

    added = client.post("/dashboard/policy/allowlist", data={"csrf": csrf, "cidr": "192.0.2.0/24"})
    assert "192.0.2.0/24 allowlisted" in added.text
    zero = client.post("/dashboard/policy/allowlist", data={"csrf": csrf, "cidr": "0.0.0.0/0"})
    assert "/0 network would match everyone" in zero.text
    removed = client.post(
        "/dashboard/policy/allowlist", data={"csrf": csrf, "cidr": "192.0.2.0/24", "remove": "1"}
    )
    assert "removed from the allowlist" in removed.text
    assert service.allowlist() == []


def test_analyst_reads_the_policy_but_cannot_change_it(client, service, tokens) -> None:
    sign_in(client, tokens.analyst)
    page = client.get("/dashboard/policy")
    assert 'id="policy"' in page.text and 'id="policy-form"' not in page.text
    csrf = csrf_of(page.text)
    reply = client.post("/dashboard/policy/allowlist", data={"csrf": csrf, "cidr": "192.0.2.1"})
    assert reply.status_code == 403
    assert service.allowlist() == []


def test_the_session_cookie_does_not_authenticate_the_api(client, tokens, proposed) -> None:
    sign_in(client, tokens.admin)
    assert client.get("/dashboard").status_code == 200
    assert client.get("/api/v1/status").status_code == 401
    assert client.post(f"/api/v1/decisions/{proposed.id}/approve").status_code == 401
