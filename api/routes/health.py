"""Liveness: the one route that needs no token."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServiceDep
from api.errors import responses
from api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, responses=responses(503))
def healthz(service: ServiceDep) -> HealthOut:
    """The API is up, its ledger answers and (under ``wafsmith run``) the engine is alive."""
    service.ping()
    engine = "ok" if service.check_heartbeat() else "not_checked"
    return HealthOut(status="ok", database="ok", engine=engine)
