"""Approval policy: what may be approved without a human, how much at once, and for how long.

The policy is one JSON document stored (versioned) in the ledger and changed by an admin
through ``Ledger.set_policy``. ``apply_policy`` runs it over a batch of stored proposals:
proposals an auto-approve rule covers are approved as ``policy:<rule>``, except when the
push is larger than ``max_new_entries_per_push`` or would block more than
``max_blocked_share`` of the active clients (the blast-radius guard); those wait for an
analyst. Allowlisted clients are never approved, whatever approves them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.decisions.ledger_rows import AllowedRange
from engine.schema.decision import Action, Decision, DecisionError, Status

# 1/64 of a family's space: room for every internal range operators allowlist at once (IPv4:
# 10/8, 172.16/12, 192.168/16, 100.64/10, 127/8 and 169.254/16 are 0.92 %; IPv6: fc00::/7 and
# fe80::/10 are 0.88 %), while a set that would switch the WAF off for a real part of the
# Internet — 0.0.0.0/1 + 128.0.0.0/1, or any /5 — is refused.
DEFAULT_MAX_ALLOWLIST_SHARE = 1 / 64

# Upper bounds of the policy's numbers and lists: far above any sane policy, low enough that
# no value overflows a timestamp, a database integer or a page (an API input never gives 500).
MAX_TTL_S = 365 * 86_400
MAX_OFFENCES = 10_000
MAX_LIST = 100
DetectorName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]

# Actions that stop a client's traffic (count only observes).
BLOCKING_ACTIONS = frozenset({Action.BLOCK, Action.RATE_LIMIT, Action.CHALLENGE, Action.CAPTCHA})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Detectors whose proposals no policy approves, whatever its rules say: a verified crawler
# (published networks) misbehaving by its own standards is an analyst's call, never a robot's.
HUMAN_ONLY_DETECTORS = ("crawler_conduct",)


class AutoApproveRule(_Model):
    """Proposals this rule covers are approved by ``policy:<name>`` without a human.

    A proposal is covered when its detector is listed (``"*"`` for any), its action is
    listed, and its score and confidence reach the minima.
    """

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    detectors: list[DetectorName] = Field(min_length=1, max_length=MAX_LIST)
    actions: list[Action] = Field(default_factory=lambda: list(Action), max_length=MAX_LIST)
    min_score: float = Field(0.9, ge=0.0, le=1.0)
    min_confidence: float = Field(0.0, ge=0.0, le=1.0)

    def covers(self, decision: Decision) -> bool:
        return (
            ("*" in self.detectors or decision.detector in self.detectors)
            and decision.action in self.actions
            and decision.score >= self.min_score
            and decision.confidence >= self.min_confidence
        )


class EscalationStep(_Model):
    """From ``offences`` past enforced decisions on, a client gets ``action`` for ``ttl_s``."""

    offences: int = Field(ge=0, le=MAX_OFFENCES)
    action: Action
    ttl_s: int = Field(gt=0, le=MAX_TTL_S)


def _default_ladder() -> list[EscalationStep]:
    return [
        EscalationStep(offences=0, action=Action.CHALLENGE, ttl_s=3_600),
        EscalationStep(offences=1, action=Action.BLOCK, ttl_s=6 * 3_600),
        EscalationStep(offences=3, action=Action.BLOCK, ttl_s=7 * 86_400),
    ]


def _default_ttls() -> dict[Action, int]:
    return {
        Action.BLOCK: 3_600,
        Action.RATE_LIMIT: 3_600,
        Action.CHALLENGE: 3_600,
        Action.CAPTCHA: 3_600,
        Action.COUNT: 86_400,
    }


class Policy(_Model):
    """The admin's policy document (``version`` is assigned by the ledger on save)."""

    version: int = Field(0, ge=0, le=2**31 - 1)
    auto_approve: list[AutoApproveRule] = Field(default_factory=list, max_length=MAX_LIST)
    max_new_entries_per_push: int = Field(100, ge=0, le=10_000)
    max_blocked_share: float = Field(0.05, gt=0.0, le=1.0)
    blast_radius_floor: int = Field(
        5,
        ge=0,
        le=10_000_000,
        description="A push blocking at most this many clients is never held by share.",
    )
    escalation: list[EscalationStep] = Field(
        default_factory=_default_ladder, min_length=1, max_length=MAX_LIST
    )
    offence_window_s: int = Field(30 * 86_400, gt=0, le=MAX_TTL_S)
    ttl_s: dict[Action, int] = Field(default_factory=_default_ttls)
    max_ttl_s: int = Field(30 * 86_400, gt=0, le=MAX_TTL_S)
    max_allowlist_share: float = Field(
        DEFAULT_MAX_ALLOWLIST_SHARE,
        gt=0.0,
        le=1.0,
        description="The allowlist together may cover at most this share of the IPv4 space, "
        "and of the IPv6 space; a range that would take it further is refused.",
    )

    @field_validator("auto_approve")
    @classmethod
    def _unique_rule_names(cls, rules: list[AutoApproveRule]) -> list[AutoApproveRule]:
        names = [r.name for r in rules]
        if len(names) != len(set(names)):
            raise ValueError(f"auto_approve rule names must be unique, got {names}")
        return rules

    @field_validator("escalation")
    @classmethod
    def _ladder_ordered(cls, steps: list[EscalationStep]) -> list[EscalationStep]:
        offences = [s.offences for s in steps]
        if offences[0] != 0 or offences != sorted(set(offences)):
            raise ValueError(
                f"escalation steps must start at offences=0 and strictly increase, got {offences}"
            )
        return steps

    @model_validator(mode="after")
    def _ttls_within_max(self) -> Policy:
        for action, ttl in self.ttl_s.items():
            if not 0 < ttl <= self.max_ttl_s:
                raise ValueError(f"ttl_s[{action.value}]={ttl} must be within 1..max_ttl_s")
        for step in self.escalation:
            if step.ttl_s > self.max_ttl_s:
                raise ValueError(f"escalation ttl_s={step.ttl_s} exceeds max_ttl_s")
        return self

    def escalation_step(self, offences: int) -> EscalationStep:
        """The ladder step for a client with ``offences`` past enforced decisions."""
        chosen = self.escalation[0]
        for step in self.escalation:
            if offences >= step.offences:
                chosen = step
        return chosen

    def ttl_for(self, action: Action) -> int:
        """The default TTL of a decision with ``action``."""
        return self.ttl_s.get(Action(action), self.max_ttl_s)

    def rule_for(self, decision: Decision) -> AutoApproveRule | None:
        """The first auto-approve rule covering ``decision``, if any."""
        return next((r for r in self.auto_approve if r.covers(decision)), None)


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    """What one ``apply_policy`` run did: approved decisions, held ones and why."""

    approved: list[Decision] = field(default_factory=list)
    held: list[Decision] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # decision id → why it was held


