"""Named ledger errors; the API maps each to a clear 4xx."""

from __future__ import annotations

from engine.core.errors import WafsmithError
from engine.schema.decision import DecisionError


class UnknownDecision(DecisionError, LookupError):
    """No decision has this id (HTTP 404)."""


class IllegalTransition(DecisionError):
    """The state machine does not allow this move, e.g. rejected → approved (HTTP 409)."""


class ConcurrentUpdate(IllegalTransition):
    """Someone else changed the decision first; reload it and decide again (HTTP 409)."""


class AllowlistedClient(DecisionError):
    """The client lies inside an allowlisted range and can never be blocked (HTTP 409)."""


class AllowlistTooWide(DecisionError):
    """The allowlist would cover more of an address family than the policy allows (HTTP 422)."""


class UnknownEntry(DecisionError, LookupError):
    """No allowlist entry or token has this key (HTTP 404)."""


class LedgerUnavailable(WafsmithError):
    """The ledger database does not answer (HTTP 503); the message names the driver's error."""
