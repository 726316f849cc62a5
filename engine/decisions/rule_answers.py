"""Rule-level answers: one WAF rule on the attacked path for a campaign addresses cannot stop.

A distributed campaign (``distributed_stuffing``, ``login_surge``, ``distributed_flood``)
becomes one decision whose ``members`` are its addresses. When those members are too many
(more than ``max_members``) or too short-lived (most sent at most ``short_lived_max_requests``
requests, as residential proxies do), an IP set is the wrong answer: the next attempt comes
from a fresh address. ``propose_rule_answer`` then proposes ONE rule-level decision on the
path the members attacked:

1. the scope: the members' most-hit (method, path) in the retained history, and their host
   when nearly all of it went to one;
2. the limit: the busiest ``window_s`` of benign traffic on that scope (before the campaign
   began and ``baseline_gap_min`` before the decision, its members left out), times
   ``headroom``, at least WAF's minimum of 10 — so ordinary peaks pass;
3. the backtest (``engine.decisions.backtest``): what the rule would have acted on over the
   history, and how many benign-looking clients among them. A rule that would never have
   acted on the campaign is not proposed.

The proposal is like any decision — TTL, approval, expiry — except that the policy never
auto-approves it: a rule on a path meets every client, so an analyst decides.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from engine.decisions.backtest import BacktestResult, BenignClients, backtest
from engine.decisions.history import RequestHistory
from engine.schema.decision import Action, Decision, RuleAnswer
from engine.schema.request import CLIENT_IP, EVENT_TIME, HOST, METHOD, PATH
from engine.schema.waf_limits import RATE_LIMIT_MIN, RateWindow

CAMPAIGN_DETECTORS = ("distributed_stuffing", "login_surge", "distributed_flood")


class RuleAnswerConfig(BaseModel):
    """When a campaign gets a rule instead of (or beside) its address decision, and how the
    rule is shaped. Thresholds are data: the settings' ``[rule_answers]`` table loads here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    detectors: tuple[str, ...] = CAMPAIGN_DETECTORS
    min_members: int = Field(20, ge=1)  # smaller campaigns are blocked by address
    max_members: int = Field(1000, ge=1)  # more members than this: always a rule
    short_lived_max_requests: int = Field(2, ge=1)  # a member this quiet is short-lived...
    short_lived_share: float = Field(0.5, gt=0.0, le=1.0)  # ... and this share of them suffices
    lookback_min: int = Field(60, ge=1)  # the members' traffic read for the scope
    baseline_gap_min: float = Field(30.0, ge=0)  # benign peak: traffic this long before it
    history_hours: float = Field(24.0, gt=0, le=24 * 31)  # benign peak and backtest span
    kind: Literal["rate_based", "challenge", "captcha"] = "rate_based"
    window_s: RateWindow = 300
    aggregate: Literal["CONSTANT", "IP"] = "CONSTANT"  # members are too quiet for per-IP
    headroom: float = Field(2.0, ge=1.0)  # limit = benign peak per window × headroom
    action: Literal["block", "challenge", "captcha", "count"] = "block"
    host_share: float = Field(0.9, gt=0.5, le=1.0)  # scope on the host above this share
    keep_address_decision: bool = True  # propose the rule beside the address decision
    cooldown_min: float = Field(10.0, ge=0)  # one proposal per detector this often (engine loop)


@dataclass(frozen=True, slots=True)
class RuleProposal:
    """A rule-level proposal and the backtest it was judged on."""

    decision: Decision
    backtest: BacktestResult
    benign_peak: int  # benign requests in the busiest window (per key) on the scope


def needs_rule(campaign: Decision, per_member: Counter[str], cfg: RuleAnswerConfig) -> str | None:
    """Why addresses cannot answer ``campaign`` (None when they can)."""
    n = len(campaign.members)
    if campaign.detector not in cfg.detectors or n < cfg.min_members:
        return None
    if n > cfg.max_members:
        return f"{n:,} members, more than {cfg.max_members:,} addresses can answer"
    quiet = sum(1 for m in campaign.members if per_member.get(m, 0) <= cfg.short_lived_max_requests)
    if quiet >= cfg.short_lived_share * n:
        return (
            f"{quiet:,} of {n:,} members sent at most {cfg.short_lived_max_requests} request(s) "
            f"in {cfg.lookback_min} min: the next attempt comes from a new address"
        )
    return None


