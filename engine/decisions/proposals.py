"""Proposal policy: verdicts → proposed ``Decision``s.

- One decision per client per evaluation: its verdicts combine (highest score leads, every
  detector's reasons are kept).
- The action follows the score and the client's offence history: repeat offenders climb
  ``count → challenge → block`` and get longer TTLs. The history is injected (any
  ``Callable[[str], int]`` or object with ``offences``/``record``), in memory by default.
- A gateway many humans share (NAT) is never blocked: its action is capped.
- A distributed campaign becomes ONE decision whose ``members`` are its addresses; its
  client is the exact CIDR when the members fill one network, otherwise a member as label.
- While a proposal is in force, the same client is not proposed again unless the action
  would be stronger; a campaign's later decisions carry only its new members.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from engine.schema.decision import Action, Decision
from engine.schema.verdict import ClientVerdict

RANK = {
    Action.COUNT: 0,
    Action.RATE_LIMIT: 1,
    Action.CHALLENGE: 2,
    Action.CAPTCHA: 3,
    Action.BLOCK: 4,
}


class ProposalConfig(BaseModel):
    """How verdicts become proposals."""

    model_config = ConfigDict(extra="forbid")
    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    block_score: float = 0.75  # at or above: start at the last escalation step
    challenge_score: float = 0.6
    base_ttl_s: int = Field(default=3600, gt=0)
    ttl_multiplier: float = Field(default=4.0, ge=1.0)
    max_ttl_s: int = Field(default=7 * 86400, gt=0)
    escalation: tuple[Action, ...] = (Action.COUNT, Action.CHALLENGE, Action.BLOCK)
    # Kinds confident enough to start at the top; others start at most one step lower.
    block_kinds: tuple[str, ...] = (
        "volumetric_flood",
        "distributed_flood",
        "vulnerability_scanner",
        "attack_tool",
        "injection_probe",
        "credential_stuffing",
        "distributed_credential_stuffing",
        "scraper",
        "fake_crawler",
    )
    nat_action: Action = Action.CHALLENGE
    # The strongest action a kind may reach, escalation included: a model's verdict alone
    # counts or challenges (another detector's verdict on the same client lifts the cap).
    max_action_by_kind: dict[str, Action] = Field(
        default_factory=lambda: {"anomaly": Action.CHALLENGE}
    )


class OffenceHistory(Protocol):
    def offences(self, client: str) -> int: ...

    def record(self, client: str) -> None: ...


class InMemoryOffences:
    """Offence counts per client for one process."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def offences(self, client: str) -> int:
        return self.counts.get(client, 0)

    def record(self, client: str) -> None:
        self.counts[client] = self.counts.get(client, 0) + 1


@dataclass
class _Active:
    rank: int
    expires: datetime


