"""Status, clients and metrics, read from what the engine publishes in the ledger."""

from __future__ import annotations

import socket

from engine.service import KEY_ENFORCEMENT, KEY_ENGINE, KEY_SAMPLES, KEY_TOP_CLIENTS

ENGINE_DOC = {
    "ingest": {"lag_s": 12.5, "lines_per_s": 48000.0, "objects": 31, "malformed": 4},
    "active_clients": 1200,
    "model": {"version": "iforest-3", "trained_at": "2026-03-01T11:00:00Z"},
}
ENFORCEMENT_DOC = {
    "mode": "enforce",
    "ok": False,
    "started_at": "2026-03-01T11:59:50Z",
    "finished_at": "2026-03-01T11:59:55Z",
    "writes": 2,
    "errors": [{"resource": "ipset/wafsmith-block-v4-0", "message": "throttled"}],
    "drift": {"checked_at": "2026-03-01T11:59:50Z", "found": [], "unresolved": [{"x": 1}]},
}


def test_status_before_any_engine_reports(client, tokens, proposed) -> None:
    body = client.get("/api/v1/status", headers=tokens.header("viewer")).json()
    assert body["reported"] is False
    assert body["message"] == "no engine has reported yet"
    assert body["ingest_lag_s"] is None and body["model_version"] is None
    assert body["last_enforcement"] is None
    assert body["decisions_by_state"]["proposed"] == 1


def test_status_reports_what_the_engine_published(client, service, tokens) -> None:
    service.ledger.put_status(KEY_ENGINE, ENGINE_DOC)
    service.ledger.put_status(KEY_ENFORCEMENT, ENFORCEMENT_DOC)
    body = client.get("/api/v1/status", headers=tokens.header("viewer")).json()
    assert body["reported"] is True
    assert body["report_age_s"] == 0.0
    assert body["ingest_lag_s"] == 12.5
    assert body["lines_per_s"] == 48000.0
    assert (body["objects"], body["malformed"], body["active_clients"]) == (31, 4, 1200)
    assert body["model_version"] == "iforest-3"
    assert body["model_age_s"] == 3600.0
    assert body["last_enforcement"]["error_count"] == 1
    assert body["last_enforcement"]["ok"] is False
    assert body["drift"]["unresolved"] == [{"x": 1}]


def test_top_clients_and_one_client(client, service, tokens, proposed) -> None:
    headers = tokens.header("viewer")
    empty = client.get("/api/v1/clients/top", headers=headers).json()
    assert empty == {"reported": False, "message": "no engine has reported yet", "items": []}
    items = [
        {
            "client": "203.0.113.7",
            "score": 0.97,
            "kind": "flood",
            "requests": 5200,
            "features": {"rps_1m": 86.6},
        },
        {"client": "198.51.100.4", "score": 0.4, "requests": 90, "features": {"rps_1m": 1.5}},
    ]
    service.ledger.put_status(KEY_TOP_CLIENTS, {"items": items})
    service.ledger.put_status(KEY_SAMPLES, {"203.0.113.7": [{"path": "/wp-login.php"}]})
    top = client.get("/api/v1/clients/top", params={"limit": 1}, headers=headers).json()
    assert [(c["client"], c["kind"]) for c in top["items"]] == [("203.0.113.7", "flood")]

    one = client.get("/api/v1/clients/203.0.113.7", headers=headers).json()
    assert one["features"] == {"rps_1m": 86.6}
    assert [d["id"] for d in one["decisions"]] == [proposed.id]
    assert {"path": "/wp-login.php"} in one["sample_requests"]
    assert {"method": "GET", "path": "/login", "status": 401} in one["sample_requests"]


def test_client_by_cidr(client, service, tokens, make) -> None:
    campaign = service.ledger.propose(make(client="2001:db8:7::/48"))
    reply = client.get("/api/v1/clients/2001:db8:7::/48", headers=tokens.header("viewer"))
    assert reply.status_code == 200
    assert [d["id"] for d in reply.json()["decisions"]] == [campaign.id]


def test_client_errors(client, tokens) -> None:
    headers = tokens.header("viewer")
    assert client.get("/api/v1/clients/192.0.2.1", headers=headers).status_code == 404
    bad = client.get("/api/v1/clients/not-an-ip", headers=headers)
    assert bad.status_code == 422
    assert "not an IP address" in bad.json()["detail"]


def test_metrics_expose_engine_and_http_numbers(client, service, tokens, proposed) -> None:
    service.ledger.put_status(KEY_ENGINE, ENGINE_DOC)
    headers = tokens.header("viewer")
    client.get("/api/v1/status", headers=headers)
    reply = client.get("/metrics", headers=headers)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    text = reply.text
    assert 'wafsmith_decisions{state="proposed"} 1.0' in text
    assert "wafsmith_ingest_lag_seconds 12.5" in text
    assert "wafsmith_active_clients 1200.0" in text
    assert (
        'wafsmith_http_requests_total{code="200",method="GET",route="/api/v1/status"} 1.0' in text
    )


def test_each_app_has_its_own_metrics_registry(service, tokens) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app

    first, second = create_app(service), create_app(service)
    with TestClient(first) as a, TestClient(second) as b:
        a.get("/api/v1/status", headers=tokens.header("viewer"))
        text = b.get("/metrics", headers=tokens.header("viewer")).text
    assert 'route="/api/v1/status"' not in text


def test_state_counts_follow_approvals_at_once_and_others_within_a_second(
    client, service, clock, tokens, proposed, make
) -> None:
    headers = tokens.header("viewer")
    counts = client.get("/api/v1/status", headers=headers).json()["decisions_by_state"]
    assert (counts["proposed"], counts["approved"]) == (1, 0)
    client.post(f"/api/v1/decisions/{proposed.id}/approve", headers=tokens.header("analyst"))
    counts = client.get("/api/v1/status", headers=headers).json()["decisions_by_state"]
    assert (counts["proposed"], counts["approved"]) == (0, 1)
    service.ledger.propose(make(client="192.0.2.44"))  # as another process (the engine) would
    clock.advance(1.0)
    counts = client.get("/api/v1/status", headers=headers).json()["decisions_by_state"]
    assert counts["proposed"] == 1


def test_healthz_is_503_when_the_ledger_does_not_answer(clock) -> None:
    import sqlalchemy as sa
    from fastapi.testclient import TestClient

    from api.main import create_app
    from engine.decisions import Ledger
    from engine.service import Service

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gone = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    service = Service(Ledger(gone, clock=clock), clock=clock)
    with TestClient(create_app(service)) as client:
        reply = client.get("/healthz")
    assert reply.status_code == 503
    assert reply.json()["error"] == "unavailable"
    assert "does not answer" in reply.json()["detail"]
