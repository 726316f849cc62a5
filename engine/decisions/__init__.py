"""Decisions stage: the ledger (state machine, audit, allowlist, tokens), policy and backtest.

``Ledger`` is the source of truth for what is enforced; ``apply_policy`` approves what the
admin's policy allows; ``backtest`` says what a decision or draft rule would have matched in
the retained request history.
"""

from engine.decisions.backtest import Backtester, BacktestResult, RuleDraft, backtest
from engine.decisions.errors import (
    AllowlistedClient,
    ConcurrentUpdate,
    IllegalTransition,
    UnknownDecision,
    UnknownEntry,
)
from engine.decisions.history import HistoryError, RequestHistory
from engine.decisions.lease import DatabaseLease
from engine.decisions.ledger import Ledger
from engine.decisions.policy import (
    AutoApproveRule,
    EscalationStep,
    Policy,
    PolicyOutcome,
    apply_policy,
)
from engine.decisions.records import AllowlistEntry, AuditEvent, LedgerEntry, Page, StatusDoc
from engine.decisions.tokens import Role, TokenRecord

__all__ = [
    "AllowlistEntry",
    "AllowlistedClient",
    "AuditEvent",
    "AutoApproveRule",
    "BacktestResult",
    "Backtester",
    "ConcurrentUpdate",
    "DatabaseLease",
    "EscalationStep",
    "HistoryError",
    "IllegalTransition",
    "Ledger",
    "LedgerEntry",
    "Page",
    "Policy",
    "PolicyOutcome",
    "RequestHistory",
    "Role",
    "RuleDraft",
    "StatusDoc",
    "TokenRecord",
    "UnknownDecision",
    "UnknownEntry",
    "apply_policy",
    "backtest",
]