def propose_rule_answer(
    campaign: Decision,
    history: RequestHistory,
    cfg: RuleAnswerConfig | None = None,
    *,
    now: datetime | None = None,
    benign_clients: BenignClients = None,
) -> RuleProposal | None:
    """The rule-level proposal for ``campaign`` (see the module docstring), or None."""
    cfg = cfg or RuleAnswerConfig()
    if not cfg.enabled or not campaign.members or campaign.is_rule:
        return None
    until = now or history.clock.now()
    members = pa.array(sorted(set(campaign.members)), pa.string())
    recent = history.read(
        since=until - timedelta(minutes=cfg.lookback_min),
        until=until,
        columns=[EVENT_TIME, CLIENT_IP, METHOD, HOST, PATH],
    )
    mine = recent.filter(pc.fill_null(pc.is_in(recent.column(CLIENT_IP), members), False))
    per_member = Counter(mine.column(CLIENT_IP).to_pylist())
    why = needs_rule(campaign, per_member, cfg)
    if why is None or mine.num_rows == 0:
        return None
    rule = _scope(mine, cfg)
    past = history.read(
        since=until - timedelta(hours=cfg.history_hours),
        until=until,
        columns=[EVENT_TIME, CLIENT_IP, METHOD, HOST, PATH],
    )
    in_scope = _in_scope(past, rule)
    # Benign traffic: the scope before the campaign, its members left out. "Before" ends at
    # the members' first request and at least ``baseline_gap_min`` before the decision: the
    # campaign's addresses the detectors named in earlier batches were already at work.
    began = min(
        pc.min(mine.column(EVENT_TIME)).as_py(),
        campaign.decided_at - timedelta(minutes=cfg.baseline_gap_min),
    )
    before = pc.less(
        in_scope.column(EVENT_TIME), pa.scalar(began, in_scope.schema.field(EVENT_TIME).type)
    )
    outsider = pc.invert(pc.fill_null(pc.is_in(in_scope.column(CLIENT_IP), members), False))
    benign = in_scope.filter(pc.fill_null(pc.and_(before, outsider), False))
    peak = _peak(benign, cfg)
    if cfg.kind == "rate_based":
        limit = max(RATE_LIMIT_MIN, math.ceil(peak * cfg.headroom))
        rule = RuleAnswer(
            **{
                **rule.to_dict(),
                "limit": limit,
                "window_s": cfg.window_s,
                "aggregate": cfg.aggregate,
            }
        )
    action = cfg.action if cfg.kind == "rate_based" else cfg.kind
    draft = _decision(campaign, rule, Action(action), why, peak, cfg)
    result = backtest(
        draft, history, hours=cfg.history_hours, benign_clients=benign_clients, now=until
    )
    hits = result.over_limit
    if hits is not None and hits.requests == 0:
        return None  # the limit sits above everything the campaign sent: nothing to gain
    cost = hits if hits is not None else result
    acted = cost.requests if hits is not None else result.requests_matched
    clients = cost.clients if hits is not None else result.distinct_clients
    reasons = (
        *draft.reasons,
        f"backtest over {cfg.history_hours:g} h: the rule would have acted on {acted:,} "
        f"request(s) from {clients:,} client(s), {cost.benign_looking_clients:,} of them "
        f"benign-looking",
    )
    return RuleProposal(
        decision=Decision(**{**_fields(draft), "reasons": reasons}),
        backtest=result,
        benign_peak=peak,
    )


def rule_answers(
    proposals: list[Decision],
    history: RequestHistory,
    cfg: RuleAnswerConfig | None = None,
    *,
    now: datetime | None = None,
) -> list[Decision]:
    """``proposals`` and, per campaign detector, one rule-level proposal when its campaign
    decisions of this batch (their members together) need one. The address decisions stay
    unless ``keep_address_decision`` is off."""
    cfg = cfg or RuleAnswerConfig()
    if not cfg.enabled:
        return list(proposals)
    campaigns: dict[str, list[Decision]] = {}
    for p in proposals:
        if p.members and not p.is_rule and p.detector in cfg.detectors:
            campaigns.setdefault(p.detector, []).append(p)
    answered: set[str] = set()
    rules: list[Decision] = []
    for detector, group in campaigns.items():
        lead = max(group, key=lambda d: (d.score, d.decided_at))
        members = tuple(dict.fromkeys(m for d in group for m in d.members))
        whole = Decision(**{**_fields(lead), "members": members, "id": None})
        answer = propose_rule_answer(whole, history, cfg, now=now)
        if answer is not None:
            rules.append(answer.decision)
            answered.add(detector)
    kept = [
        p
        for p in proposals
        if cfg.keep_address_decision or not (p.members and p.detector in answered)
    ]
    return kept + rules


