"""Rolling training baseline and refit schedule.

``RollingBaseline.observe`` receives, at every evaluation, the model matrix of the active
clients and a mask of those already judged hostile; it keeps the most recent benign rows
(a bounded ring). ``maybe_refit`` fits a fresh ``ClientIsolationForest`` when the injected
clock says the schedule is due and persists it with its model card. The analysis pipeline
calls ``observe`` through a plain callback, so the engine never imports this package.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.schema.features import MODEL_FEATURE_NAMES
from models import artifacts
from models.iforest import ClientIsolationForest


class RollingBaseline:
    """The last ``capacity`` benign client-windows, and when to refit on them."""

    def __init__(
        self,
        *,
        capacity: int = 20_000,
        min_rows: int = 200,
        refit_every_s: float = 3600.0,
        directory: Path = artifacts.DEFAULT_DIR,
        clock: Clock = SYSTEM_CLOCK,
        contamination: float | str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.capacity, self.min_rows = capacity, min_rows
        self.refit_every_s, self.directory, self.clock = refit_every_s, Path(directory), clock
        self.contamination, self.random_state = contamination, random_state
        self._rows = np.zeros((capacity, len(MODEL_FEATURE_NAMES)))
        self._times = np.zeros(capacity, dtype="datetime64[ms]")
        self._next = 0
        self._filled = 0
        self.last_fit: float | None = None
        self.path: Path | None = None

    def observe(self, X: np.ndarray, hostile: np.ndarray, event_time: datetime) -> None:
        """Add the benign rows of one evaluation (hostile clients never enter the baseline)."""
        rows = np.asarray(X, dtype=np.float64)[~np.asarray(hostile, dtype=bool)]
        if len(rows) > self.capacity:
            rows = rows[-self.capacity :]
        idx = (self._next + np.arange(len(rows))) % self.capacity
        self._rows[idx] = rows
        self._times[idx] = np.datetime64(event_time.astimezone(UTC).replace(tzinfo=None), "ms")
        self._next = int((self._next + len(rows)) % self.capacity)
        self._filled = min(self.capacity, self._filled + len(rows))

    @property
    def size(self) -> int:
        return self._filled

    def due(self) -> bool:
        if self._filled < self.min_rows:
            return False
        return self.last_fit is None or self.clock.time() - self.last_fit >= self.refit_every_s

    def fit_model(self) -> tuple[ClientIsolationForest, datetime | None, datetime | None]:
        """A fresh model on the current baseline, with the event-time span it covers."""
        X = self._rows[: self._filled]
        model = ClientIsolationForest(
            contamination=self.contamination, random_state=self.random_state
        ).fit(X)
        times = self._times[: self._filled]
        start, end = (_dt(times.min()), _dt(times.max())) if len(times) else (None, None)
        return model, start, end

    def refit(self) -> Path:
        """Fit on the current baseline and persist artifact + card; returns the artifact path."""
        model, start, end = self.fit_model()
        self.path = artifacts.save(
            model,
            self.directory,
            fitted_at=self.clock.now(),
            training_start=start,
            training_end=end,
        )
        self.last_fit = self.clock.time()
        return self.path

    def maybe_refit(self) -> Path | None:
        return self.refit() if self.due() else None


def _dt(t: np.datetime64) -> datetime:
    return datetime.fromtimestamp(t.astype("datetime64[ms]").astype(np.int64) / 1000, UTC)
