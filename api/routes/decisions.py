"""Decisions: list, inspect, and move through approve / reject / revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, status

from api.deps import AnalystDep, ServiceDep, ViewerDep
from api.errors import responses
from api.schemas import (
    CommentIn,
    DecisionDetailOut,
    DecisionOut,
    DecisionPageOut,
    ManualDecisionIn,
)
from engine.schema.decision import Status

router = APIRouter(prefix="/api/v1/decisions", tags=["decisions"], responses=responses(401, 403))

CommentBody = Annotated[CommentIn | None, Body()]
DecisionId = Annotated[str, Path(description="the decision's id", min_length=1, max_length=64)]


@router.get("", response_model=DecisionPageOut, responses=responses(422))
def list_decisions(
    service: ServiceDep,
    _: ViewerDep,
    state: Annotated[Status | None, Query(description="only decisions in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=19, description="a previous page's next_cursor")
    ] = None,
) -> DecisionPageOut:
    """Decisions, newest first, a page at a time."""
    page = service.list_decisions(state=state, limit=limit, cursor=cursor)
    now = service.now()
    return DecisionPageOut(
        items=[DecisionOut.from_decision(d, now) for d in page.items],
        next_cursor=page.next_cursor,
        total=page.total,
    )


@router.post(
    "",
    response_model=DecisionOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(409, 422),
)
def add_decision(service: ServiceDep, who: AnalystDep, body: ManualDecisionIn) -> DecisionOut:
    """Add a manual decision (a ban, rate limit, challenge...): approved at once, enforced at
    the next cycle, audited with the analyst's name and the reason."""
    decision = service.add_manual(
        client=body.client,
        action=body.action,
        ttl_s=body.ttl_s,
        reason=body.reason,
        by=who.name,
    )
    return DecisionOut.from_decision(decision, service.now())


@router.get("/{decision_id}", response_model=DecisionDetailOut, responses=responses(404, 422))
def get_decision(service: ServiceDep, _: ViewerDep, decision_id: DecisionId) -> DecisionDetailOut:
    """One decision with its audit trail."""
    detail = service.get_decision(decision_id)
    return DecisionDetailOut.from_detail(detail, service.now())


TRANSITION_ERRORS = responses(404, 409, 422)


@router.post("/{decision_id}/approve", response_model=DecisionOut, responses=TRANSITION_ERRORS)
def approve(
    service: ServiceDep, who: AnalystDep, decision_id: DecisionId, body: CommentBody = None
) -> DecisionOut:
    """Approve a proposed decision; the enforcer will push it."""
    decision = service.approve(decision_id, by=who.name, comment=body and body.comment)
    return DecisionOut.from_decision(decision, service.now())


@router.post("/{decision_id}/reject", response_model=DecisionOut, responses=TRANSITION_ERRORS)
def reject(
    service: ServiceDep, who: AnalystDep, decision_id: DecisionId, body: CommentBody = None
) -> DecisionOut:
    """Reject a proposed decision."""
    decision = service.reject(decision_id, by=who.name, comment=body and body.comment)
    return DecisionOut.from_decision(decision, service.now())


@router.post("/{decision_id}/revoke", response_model=DecisionOut, responses=TRANSITION_ERRORS)
def revoke(
    service: ServiceDep, who: AnalystDep, decision_id: DecisionId, body: CommentBody = None
) -> DecisionOut:
    """Lift an approved or applied decision early."""
    decision = service.revoke(decision_id, by=who.name, comment=body and body.comment)
    return DecisionOut.from_decision(decision, service.now())
