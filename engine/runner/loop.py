"""``EngineRunner``: the composition root of ``wafsmith run`` and its ingestion step.

One ``step()`` polls the source and, for each object, parses it, retains its rows in the
request history, folds them into the analyzer, stores the proposals in the ledger, lets the
policy auto-approve what it may, and only then acknowledges the object (which deletes its SQS
message). Then the model keeper refits if due, the enforcement step reconciles if due
(``engine.runner.enforcing``), and the status is published if due
(``engine.runner.reporting``). See the package docstring for crash safety and the lease.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from engine.assembly import (
    LedgerOffences,
    build_source,
    build_trainer,
    model_directory,
    set_aside_stale_artifact,
)
from engine.core.backoff import Backoff
from engine.core.clock import Clock
from engine.core.errors import ConfigError
from engine.core.logging import log_event
from engine.decisions import DatabaseLease, Ledger
from engine.decisions.history import RequestHistory
from engine.decisions.policy import apply_policy
from engine.decisions.rule_answers import RuleAnswerConfig, RuleAnswerer
from engine.enforcement import reconciler_from_settings
from engine.enforcer import CycleResult, Reconciler
from engine.notify.setup import build_notifier
from engine.parsers import ParseLimits, ParseResult, parse_object
from engine.pipeline import AnalysisConfig, Analyzer
from engine.runner.enforcing import EnforcementStep
from engine.runner.notices import GUARD_REASONS, EngineNotices, one_line
from engine.runner.reporting import ModelKeeper, StatusPublisher
from engine.schema import features as F
from engine.schema.decision import Decision
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
from engine.telemetry import EngineMetrics, IngestTelemetry, ObjectOutcome

log = logging.getLogger("wafsmith.engine")

WARMUP = timedelta(minutes=60)  # the longest feature window


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
        rule_answers: RuleAnswerConfig | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.ledger = ledger
        self.store = store
        self.source = source
        self.history = history
        # Campaigns that addresses cannot stop get one rule on their path.
        self.rule_answerer = RuleAnswerer(history, rule_answers)
        self.analyzer = analyzer
        self.reconciler = reconciler
        self.telemetry = IngestTelemetry()
        self.metrics = EngineMetrics()  # Prometheus instruments (API /metrics or --no-api listener)
        notifier = build_notifier(
            settings.notify,
            clock=clock,
            region=settings.aws.region,
            endpoint_url=settings.aws.endpoint_url,
        )
        self.notices = EngineNotices(
            notifier, clock=clock, dashboard_url=settings.notify.dashboard_url
        )
        self.limits = ParseLimits(
            max_object_bytes=settings.source.max_object_bytes,
            max_line_bytes=settings.source.max_line_bytes,
        )
        self.quarantine = Quarantine(
            settings.source.quarantine_dir or settings.data_dir / "quarantine",
            settings.source.quarantine_prefix,
        )
        self._last_rows_at: float | None = None  # wall time the source last delivered rows
        # Failing polls and cycles wait longer each time (capped, jittered, reset on success).
        loop = settings.loop
        jitter = {"random": random} if random is not None else {}
        self.poll_backoff = Backoff(base_s=loop.backoff_base_s, cap_s=loop.backoff_max_s, **jitter)
        self.enforcement = EnforcementStep(
            settings=settings,
            clock=clock,
            ledger=ledger,
            reconciler=reconciler,
            lease=lease,
            metrics=self.metrics,
            notices=self.notices,
            backoff=Backoff(base_s=loop.backoff_base_s, cap_s=loop.backoff_max_s, **jitter),
            forwarded_seen=lambda: bool(analyzer.store.stats.forwarded_rows),
        )
        self.model = ModelKeeper(settings=settings, analyzer=analyzer, trainer=trainer)
        self.status = StatusPublisher(
            ledger=ledger,
            clock=clock,
            interval_s=loop.status_interval_s,
            telemetry=self.telemetry,
            metrics=self.metrics,
            analyzer=analyzer,
            model=self.model,
            backoffs={"poll": self.poll_backoff, "enforcement": self.enforcement.backoff},
            source=source,
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
            set_aside_stale_artifact(artifact)  # its own file, from before a spec upgrade
            detection_doc["anomaly"] = {
                **detection_doc.get("anomaly", {}),
                "enabled": True,
                "model_path": str(artifact),
            }
        detection = AnalysisConfig.model_validate(detection_doc)
        try:
            rule_answers = RuleAnswerConfig.model_validate(settings.rule_answers)
        except ValidationError as exc:
            raise ConfigError(f"rule_answers: {exc}") from None
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
            rule_answers=rule_answers,
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
        log_event(log, "engine_started", mode=self.enforcement.mode.value)
        while not stop.is_set():
            report = self.step(stop)
            if not report.objects and report.cycle is None:
                stop.wait(self.settings.loop.idle_sleep_s)
        self.status.publish(force=True)
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
                delay = self.poll_backoff.failed(started, one_line(exc))
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
        self.model.refit_if_due()
        cycle = self.enforcement.if_due()
        self.status.publish()
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
        proposals = self.rule_answerer(proposals, self.clock.now())
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
        self.notices.held(outcome.held, outcome.reasons)
        if outcome.approved:
            self.enforcement.dirty = True  # the enforceable set changed: push without waiting
        for decision in outcome.held:
            log_event(
                log,
                "decision_held",
                id=decision.id,
                client=decision.client,
                reason=outcome.reasons.get(str(decision.id)),
            )
        return len(outcome.approved)

    # -- the steps' faces: what callers and tests read of the loop -------------------------------

    @property
    def lease(self) -> DatabaseLease | None:
        return self.enforcement.lease

    @property
    def last_cycle(self) -> CycleResult | None:
        return self.enforcement.last_cycle

    def enforce(self, now: datetime, *, full: bool = True) -> CycleResult | None:
        """One reconciliation cycle now (``EnforcementStep.enforce``)."""
        return self.enforcement.enforce(now, full=full)

    def publish_status(self, *, force: bool = False) -> None:
        self.status.publish(force=force)

    def close(self) -> None:
        self.enforcement.release()  # a standby takes over at its next attempt
        self.notices.flush()
        self.source.close()
        self.store.close()
        self.ledger.close()


def default_instance_id() -> str:
    """host:pid:random — unique per process, readable in the status API."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _part_name(obj: Any) -> str:
    """A history part name fixed by the object, so re-processing overwrites, not duplicates."""
    ident = f"{obj.bucket or ''}\0{obj.key or obj.uri}\0{obj.etag or ''}"
    return hashlib.sha256(ident.encode()).hexdigest()[:32]
