"""Compiler test helpers: a fixed ``now`` and a builder of approved (or other) decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.schema.decision import Decision

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def make_decision(
    client: str,
    action: str = "block",
    *,
    score: float = 0.9,
    age_s: int = 60,
    ttl_s: int = 3600,
    status: str = "approved",
    id: str | None = None,
    members: tuple[str, ...] = (),
) -> Decision:
    return Decision(
        client=client,
        action=action,
        ttl_s=ttl_s,
        score=score,
        detector="test",
        decided_at=NOW - timedelta(seconds=age_s),
        status=status,
        id=id or f"{action}:{client}",
        members=members,
    )
