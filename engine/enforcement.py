"""One enforcement path: settings → compiler config → reconciler, and "enforce once".

The engine loop (``EngineRunner.enforce``), ``wafsmith enforce --once`` and the rule preview
(``RulePreviewer``) are all built here, so they compile with the same configuration, reach
the same web ACL in the same Region through the same Shield API, and report the same way.
Enforcing once is:

1. compile the enforceable decisions, minus the ledger's allowlist;
2. validate the document: when it breaks a WAFv2 constraint nothing is sent;
3. run a reconciliation cycle, or plan it (dry run);
4. publish the enforcement status (``write_status``, its only writer, with the
   ``engine.status.EnforcementStatus`` record the status API reads);
5. mark the decisions the document enforces applied (enforce mode, converged cycle only).

With many engines on one ledger only the holder of the enforcer lease enforces
(``engine.decisions.lease``): its ``fence`` is checked before every AWS write (by the
reconciler), before the status is published, and in the transaction that marks applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from engine.compiler import (
    CompilerConfig,
    Violation,
    compile_state,
    config_from_dict,
    enforced_decision_ids,
    validate,
    with_allowlist,
)
from engine.core.clock import Clock
from engine.core.lease import Fence
from engine.decisions import Ledger
from engine.enforcer import (
    Boto3ShieldApi,
    Boto3WafV2Api,
    CallPolicy,
    CycleResult,
    Mode,
    Reconciler,
    RecordingShieldFake,
    ShieldApi,
    WafV2Api,
    next_expiry,
)
from engine.schema.decision import Decision, Status
from engine.schema.rule import DesiredState
from engine.settings import Settings
from engine.status import EnforcementStatus, StatusStore
from engine.status import publish as publish_record

APPLIED_BY = "enforcer"  # the actor recorded when decisions move approved → applied
CLOUDFRONT_REGION = "us-east-1"
NO_PLAN_REASON = "no AWS endpoint or web ACL is configured: compiled document only"

ShieldKind = Literal["aws", "fake"]


# -- configuration ----------------------------------------------------------------------------


def waf_region(scope: str, region: str) -> str:
    """The Region of the WAFv2 API: CLOUDFRONT-scope WAF lives in us-east-1, whatever Region
    the logs or the engine are in."""
    return CLOUDFRONT_REGION if scope == "CLOUDFRONT" else region


def compiler_config(settings: Settings, *, source: str = "enforcement") -> CompilerConfig:
    """The compiler config the engine enforces with: the ``[enforcement]`` table's scope,
    then its ``[enforcement.compiler]`` table (``source`` names it in errors), then the
    table's web ACL and count-only mode, which win (``mode = "count_only"`` always counts)."""
    enforcement = settings.enforcement
    data: dict[str, Any] = {"scope": enforcement.scope, **enforcement.compiler}
    if enforcement.mode == "count_only":
        data["count_only"] = True
    if enforcement.web_acl_name:
        data["placement"] = {**data.get("placement", {}), "web_acl_name": enforcement.web_acl_name}
    return config_from_dict(data, source=source)


def enforcement_mode(config: CompilerConfig, *, dry_run: bool) -> Mode:
    """A dry run plans; a count-only document is enforced in count-only mode (its decisions
    are not marked applied); anything else is enforced."""
    if dry_run:
        return Mode.DRY_RUN
    return Mode.COUNT_ONLY if config.count_only else Mode.ENFORCE


def reaches_aws(settings: Settings, config: CompilerConfig) -> bool:
    """Whether enforcement has somewhere to go: a web ACL to converge, or an AWS stand-in."""
    return bool(config.placement.web_acl_name or settings.aws.endpoint_url)


