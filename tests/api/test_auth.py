"""Auth matrix: every route answers 401 without a valid token, 403 to a too-low role and
succeeds for every role at or above the one it needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from engine.service import Service

ROLES = ("viewer", "analyst", "admin")
RANK = {r: i for i, r in enumerate(ROLES)}


@pytest.fixture()
def db_url(sqlite_url: str) -> str:
    """Auth does not depend on the database kind: SQLite only here."""
    return sqlite_url


def _approve(service: Service, decision_id: str) -> None:
    service.approve(decision_id, by="setup")


def _allowlist(service: Service, _: str) -> None:
    service.add_allowlist("198.51.100.0/24", by="setup")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    role: str
    ok: int = 200
    json: dict | None = None
    setup: Callable[[Service, str], None] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Route("GET", "/api/v1/status", "viewer"),
    Route("GET", "/api/v1/clients/top", "viewer"),
    Route("GET", "/api/v1/clients/203.0.113.7", "viewer"),
    Route("GET", "/api/v1/decisions", "viewer"),
    Route("GET", "/api/v1/decisions/{id}", "viewer"),
    Route(
        "POST",
        "/api/v1/decisions",
        "analyst",
        ok=201,
        json={"client": "192.0.2.9", "action": "block", "ttl_s": 3600, "reason": "manual"},
    ),
    Route("POST", "/api/v1/decisions/{id}/approve", "analyst", json={"comment": "ok"}),
    Route("POST", "/api/v1/decisions/{id}/reject", "analyst"),
    Route("POST", "/api/v1/decisions/{id}/revoke", "analyst", setup=_approve),
    Route("GET", "/api/v1/rules/preview", "viewer"),
    Route("POST", "/api/v1/backtest", "viewer", json={"client": "203.0.113.7"}),
    Route("GET", "/api/v1/policy", "viewer"),
    Route("PUT", "/api/v1/policy", "admin", json={"max_new_entries_per_push": 10}),
    Route("GET", "/api/v1/allowlist", "viewer"),
    Route("POST", "/api/v1/allowlist", "admin", ok=201, json={"cidr": "192.0.2.0/24"}),
    Route("DELETE", "/api/v1/allowlist?cidr=198.51.100.0/24", "admin", ok=204, setup=_allowlist),
    Route("GET", "/metrics", "viewer"),
]


def _call(client, route: Route, proposed_id: str, headers: dict[str, str]):
    return client.request(
        route.method, route.path.replace("{id}", proposed_id), json=route.json, headers=headers
    )


def test_every_api_route_is_in_the_matrix(app) -> None:
    documented = {
        (method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        for method in ops
        if path != "/healthz"
    }
    covered = {
        (r.method, r.path.split("?")[0].replace("{id}", "{decision_id}")) for r in ROUTES
    } | {("GET", "/api/v1/clients/{ip}")}
    covered.discard(("GET", "/api/v1/clients/203.0.113.7"))
    assert documented == covered


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_no_token_is_401(client, proposed, route: Route) -> None:
    reply = _call(client, route, proposed.id, {})
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == "Bearer"
    assert reply.json()["error"] == "unauthenticated"


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_unknown_token_is_401(client, proposed, route: Route) -> None:
    headers = {"Authorization": "Bearer wsm_not-a-real-token"}
    assert _call(client, route, proposed.id, headers).status_code == 401


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_role_matrix(client, service, tokens, proposed, route: Route, role: str) -> None:
    if route.setup is not None:
        route.setup(service, proposed.id)
    reply = _call(client, route, proposed.id, tokens.header(role))
    if RANK[role] >= RANK[route.role]:
        assert reply.status_code == route.ok, reply.text
    else:
        assert reply.status_code == 403
        assert route.role in reply.json()["detail"]


def test_revoked_token_is_401(client, service, tokens) -> None:
    assert client.get("/api/v1/status", headers=tokens.header("viewer")).status_code == 200
    service.revoke_token("viewer-alice")
    assert client.get("/api/v1/status", headers=tokens.header("viewer")).status_code == 401


def test_healthz_needs_no_token(client) -> None:
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "database": "ok", "engine": "not_checked"}


def test_openapi_documents_bearer_security_and_errors(app) -> None:
    doc = app.openapi()
    assert doc["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    approve = doc["paths"]["/api/v1/decisions/{decision_id}/approve"]["post"]
    assert approve["security"] == [{"bearerToken": []}]
    assert {"200", "401", "403", "404", "409", "422"} <= set(approve["responses"])
    assert "security" not in doc["paths"]["/healthz"]["get"]
