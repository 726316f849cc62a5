"""The reconciler: converge AWS WAFv2 (and Shield) on a compiled ``DesiredState``.

One cycle reads the actual state, notes drift, and applies the minimal calls in a safe order:

1. create / update IP sets (rules may only reference sets that exist);
2. create / update the engine's rule group, then the web ACL (foreign rules copied back);
3. delete engine-owned rule groups, then IP sets, that are no longer referenced or desired;
4. Shield protections and automatic response (independent of 1–3).

Level-triggered: the cycle derives everything from what it reads, so a crash at any point is
repaired by the next cycle, and nothing is ever torn down on start or stop. A phase that
fails stops the dependent phases; the failure is in ``CycleResult.errors`` and ``ok`` is False.

>>> rec = Reconciler(Boto3WafV2Api(endpoint_url=url), clock=SystemClock())  # doctest: +SKIP
>>> result = rec.run_cycle(compile(decisions, config), mode=Mode.ENFORCE)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError

from engine.core.clock import Clock
from engine.core.errors import WafsmithError
from engine.core.lease import Fence
from engine.enforcer import ipsets, rule_group, shield
from engine.enforcer.aws_clients import ShieldApi, WafV2Api
from engine.enforcer.calls import Caller, CallPolicy, CallStats
from engine.enforcer.cycle import Cycle, CycleError, Mode, Step
from engine.enforcer.drift import DriftReport
from engine.enforcer.state import ActualIPSet
from engine.schema.decision import Decision
from engine.schema.rule import DesiredState


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat().replace("+00:00", "Z")


@dataclass
class CycleResult:
    """What one cycle did: plan and step outcomes, calls, entries per set, drift, errors."""

    mode: Mode
    ok: bool
    started_at: datetime
    finished_at: datetime
    steps: list[Step]
    stats: CallStats
    entries: dict[str, int]
    drift: DriftReport
    errors: list[CycleError]
    shield: dict[str, Any] = field(default_factory=dict)
    next_expiry: datetime | None = None

    @property
    def writes(self) -> int:
        return self.stats.writes

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "ok": self.ok,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "writes": self.stats.writes,
            "calls": self.stats.to_dict(),
            "plan": [s.to_dict() for s in self.steps],
            "entries": dict(sorted(self.entries.items())),
            "drift": self.drift.to_dict(),
            "errors": [e.to_dict() for e in self.errors],
            "shield": self.shield,
            "next_expiry": _iso(self.next_expiry),
        }


def next_expiry(decisions: Iterable[Decision], now: datetime) -> datetime | None:
    """When the earliest active decision expires: schedule the next cycle then, so the
    compiler drops it and the enforcer removes its addresses on time."""
    times = [d.expires_at for d in decisions if d.is_active(now)]
    return min(times) if times else None


def next_cycle_at(now: datetime, interval_s: float, expiry: datetime | None) -> datetime:
    """When a loop should run the next cycle: after ``interval_s``, or at the next expiry if
    that comes first, so an expired decision leaves AWS on time rather than up to an
    interval late."""
    regular = now + timedelta(seconds=interval_s)
    return regular if expiry is None or expiry >= regular else max(now, expiry)


class Reconciler:
    """Runs reconciliation cycles against one account, Region and scope.

    ``policy`` holds the write pacing bucket (~1 write/s) and retry settings; share one
    policy between reconcilers of the same account and Region. ``lock_attempts`` bounds the
    re-read/re-apply loop on ``WAFOptimisticLockException``. ``fence`` (the enforcer lease)
    is checked before every write; a lost lease fails the step with ``LeaseLost``.
    """

    def __init__(
        self,
        wafv2: WafV2Api,
        *,
        clock: Clock,
        shield_api: ShieldApi | None = None,
        policy: CallPolicy | None = None,
        lock_attempts: int = 5,
        fence: Fence | None = None,
    ) -> None:
        self.wafv2 = wafv2
        self.fence = fence
        self.shield_api = shield_api
        self.clock = clock
        self.policy = policy or CallPolicy(clock)
        self.lock_attempts = lock_attempts
        self.last_result: CycleResult | None = None
        # What the last successful cycle converged on, and the engine's sets it knows of.
        self._converged: tuple[DesiredState, dict[str, ActualIPSet]] | None = None

    def plan(self, desired: DesiredState) -> CycleResult:
        """Dry run: read AWS and return the calls a cycle would make, making none."""
        return self.run_cycle(desired, mode=Mode.DRY_RUN)

    def run_cycle(
        self,
        desired: DesiredState,
        *,
        mode: Mode = Mode.ENFORCE,
        next_expiry: datetime | None = None,
    ) -> CycleResult:
        """One cycle (one at a time per instance). Never raises for AWS or plan errors: they
        are in ``errors`` and ``ok`` is False. ``next_expiry`` is echoed for the loop."""
        started = self.clock.now()
        prior = (
            frozenset(e.resource for e in self.last_result.errors)
            if self.last_result
            else frozenset()
        )
        cycle = self._new_cycle(desired, mode, prior)
        self._run_waf(cycle)
        self._run_shield(cycle)
        self._finish_drift(cycle)
        return self._record(cycle, started, next_expiry)

    def push(
        self,
        desired: DesiredState,
        *,
        mode: Mode = Mode.ENFORCE,
        next_expiry: datetime | None = None,
    ) -> CycleResult:
        """Apply a change fast: when the last cycle converged and ``desired`` differs from what
        it converged on only in IP-set entries, re-read and update just the changed sets (one
        GetIPSet and one UpdateIPSet each), skipping the full read of every set, rule group
        and web ACL. Anything else — or any failure — runs (or leaves for) a full cycle; the
        loop's periodic full cycles keep detecting drift."""
        base = self._converged
        if base is None or mode is Mode.DRY_RUN or not _same_shape(base[0], desired):
            return self.run_cycle(desired, mode=mode, next_expiry=next_expiry)
        started = self.clock.now()
        cycle = self._new_cycle(desired, mode, frozenset())
        before = {r["Name"]: r["Addresses"] for r in _ip_set_requests(base[0])}
        changed = [n for n, r in cycle.ip_set_requests.items() if r["Addresses"] != before[n]]
        cycle.owned_sets = {name: replace(item) for name, item in base[1].items()}
        cycle.entries = {n: len(r["Addresses"]) for n, r in cycle.ip_set_requests.items()}
        cycle.shield_status = self.last_result.shield if self.last_result else {}
        ipsets.push_changed(cycle, changed)
        return self._record(cycle, started, next_expiry)

    def _new_cycle(self, desired: DesiredState, mode: Mode, prior: frozenset[str]) -> Cycle:
        return Cycle(
            wafv2=self.wafv2,
            shield=self.shield_api,
            caller=Caller(self.policy, fence=self.fence),
            desired=desired,
            mode=Mode(mode),
            clock=self.clock,
            lock_attempts=self.lock_attempts,
            prior_failures=prior,
        )

    def _record(self, cycle: Cycle, started: datetime, next_expiry: datetime | None) -> CycleResult:
        """The cycle's result; unless dry-run, also what the next cycle (or push) starts from."""
        result = CycleResult(
            mode=cycle.mode,
            ok=not cycle.errors,
            started_at=started,
            finished_at=self.clock.now(),
            steps=cycle.steps,
            stats=cycle.caller.stats,
            entries=cycle.entries,
            drift=cycle.drift,
            errors=cycle.errors,
            shield=cycle.shield_status,
            next_expiry=next_expiry,
        )
        if cycle.mode is not Mode.DRY_RUN:
            self.last_result = result
            self._converged = (cycle.desired, cycle.owned_sets) if result.ok else None
        return result

    @staticmethod
    def _run_waf(cycle: Cycle) -> None:
        read_ok = cycle.guard("wafv2", "read", lambda: (ipsets.read(cycle), rule_group.read(cycle)))
        if not read_ok or cycle.errors:
            return
        phases = (
            ("ipsets", ipsets.apply),
            ("rules", rule_group.apply),
            ("rules", rule_group.delete_stale_groups),
            ("ipsets", ipsets.delete_stale),
        )
        for name, phase in phases:  # the phase's name in error records
            before = len(cycle.errors)
            cycle.guard("wafv2", name, lambda p=phase: p(cycle))
            if len(cycle.errors) > before:
                return  # later phases depend on this one; the next cycle retries

    @staticmethod
    def _run_shield(cycle: Cycle) -> None:
        try:
            shield.apply(cycle)
        except (WafsmithError, BotoCoreError) as exc:
            cycle.fail("shield", "read", exc)

    @staticmethod
    def _finish_drift(cycle: Cycle) -> None:
        """``unresolved``: drift no successful step of this cycle repaired."""
        for resource in sorted(cycle.prior_failures):
            cycle.drift.add(resource, "failed_call", "the previous cycle failed on this resource")
        for error in cycle.errors:
            cycle.drift.add(
                error.resource,
                "failed_call",
                f"{error.operation} failed in this cycle ({error.code})",
            )
        if cycle.dry_run:
            cycle.drift.unresolved = list(cycle.drift.found)
            return
        repaired = {s.resource for s in cycle.steps if s.status in ("applied", "converged")}
        failing = {e.resource for e in cycle.errors}
        cycle.drift.unresolved = [
            d
            for d in cycle.drift.found
            if (d.resource in failing if d.cause == "failed_call" else d.resource not in repaired)
        ]


def _ip_set_requests(state: DesiredState) -> tuple[dict[str, Any], ...]:
    return () if state.requests is None else state.requests.ip_sets


def _same_shape(a: DesiredState, b: DesiredState) -> bool:
    """Equal apart from IP-set entries (and the overflow report and timestamp)."""

    def shape(state: DesiredState) -> DesiredState:
        requests = state.requests
        if requests is not None:
            bodies = tuple({**r, "Addresses": []} for r in requests.ip_sets)
            requests = replace(requests, ip_sets=bodies)
        return replace(
            state,
            ip_sets=tuple(replace(s, addresses=()) for s in state.ip_sets),
            overflow=(),
            generated_at="",
            requests=requests,
        )

    return shape(a) == shape(b)
