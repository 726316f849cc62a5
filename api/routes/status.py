"""The engine's health as the running engine last published it."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServiceDep, ViewerDep
from api.errors import responses
from api.schemas import StatusOut

router = APIRouter(prefix="/api/v1", tags=["status"], responses=responses(401, 403))


@router.get("/status", response_model=StatusOut)
def get_status(service: ServiceDep, _: ViewerDep) -> StatusOut:
    """Ingest lag and throughput, decisions by state, last enforcement cycle, drift, model."""
    return StatusOut(**service.status())
