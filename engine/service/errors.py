"""The errors the facade raises on purpose; the API maps each to one 4xx reply."""

from __future__ import annotations

from engine.core.errors import WafsmithError
from engine.decisions import (
    AllowlistedClient,
    ConcurrentUpdate,
    UnknownDecision,
    UnknownEntry,
)
from engine.decisions import (
    IllegalTransition as LedgerIllegalTransition,
)


class ServiceError(WafsmithError):
    """Base of the errors the facade raises on purpose."""


class NotFound(ServiceError, LookupError):
    """No such decision, token or allowlist entry."""


class IllegalTransition(ServiceError):
    """The decision's state machine refuses the move (e.g. rejected → approved)."""


class Conflict(ServiceError):
    """The change conflicts with current state (allowlisted client, concurrent edit)."""


class InvalidInput(ServiceError, ValueError):
    """The input cannot be used: bad CIDR, /0, bad cursor, invalid policy, ..."""


class Unavailable(ServiceError):
    """A backing store (the ledger database) does not answer."""


def translate(exc: Exception) -> ServiceError:
    """Ledger / schema errors → the facade's named errors (order matters: most specific)."""
    if isinstance(exc, UnknownDecision | UnknownEntry):
        return NotFound(str(exc))
    if isinstance(exc, AllowlistedClient | ConcurrentUpdate):
        return Conflict(str(exc))
    if isinstance(exc, LedgerIllegalTransition):
        return IllegalTransition(str(exc))
    return InvalidInput(str(exc))
