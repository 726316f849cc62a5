"""One error shape (RFC 7807 problem details) for every error, stable operation ids, typed
preview models, and ``/docs`` served entirely from the app (no CDN)."""

from __future__ import annotations

import re

import pytest

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "error"}

OPERATION_IDS = {
    "healthz", "get_status", "top_clients", "get_client", "list_decisions", "get_decision",
    "approve", "reject", "revoke", "add_decision", "preview_rules", "backtest", "get_policy",
    "put_policy", "list_allowlist", "add_allowlist", "remove_allowlist", "scrape_metrics",
}  # fmt: skip


@pytest.fixture()
def db_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.mark.parametrize(
    ("method", "path", "role", "body", "code", "error"),
    [
        ("GET", "/api/v1/no-such-route", "viewer", None, 404, "not_found"),
        ("GET", "/nowhere", None, None, 404, "not_found"),
        ("DELETE", "/api/v1/status", "admin", None, 405, "method_not_allowed"),
        ("GET", "/api/v1/decisions?limit=0", "viewer", None, 422, "invalid_request"),
        ("POST", "/api/v1/allowlist", "admin", {"cidr": 5, "extra": 1}, 422, "invalid_request"),
        ("POST", "/api/v1/allowlist", "admin", {"cidr": "0.0.0.0/0"}, 422, "invalid_input"),
        ("GET", "/api/v1/status", None, None, 401, "unauthenticated"),
        ("PUT", "/api/v1/policy", "viewer", {}, 403, "forbidden"),
        ("GET", "/api/v1/decisions/feedbeef", "viewer", None, 404, "not_found"),
    ],
)
def test_every_error_is_a_problem_document(
    client, tokens, method, path, role, body, code, error
) -> None:
    headers = tokens.header(role) if role else {}
    reply = client.request(method, path, headers=headers, json=body)
    assert reply.status_code == code
    assert reply.headers["content-type"] == "application/problem+json"
    doc = reply.json()
    assert doc.keys() >= PROBLEM_KEYS
    assert (doc["status"], doc["error"], doc["type"]) == (code, error, "about:blank")
    assert doc["instance"] == path.split("?")[0]
    assert isinstance(doc["detail"], str) and doc["detail"]
    if error == "invalid_request":  # the fields that are wrong, each with where and why
        assert all({"loc", "msg", "type"} <= e.keys() for e in doc["errors"])


def test_a_405_keeps_its_allow_header(client, tokens) -> None:
    reply = client.delete("/api/v1/status", headers=tokens.header("admin"))
    assert reply.headers["allow"] == "GET"


def test_operation_ids_are_stable_and_unique(client) -> None:
    document = client.get("/openapi.json").json()
    ids = [op["operationId"] for path in document["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert set(ids) == OPERATION_IDS


def test_the_document_promises_problem_json_for_every_error(client) -> None:
    document = client.get("/openapi.json").json()
    for path in document["paths"].values():
        for op in path.values():
            for code, reply in op["responses"].items():
                if code[0] in "45":
                    assert list(reply["content"]) == ["application/problem+json"], (op, code)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_the_preview_and_plan_are_typed_in_the_document(client) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    preview = schemas["RulePreviewOut"]["properties"]
    assert "DesiredStateOut" in str(preview["desired"])
    assert "PlanOut" in str(preview["plan"])
    assert {"ip_sets", "rules", "overflow", "placement"} <= schemas["DesiredStateOut"][
        "properties"
    ].keys()
    assert {"plan", "drift", "errors", "writes"} <= schemas["PlanOut"]["properties"].keys()


def test_docs_page_and_all_its_assets_come_from_the_app(client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert not re.search(r"https?://", html), "the docs page must not load anything remote"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    for asset in assets:
        reply = client.get(asset)
        assert reply.status_code == 200, asset
        assert len(reply.content) > 100, asset
    init = client.get("/static/docs-init.js").text
    assert '"/openapi.json"' in init
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in bundle.headers["content-type"]
    assert b"SwaggerUIBundle" in bundle.content
