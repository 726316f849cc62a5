"""Ranges that are never blocked, whatever approves them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import AdminDep, ServiceDep, ViewerDep
from api.errors import responses
from api.schemas import AllowlistEntryOut, AllowlistIn, AllowlistOut

router = APIRouter(prefix="/api/v1/allowlist", tags=["allowlist"], responses=responses(401, 403))


@router.get("", response_model=AllowlistOut)
def list_allowlist(service: ServiceDep, _: ViewerDep) -> AllowlistOut:
    """Every allowlisted range."""
    items = [AllowlistEntryOut(**_fields(e)) for e in service.allowlist()]
    return AllowlistOut(items=items)


@router.post(
    "",
    response_model=AllowlistEntryOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(422),
)
def add_allowlist(service: ServiceDep, who: AdminDep, body: AllowlistIn) -> AllowlistEntryOut:
    """Allowlist a range; open decisions that overlap it are rejected or revoked."""
    entry = service.add_allowlist(body.cidr, by=who.name, comment=body.comment)
    return AllowlistEntryOut(**_fields(entry))


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, responses=responses(404, 422))
def remove_allowlist(
    service: ServiceDep,
    who: AdminDep,
    cidr: Annotated[str, Query(description="the listed range", max_length=64)],
) -> Response:
    """Remove an allowlisted range."""
    service.remove_allowlist(cidr, by=who.name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _fields(entry) -> dict:
    return {
        "cidr": entry.cidr,
        "comment": entry.comment,
        "created_by": entry.created_by,
        "created_at": entry.created_at,
    }
