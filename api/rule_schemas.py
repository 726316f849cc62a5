"""Typed shapes of the rule preview: the compiled desired WAF state and its dry-run plan.

They mirror ``DesiredState.to_dict`` (``engine.schema.rule``) and ``CycleResult.to_dict``
(the enforcer's cycle) field by field, so the OpenAPI document says what a preview holds.
Rule statements and call counters keep their WAFv2-shaped JSON (``dict``) inside.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IPSetOut(_Out):
    name: str
    addresses: list[str]
    category: str
    description: str
    ip_version: str
    scope: str


class RuleOut(BaseModel):
    """One engine-owned rule; ``kind`` says which (``ip_set``, ``rate``, ...) and which
    further WAFv2 fields it carries."""

    model_config = ConfigDict(extra="allow")

    kind: str
    name: str
    priority: int
    action: str
    category: str | None = None


class PlacementOut(_Out):
    mode: Literal["rule_group", "web_acl"]
    scope: str
    web_acl_name: str | None
    rule_group_name: str
    rule_group_capacity: int
    priority_min: int
    priority_max: int
    web_acl_wcu_budget: int


class ShieldProtectionOut(_Out):
    name: str
    resource_arn: str
    auto_response: str | None = None


class ShieldOut(_Out):
    enabled: bool
    protections: list[ShieldProtectionOut]


class OverflowOut(_Out):
    """A decision that could not be enforced in the WAF (over capacity, bad address, ...)."""

    client: str
    category: str
    reason: str
    score: float
    decided_at: str
    decision_ids: list[str]
    detail: str


class DesiredStateOut(_Out):
    version: int
    generated_at: str
    owner_prefix: str
    count_only: bool
    ip_sets: list[IPSetOut]
    rules: list[RuleOut]
    placement: PlacementOut
    shield: ShieldOut
    overflow: list[OverflowOut]
    requests: dict[str, Any] | None = Field(
        description="the WAFv2 request bodies the document compiles to"
    )


class PlanStepOut(_Out):
    phase: str
    operation: str
    resource: str
    reason: str
    detail: Any
    status: str


class PlanErrorOut(_Out):
    resource: str | None
    operation: str | None
    code: str | None
    message: str
    field: str | None = None


class PlanOut(_Out):
    """The dry-run cycle: what the enforcer would call, per step, and the drift it found."""

    mode: str
    ok: bool
    started_at: str | None
    finished_at: str | None
    writes: int
    calls: dict[str, Any]
    plan: list[PlanStepOut]
    entries: dict[str, int]
    drift: dict[str, Any]
    errors: list[PlanErrorOut]
    shield: dict[str, Any]
    next_expiry: str | None
