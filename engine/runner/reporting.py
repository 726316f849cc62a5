"""What the engine loop reports: the model in use, and the status records and gauges.

The status records (``engine.status``) go to the ledger's status store, where the API reads
them; the Prometheus gauges (ledger counts by state, back-offs, SQS totals) are set at the same
moment, so a scrape and the status page agree. Both are written at most every
``loop.status_interval_s`` unless forced (at stop).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from engine.core.backoff import Backoff
from engine.core.clock import Clock
from engine.core.logging import log_event
from engine.decisions import Ledger
from engine.pipeline import Analyzer
from engine.schema import features as F
from engine.settings import Settings
from engine.status import (
    EngineStatus,
    EvidenceSamples,
    ModelStatus,
    TopClients,
    publish,
    top_verdicts,
)
from engine.telemetry import EngineMetrics, IngestTelemetry

log = logging.getLogger("wafsmith.engine")

TOP_CLIENTS = 50


class ModelKeeper:
    """Refits the isolation forest on schedule and says which model the detector scores with."""

    def __init__(self, *, settings: Settings, analyzer: Analyzer, trainer: Any) -> None:
        self.settings = settings
        self.analyzer = analyzer
        self.trainer = trainer
        self.card: dict[str, Any] | None = None  # the online trainer's latest model, if any

    def refit_if_due(self) -> None:
        """Refit on the rolling benign baseline when the schedule says so; the anomaly
        detector picks the new artifact up at its next evaluation."""
        if self.trainer is None:
            return
        path = self.trainer.maybe_refit()
        if path is not None:
            card = json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))
            self.card = {
                "version": f"{card[F.SPEC_HASH_KEY][:12]}@{card[F.CARD_FITTED_AT]}",
                "trained_at": card[F.CARD_FITTED_AT],
                "training_window": card.get("training_window"),
            }
            log_event(log, "model_refit", path=str(path), **self.card)

    def status(self) -> dict[str, Any] | None:
        """The model the anomaly detector scores with: the online trainer's artifact, or the
        one the analysis bootstrapped from the stream (no ``[model]`` trainer configured)."""
        detector = self.analyzer.anomaly
        drift = None if detector is None else detector.drift
        if self.card is not None:
            return {
                **self.card,
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


class StatusPublisher:
    """Writes the engine's status records and sets the gauges, at most every interval."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        clock: Clock,
        interval_s: float,
        telemetry: IngestTelemetry,
        metrics: EngineMetrics,
        analyzer: Analyzer,
        model: ModelKeeper,
        backoffs: dict[str, Backoff],
        source: Any,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.interval_s = interval_s
        self.telemetry = telemetry
        self.metrics = metrics
        self.analyzer = analyzer
        self.model = model
        self.backoffs = backoffs  # loop name → its back-off ("poll", "enforcement")
        self.source = source
        self._last_at: float | None = None

    def publish(self, *, force: bool = False) -> None:
        now = self.clock.time()
        if not force and self._last_at is not None and now - self._last_at < self.interval_s:
            return
        self._last_at = now
        engine = EngineStatus(
            ingest=self.telemetry.ingest_status(now_s=now),
            active_clients=self.analyzer.store.active_clients(),
            model=ModelStatus.from_dict(self.model.status()),
            notices=tuple(self.analyzer.notices()),
            backoff={loop: backoff.state.to_dict() for loop, backoff in self.backoffs.items()},
        )
        publish(self.ledger, engine)
        self._update_metrics(engine.active_clients or 0)
        publish(self.ledger, self.telemetry.traffic_series())
        top = top_verdicts(self.analyzer.result().verdicts, limit=TOP_CLIENTS)
        publish(self.ledger, TopClients.from_verdicts(top))
        publish(self.ledger, EvidenceSamples.from_verdicts(top))

    def _update_metrics(self, active_clients: int) -> None:
        """Gauges from the ledger, the back-offs and the SQS source's totals."""
        self.metrics.ledger_counts(self.ledger.counts_by_state(), active_clients=active_clients)
        for loop, backoff in self.backoffs.items():
            state = backoff.state
            self.metrics.backoff(loop, failures=state.failures, delay_s=state.delay_s)
        sqs = getattr(self.source, "counters", None)
        if sqs is not None and hasattr(sqs, "received"):
            self.metrics.sqs_totals(received=sqs.received, deleted=sqs.deleted)