def shield_api(kind: ShieldKind | None, endpoint_url: str | None) -> ShieldApi:
    """Shield Advanced: AWS's API, or the recording fake (default when ``endpoint_url`` names
    a stand-in, since moto lacks most Shield calls). The fake sends the protection calls the
    stand-in serves to it and answers the rest; without an endpoint it keeps all in memory."""
    kind = kind or ("fake" if endpoint_url else "aws")
    if kind == "aws":
        return Boto3ShieldApi(endpoint_url=endpoint_url)
    return RecordingShieldFake(
        backend=Boto3ShieldApi(endpoint_url=endpoint_url) if endpoint_url else None
    )


def build_reconciler(
    config: CompilerConfig,
    *,
    region: str,
    endpoint_url: str | None,
    clock: Clock,
    wafv2: WafV2Api | None = None,
    shield: ShieldApi | None = None,
    shield_kind: ShieldKind | None = None,
    writes_per_s: float = 1.0,
    reads_per_s: float = 5.0,
    fence: Fence | None = None,
) -> Reconciler:
    """A reconciler for ``config``'s scope: the WAFv2 API in the right Region (``wafv2``
    overrides it), Shield (``shield`` overrides ``shield_api(shield_kind, endpoint_url)``)
    and the call policy (AWS's budgets: 1 write/s, 5 reads/s per account and Region).
    ``fence`` (the enforcer lease) is checked before every write."""
    if wafv2 is None:
        wafv2 = Boto3WafV2Api(region=waf_region(config.scope, region), endpoint_url=endpoint_url)
    return Reconciler(
        wafv2,
        clock=clock,
        shield_api=shield if shield is not None else shield_api(shield_kind, endpoint_url),
        policy=CallPolicy(clock, writes_per_s=writes_per_s, reads_per_s=reads_per_s),
        fence=fence,
    )


def reconciler_from_settings(
    settings: Settings,
    *,
    clock: Clock,
    wafv2: WafV2Api | None = None,
    shield: ShieldApi | None = None,
    fence: Fence | None = None,
) -> Reconciler | None:
    """The engine's reconciler, or None when ``reaches_aws`` says there is nowhere to go."""
    config = compiler_config(settings)
    if not reaches_aws(settings, config):
        return None
    return build_reconciler(
        config,
        region=settings.aws.region,
        endpoint_url=settings.aws.endpoint_url,
        clock=clock,
        wafv2=wafv2,
        shield=shield,
        fence=fence,
    )


# -- enforcing once ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Compiled:
    """A compiled document and every WAFv2 constraint it breaks (none: it may be sent)."""

    state: DesiredState
    violations: list[Violation]

    @property
    def valid(self) -> bool:
        return not self.violations


def compile_checked(
    decisions: Iterable[Decision],
    config: CompilerConfig,
    now: datetime,
    *,
    allowlist: Iterable[str] = (),
) -> Compiled:
    """Compile ``decisions`` with ``allowlist`` added to the config's, then validate."""
    state = compile_state(decisions, with_allowlist(config, allowlist), now)
    return Compiled(state, validate(state))


@dataclass(frozen=True)
class Enforcement:
    """What one ``enforce_once`` did. ``result`` is None when the document was invalid
    (``violations``), so nothing was sent; ``applied`` lists the decisions marked applied."""

    decisions: list[Decision]
    compiled: Compiled
    result: CycleResult | None
    applied: list[str]
    next_expiry: datetime | None

    @property
    def state(self) -> DesiredState:
        return self.compiled.state

    @property
    def violations(self) -> list[Violation]:
        return self.compiled.violations


