"""Pydantic shapes of the API's requests and replies (they become the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.rule_schemas import DesiredStateOut, PlanOut
from engine.schema.decision import Action, Decision, Status
from engine.schema.evidence import EvidenceSample
from engine.service import DecisionDetail, Policy


class Out(BaseModel):
    """Base of every reply model."""

    model_config = ConfigDict(extra="forbid")


class In(BaseModel):
    """Base of every request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class FieldErrorOut(Out):
    """One invalid field of a request (422 ``invalid_request``)."""

    loc: list[str | int] = Field(description="where: e.g. ['body', 'cidr'] or ['query', 'limit']")
    msg: str
    type: str


class ProblemOut(BaseModel):
    """Every error reply: an RFC 7807 problem document (``application/problem+json``).

    ``error`` is the stable machine-readable code to branch on; ``errors`` lists the invalid
    fields of a 422 ``invalid_request``.
    """

    model_config = ConfigDict(extra="allow")

    type: str = Field("about:blank", description="a URI naming the problem type")
    title: str = Field(description="the HTTP status phrase, e.g. 'Not Found'")
    status: int = Field(description="the HTTP status code, repeated")
    detail: str = Field(description="what went wrong, in words")
    instance: str = Field(description="the request path")
    error: str = Field(description="machine-readable error code, e.g. 'not_found'")
    errors: list[FieldErrorOut] | None = Field(
        default=None, description="the invalid fields (422 invalid_request only)"
    )


ErrorOut = ProblemOut  # the name routes and older clients use


class HealthOut(Out):
    status: Literal["ok"]
    database: Literal["ok"]
    engine: Literal["ok", "not_checked"] = Field(
        description="the engine loop's heartbeat is recent ('not_checked': API served alone)"
    )


class AuditEventOut(Out):
    at: datetime
    actor: str = Field(description="who made the change: a token's name or 'policy:<rule>'")
    from_state: Status | None
    to_state: Status | None
    comment: str | None = None


class RuleOut(Out):
    """The WAF rule a rule-level decision asks for (one rule on one path, not an IP set)."""

    kind: Literal["rate_based", "challenge", "captcha"]
    scope: str = Field(description="the scope in words, e.g. 'POST /login' ('*': starts with)")
    path: str
    path_match: Literal["EXACTLY", "STARTS_WITH"]
    method: str | None = None
    host: str | None = None
    limit: int | None = Field(default=None, description="requests per window (rate_based)")
    window_s: int | None = Field(default=None, description="60, 120, 300 or 600 (rate_based)")
    aggregate: str | None = Field(default=None, description="IP, FORWARDED_IP or CONSTANT")
    forwarded_header: str | None = None


class DecisionOut(Out):
    id: str
    client: str = Field(
        description="IP address or CIDR; for a rule-level decision, its scope ('rule POST /login')"
    )
    action: Action
    status: Status
    score: float
    confidence: float
    detector: str
    reasons: list[str]
    decided_at: datetime
    expires_at: datetime
    ttl_s: int
    seconds_left: int = Field(description="time left before the decision expires (0 if past)")
    members: list[str]
    evidence: list[EvidenceSample] = Field(description="sample requests, most telling first")
    rule: RuleOut | None = Field(
        default=None, description="set for a rule-level decision: the WAF rule it asks for"
    )

    @classmethod
    def from_decision(cls, d: Decision, now: datetime) -> DecisionOut:
        return cls(**_decision_fields(d, now))


class DecisionDetailOut(DecisionOut):
    audit: list[AuditEventOut]

    @classmethod
    def from_detail(cls, detail: DecisionDetail, now: datetime) -> DecisionDetailOut:
        audit = [
            AuditEventOut(
                at=e.at,
                actor=e.actor,
                from_state=e.from_status,
                to_state=e.to_status,
                comment=e.comment,
            )
            for e in detail.audit
        ]
        return cls(audit=audit, **_decision_fields(detail.decision, now))


def _decision_fields(d: Decision, now: datetime) -> dict[str, Any]:
    return {
        "id": str(d.id),
        "client": d.client,
        "action": d.action,
        "status": d.status,
        "score": d.score,
        "confidence": d.confidence,
        "detector": d.detector,
        "reasons": list(d.reasons),
        "decided_at": d.decided_at,
        "expires_at": d.expires_at,
        "ttl_s": d.ttl_s,
        "seconds_left": max(0, int((d.expires_at - now).total_seconds())),
        "members": list(d.members),
        "evidence": list(d.evidence),
        "rule": None if d.rule is None else RuleOut(scope=d.rule.scope, **d.rule.to_dict()),
    }


class DecisionPageOut(Out):
    items: list[DecisionOut]
    next_cursor: str | None = Field(description="pass as ?cursor= to get the next page")
    total: int = Field(description="how many decisions match the filter, on every page")