class PolicyLedger(Protocol):
    """What ``apply_policy`` needs from a ledger (``engine.decisions.Ledger`` is one).

    Declared here rather than importing ``Ledger``, which stores ``Policy`` documents and so
    imports this module: the policy depends on this narrow interface, not on the ledger.
    """

    def policy(self) -> Policy: ...

    def allowlist_networks(self) -> list[AllowedRange]: ...

    def allowlisted(self, decision: Decision, *, networks: list[AllowedRange]) -> str | None: ...

    def propose_many(self, decisions: Iterable[Decision]) -> list[Decision]: ...

    def approve(self, decision_id: str, *, by: str, comment: str | None) -> Decision: ...


def _blocked_clients(decision: Decision) -> int:
    return max(len(decision.members), 1) if decision.action in BLOCKING_ACTIONS else 0


def apply_policy(
    ledger: PolicyLedger, proposals: Iterable[Decision], *, active_clients: int, now: datetime
) -> PolicyOutcome:
    """Auto-approve the proposals the ledger's policy covers; hold the rest for an analyst.

    Proposals without an id are stored first (``ledger.propose_many``; duplicates merge and
    count once). Proposals no rule covers
    are held with that reason; when the covered ones exceed ``max_new_entries_per_push`` the
    surplus (lowest scores) is held; when they would block more than ``max_blocked_share`` of
    ``active_clients`` (and more than ``blast_radius_floor``) the whole push is held.
    """
    if active_clients < 0:
        raise DecisionError(f"active_clients must be >= 0, got {active_clients}")
    pol = ledger.policy()
    allow = ledger.allowlist_networks()
    given = list(proposals)
    fresh = ledger.propose_many([p for p in given if p.id is None])
    by_id = {d.id: d for d in (*[p for p in given if p.id is not None], *fresh)}
    stored = list(by_id.values())  # duplicates merged into one decision count once
    held: list[Decision] = []
    reasons: dict[str, str] = {}
    covered: list[tuple[Decision, AutoApproveRule]] = []
    for decision in stored:
        assert decision.id is not None
        rule = pol.rule_for(decision)
        hit = ledger.allowlisted(decision, networks=allow)
        if decision.status is not Status.PROPOSED:
            reasons[decision.id] = f"already {decision.status.value}"
        elif decision.expires_at <= now:
            reasons[decision.id] = "expired before approval"
        elif hit is not None:
            reasons[decision.id] = f"client is allowlisted ({hit})"
        elif decision.is_rule:  # one rule on a path meets every client: an analyst decides
            reasons[decision.id] = "rule-level decision: an analyst decides"
        elif decision.detector in HUMAN_ONLY_DETECTORS:
            reasons[decision.id] = f"{decision.detector}: a verified crawler, an analyst decides"
        elif rule is None:
            reasons[decision.id] = "no auto-approve rule covers it"
        else:
            covered.append((decision, rule))
            continue
        held.append(decision)
    covered.sort(key=lambda pair: (-pair[0].score, -pair[0].confidence, pair[0].client))
    cap = pol.max_new_entries_per_push
    for decision, _rule in covered[cap:]:
        held.append(decision)
        reasons[str(decision.id)] = f"over max_new_entries_per_push={cap}"
    covered = covered[:cap]
    blocked = sum(_blocked_clients(d) for d, _ in covered)
    limit = pol.max_blocked_share * active_clients
    if blocked > pol.blast_radius_floor and blocked > limit:
        why = (
            f"blast-radius guard: push would block {blocked} of {active_clients} active clients "
            f"(> {pol.max_blocked_share:.1%})"
        )
        for decision, _rule in covered:
            held.append(decision)
            reasons[str(decision.id)] = why
        covered = []
    approved = [
        ledger.approve(
            str(decision.id),
            by=f"policy:{rule.name}",
            comment=f"auto-approved by policy v{pol.version} rule {rule.name!r}",
        )
        for decision, rule in covered
    ]
    return PolicyOutcome(approved=approved, held=held, reasons=reasons)
