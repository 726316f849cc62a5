"""The running engine: sources → parsers → features → detectors → ledger → compiler → enforcer.

``EngineRunner`` is the composition root of ``wafsmith run``. One ``step()`` polls the source,
and for each object: parses it, retains its rows in the request history, folds them into the
analyzer, stores the proposals in the ledger, lets the policy auto-approve what it may, and
only then acknowledges the object (which deletes its SQS message). When new decisions were
approved, when one expires, or every ``enforcement.interval_s``, it compiles the enforceable
decisions and runs one reconciliation cycle. Status records (``engine.status``) go to the
ledger's status store for the API.

Crash safety: the ledger is the truth and WAF its projection (the next cycle converges);
an object is acknowledged only after everything it produced is committed, so a crash
re-delivers it, and re-processing is harmless (history parts are named after the object,
ledger proposals merge). On start the analyzer is warmed from the last hour of history.

Many engines, one enforcer: every engine on a shared ledger ingests, detects and proposes,
but only the holder of the enforcer lease (``engine.decisions.lease``) expires decisions and
reconciles the WAF. The others try to take the lease every ``lease.period_s``; whoever takes
it runs a full cycle first. A lease lost mid-cycle stops the cycle at its next write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from engine.assembly import LedgerOffences, build_source, build_trainer, model_directory
from engine.compiler.config import CLOUDFRONT_FORWARDED, CompilerConfig
from engine.core.backoff import Backoff
from engine.core.clock import Clock
from engine.core.lease import LeaseLost, LeaseUnavailable
from engine.core.logging import log_event
from engine.decisions import DatabaseLease, Ledger
from engine.decisions.history import RequestHistory
from engine.decisions.policy import apply_policy
from engine.enforcement import (
    compiler_config,
    enforce_once,
    enforcement_mode,
    reconciler_from_settings,
)
from engine.enforcer import CycleResult, Reconciler
from engine.notify import Notice, NoticeKind
from engine.notify.setup import build_notifier
from engine.parsers import ParseLimits, ParseResult, parse_object
from engine.pipeline import AnalysisConfig, Analyzer
from engine.schema import features as F
from engine.schema.decision import Decision, Status
from engine.schema.request import EVENT_TIME
from engine.settings import Settings
from engine.sources import (
    Delivery,
    ObjectGoneError,
    ProcessedRecord,
    ProcessedStore,
    Quarantine,
    Source,
    SourceError,
)
from engine.status import (
    EngineStatus,
    EvidenceSamples,
    ModelStatus,
    TopClients,
    publish,
    top_verdicts,
)
from engine.telemetry import EngineMetrics, IngestTelemetry, ObjectOutcome

log = logging.getLogger("wafsmith.engine")

WARMUP = timedelta(minutes=60)  # the longest feature window
TOP_CLIENTS = 50


@dataclass
class StepReport:
    """What one ``step()`` did."""

    objects: list[ObjectOutcome]
    cycle: CycleResult | None


class EngineRunner:
    """One engine process: build it with ``from_settings``, drive it with ``run`` or ``step``."""

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        ledger: Ledger,
        store: ProcessedStore,
        source: Source,
        history: RequestHistory,
        analyzer: Analyzer,
        reconciler: Reconciler | None,
        trainer: Any = None,
        lease: DatabaseLease | None = None,
        random: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.ledger = ledger
        self.store = store
        self.source = source
        self.history = history
        self.analyzer = analyzer
        self.reconciler = reconciler
        self.trainer = trainer
        self.lease = lease  # None: this runner enforces unconditionally (tests, one process)
        self._lease_seen_at: float | None = None  # monotonic: last check or acquire attempt
        self.model: dict[str, Any] | None = None  # card of the model in use, for the status
        self.compiler = compiler_config(settings)
        self.mode = enforcement_mode(self.compiler, dry_run=settings.enforcement.mode == "dry_run")
        self.telemetry = IngestTelemetry()
        self.metrics = EngineMetrics()  # Prometheus instruments (API /metrics or --no-api listener)
        self.notifier = build_notifier(
            settings.notify,
            clock=clock,
            region=settings.aws.region,
            endpoint_url=settings.aws.endpoint_url,
        )
        self.limits = ParseLimits(
            max_object_bytes=settings.source.max_object_bytes,
            max_line_bytes=settings.source.max_line_bytes,
        )
        self.quarantine = Quarantine(
            settings.source.quarantine_dir or settings.data_dir / "quarantine",
            settings.source.quarantine_prefix,
        )
        self.last_cycle: CycleResult | None = None
        self._last_cycle_at: float | None = None
        self._last_status_at: float | None = None
        self._next_expiry: datetime | None = None
        self._dirty = True  # decisions changed since the last cycle
        self._last_rows_at: float | None = None  # wall time the source last delivered rows
        # Failing polls and cycles wait longer each time (capped, jittered, reset on success).
        loop = settings.loop
        jitter = {"random": random} if random is not None else {}
        self.poll_backoff = Backoff(base_s=loop.backoff_base_s, cap_s=loop.backoff_max_s, **jitter)
        self.enforce_backoff = Backoff(
            base_s=loop.backoff_base_s, cap_s=loop.backoff_max_s, **jitter
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Clock,
        wafv2: Any = None,
        shield: Any = None,
        source: Source | None = None,
        random: Callable[[], float] | None = None,
    ) -> EngineRunner:
        """Build every stage from validated settings (``wafv2``/``shield`` override AWS)."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        ledger = Ledger.open(url, clock=clock, data_dir=settings.data_dir)
        store = ProcessedStore(url, clock=clock)
        detection_doc = dict(settings.detection)
        if settings.model.enabled:  # score with what the online trainer writes
            artifact = model_directory(settings) / f"{F.MODEL_ARTIFACT_NAME}.joblib"
            detection_doc["anomaly"] = {
                **detection_doc.get("anomaly", {}),
                "enabled": True,
                "model_path": str(artifact),
            }
        detection = AnalysisConfig.model_validate(detection_doc)
        trainer = build_trainer(settings, clock=clock)
        if settings.policy and ledger.policy().version == 0:
            # The config seeds the policy once; later changes are an admin's, through the API.
            ledger.set_policy({**ledger.policy().model_dump(), **settings.policy}, by="config")
        lease = DatabaseLease(
            ledger.engine,
            name=settings.lease.name,
            instance_id=settings.lease.instance_id or default_instance_id(),
            clock=clock,
            period_s=settings.lease.period_s,
            stale_after_s=settings.lease.stale_after_s,
            heartbeat=True,
        )
        reconciler = reconciler_from_settings(
            settings, clock=clock, wafv2=wafv2, shield=shield, fence=lease
        )
        runner = cls(
            settings=settings,
            clock=clock,
            ledger=ledger,
            store=store,
            source=source or build_source(settings, clock=clock, store=store),
            history=RequestHistory(settings.data_dir / "history", clock=clock),
            analyzer=Analyzer(
                detection,
                history=LedgerOffences(ledger),
                baseline_sink=None if trainer is None else trainer.observe,
            ),
            reconciler=reconciler,
            trainer=trainer,
            lease=None if reconciler is None else lease,
            random=random,
        )
        runner.warm_up()
        return runner

    # -- start-up -----------------------------------------------------------------------------

    def warm_up(self) -> int:
        """Refill the sliding windows from the retained history of the last hour."""
        now = self.clock.now()
        table = self.history.read(since=now - WARMUP, until=now + timedelta(days=1))
        if table.num_rows:
            table = table.sort_by(EVENT_TIME)
            self._propose(self.analyzer.feed(table))
            self._last_rows_at = self.clock.monotonic()
        log_event(log, "warmed_up", rows=table.num_rows)
        return table.num_rows

    # -- the loop -------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set; in-flight objects finish, the WAF is left as it is."""
        log_event(log, "engine_started", mode=self.mode.value)
        while not stop.is_set():
            report = self.step(stop)
            if not report.objects and report.cycle is None:
                stop.wait(self.settings.loop.idle_sleep_s)
        self.publish_status(force=True)
        log_event(log, "engine_stopped", objects=self.telemetry.objects)

    def step(self, stop: threading.Event | None = None) -> StepReport:
        """Poll once, process what arrived, enforce if due, publish status if due."""
        outcomes: list[ObjectOutcome] = []
        deliveries: list[Delivery] = []
        started = self.clock.time()
        if self.poll_backoff.ready(started):
            try:
                deliveries = self.source.poll(
                    max_objects=self.settings.source.max_objects_per_poll
                )
                self.poll_backoff.succeeded()
            except (SourceError, BotoCoreError, ClientError) as exc:
                # S3/SQS unreachable, throttling or refused: nothing was claimed, so nothing
                # is lost; retry after a back-off that grows while the failures go on.
                self.telemetry.source_errors += 1
                delay = self.poll_backoff.failed(started, _one_line(exc))
                log_event(
                    log, "source_poll_failed", level=logging.ERROR, error=str(exc),
                    failures=self.poll_backoff.state.failures, retry_in_s=round(delay, 3),
                )  # fmt: skip
        for i, delivery in enumerate(deliveries):
            if stop is not None and stop.is_set():
                for left in deliveries[i:]:
                    left.release()  # give back what was not started
                break
            try:
                outcomes.append(self.process(delivery))
            except ObjectGoneError as exc:
                outcomes.append(self._acknowledge_gone(delivery, exc))
            except (SourceError, BotoCoreError, ClientError) as exc:
                # Reading failed for a reason that may pass: hand it back for a later retry.
                self.telemetry.source_errors += 1
                log_event(
                    log,
                    "object_read_failed",
                    level=logging.ERROR,
                    uri=delivery.obj.uri,
                    error=str(exc),
                )
                delivery.release()
        if any(o.rows and not o.duplicate for o in outcomes):
            self._last_rows_at = self.clock.monotonic()
        else:
            self.close_idle_panes()
        self.refit_if_due()
        cycle = self.enforce_if_due()
        self.publish_status()
        return StepReport(outcomes, cycle)

    def close_idle_panes(self) -> int:
        """When the source has delivered no rows for ``loop.idle_close_s``, close every open
        pane and evaluate it: ALB delivers every five minutes and a quiet site less often,
        and a flood in the newest minute must not wait for later traffic to be decided.
        Returns how many proposals were approved."""
        idle = self.settings.loop.idle_close_s
        if self._last_rows_at is None or self.clock.monotonic() - self._last_rows_at < idle:
            return 0
        if not self.analyzer.has_open_panes():
            return 0
        proposals = self.analyzer.close_idle()
        approved = self._propose(proposals)
        log_event(log, "idle_panes_closed", proposals=len(proposals), approved=approved)
        return approved

    def refit_if_due(self) -> None:
        """Refit the isolation forest on its rolling benign baseline when the schedule says so;
        the anomaly detector picks the new artifact up at its next evaluation."""
        if self.trainer is None:
            return
        path = self.trainer.maybe_refit()
        if path is not None:
            card = json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))
            self.model = {
                "version": f"{card[F.SPEC_HASH_KEY][:12]}@{card[F.CARD_FITTED_AT]}",
                "trained_at": card[F.CARD_FITTED_AT],
                "training_window": card.get("training_window"),
            }
            log_event(log, "model_refit", path=str(path), **self.model)

    def process(self, delivery: Delivery) -> ObjectOutcome:
        """Parse, retain, analyse and decide on one object, then acknowledge it."""
        obj = delivery.obj
        started = self.clock.now()
        delivery.heartbeat()
        with obj.open() as stream:  # streamed: memory is bounded by the parse limits
            result = parse_object(
                stream, fmt=self.settings.source.format, key=obj.key or obj.uri, limits=self.limits
            )
        delivery.heartbeat()
        if result.poison:
            self._set_aside(obj, result)
        table = result.table.sort_by(EVENT_TIME) if result.rows else result.table
        if table.num_rows:
            self.history.append(table, part=_part_name(obj))
        proposals = self.analyzer.feed(table) if table.num_rows else []
        approved = self._propose(proposals)
        finished = self.clock.now()
        record = ProcessedRecord.for_object(
            obj,
            rows=result.rows,
            malformed=result.malformed,
            format=result.format,
            started_at=started,
            finished_at=finished,
        )
        fresh = delivery.ack(record)
        lag = None if obj.last_modified is None else (finished - obj.last_modified).total_seconds()
        outcome = ObjectOutcome(
            uri=obj.uri,
            format=result.format,
            rows=result.rows,
            malformed=dict(result.malformed),
            seconds=(finished - started).total_seconds(),
            lag_s=lag,
            proposals=len(proposals),
            approved=approved,
            duplicate=not fresh,
            repaired=dict(result.repaired),
        )
        if fresh:
            self.telemetry.record(outcome, table)
            self.metrics.object_done(outcome)
        log_event(log, "object_processed", **vars(outcome))
        return outcome

    def _set_aside(self, obj: Any, result: ParseResult) -> None:
        """Copy a poison object to the quarantine with its reason, before it is acknowledged
        (a copy that fails is logged and counted; the object is acknowledged all the same)."""
        note = {
            "reason": result.poison,
            "error": result.error,
            "format": result.format,
            "rows": result.rows,
            "malformed": result.malformed,
            "at": self.clock.now().isoformat(),
        }
        try:
            where = self.quarantine.put(obj, note)
        except SourceError as exc:
            # The original is untouched where it was read from, and its reason is in the
            # processed record and this log: acknowledge it anyway rather than parse it again
            # on every poll. Counted as a source error for the status page.
            self.telemetry.source_errors += 1
            log_event(
                log,
                "object_quarantine_failed",
                level=logging.ERROR,
                uri=obj.uri,
                reason=result.poison,
                error=str(exc),
            )
            return
        self.telemetry.quarantined += 1
        log_event(
            log,
            "object_quarantined",
            level=logging.WARNING,
            uri=obj.uri,
            reason=result.poison,
            error=result.error,
            where=where,
        )

    def _acknowledge_gone(self, delivery: Delivery, exc: ObjectGoneError) -> ObjectOutcome:
        """The announced version no longer exists: record it as such; a newer one is announced
        on its own."""
        now = self.clock.now()
        reason = {"object_gone": 1}
        delivery.ack(
            ProcessedRecord.for_object(
                delivery.obj, rows=0, malformed=reason, started_at=now, finished_at=now
            )
        )
        outcome = ObjectOutcome(
            uri=delivery.obj.uri,
            format="unknown",
            rows=0,
            malformed=reason,
            seconds=0.0,
            lag_s=None,
        )
        self.telemetry.record(outcome, None)
        self.metrics.object_done(outcome)
        log_event(log, "object_gone", level=logging.WARNING, uri=delivery.obj.uri, error=str(exc))
        return outcome

    def _propose(self, proposals: list[Decision]) -> int:
        """Store proposals (duplicates merge) and let the policy approve what it may."""
        if not proposals:
            return 0
        outcome = apply_policy(
            self.ledger,
            proposals,
            active_clients=self.analyzer.store.active_clients(),
            now=self.clock.now(),
        )
        guarded = [r for r in outcome.reasons.values() if r.startswith(GUARD_REASONS)]
        self.metrics.proposed(
            [p.detector for p in proposals],
            approved=len(outcome.approved),
            held_by_guard=len(guarded),
        )
        self._notify_held(outcome.held, outcome.reasons)
        if outcome.approved:
            self._dirty = True  # the enforceable set changed: push without waiting
        for decision in outcome.held:
            log_event(
                log,
                "decision_held",
                id=decision.id,
                client=decision.client,
                reason=outcome.reasons.get(str(decision.id)),
            )
        return len(outcome.approved)

    # -- enforcement ----------------------------------------------------------------------------

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
            self._dirty = True
        return acquired

    def enforce_if_due(self) -> CycleResult | None:
        if self.reconciler is None or not self.leads():
            return None
        now = self.clock.now()
        expired = self.ledger.expire_due(now)
        if not self.enforce_backoff.ready(self.clock.time()):
            self._dirty = self._dirty or bool(expired)  # pushed when the back-off allows
            return None
        due_by_time = (
            self._last_cycle_at is None
            or self.clock.time() - self._last_cycle_at >= self.settings.enforcement.interval_s
        )
        due_by_expiry = self._next_expiry is not None and self._next_expiry <= now
        if not (self._dirty or expired or due_by_time or due_by_expiry):
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
                config=self._topology_compiler(),
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
            self.enforce_backoff.failed(self._last_cycle_at, "compiled document invalid")
            log_event(log, "compiled_document_invalid", level=logging.ERROR, errors=errors)
            return None
        result = done.result
        if result.ok:
            self.enforce_backoff.succeeded()
        else:
            first = result.errors[0].to_dict() if result.errors else {}
            self.enforce_backoff.failed(self._last_cycle_at, _one_line(first) or "cycle failed")
        self.metrics.cycle_done(
            ok=result.ok, outcomes=dict(result.stats.outcomes), retries=result.stats.retries
        )
        self._next_expiry = done.next_expiry
        self.last_cycle = result
        self._dirty = not result.ok
        if not result.ok:
            self._notify_enforcement_failed(result)
        log_event(
            log,
            "enforcement_cycle",
            ok=result.ok,
            writes=result.writes,
            errors=[e.to_dict() for e in result.errors],
            decisions=len(done.decisions),
            backoff_failures=self.enforce_backoff.state.failures,
            retry_in_s=round(self.enforce_backoff.state.delay_s, 3),
        )
        return result

    def _topology_compiler(self) -> CompilerConfig:
        """Behind CloudFront (viewers read from X-Forwarded-For), IP-set rules match the
        forwarded address: WAF sees the edge as the source. Sticky once seen, so a quiet
        minute never flips the rules back."""
        if self.compiler.ip_sets_forwarded_ip is None and self.analyzer.store.stats.forwarded_rows:
            self.compiler = self.compiler.model_copy(
                update={"ip_sets_forwarded_ip": CLOUDFRONT_FORWARDED}
            )
        return self.compiler

    # -- status -----------------------------------------------------------------------------------

    def model_status(self) -> dict[str, Any] | None:
        """The model the anomaly detector scores with: the online trainer's artifact, or the
        one the analysis bootstrapped from the stream (no ``[model]`` trainer configured)."""
        detector = self.analyzer.anomaly
        drift = None if detector is None else detector.drift
        if self.model is not None:
            return {
                **self.model,
                "source": "online trainer",
                "refit_every_s": self.settings.model.refit_every_s,
                "drift": drift,
            }
        model = getattr(detector, "model", None)
        if model is None:
            return None
        card = model.card
        return {
            "version": f"{card[F.SPEC_HASH_KEY][:12]}@{card[F.CARD_FITTED_AT]}",
            "trained_at": card[F.CARD_FITTED_AT],
            "training_window": card.get("training_window"),
            "source": detector.source,
            "refit_every_s": self.analyzer.cfg.anomaly.refit_every_min * 60.0,
            "drift": drift,
        }

    def publish_status(self, *, force: bool = False) -> None:
        now = self.clock.time()
        interval = self.settings.loop.status_interval_s
        if not force and self._last_status_at is not None and now - self._last_status_at < interval:
            return
        self._last_status_at = now
        engine = EngineStatus(
            ingest=self.telemetry.ingest_status(now_s=now),
            active_clients=self.analyzer.store.active_clients(),
            model=ModelStatus.from_dict(self.model_status()),
            notices=tuple(self.analyzer.notices()),
            backoff={
                "poll": self.poll_backoff.state.to_dict(),
                "enforcement": self.enforce_backoff.state.to_dict(),
            },
        )
        publish(self.ledger, engine)
        self._update_metrics(engine.active_clients or 0)
        publish(self.ledger, self.telemetry.traffic_series())
        top = top_verdicts(self.analyzer.result().verdicts, limit=TOP_CLIENTS)
        publish(self.ledger, TopClients.from_verdicts(top))
        publish(self.ledger, EvidenceSamples.from_verdicts(top))

    # -- notifications ----------------------------------------------------------------------------

    def _notify_held(self, held: list[Decision], reasons: dict[str, str]) -> None:
        """One notice for the proposals that now wait for an analyst (blast-radius holds
        apart: they are the urgent kind)."""
        if self.notifier is None:
            return
        waiting = [d for d in held if d.status is Status.PROPOSED]
        guarded = [d for d in waiting if reasons.get(str(d.id), "").startswith(GUARD_REASONS)]
        others = [d for d in waiting if d not in guarded]
        link = self._dashboard_link("/dashboard/queue")
        if guarded:
            why = reasons.get(str(guarded[0].id), "")
            self.notifier.offer(
                Notice(
                    NoticeKind.BLAST_RADIUS_HOLD,
                    f"Blast-radius guard held {len(guarded)} proposal(s) for an analyst",
                    why,
                    self.clock.now(),
                    fields=_sample_fields(guarded),
                    link=link,
                )
            )
        if others:
            self.notifier.offer(
                Notice(
                    NoticeKind.PROPOSAL_WAITING,
                    f"{len(others)} proposal(s) wait for approval",
                    "No auto-approve rule covers them; approve or reject them in the queue.",
                    self.clock.now(),
                    fields=_sample_fields(others),
                    link=link,
                )
            )

    def _notify_enforcement_failed(self, result: CycleResult) -> None:
        if self.notifier is None:
            return
        first = result.errors[0].to_dict() if result.errors else {}
        self.notifier.offer(
            Notice(
                NoticeKind.ENFORCEMENT_FAILED,
                f"Enforcement cycle failed with {len(result.errors)} error(s)",
                str(first.get("message") or "see the status page"),
                self.clock.now(),
                fields={"mode": result.mode.value, "first error": first.get("code")},
                link=self._dashboard_link("/dashboard"),
            )
        )

    def _dashboard_link(self, path: str) -> str | None:
        base = self.settings.notify.dashboard_url
        return None if not base else base.rstrip("/") + path

    def _update_metrics(self, active_clients: int) -> None:
        """Gauges from the ledger, the back-offs and the SQS source's totals, at each status
        publication."""
        self.metrics.ledger_counts(self.ledger.counts_by_state(), active_clients=active_clients)
        for loop, backoff in (("poll", self.poll_backoff), ("enforcement", self.enforce_backoff)):
            state = backoff.state
            self.metrics.backoff(loop, failures=state.failures, delay_s=state.delay_s)
        sqs = getattr(self.source, "counters", None)
        if sqs is not None and hasattr(sqs, "received"):
            self.metrics.sqs_totals(received=sqs.received, deleted=sqs.deleted)

    def close(self) -> None:
        if self.lease is not None:
            self.lease.release()  # a standby takes over at its next attempt
        if self.notifier is not None:
            self.notifier.flush()
        self.source.close()
        self.store.close()
        self.ledger.close()


def default_instance_id() -> str:
    """host:pid:random — unique per process, readable in the status API."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _one_line(error: Any) -> str:
    """An error (exception or the enforcer's error record) as one short line for the status."""
    text = str(error).strip().splitlines()
    return text[0][:300] if text else ""


def _sample_fields(decisions: list[Decision], shown: int = 5) -> dict[str, str]:
    """The first few decisions as "client": "action by detector (score)" fields."""
    return {
        d.client: f"{d.action.value} by {d.detector} (score {d.score:.2f})"
        for d in decisions[:shown]
    }


# Held-reason prefixes of the policy's blast-radius guard (``engine.decisions.policy``).
GUARD_REASONS = ("blast-radius guard", "over max_new_entries_per_push")


def _part_name(obj: Any) -> str:
    """A history part name fixed by the object, so re-processing overwrites, not duplicates."""
    ident = f"{obj.bucket or ''}\0{obj.key or obj.uri}\0{obj.etag or ''}"
    return hashlib.sha256(ident.encode()).hexdigest()[:32]
