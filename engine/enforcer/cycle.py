"""One reconciliation cycle's working state: mode, planned steps, errors, drift, call stats.

Phases (``ipsets``, ``rules``, ``shield``) add ``Step`` records and run them through
``Cycle.run_step``, which makes no call in dry-run, records every failure as a ``CycleError``
(with the AWS code and, for invalid parameters, the offending field) and never hides one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError

from engine.core.clock import Clock
from engine.core.errors import WafsmithError
from engine.enforcer.aws_clients import ShieldApi, WafV2Api
from engine.enforcer.calls import Caller, EnforcerCallError, InvalidParameterError, LockConflict
from engine.enforcer.drift import DriftReport
from engine.enforcer.state import ActualIPSet, ActualRuleGroup, ActualWebAcl
from engine.schema.rule import DesiredState


class Mode(enum.StrEnum):
    """``dry_run``: plan only; ``count_only``: enforce a document compiled count-only (every
    engine rule in Count, rendered so by the compiler); ``enforce``."""

    ENFORCE = "enforce"
    DRY_RUN = "dry_run"
    COUNT_ONLY = "count_only"


@dataclass
class Step:
    """One AWS write the cycle plans (and, unless dry-run, makes)."""

    phase: str
    operation: str
    resource: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)
    status: str = "planned"  # planned | applied | converged | failed | skipped

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "operation": self.operation,
            "resource": self.resource,
            "reason": self.reason,
            "detail": self.detail,
            "status": self.status,
        }


@dataclass(frozen=True)
class CycleError:
    resource: str
    operation: str
    code: str
    message: str
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "resource": self.resource,
            "operation": self.operation,
            "code": self.code,
            "message": self.message,
        }
        if self.field is not None:
            out["field"] = self.field
        return out


class Cycle:
    """Everything one cycle knows; phases read and fill it."""

    def __init__(
        self,
        *,
        wafv2: WafV2Api,
        shield: ShieldApi | None,
        caller: Caller,
        desired: DesiredState,
        mode: Mode,
        clock: Clock,
        lock_attempts: int,
        prior_failures: frozenset[str],
    ) -> None:
        if desired.requests is None:
            raise ValueError("the desired state carries no rendered requests; compile it")
        if mode is Mode.COUNT_ONLY and not desired.count_only:
            raise ValueError(
                "count_only mode enforces a document compiled count-only (count_only = true); "
                "the enforcer does not rewrite the compiler's actions"
            )
        self.wafv2 = wafv2
        self.shield = shield
        self.caller = caller
        self.desired = desired
        self.mode = mode
        self.clock = clock
        self.lock_attempts = lock_attempts
        self.prior_failures = prior_failures
        self.scope = desired.placement.scope
        self.prefix = desired.owner_prefix
        self.requests = desired.requests  # what is sent, placeholders filled in
        self.ip_set_requests = {r["Name"]: r for r in desired.requests.ip_sets}
        self.steps: list[Step] = []
        self.errors: list[CycleError] = []
        self.drift = DriftReport(checked_at=clock.now().isoformat().replace("+00:00", "Z"))
        self.arns: dict[str, str] = {}
        self.entries: dict[str, int] = {}
        self.owned_sets: dict[str, ActualIPSet] = {}
        self.duplicate_sets: list[ActualIPSet] = []
        self.blocked_names: set[str] = set()  # desired names held by foreign objects
        self.owned_groups: dict[str, ActualRuleGroup] = {}
        self.duplicate_groups: list[ActualRuleGroup] = []
        self.web_acl: ActualWebAcl | None = None
        self.shield_status: dict[str, Any] = {"enabled": desired.shield.enabled}

    @property
    def dry_run(self) -> bool:
        return self.mode is Mode.DRY_RUN

    def fail(self, resource: str, operation: str, exc: BaseException) -> None:
        """Record a failure (never hidden: the cycle reports ``ok=False``)."""
        if isinstance(exc, InvalidParameterError):
            error = CycleError(resource, operation, exc.code, str(exc), exc.field)
        elif isinstance(exc, EnforcerCallError):
            error = CycleError(resource, operation, exc.code, str(exc))
        else:
            error = CycleError(resource, operation, type(exc).__name__, str(exc))
        self.errors.append(error)

    def run_step(self, step: Step, action: Callable[[], str | None]) -> bool:
        """Plan ``step``; unless dry-run, run ``action`` (returns a final status or None)."""
        self.steps.append(step)
        if self.dry_run:
            return True
        try:
            step.status = action() or "applied"
        except (WafsmithError, BotoCoreError) as exc:
            step.status = "failed"
            self.fail(step.resource, step.operation, exc)
            return False
        return True

    def guard(self, resource: str, operation: str, action: Callable[[], None]) -> bool:
        """Run a read or planning action, recording its failure; True when it succeeded."""
        try:
            action()
        except (WafsmithError, BotoCoreError) as exc:
            self.fail(resource, operation, exc)
            return False
        return True

    def backoff(self, attempt: int) -> None:
        self.clock.sleep(self.caller.policy.backoff(attempt))

    def delete_owned(
        self,
        operation: str,
        delete: Callable[..., dict[str, Any]],
        item: ActualIPSet | ActualRuleGroup,
        refetch: Callable[[], object],
    ) -> str:
        """Delete an engine-owned IP set or rule group by its LockToken. A lock conflict re-reads
        it (``refetch`` renews the token) and retries, bounded; one already gone has converged."""
        for attempt in range(1, self.lock_attempts + 1):
            try:
                self.caller.write(
                    operation,
                    delete,
                    Name=item.name,
                    Scope=self.scope,
                    Id=item.id,
                    LockToken=item.lock_token,
                )
                return "applied"
            except LockConflict:
                if attempt == self.lock_attempts:
                    raise
                self.backoff(attempt)
                refetch()
            except EnforcerCallError as exc:
                if exc.code == "WAFNonexistentItemException":
                    return "converged"
                raise
        raise AssertionError("unreachable")
