"""In-process training for a replay or a stream without a persisted model.

``StreamTrainer`` is the rolling baseline on *event time*: the analysis hands it each
evaluation's benign-looking clients (``observe``), and ``maybe_fit`` returns a fitted model
as plain artifact objects plus its card once ``bootstrap_min`` minutes of the stream have been
seen with enough rows, then again every ``refit_every_min``. Nothing is written to disk:
``wafsmith analyze`` on any input scores with a model learnt from that input's own first
minutes. Hostile rows never enter the baseline (``RollingBaseline.observe``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from models.baseline import RollingBaseline


class EventClock:
    """The newest event time observed: refits follow the stream, not the wall clock."""

    def __init__(self) -> None:
        self.t: float | None = None

    def time(self) -> float:
        return 0.0 if self.t is None else self.t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)


class StreamTrainer(RollingBaseline):
    """Bootstraps, then refits, an isolation forest from the stream it watches."""

    def __init__(
        self,
        *,
        bootstrap_min: float = 15.0,
        min_rows: int = 200,
        refit_every_min: float = 60.0,
        capacity: int = 20_000,
        random_state: int | None = 0,
    ) -> None:
        self.events = EventClock()
        super().__init__(
            capacity=capacity,
            min_rows=min_rows,
            refit_every_s=refit_every_min * 60.0,
            clock=self.events,
            random_state=random_state,
        )
        self.bootstrap_s = bootstrap_min * 60.0
        self.first_seen: float | None = None
        self.fits = 0

    def observe(self, X, hostile, event_time: datetime) -> None:
        t = event_time.timestamp()
        self.first_seen = t if self.first_seen is None else self.first_seen
        self.events.t = t if self.events.t is None else max(self.events.t, t)
        super().observe(X, hostile, event_time)

    def due(self) -> bool:
        if self.first_seen is None or self.events.time() - self.first_seen < self.bootstrap_s:
            return False
        return super().due()

    def maybe_fit(self) -> tuple[dict, dict] | None:
        """(artifact objects, model card) when a fit is due, else None."""
        if not self.due():
            return None
        model, start, end = self.fit_model()
        self.last_fit = self.clock.time()
        self.fits += 1
        card = model.card(fitted_at=self.events.now(), training_start=start, training_end=end)
        card["trained_on"] = "bootstrap: this stream's benign-looking clients"
        return model.to_artifact(), card