class ProposalPolicy:
    """Stateful across evaluations of one run: remembers what it proposed and until when."""

    def __init__(
        self,
        cfg: ProposalConfig | None = None,
        history: OffenceHistory | Callable[[str], int] | None = None,
    ) -> None:
        self.cfg = cfg or ProposalConfig()
        if history is None:
            history = InMemoryOffences()
        self._lookup = history if callable(history) else history.offences
        self._record = getattr(history, "record", None)
        # A history backed by a database can fetch one evaluation's clients in one query.
        self._prefetch = getattr(history, "prefetch", None)
        self.active: dict[str, _Active] = {}

    def propose(
        self, verdicts: Iterable[ClientVerdict], nat_clients: Iterable[str] = ()
    ) -> list[Decision]:
        nat = set(nat_clients)
        single: dict[str, list[ClientVerdict]] = {}
        out: list[Decision] = []
        for v in verdicts:
            if v.score < self.cfg.min_score:
                continue
            if v.members:
                d = self._campaign(v)
                if d is not None:
                    out.append(d)
            else:
                single.setdefault(v.client, []).append(v)
        if self._prefetch is not None:  # every evaluation: counts are never carried over
            self._prefetch(single)
        for client, vs in sorted(single.items()):
            d = self._client(client, vs, client in nat)
            if d is not None:
                out.append(d)
        return out

    def blocked(self, now: datetime) -> list[str]:
        """Clients (and campaign members) under a block proposal in force at ``now``."""
        top = RANK[Action.BLOCK]
        return [c for c, a in self.active.items() if a.rank >= top and now < a.expires]

    # --- one client ----------------------------------------------------------------------
    def _client(self, client: str, vs: list[ClientVerdict], is_nat: bool) -> Decision | None:
        now = max(v.window_end for v in vs)
        offences = self._lookup(client)
        if self._covered(client, now):  # the decision in force is not an earlier offence
            offences = max(offences - 1, 0)
        # The verdict that sets how far the decision goes leads it (names its detector, gives
        # the first reason): a rule's block over the anomaly model's capped challenge even
        # when the model scored higher; then by score.
        acts = {id(v): self._action(v, offences) for v in vs}
        vs = sorted(vs, key=lambda v: (-RANK[acts[id(v)][0]], -acts[id(v)][1], -v.score))
        lead = vs[0]
        action, ttl = acts[id(lead)]
        if is_nat and RANK[action] > RANK[self.cfg.nat_action]:
            action = self.cfg.nat_action
        if not self._fresh(client, action, now):
            return None
        reasons = [f"[{v.detector}/{v.kind} {v.score:.2f}] {r}" for v in vs for r in v.reasons]
        if offences:
            reasons.append(f"repeat offender: {offences} earlier decision(s), escalated")
        if is_nat:
            reasons.append(f"shared gateway (many browser user agents): capped at {action.value}")
        evidence = tuple(e for v in vs for e in v.evidence)[:5]
        return self._emit(client, action, ttl, lead, tuple(reasons), evidence, ())

    # --- one campaign ------------------------------------------------------------------
    def _campaign(self, v: ClientVerdict) -> Decision | None:
        now = v.window_end
        new = [m for m in v.members if not self._covered(m, now)]
        if not new:
            return None
        exact = campaign_label(new)
        label = exact if "/" in exact else v.client
        offences = self._lookup(label)
        action, ttl = self._action(v, offences)
        reasons = (
            *[f"[{v.detector}/{v.kind} {v.score:.2f}] {r}" for r in v.reasons],
            f"campaign decision over {len(new):,} addresses",
        )
        d = self._emit(label, action, ttl, v, reasons, v.evidence[:5], tuple(new))
        for m in new:
            self.active[m] = _Active(RANK[action], now + timedelta(seconds=ttl))
        return d

    # --- helpers -----------------------------------------------------------------------
    def _action(self, v: ClientVerdict, offences: int) -> tuple[Action, int]:
        steps = self.cfg.escalation
        top = len(steps) - 1
        if v.score >= self.cfg.block_score:
            base = top
        elif v.score >= self.cfg.challenge_score:
            base = max(top - 1, 0)
        else:
            base = 0
        if v.kind not in self.cfg.block_kinds:
            base = min(base, max(top - 1, 0))
        step = min(base + offences, top)
        cap = self.cfg.max_action_by_kind.get(v.kind)
        if cap is not None:
            allowed = [i for i in range(step + 1) if RANK[steps[i]] <= RANK[cap]]
            step = allowed[-1] if allowed else 0
        ttl = self.cfg.base_ttl_s * self.cfg.ttl_multiplier**offences
        return steps[step], int(min(ttl, self.cfg.max_ttl_s))

    def _covered(self, client: str, now: datetime) -> bool:
        a = self.active.get(client)
        return a is not None and now < a.expires

    def _fresh(self, client: str, action: Action, now: datetime) -> bool:
        a = self.active.get(client)
        return a is None or now >= a.expires or RANK[action] > a.rank

    def _emit(self, client, action, ttl, v, reasons, evidence, members) -> Decision:
        d = Decision(
            client=client,
            action=action,
            ttl_s=ttl,
            score=v.score,
            detector=v.detector,
            reasons=tuple(reasons),
            decided_at=v.window_end,
            confidence=round(v.score, 3),
            evidence=tuple(evidence),
            members=members,
        )
        self.active[d.client] = _Active(RANK[action], v.window_end + timedelta(seconds=ttl))
        if self._record is not None:
            self._record(d.client)
        return d


def campaign_label(members: list[str]) -> str:
    """The exact CIDR when the members fill one network (every address in it is hostile),
    else the first member."""
    try:
        addrs = sorted(
            {ipaddress.ip_address(m) for m in members}, key=lambda a: (a.version, int(a))
        )
        nets = list(ipaddress.collapse_addresses(addrs))
    except (TypeError, ValueError):
        return sorted(members)[0]
    if len(nets) == 1:
        return str(nets[0])
    return str(addrs[0])
