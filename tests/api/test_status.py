"""Status, clients and metrics, read from what the engine publishes in the ledger.

Documents are published as the engine publishes them: through the records of
``engine.status``, top clients and samples from a real analyzer run's verdicts.
"""

from __future__ import annotations

import socket

from engine.decisions import DatabaseLease
from engine.schema import features as F
from engine.status import (
    EnforcementStatus,
    EngineStatus,
    EvidenceSamples,
    IngestStatus,
    ModelStatus,
    StatusKey,
    TopClients,
    publish,
    top_verdicts,
)
from tests.support.signin import sign_in

ENGINE = EngineStatus(
    ingest=IngestStatus(lag_s=12.5, lines_per_s=48000.0, objects=31, malformed=4),
    active_clients=1200,
    model=ModelStatus(version="iforest-3", trained_at="2026-03-01T11:00:00Z"),
)
ENFORCEMENT = EnforcementStatus(
    mode="enforce",
    ok=False,
    started_at="2026-03-01T11:59:50Z",
    finished_at="2026-03-01T11:59:55Z",
    writes=2,
    errors=(
        {
            "resource": "ipset/wafsmith-block-v4-0",
            "operation": "UpdateIPSet",
            "code": "WAFLimitsExceededException",
            "message": "throttled",
        },
    ),
    drift={"checked_at": "2026-03-01T11:59:50Z", "found": [], "unresolved": [{"x": 1}]},
)


def test_status_before_any_engine_reports(client, tokens, proposed) -> None:
    body = client.get("/api/v1/status", headers=tokens.header("viewer")).json()
    assert body["reported"] is False
    assert body["message"] == "no engine has reported yet"
    assert body["ingest_lag_s"] is None and body["model_version"] is None
    assert body["last_enforcement"] is None
    assert body["decisions_by_state"]["proposed"] == 1


def test_status_reports_what_the_engine_published(client, service, tokens) -> None:
    publish(service.ledger, ENGINE)
    publish(service.ledger, ENFORCEMENT)
    body = client.get("/api/v1/status", headers=tokens.header("viewer")).json()
    assert body["reported"] is True
    assert body["backoff"] is None  # an engine that never failed, or an older one
    assert body["report_age_s"] == 0.0
    assert body["ingest_lag_s"] == 12.5
    assert body["lines_per_s"] == 48000.0
    assert (body["objects"], body["malformed"], body["active_clients"]) == (31, 4, 1200)
    assert body["model_version"] == "iforest-3"
    assert body["model_age_s"] == 3600.0
    assert body["last_enforcement"]["error_count"] == 1
    assert body["last_enforcement"]["ok"] is False
    assert body["drift"]["unresolved"] == [{"x": 1}]
    assert body["notices"] == []


def test_status_and_health_page_show_the_engines_notices(client, service, tokens) -> None:
    notice = "behind CloudFront: ALB logs cannot identify viewers; use the web ACL's logs or " \
        "CloudFront's"
    publish(service.ledger, EngineStatus(active_clients=3, notices=(notice,)))
    body = client.get("/api/v1/status", headers=tokens.header("viewer")).json()
    assert body["notices"] == [notice]
    sign_in(client, tokens.viewer)
    page = client.get("/dashboard").text
    assert page.count("behind CloudFront: ALB logs cannot identify viewers") == 1


def test_status_reads_an_older_engines_partial_document(client, service, tokens) -> None:
    service.ledger.put_status(StatusKey.ENGINE, {"ingest": {"lag_s": 3.0}, "retired": 1})
    service.ledger.put_status(StatusKey.ENFORCEMENT, {"ok": False, "errors": ["too many rules"]})
    body = client.get("/api/v1/status", headers=tokens.header("viewer")).json()
    assert body["reported"] is True
    assert body["ingest_lag_s"] == 3.0
    assert body["objects"] is None and body["active_clients"] is None
    assert body["model_version"] is None and body["model_age_s"] is None
    assert body["last_enforcement"]["error_count"] == 1
    assert body["last_enforcement"]["errors"] == [{"message": "too many rules"}]


