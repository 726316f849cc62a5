"""Rules as they would be: the compiled desired state and its dry-run plan, and backtests
(what a decision or a draft rule would have matched in the retained request history).

``RulePreviewer`` is the default previewer ``Service.from_settings`` builds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.core.clock import Clock
from engine.decisions.history import HistoryError
from engine.schema.decision import Decision, DecisionError, normalize_client
from engine.service.decisions import DecisionMethods
from engine.service.errors import InvalidInput
from engine.settings import Settings


class RuleMethods(DecisionMethods):
    """Preview the enforceable decisions as WAF rules; backtest a decision or a draft."""

    _previewer: Callable[[list[Decision], list[str]], dict[str, Any]] | None
    _backtester: Callable[..., dict[str, Any]] | None

    def preview_rules(self) -> dict[str, Any]:
        """The compiled desired state of the enforceable decisions, and the dry-run plan."""
        decisions = self.ledger.enforceable(self.now())
        allowlist = [e.cidr for e in self.ledger.allowlist()]
        if self._previewer is None:
            return {
                "desired": None,
                "plan": None,
                "decisions": len(decisions),
                "notes": ["no rule compiler is configured for this service"],
            }
        return self._previewer(decisions, allowlist)

    def backtest(
        self, *, client: str | None = None, decision_id: str | None = None, hours: float = 24.0
    ) -> dict[str, Any]:
        """What a decision (or a draft rule for ``client``) would have matched recently."""
        if (client is None) == (decision_id is None):
            raise InvalidInput("give exactly one of client or decision_id")
        if decision_id is not None:
            target = self.get_decision(decision_id).decision
        else:
            try:
                target = normalize_client(str(client))
            except DecisionError as exc:
                raise InvalidInput(str(exc)) from None
        if self._backtester is None:
            label = target.client if isinstance(target, Decision) else target
            return {
                "client": label,
                "hours": hours,
                "requests": 0,
                "clients": 0,
                "benign_clients": 0,
                "notes": ["no request history is retained by this service"],
            }
        try:
            return self._backtester(target, hours=hours)
        except HistoryError as exc:
            raise InvalidInput(str(exc)) from None


class RulePreviewer:
    """Compiles enforceable decisions and, when AWS is configured, plans a dry-run cycle.

    ``planner`` takes the compiled ``DesiredState`` and returns the enforcer's dry-run
    result as a dict; without one the preview is the compiled document only, and says so.
    """

    def __init__(
        self,
        config: Any,
        *,
        clock: Clock,
        planner: Callable[[Any], dict[str, Any]] | None = None,
        no_plan_reason: str = "no AWS endpoint or web ACL is configured: compiled document only",
    ) -> None:
        self.config = config
        self.clock = clock
        self.planner = planner
        self.no_plan_reason = no_plan_reason

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> RulePreviewer:
        from engine.compiler import config_from_dict

        enforcement = settings.enforcement
        config = config_from_dict(
            {
                "scope": enforcement.scope,
                "count_only": enforcement.mode == "count_only",
                **enforcement.compiler,
            },
            source="enforcement.compiler",
        )
        if not (settings.aws.endpoint_url or config.placement.web_acl_name):
            return cls(config, clock=clock)
        from engine.enforcer import Boto3WafV2Api, Reconciler

        region = "us-east-1" if config.scope == "CLOUDFRONT" else settings.aws.region
        wafv2 = Boto3WafV2Api(region=region, endpoint_url=settings.aws.endpoint_url)
        reconciler = Reconciler(wafv2, clock=clock)
        return cls(config, clock=clock, planner=lambda state: reconciler.plan(state).to_dict())

    def __call__(self, decisions: list[Decision], allowlist: list[str]) -> dict[str, Any]:
        from engine.compiler import compile_state, validate, with_allowlist

        config = with_allowlist(self.config, allowlist)
        state = compile_state(decisions, config, self.clock.now())
        violations = validate(state)
        notes = [f"invalid: {v}" for v in violations]
        plan = None
        if violations:
            notes.append("the document is invalid, so it was not planned against AWS")
        elif self.planner is None:
            notes.append(self.no_plan_reason)
        else:
            plan = self.planner(state)
            notes.append(
                "dry-run plan against AWS: no calls were made"
                if plan.get("ok")
                else "the dry-run plan met errors reading AWS; see plan.errors"
            )
        return {
            "desired": state.to_dict(),
            "plan": plan,
            "decisions": len(decisions),
            "notes": notes,
        }
