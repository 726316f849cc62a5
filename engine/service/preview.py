"""Rules as they would be: the compiled desired state and its dry-run plan, and backtests
(what a decision or a draft rule would have matched in the retained request history).

The default previewer ``Service.from_settings`` builds is ``engine.enforcement.RulePreviewer``,
which compiles and plans exactly as the engine enforces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.decisions.history import HistoryError
from engine.schema.decision import Decision, DecisionError, normalize_client
from engine.service.decisions import DecisionMethods
from engine.service.errors import InvalidInput


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
