"""Clients the engine is watching."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import ServiceDep, ViewerDep
from api.errors import responses
from api.schemas import ClientDetailOut, DecisionOut, TopClientsOut

router = APIRouter(prefix="/api/v1/clients", tags=["clients"], responses=responses(401, 403))


@router.get("/top", response_model=TopClientsOut, responses=responses(422))
def top_clients(
    service: ServiceDep, _: ViewerDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> TopClientsOut:
    """The highest-scoring active clients, as the engine last published them."""
    return TopClientsOut(**service.top_clients(limit=limit))


@router.get("/{ip:path}", response_model=ClientDetailOut, responses=responses(404, 422))
def get_client(
    service: ServiceDep,
    _: ViewerDep,
    ip: Annotated[str, Path(description="IP address or CIDR", max_length=64)],
) -> ClientDetailOut:
    """One client's features, verdict history and sample requests."""
    view = service.client(ip)
    now = service.now()
    decisions = [DecisionOut.from_decision(d, now) for d in view.pop("decisions")]
    return ClientDetailOut(decisions=decisions, **view)
