"""What the running engine counts about itself, and the status documents it publishes.

``IngestTelemetry`` folds each processed object (rows, malformed lines, timings, traffic per
minute of event time) into running totals; ``ingest_status`` and ``traffic_series`` render
them as the status records (``engine.status``) the runner publishes for the status API.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from engine.schema.request import EVENT_TIME, STATUS, WAF_ACTION
from engine.status import IngestStatus, TrafficSeries

# WAF actions that mean the client did not get through (WAF logs and ALB `actions_executed`).
BLOCKED_ACTIONS = ("BLOCK", "CAPTCHA", "CHALLENGE", "waf")
TRAFFIC_MINUTES = 120  # minutes of traffic kept for the dashboard's charts
RATE_WINDOW = 20  # objects over which lines/s is averaged


@dataclass
class ObjectOutcome:
    """What processing one object produced (one ``ObjectProcessed`` log event)."""

    uri: str
    format: str
    rows: int
    malformed: dict[str, int]
    seconds: float
    lag_s: float | None
    proposals: int = 0
    approved: int = 0
    duplicate: bool = False
    repaired: dict[str, int] = field(default_factory=dict)  # lines kept after a repair


@dataclass
class IngestTelemetry:
    """Running totals of ingestion, and traffic per minute of event time."""

    objects: int = 0
    rows: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    rows_by_format: Counter[str] = field(default_factory=Counter)
    object_lag_s: float | None = None  # last object: landed in S3 → committed (when known)
    newest_event_ms: int | None = None  # newest event time ingested
    source_errors: int = 0
    quarantined: int = 0  # poison objects set aside (``engine.sources.quarantine``)
    repaired: Counter[str] = field(default_factory=Counter)
    _recent: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=RATE_WINDOW))
    _traffic: dict[int, list[int]] = field(default_factory=dict)  # minute → [req, blocked]

    def record(self, outcome: ObjectOutcome, table: pa.Table | None) -> None:
        self.objects += 1
        self.rows += outcome.rows
        self.malformed.update(outcome.malformed)
        self.repaired.update(outcome.repaired)
        self.rows_by_format[outcome.format] += outcome.rows
        if outcome.lag_s is not None:
            self.object_lag_s = outcome.lag_s
        self._recent.append((outcome.rows, outcome.seconds))
        if table is not None and table.num_rows:
            newest = pc.max(pc.cast(table.column(EVENT_TIME), pa.int64())).as_py()
            self.newest_event_ms = max(newest, self.newest_event_ms or newest)
            self._count_traffic(table)

    @property
    def lines_per_s(self) -> float | None:
        rows = sum(r for r, _ in self._recent)
        secs = sum(s for _, s in self._recent)
        return round(rows / secs, 1) if secs > 0 else None

    def _count_traffic(self, table: pa.Table) -> None:
        minutes = pc.divide(pc.cast(table.column(EVENT_TIME), pa.int64()), 60_000)
        blocked = pc.fill_null(
            pc.or_(
                pc.is_in(table.column(WAF_ACTION), pa.array(BLOCKED_ACTIONS)),
                pc.equal(table.column(STATUS), 403),
            ),
            False,
        )
        counts = (
            pa.table({"m": minutes, "b": pc.cast(blocked, pa.int64())})
            .group_by("m")
            .aggregate([("m", "count"), ("b", "sum")])
        )
        for minute, n, b in zip(
            counts.column("m").to_pylist(),
            counts.column("m_count").to_pylist(),
            counts.column("b_sum").to_pylist(),
            strict=True,
        ):
            slot = self._traffic.setdefault(int(minute), [0, 0])
            slot[0] += int(n)
            slot[1] += int(b or 0)
        newest = max(self._traffic)
        for minute in [m for m in self._traffic if m <= newest - TRAFFIC_MINUTES]:
            del self._traffic[minute]

    def traffic_series(self) -> TrafficSeries:
        minutes = sorted(self._traffic)
        return TrafficSeries(
            interval_s=60,
            t=tuple(m * 60 for m in minutes),
            requests=tuple(self._traffic[m][0] for m in minutes),
            blocked=tuple(self._traffic[m][1] for m in minutes),
            allowed=tuple(self._traffic[m][0] - self._traffic[m][1] for m in minutes),
        )

    def lag_s(self, now_s: float) -> float | None:
        """How far the newest ingested request lies behind now: the detection's data lag,
        AWS's log delivery included."""
        if self.newest_event_ms is None:
            return None
        return round(max(0.0, now_s - self.newest_event_ms / 1000), 3)

    def ingest_status(self, *, now_s: float) -> IngestStatus:
        return IngestStatus(
            lag_s=self.lag_s(now_s),
            object_lag_s=None if self.object_lag_s is None else round(self.object_lag_s, 3),
            lines_per_s=self.lines_per_s,
            objects=self.objects,
            rows=self.rows,
            malformed=sum(self.malformed.values()),
            malformed_by_reason=dict(self.malformed),
            source_errors=self.source_errors,
            rows_by_format=dict(self.rows_by_format),
            quarantined=self.quarantined,
            repaired_by_reason=dict(self.repaired),
        )
