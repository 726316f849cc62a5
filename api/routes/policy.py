"""The admin-set policy: auto-approval, blast-radius guard, escalation, TTLs."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminDep, ServiceDep, ViewerDep
from api.errors import responses
from api.schemas import PolicyDoc

router = APIRouter(prefix="/api/v1/policy", tags=["policy"], responses=responses(401, 403))


@router.get("", response_model=PolicyDoc)
def get_policy(service: ServiceDep, _: ViewerDep) -> dict:
    """The policy in force (version 0 is the built-in default)."""
    return service.get_policy()


@router.put("", response_model=PolicyDoc, responses=responses(422))
def put_policy(service: ServiceDep, who: AdminDep, body: PolicyDoc) -> dict:
    """Replace the policy (admin only); stored as a new version, audited with the admin's name."""
    return service.put_policy(body.model_dump(mode="json", exclude={"version"}), by=who.name)