class RuleAnswerer:
    """The engine loop's hook: ``rule_answers`` over each batch of proposals, at most once per
    campaign detector every ``cooldown_min`` (a campaign's later batches carry only its new
    members; the ledger merges a repeated proposal for the same scope anyway)."""

    def __init__(self, history: RequestHistory, cfg: RuleAnswerConfig | None = None) -> None:
        self.history = history
        self.cfg = cfg or RuleAnswerConfig()
        self.answered_at: dict[str, datetime] = {}

    def __call__(self, proposals: list[Decision], now: datetime) -> list[Decision]:
        cooldown = timedelta(minutes=self.cfg.cooldown_min)
        quiet = {
            d for d, at in self.answered_at.items() if now - at < cooldown
        }  # detectors answered recently
        fresh = [p for p in proposals if p.detector not in quiet]
        rest = [p for p in proposals if p.detector in quiet]
        out = rule_answers(fresh, self.history, self.cfg, now=now)
        for d in out:
            if d.is_rule:
                self.answered_at[d.detector] = now
        return out + rest


# -- helpers --------------------------------------------------------------------------------


def _scope(mine: pa.Table, cfg: RuleAnswerConfig) -> RuleAnswer:
    """The members' most-hit (method, path), and their host when it dominates."""
    methods = pc.utf8_upper(pc.fill_null(mine.column(METHOD), "")).to_pylist()
    paths = pc.fill_null(mine.column(PATH), "/").to_pylist()
    (method, path), _n = Counter(zip(methods, paths, strict=True)).most_common(1)[0]
    hosts = Counter(
        h.lower()
        for h, m, p in zip(mine.column(HOST).to_pylist(), methods, paths, strict=True)
        if h and m == method and p == path
    )
    host = None
    if hosts:
        top, n = hosts.most_common(1)[0]
        host = top if n >= cfg.host_share * sum(hosts.values()) else None
    kind = cfg.kind
    placeholder = {"limit": RATE_LIMIT_MIN, "window_s": cfg.window_s, "aggregate": "CONSTANT"}
    return RuleAnswer(
        kind=kind,
        path=path if path.startswith("/") else "/" + path,
        method=method or None,
        host=host,
        **(placeholder if kind == "rate_based" else {}),
    )


def _in_scope(table: pa.Table, rule: RuleAnswer) -> pa.Table:
    mask = pc.equal(table.column(PATH), rule.path)
    if rule.method:
        mask = pc.and_(mask, pc.equal(pc.utf8_upper(table.column(METHOD)), rule.method))
    if rule.host:
        mask = pc.and_(mask, pc.equal(pc.utf8_lower(table.column(HOST)), rule.host))
    return table.filter(pc.fill_null(mask, False))


def _peak(benign: pa.Table, cfg: RuleAnswerConfig) -> int:
    """Benign requests in the busiest window (per client when the rule counts per IP)."""
    if benign.num_rows == 0:
        return 0
    ms = pc.cast(benign.column(EVENT_TIME), pa.timestamp("ms")).cast(pa.int64())
    bucket = ms.to_numpy(zero_copy_only=False) // (cfg.window_s * 1000)
    if cfg.aggregate == "IP":
        keys = list(zip(benign.column(CLIENT_IP).to_pylist(), bucket.tolist(), strict=True))
        return max(Counter(keys).values())
    return int(np.unique(bucket, return_counts=True)[1].max())


def _decision(
    campaign: Decision,
    rule: RuleAnswer,
    action: Action,
    why: str,
    peak: int,
    cfg: RuleAnswerConfig,
) -> Decision:
    limit = (
        f"at most {rule.limit} requests per {rule.window_s} s "
        f"{'in all' if rule.aggregate == 'CONSTANT' else 'per address'}"
        if rule.kind == "rate_based"
        else f"a {rule.kind} on every request"
    )
    reasons = (
        f"rule-level answer to {campaign.detector} campaign {campaign.client}: {why}",
        f"scope {rule.scope}: {limit}; benign peak {peak} request(s) per {cfg.window_s} s "
        f"× headroom {cfg.headroom:g}",
        *campaign.reasons,
    )
    return Decision(
        client=rule.subject,
        action=action,
        ttl_s=campaign.ttl_s,
        score=campaign.score,
        detector=campaign.detector,
        reasons=reasons,
        decided_at=campaign.decided_at,
        confidence=campaign.confidence,
        evidence=campaign.evidence,
        members=campaign.members,
        rule=rule,
    )


def _fields(d: Decision) -> dict:
    return {name: getattr(d, name) for name in d.__dataclass_fields__}
