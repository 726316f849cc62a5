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
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from engine.assembly import LedgerOffences, build_source, build_trainer, model_directory
from engine.core.clock import Clock
from engine.core.logging import log_event
from engine.decisions import Ledger
from engine.decisions.history import RequestHistory
from engine.decisions.policy import apply_policy
from engine.enforcement import (
    compiler_config,
    enforce_once,
    enforcement_mode,
    reconciler_from_settings,
)
from engine.enforcer import CycleResult, Reconciler
from engine.parsers import ParseLimits, ParseResult, parse_object
from engine.pipeline import AnalysisConfig, Analyzer
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
from engine.status import (
    EngineStatus,
    EvidenceSamples,
    ModelStatus,
    TopClients,
    publish,
    top_verdicts,
)
from engine.telemetry import IngestTelemetry, ObjectOutcome

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
        self.model: dict[str, Any] | None = None  # card of the model in use, for the status
        self.compiler = compiler_config(settings)
        self.mode = enforcement_mode(self.compiler, dry_run=settings.enforcement.mode == "dry_run")
        self.telemetry = IngestTelemetry()
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

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Clock,
        wafv2: Any = None,
        shield: Any = None,
        source: Source | None = None,
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
        reconciler = reconciler_from_settings(settings, clock=clock, wafv2=wafv2, shield=shield)
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
        try:
            deliveries = self.source.poll(max_objects=self.settings.source.max_objects_per_poll)
        except (SourceError, BotoCoreError, ClientError) as exc:
            # S3/SQS unreachable or throttling: nothing was claimed, so nothing is lost; retry.
            self.telemetry.source_errors += 1
            log_event(log, "source_poll_failed", level=logging.ERROR, error=str(exc))
            deliveries = []
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
        self.refit_if_due()
        cycle = self.enforce_if_due()
        self.publish_status()
        return StepReport(outcomes, cycle)

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

    def enforce_if_due(self) -> CycleResult | None:
        if self.reconciler is None:
            return None
        now = self.clock.now()
        expired = self.ledger.expire_due(now)
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
        every violation until the config or the decisions are fixed.
        """
        assert self.reconciler is not None
        done = enforce_once(
            self.ledger.enforceable(now),
            config=self.compiler,
            reconciler=self.reconciler,
            mode=self.mode,
            now=now,
            ledger=self.ledger,
            full=full,
        )
        self._last_cycle_at = self.clock.time()
        if done.result is None:
            errors = [str(v) for v in done.violations]
            log_event(log, "compiled_document_invalid", level=logging.ERROR, errors=errors)
            return None
        result = done.result
        self._next_expiry = done.next_expiry
        self.last_cycle = result
        self._dirty = not result.ok
        log_event(
            log,
            "enforcement_cycle",
            ok=result.ok,
            writes=result.writes,
            errors=[e.to_dict() for e in result.errors],
            decisions=len(done.decisions),
        )
        return result

    # -- status -----------------------------------------------------------------------------------

    def publish_status(self, *, force: bool = False) -> None:
        now = self.clock.time()
        interval = self.settings.loop.status_interval_s
        if not force and self._last_status_at is not None and now - self._last_status_at < interval:
            return
        self._last_status_at = now
        engine = EngineStatus(
            ingest=self.telemetry.ingest_status(now_s=now),
            active_clients=self.analyzer.store.active_clients(),
            model=ModelStatus.from_dict(self.model),
        )
        publish(self.ledger, engine)
        publish(self.ledger, self.telemetry.traffic_series())
        top = top_verdicts(self.analyzer.result().verdicts, limit=TOP_CLIENTS)
        publish(self.ledger, TopClients.from_verdicts(top))
        publish(self.ledger, EvidenceSamples.from_verdicts(top))

    def close(self) -> None:
        self.source.close()
        self.store.close()
        self.ledger.close()


def _part_name(obj: Any) -> str:
    """A history part name fixed by the object, so re-processing overwrites, not duplicates."""
    ident = f"{obj.bucket or ''}\0{obj.key or obj.uri}\0{obj.etag or ''}"
    return hashlib.sha256(ident.encode()).hexdigest()[:32]
