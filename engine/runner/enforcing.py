"""The engine loop's enforcement step: when to reconcile, under which lease, with which compiler.

Only the holder of the enforcer lease (``engine.decisions.lease``) expires decisions and
reconciles the WAF; the others try to take the lease every ``lease.period_s``, and whoever
takes it runs a full cycle first. A cycle runs when new decisions were approved (the fast
path: only the changed IP sets), when one expires, or every ``enforcement.interval_s`` (full
cycles, which also catch drift). A failing cycle waits longer each time (``Backoff``); a
compiled document that breaks a WAFv2 constraint sends nothing and is logged with every
violation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from engine.compiler.config import CLOUDFRONT_FORWARDED, CompilerConfig
from engine.core.backoff import Backoff
from engine.core.clock import Clock
from engine.core.lease import LeaseLost, LeaseUnavailable
from engine.core.logging import log_event
from engine.decisions import DatabaseLease, Ledger
from engine.enforcement import compiler_config, enforce_once, enforcement_mode
from engine.enforcer import CycleResult, Reconciler
from engine.runner.notices import EngineNotices, one_line
from engine.settings import Settings
from engine.telemetry import EngineMetrics

log = logging.getLogger("wafsmith.engine")


class EnforcementStep:
    """Decides when the loop reconciles the WAF, and runs the cycle."""

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        ledger: Ledger,
        reconciler: Reconciler | None,
        lease: DatabaseLease | None,
        metrics: EngineMetrics,
        notices: EngineNotices,
        backoff: Backoff,
        forwarded_seen: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.ledger = ledger
        self.reconciler = reconciler
        self.lease = lease  # None: this engine enforces unconditionally (tests, one process)
        self.metrics = metrics
        self.notices = notices
        self.backoff = backoff
        self.forwarded_seen = forwarded_seen  # whether viewers were read from X-Forwarded-For
        self.compiler = compiler_config(settings)
        self.mode = enforcement_mode(self.compiler, dry_run=settings.enforcement.mode == "dry_run")
        self.last_cycle: CycleResult | None = None
        self.dirty = True  # decisions changed since the last cycle
        self._last_cycle_at: float | None = None
        self._next_expiry: datetime | None = None
        self._lease_seen_at: float | None = None  # monotonic: last check or acquire attempt

    def leads(self) -> bool:
        """Whether this engine holds the enforcer lease: checked (and renewed) every
        ``lease.period_s`` while held, tried as often while another engine holds it."""
        lease = self.lease
        if lease is None:
            return True
        mono = self.clock.monotonic()
        if self._lease_seen_at is not None and mono - self._lease_seen_at < lease.period_s:
            return lease.held
        self._lease_seen_at = mono
        if lease.held:
            try:
                lease.check()
            except LeaseLost:
                return False  # logged by the lease; a later attempt may take it back
            return True
        try:
            acquired = lease.try_acquire()
        except LeaseUnavailable as exc:
            log_event(log, "lease_acquire_failed", level=logging.ERROR, error=str(exc))
            return False
        if acquired:
            # Another engine may have enforced meanwhile: start with a full cycle.
            self._last_cycle_at = None
            self.dirty = True
        return acquired

    def if_due(self) -> CycleResult | None:
        """Expire what is due and run a cycle when one is due; None when none ran."""
        if self.reconciler is None or not self.leads():
            return None
        now = self.clock.now()
        expired = self.ledger.expire_due(now)
        if not self.backoff.ready(self.clock.time()):
            self.dirty = self.dirty or bool(expired)  # pushed when the back-off allows
            return None
        due_by_time = (
            self._last_cycle_at is None
            or self.clock.time() - self._last_cycle_at >= self.settings.enforcement.interval_s
        )
        due_by_expiry = self._next_expiry is not None and self._next_expiry <= now
        if not (self.dirty or expired or due_by_time or due_by_expiry):
            return None
        # New approvals alone take the fast path (only the changed IP sets are touched); the
        # periodic and expiry cycles read everything and so also catch drift.
        return self.enforce(now, full=bool(expired or due_by_time or due_by_expiry))

    def enforce(self, now: datetime, *, full: bool = True) -> CycleResult | None:
        """Compile the enforceable decisions and run one reconciliation cycle
        (``engine.enforcement.enforce_once``).

        ``full=False`` lets the enforcer update just the IP sets whose entries changed since
        its last converged cycle. Returns None, sending nothing, when the compiled document
        breaks a WAFv2 constraint: ingestion goes on, and the status API and the log carry
        every violation until the config or the decisions are fixed. Also None when another
        engine holds the enforcer lease, or took it during this cycle (the cycle stopped at
        its next write and published and marked nothing).
        """
        assert self.reconciler is not None
        try:
            if self.lease is not None and not self.lease.try_acquire():
                return None
        except LeaseUnavailable as exc:
            log_event(log, "lease_acquire_failed", level=logging.ERROR, error=str(exc))
            return None
        try:
            done = enforce_once(
                self.ledger.enforceable(now),
                config=self.topology_compiler(),
                reconciler=self.reconciler,
                mode=self.mode,
                now=now,
                ledger=self.ledger,
                full=full,
                fence=self.lease,
            )
        except LeaseLost as exc:
            # Another engine took the lease: it converges the WAF from the same ledger.
            log_event(log, "enforcement_stopped_lease_lost", level=logging.WARNING, error=str(exc))
            return None
        self._last_cycle_at = self.clock.time()
        if done.result is None:
            errors = [str(v) for v in done.violations]
            self.backoff.failed(self._last_cycle_at, "compiled document invalid")
            log_event(log, "compiled_document_invalid", level=logging.ERROR, errors=errors)
            return None
        result = done.result
        if result.ok:
            self.backoff.succeeded()
        else:
            first = result.errors[0].to_dict() if result.errors else {}
            self.backoff.failed(self._last_cycle_at, one_line(first) or "cycle failed")
        self.metrics.cycle_done(
            ok=result.ok, outcomes=dict(result.stats.outcomes), retries=result.stats.retries
        )
        self._next_expiry = done.next_expiry
        self.last_cycle = result
        self.dirty = not result.ok
        if not result.ok:
            self.notices.enforcement_failed(result)
        log_event(
            log,
            "enforcement_cycle",
            ok=result.ok,
            writes=result.writes,
            errors=[e.to_dict() for e in result.errors],
            decisions=len(done.decisions),
            backoff_failures=self.backoff.state.failures,
            retry_in_s=round(self.backoff.state.delay_s, 3),
        )
        return result

    def topology_compiler(self) -> CompilerConfig:
        """Behind CloudFront (viewers read from X-Forwarded-For), IP-set rules match the
        forwarded address: WAF sees the edge as the source. Sticky once seen, so a quiet
        minute never flips the rules back."""
        if self.compiler.ip_sets_forwarded_ip is None and self.forwarded_seen():
            self.compiler = self.compiler.model_copy(
                update={"ip_sets_forwarded_ip": CLOUDFRONT_FORWARDED}
            )
        return self.compiler

    def release(self) -> None:
        """Give the lease up, so a standby takes over at its next attempt."""
        if self.lease is not None:
            self.lease.release()