class ManualDecisionIn(In):
    """An analyst's own decision, approved at once and audited with the analyst's name."""

    client: str = Field(description="IP address or CIDR (never /0)", max_length=64)
    action: Action
    ttl_s: int = Field(
        description="seconds until it expires (at most the policy's max_ttl_s)",
        gt=0,
        le=365 * 86_400,
    )
    reason: str = Field(
        description="why, in words (shown with the decision)", min_length=1, max_length=500
    )


class CommentIn(In):
    comment: str | None = Field(default=None, max_length=2000)


class LeaseOut(Out):
    """The enforcer lease: of the engines sharing the ledger, the one reconciling the WAF."""

    name: str = Field(description="the lease's name ([lease] name)")
    holder: str | None = Field(description="instance id of the holder (null: never held)")
    epoch: int | None = Field(description="fencing token: grows by one per acquisition")
    since: datetime | None = Field(description="when the holder acquired it")
    renewed_at: datetime | None = Field(description="when the holder last renewed it")
    renewed_age_s: float | None = Field(description="seconds since the last renewal")
    leader: bool | None = Field(
        description="whether the engine beside this API holds it (null: API served alone)"
    )


class StatusOut(Out):
    reported: bool = Field(description="False until a running engine has published its status")
    message: str | None = None
    reported_at: datetime | None = None
    report_age_s: float | None = Field(
        default=None, description="seconds since the engine last published (stale if large)"
    )
    ingest_lag_s: float | None = Field(description="seconds behind the newest object seen")
    lines_per_s: float | None
    objects: int | None
    malformed: int | None
    active_clients: int | None
    decisions_by_state: dict[str, int]
    last_enforcement: dict[str, Any] | None = Field(
        description="last enforcement cycle: when, how many changes, its errors"
    )
    drift: dict[str, Any] | None
    model_version: str | None
    model_age_s: float | None
    lease: LeaseOut | None = Field(default=None, description="who reconciles the WAF")
    notices: list[str] = Field(
        default_factory=list,
        description="what the engine says once about its input, e.g. 'behind CloudFront: ...'",
    )
    backoff: dict[str, Any] | None = Field(
        default=None,
        description="failing polls and enforcement cycles: failures in a row, last delay, "
        "next attempt (epoch s), last error",
    )
    model_source: str | None = Field(
        default=None, description="online trainer (persisted artifact) or stream bootstrap"
    )
    model_refit_every_s: float | None = Field(default=None, description="the refit schedule")
    model_drift: dict[str, Any] | None = Field(
        default=None,
        description="latest scored window against the training window: share of clients "
        "outside its range, median feature shift in IQRs, the most shifted feature",
    )


class ClientSummaryOut(Out):
    client: str
    score: float | None = None
    kind: str | None = Field(default=None, description="the verdict's kind, e.g. 'scanner'")
    requests: int | None = None
    features: dict[str, Any] = Field(default_factory=dict)


class TopClientsOut(Out):
    reported: bool
    message: str | None = None
    items: list[ClientSummaryOut]


class ClientDetailOut(Out):
    client: str
    features: dict[str, Any] | None
    decisions: list[DecisionOut] = Field(description="verdict history: every decision on it")
    sample_requests: list[EvidenceSample] = Field(
        description="the engine's latest samples of this client, then its decisions' evidence"
    )


class RulePreviewOut(Out):
    desired: DesiredStateOut | None = Field(description="the compiled desired WAF state")
    plan: PlanOut | None = Field(description="dry-run diff against AWS, when reachable")
    decisions: int = Field(description="how many enforceable decisions were compiled")
    notes: list[str]


class BacktestIn(In):
    client: str | None = Field(default=None, description="IP or CIDR of a draft rule")
    decision_id: str | None = Field(default=None, description="backtest an existing decision")
    hours: float = Field(default=24.0, gt=0, le=24 * 30)


class OverLimitOut(Out):
    """What a rate-based rule would have acted on: only the requests past its limit."""

    requests: int
    clients: int
    benign_looking_clients: int
    windows_over: int


class BacktestOut(Out):
    client: str
    hours: float
    requests: int
    clients: int
    benign_clients: int
    over_limit: OverLimitOut | None = Field(
        default=None, description="a rate-based rule-level decision: what passed its limit"
    )
    history_from: datetime | None = None
    history_to: datetime | None = None
    notes: list[str] = Field(default_factory=list)


# The policy document is the ledger's own model (``version`` is assigned on save).
PolicyDoc = Policy


class AllowlistIn(In):
    cidr: str = Field(description="IP address or CIDR (never /0)", max_length=64)
    comment: str | None = Field(default=None, max_length=2000)


class AllowlistEntryOut(Out):
    cidr: str
    comment: str | None
    created_by: str
    created_at: datetime


class AllowlistOut(Out):
    items: list[AllowlistEntryOut]
