"""Liveness: the one route that needs no token."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServiceDep
from api.errors import responses
from api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, responses=responses(503))
def healthz(service: ServiceDep) -> HealthOut:
    """The API is up and its ledger answers."""
    service.ping()
    return HealthOut(status="ok", database="ok")
