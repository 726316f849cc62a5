"""Builds the FastAPI app: API routers, dashboard, metrics, error handlers.

``create_app(service)`` is all a caller needs; ``wafsmith serve`` and the full engine both
use it, and tests build one app per test around a real ledger.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import docs
from api.auth import SessionSigner
from api.errors import install_error_handlers
from api.limits import BodySizeLimit
from api.metrics import ApiMetrics
from api.openapi import install_openapi, operation_id
from api.routes import (
    allowlist,
    backtest,
    clients,
    dashboard,
    dashboard_policy,
    decisions,
    health,
    metrics,
    policy,
    rules,
    status,
)
from engine.service import Service, install_redaction

TAGS = [
    {"name": "health", "description": "Liveness; the only route without a token."},
    {"name": "status", "description": "Engine health as the running engine last published it."},
    {"name": "clients", "description": "Clients the engine watches: scores, features, samples."},
    {"name": "decisions", "description": "Proposals and their approval workflow (analyst)."},
    {"name": "rules", "description": "Compiled desired WAF state and its dry-run plan."},
    {"name": "backtest", "description": "What a rule would have matched in retained history."},
    {"name": "policy", "description": "Auto-approval, blast-radius guard, TTLs (admin)."},
    {"name": "allowlist", "description": "Ranges never blocked (admin)."},
    {"name": "metrics", "description": "Prometheus scrape endpoint."},
]

API_ROUTERS = (
    health.router,
    status.router,
    clients.router,
    decisions.router,
    rules.router,
    backtest.router,
    policy.router,
    allowlist.router,
    metrics.router,
)


def create_app(
    service: Service,
    *,
    session_secret: bytes | None = None,
    session_ttl_s: float = 8 * 3600,
    secure_cookies: bool = False,
    max_body_bytes: int = 1_048_576,
    engine_registry: Any = None,
) -> FastAPI:
    """The wafsmith API and dashboard around ``service``.

    ``session_secret`` signs dashboard cookies; without one a random secret is drawn, so
    sessions end when the process restarts. ``secure_cookies`` marks cookies HTTPS-only
    (turn it on behind TLS). Request bodies over ``max_body_bytes`` get 413 before they are
    read or authenticated. Secrets in logged URLs (uvicorn's access log included) are redacted.
    ``engine_registry``: the engine's Prometheus registry, scraped by ``/metrics`` too, when
    the engine runs in this process.
    """
    app = FastAPI(
        title="wafsmith",
        version="1",
        summary="Adaptive WAF rule engine for AWS: status, decisions, approvals, rule preview.",
        # FastAPI's docs pages load their scripts from a CDN; ``api.docs`` serves Swagger UI
        # from the package instead.
        openapi_tags=TAGS,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.service = service
    app.state.signer = SessionSigner(session_secret or secrets.token_bytes(32))
    app.state.session_ttl_s = session_ttl_s
    app.state.secure_cookies = secure_cookies
    app.state.metrics = ApiMetrics(service, engine_registry)
    app.state.metrics.install(app)
    install_error_handlers(app)
    install_openapi(app)
    for router in API_ROUTERS:
        app.include_router(router)
    app.include_router(dashboard.router)
    app.include_router(dashboard_policy.router)
    dashboard.install(app)
    docs.install(app)
    app.mount("/static", StaticFiles(packages=[("api", "static")]), name="static")
    # Outermost: refuses an oversized body before routing, authentication or parsing.
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    install_redaction("uvicorn.access", "uvicorn.error")
    return app
