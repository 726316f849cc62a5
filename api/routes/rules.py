"""What the compiler would push, and how it differs from what AWS holds."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServiceDep, ViewerDep
from api.errors import responses
from api.schemas import RulePreviewOut

router = APIRouter(prefix="/api/v1/rules", tags=["rules"], responses=responses(401, 403))


@router.get("/preview", response_model=RulePreviewOut)
def preview_rules(service: ServiceDep, _: ViewerDep) -> RulePreviewOut:
    """The compiled desired WAF state and, when AWS is reachable, the dry-run diff."""
    return RulePreviewOut(**service.preview_rules())