def test_top_clients_and_one_client(client, service, tokens, analysis) -> None:
    headers = tokens.header("viewer")
    empty = client.get("/api/v1/clients/top", headers=headers).json()
    assert empty == {"reported": False, "message": "no engine has reported yet", "items": []}
    top = top_verdicts(analysis.verdicts, limit=50)
    samples = EvidenceSamples.from_verdicts(top)
    publish(service.ledger, TopClients.from_verdicts(top))
    publish(service.ledger, samples)

    reply = client.get("/api/v1/clients/top", params={"limit": 2}, headers=headers).json()
    assert reply["reported"] is True
    assert [(c["client"], c["kind"], c["score"]) for c in reply["items"]] == [
        (v.client, v.kind, v.score) for v in top[:2]
    ]
    first = top[0]
    assert reply["items"][0]["requests"] == first.features[F.REQ_COUNT]
    assert reply["items"][0]["features"] == first.features

    decisions = service.ledger.propose_many(
        [d for d in analysis.decisions if d.client == first.client]
    )
    assert decisions, "the top client of the run has decisions with evidence of their own"
    one = client.get(f"/api/v1/clients/{first.client}", headers=headers).json()
    assert one["features"] == first.features
    assert {d["id"] for d in one["decisions"]} == {d.id for d in decisions}
    published = [e.to_dict() for e in samples.for_client(first.client)]
    assert published and one["sample_requests"][: len(published)] == published
    evidence = [e.to_dict() for d in decisions for e in d.evidence]
    assert all(e in one["sample_requests"] for e in evidence)
    assert len(one["sample_requests"]) == len({str(e) for e in one["sample_requests"]})


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
    publish(service.ledger, ENGINE)
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


def test_healthz_beside_the_engine_follows_its_heartbeat(ledger, clock) -> None:
    """Under ``wafsmith run`` a stalled loop makes /healthz 503 (a container gets replaced)."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from engine.service import Service

    service = Service(ledger, clock=clock, heartbeat_max_age_s=60.0)
    with TestClient(create_app(service)) as client:
        before = client.get("/healthz")
        publish(ledger, ENGINE)  # the loop's periodic status
        clock.advance(59.0)
        fresh = client.get("/healthz")
        clock.advance(2.0)
        stale = client.get("/healthz")
    assert (before.status_code, before.json()["error"]) == (503, "unavailable")
    assert "not reported a heartbeat" in before.json()["detail"]
    assert (fresh.status_code, fresh.json()) == (
        200,
        {"status": "ok", "database": "ok", "engine": "ok"},
    )
    assert stale.status_code == 503
    assert "last heartbeat is 61 s old" in stale.json()["detail"]


def test_status_names_the_holder_of_the_enforcer_lease(client, service, tokens, clock) -> None:
    body = client.get("/api/v1/status", headers=tokens.header("viewer")).json()
    assert body["lease"]["holder"] is None and body["lease"]["epoch"] is None
    assert body["lease"]["leader"] is None  # the API is served without an engine beside it

    lease = DatabaseLease(
        service.ledger.engine, name="enforcer", instance_id="engine-a", clock=clock
    )
    assert lease.try_acquire()
    clock.advance(30)
    service.instance_id = "engine-a"  # as `wafsmith run` builds it, beside engine-a
    body = client.get("/api/v1/status", headers=tokens.header("viewer")).json()
    lease.release()
    assert body["lease"]["name"] == "enforcer"
    assert (body["lease"]["holder"], body["lease"]["epoch"]) == ("engine-a", 1)
    assert body["lease"]["since"].startswith(clock.now().date().isoformat())
    assert body["lease"]["renewed_age_s"] == 30.0
    assert body["lease"]["leader"] is True

    service.instance_id = "engine-b"  # a standby's API
    body = client.get("/api/v1/status", headers=tokens.header("viewer")).json()
    assert body["lease"]["holder"] == "engine-a" and body["lease"]["leader"] is False


def test_status_shows_the_engines_back_off(client, service, tokens) -> None:
    failing = {"failures": 3, "delay_s": 3.1, "next_attempt_at": 1.7e9, "last_error": "denied"}
    publish(service.ledger, EngineStatus(backoff={"poll": {"failures": 0}, "enforcement": failing}))
    body = client.get("/api/v1/status", headers=tokens.header("viewer")).json()
    assert body["backoff"]["enforcement"] == failing
