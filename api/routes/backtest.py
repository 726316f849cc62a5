"""What a decision or a draft rule would have matched over retained history."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServiceDep, ViewerDep
from api.errors import responses
from api.schemas import BacktestIn, BacktestOut

router = APIRouter(prefix="/api/v1", tags=["backtest"], responses=responses(401, 403))


@router.post("/backtest", response_model=BacktestOut, responses=responses(404, 422))
def backtest(service: ServiceDep, _: ViewerDep, body: BacktestIn) -> BacktestOut:
    """Requests and distinct clients matched over the last hours, and how many looked benign."""
    return BacktestOut(
        **service.backtest(client=body.client, decision_id=body.decision_id, hours=body.hours)
    )