def enforce_once(
    decisions: list[Decision],
    *,
    config: CompilerConfig,
    reconciler: Reconciler,
    mode: Mode,
    now: datetime,
    ledger: Ledger | None = None,
    allowlist: Iterable[str] | None = None,
    full: bool = True,
    publish: bool = True,
    fence: Fence | None = None,
) -> Enforcement:
    """Compile, validate, run (or plan) one cycle, write the status, mark applied.

    ``ledger`` (optional: decisions may come from a file) supplies the allowlist unless
    ``allowlist`` is given, receives the status document when ``publish``, and records the
    enforced decisions as applied. ``full=False`` lets the reconciler take its fast path
    (only IP sets whose entries changed since its last converged cycle).

    ``fence`` (the enforcer lease; the reconciler checks it before every write) is checked
    again before anything is published or marked: ``LeaseLost`` propagates, so a process
    that lost the lease publishes nothing and marks nothing (its successor does).
    """
    if allowlist is None:
        allowlist = [entry.cidr for entry in ledger.allowlist()] if ledger is not None else []
    compiled = compile_checked(decisions, config, now, allowlist=allowlist)
    expiry = next_expiry(decisions, now)
    if not compiled.valid:
        if fence is not None:
            fence.check()
        if ledger is not None and publish:
            refused = EnforcementStatus.refused(
                mode=mode.value, at=now, violations=compiled.violations
            )
            write_status(ledger, refused)
        return Enforcement(decisions, compiled, None, [], expiry)
    run = reconciler.run_cycle if full else reconciler.push
    result = run(compiled.state, mode=mode, next_expiry=expiry)
    token = None if fence is None else fence.check()
    if ledger is not None and publish:
        write_status(ledger, EnforcementStatus.from_dict(result.to_dict()))
    applied: list[str] = []
    if ledger is not None and result.ok and mode is Mode.ENFORCE:
        approved = [d for d in decisions if d.status is Status.APPROVED]
        ids = enforced_decision_ids(approved, compiled.state)
        if ids:
            marked = ledger.mark_applied(ids, by=APPLIED_BY, fence=token)
            applied = [d.id for d in marked if d.id]
    return Enforcement(decisions, compiled, result, applied, expiry)


def write_status(store: StatusStore, record: EnforcementStatus) -> None:
    """Publish the enforcement status: the one place it is written. A refused (invalid)
    document is published too, so the status API carries every violation until the
    configuration or the decisions are fixed."""
    publish_record(store, record)


# -- the rule preview -------------------------------------------------------------------------


class RulePreviewer:
    """What the engine would enforce now, and, when it can reach AWS, the dry-run plan.

    Called by ``Service.preview_rules`` with the enforceable decisions and the allowlist.
    Without a ``reconciler`` the preview is the compiled document only, and says so.
    """

    def __init__(
        self,
        config: CompilerConfig,
        *,
        clock: Clock,
        reconciler: Reconciler | None = None,
        no_plan_reason: str = NO_PLAN_REASON,
    ) -> None:
        self.config = config
        self.clock = clock
        self.reconciler = reconciler
        self.no_plan_reason = no_plan_reason

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> RulePreviewer:
        """The preview of what ``wafsmith run`` with these settings enforces."""
        return cls(
            compiler_config(settings),
            clock=clock,
            reconciler=reconciler_from_settings(settings, clock=clock),
        )

    def __call__(self, decisions: list[Decision], allowlist: list[str]) -> dict[str, Any]:
        now = self.clock.now()
        if self.reconciler is None:
            compiled, plan = compile_checked(decisions, self.config, now, allowlist=allowlist), None
        else:
            done = enforce_once(
                decisions,
                config=self.config,
                reconciler=self.reconciler,
                mode=Mode.DRY_RUN,
                now=now,
                allowlist=allowlist,
            )
            compiled = done.compiled
            plan = None if done.result is None else done.result.to_dict()
        notes = [f"invalid: {v}" for v in compiled.violations]
        if not compiled.valid:
            notes.append("the document is invalid, so it was not planned against AWS")
        elif plan is None:
            notes.append(self.no_plan_reason)
        else:
            notes.append(
                "dry-run plan against AWS: no calls were made"
                if plan.get("ok")
                else "the dry-run plan met errors reading AWS; see plan.errors"
            )
        return {
            "desired": compiled.state.to_dict(),
            "plan": plan,
            "decisions": len(decisions),
            "notes": notes,
        }
