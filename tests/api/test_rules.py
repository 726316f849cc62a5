"""Rule preview (compile only, and dry-run planned against moto) and backtest routes."""

from __future__ import annotations

from typing import Any

import pytest

from engine.enforcement import RulePreviewer
from engine.service import Service
from engine.settings import Settings
from tests.support.signin import sign_in

WEB_ACL = "prod-acl"


@pytest.fixture()
def db_url(sqlite_url: str) -> str:
    """Preview and backtest logic does not depend on the database kind."""
    return sqlite_url


def test_preview_without_a_compiler_says_so(client, tokens) -> None:
    body = client.get("/api/v1/rules/preview", headers=tokens.header("viewer")).json()
    assert body["desired"] is None and body["plan"] is None
    assert body["notes"] == ["no rule compiler is configured for this service"]


def _previewing_service(ledger, clock, **settings: Any) -> Service:
    previewer = RulePreviewer.from_settings(Settings(**settings), clock=clock)
    return Service(ledger, clock=clock, previewer=previewer)


def test_preview_compiles_only_without_aws(ledger, clock, proposed) -> None:
    service = _previewing_service(ledger, clock)
    service.approve(proposed.id, by="bob")
    service.add_allowlist("198.51.100.0/24", by="admin")
    preview = service.preview_rules()
    assert preview["decisions"] == 1
    assert preview["plan"] is None
    assert any("compiled document only" in n for n in preview["notes"])
    addresses = [a for s in preview["desired"]["ip_sets"] for a in s["addresses"]]
    assert addresses == ["203.0.113.7/32"]


def test_preview_plans_against_aws_in_dry_run(
    client, app, ledger, clock, tokens, proposed, wafv2, aws_endpoint
) -> None:
    vis = {"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False, "MetricName": "a"}
    wafv2.create_web_acl(
        Name=WEB_ACL, Scope="REGIONAL", DefaultAction={"Allow": {}}, VisibilityConfig=vis
    )
    service = _previewing_service(
        ledger,
        clock,
        aws={"endpoint_url": aws_endpoint},
        enforcement={"compiler": {"placement": {"web_acl_name": WEB_ACL}}},
    )
    service.approve(proposed.id, by="bob")
    app.state.service = service
    body = client.get("/api/v1/rules/preview", headers=tokens.header("viewer")).json()
    assert body["plan"]["mode"] == "dry_run"
    assert body["plan"]["ok"] is True
    assert body["plan"]["writes"] == 0
    operations = {(s["operation"], s["status"]) for s in body["plan"]["plan"]}
    assert ("CreateIPSet", "planned") in operations
    assert wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] == []  # nothing was written


def test_preview_targets_the_web_acl_named_in_the_enforcement_settings(
    client, app, ledger, clock, tokens, proposed, wafv2, aws_endpoint
) -> None:
    """``enforcement.web_acl_name`` is where the engine enforces; the preview must plan there
    too (it used to read only ``[enforcement.compiler.placement]`` and say no ACL was set)."""
    vis = {"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False, "MetricName": "a"}
    wafv2.create_web_acl(
        Name=WEB_ACL, Scope="REGIONAL", DefaultAction={"Allow": {}}, VisibilityConfig=vis
    )
    service = _previewing_service(
        ledger, clock, aws={"endpoint_url": aws_endpoint}, enforcement={"web_acl_name": WEB_ACL}
    )
    service.approve(proposed.id, by="bob")
    app.state.service = service

    body = client.get("/api/v1/rules/preview", headers=tokens.header("viewer")).json()

    assert body["desired"]["placement"]["web_acl_name"] == WEB_ACL
    assert body["plan"]["ok"] is True, body["plan"]["errors"]
    steps = {(s["operation"], s["resource"]) for s in body["plan"]["plan"]}
    assert ("UpdateWebACL", f"webacl/{WEB_ACL}") in steps
    assert wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] == []  # planned, not written


def test_backtest_validation(client, tokens, proposed) -> None:
    headers = tokens.header("viewer")
    both = {"client": "203.0.113.7", "decision_id": proposed.id}
    assert client.post("/api/v1/backtest", json=both, headers=headers).status_code == 422
    assert client.post("/api/v1/backtest", json={}, headers=headers).status_code == 422
    bad = client.post("/api/v1/backtest", json={"client": "0.0.0.0/0"}, headers=headers)
    assert bad.status_code == 422
    missing = client.post("/api/v1/backtest", json={"decision_id": "nope"}, headers=headers)
    assert missing.status_code == 404
    ok = client.post("/api/v1/backtest", json={"decision_id": proposed.id}, headers=headers)
    assert ok.status_code == 200
    assert ok.json()["client"] == "203.0.113.7"


@pytest.fixture()
def history_service(ledger, clock, tmp_path) -> Service:
    """A service whose backtests read a real retained history (hourly Parquet)."""
    import pyarrow as pa

    from engine.decisions.backtest import Backtester
    from engine.decisions.history import RequestHistory
    from engine.schema import request as rq

    history = RequestHistory(tmp_path / "history", clock=clock)
    now_ms = int(clock.time() * 1000)
    rows = [("203.0.113.7", 401)] * 30 + [("198.51.100.4", 200)] * 10 + [("192.0.2.1", 200)] * 5
    history.append(
        pa.table(
            {
                rq.EVENT_TIME: pa.array(
                    [now_ms - 60_000 * (1 + i % 50) for i in range(len(rows))], rq.TIMESTAMP_TYPE
                ),
                rq.CLIENT_IP: [c for c, _ in rows],
                rq.SOURCE: ["alb"] * len(rows),
                rq.METHOD: ["GET"] * len(rows),
                rq.PATH: ["/login"] * len(rows),
                rq.STATUS: pa.array([s for _, s in rows], pa.int16()),
            }
        )
    )
    return Service(ledger, clock=clock, backtester=Backtester(history))


def test_backtest_counts_what_a_decision_would_have_matched(
    app, client, history_service, tokens, proposed
) -> None:
    app.state.service = history_service
    headers = tokens.header("viewer")
    body = client.post(
        "/api/v1/backtest", json={"decision_id": proposed.id, "hours": 2}, headers=headers
    ).json()
    assert (body["client"], body["requests"], body["clients"]) == ("203.0.113.7", 30, 1)
    assert body["benign_clients"] == 0  # every answer was a 401
    draft = client.post(
        "/api/v1/backtest", json={"client": "198.51.100.0/24"}, headers=headers
    ).json()
    assert (draft["requests"], draft["clients"], draft["benign_clients"]) == (10, 1, 1)


def test_queue_page_shows_backtest_numbers(app, client, history_service, tokens, proposed):
    app.state.service = history_service
    sign_in(client, tokens.viewer)
    page = client.get("/dashboard/queue").text
    assert "would have matched\n    <b>30</b> requests from <b>1</b> client(s)" in page
