"""What the running engine counts about itself, and the status documents it publishes.

``IngestTelemetry`` folds each processed object (rows, malformed lines, timings, traffic per
minute of event time) into running totals; ``ingest_status`` and ``traffic_series`` render
them as the status records (``engine.status``) the runner publishes for the status API.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import prometheus_client as prom
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


# AWS error codes that mean "slow down" (the call-rate limits of WAFv2, Shield, SQS, S3).
THROTTLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "WAFLimitsExceededException",
    }
)
# Seconds to process one object: from a small WAF object to a large ALB one under load.
OBJECT_SECONDS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class EngineMetrics:
    """The engine's Prometheus instruments, in a registry of their own.

    The runner reports what happened (an object processed, proposals stored, an enforcement
    cycle, the SQS source's totals, the ledger's counts) and this class turns it into
    counters, gauges and a latency histogram. ``registry`` is scraped by the API's
    ``/metrics`` when the API runs in the engine's process, or by a metrics-only listener
    (``wafsmith run --no-api``). All instruments are thread-safe.
    """

    def __init__(self) -> None:
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.objects = prom.Counter("wafsmith_objects", "Log objects processed", registry=r)
        self.lines = prom.Counter(
            "wafsmith_lines", "Log lines parsed into rows, by format", ["format"], registry=r
        )
        self.malformed = prom.Counter(
            "wafsmith_malformed",
            "Malformed log lines (or objects) quarantined, by reason",
            ["reason"],
            registry=r,
        )
        self.object_seconds = prom.Histogram(
            "wafsmith_object_seconds",
            "Seconds to parse, analyse and decide on one log object",
            buckets=OBJECT_SECONDS_BUCKETS,
            registry=r,
        )
        self.proposals = prom.Counter(
            "wafsmith_proposals", "Decisions proposed, by detector", ["detector"], registry=r
        )
        self.auto_approved = prom.Counter(
            "wafsmith_auto_approved", "Proposals approved by the policy", registry=r
        )
        self.decisions = prom.Gauge(
            "wafsmith_decisions", "Decisions in the ledger by state", ["state"], registry=r
        )
        self.held = prom.Gauge(
            "wafsmith_blast_radius_held",
            "Proposals the last policy run held for an analyst because of the blast-radius "
            "guard (share of active clients or entries per push)",
            registry=r,
        )
        self.aws_calls = prom.Counter(
            "wafsmith_aws_calls",
            "AWS API attempts by operation and outcome ('ok' or the error code)",
            ["operation", "outcome"],
            registry=r,
        )
        self.aws_throttles = prom.Counter(
            "wafsmith_aws_throttles", "AWS calls refused by a rate limit", ["operation"], registry=r
        )
        self.aws_retries = prom.Counter("wafsmith_aws_retries", "AWS calls retried", registry=r)
        self.enforcement_cycles = prom.Counter(
            "wafsmith_enforcement_cycles", "Enforcement cycles by result", ["result"], registry=r
        )
        self.sqs = prom.Counter(
            "wafsmith_sqs_messages",
            "SQS messages received and deleted",
            ["operation"],
            registry=r,
        )
        self.active_clients = prom.Gauge(
            "wafsmith_active_clients", "Clients with traffic in the current window", registry=r
        )
        self.backoff_failures = prom.Gauge(
            "wafsmith_backoff_failures",
            "Failures in a row of the engine's poll or enforcement loop (0: healthy)",
            ["loop"],
            registry=r,
        )
        self.backoff_delay = prom.Gauge(
            "wafsmith_backoff_delay_seconds",
            "The wait the loop's back-off imposed after its last failure (0: healthy)",
            ["loop"],
            registry=r,
        )
        self._sqs_seen: dict[str, int] = {"receive": 0, "delete": 0}

    def object_done(self, outcome: ObjectOutcome) -> None:
        self.objects.inc()
        if outcome.rows:
            self.lines.labels(outcome.format).inc(outcome.rows)
        for reason, count in outcome.malformed.items():
            self.malformed.labels(reason).inc(count)
        self.object_seconds.observe(max(0.0, outcome.seconds))

    def proposed(self, detectors: list[str], *, approved: int, held_by_guard: int) -> None:
        for detector in detectors:
            self.proposals.labels(detector).inc()
        self.auto_approved.inc(approved)
        self.held.set(held_by_guard)

    def cycle_done(self, *, ok: bool, outcomes: dict[tuple[str, str], int], retries: int) -> None:
        """One enforcement cycle: its result and every AWS attempt it made."""
        self.enforcement_cycles.labels("ok" if ok else "failed").inc()
        for (operation, outcome), count in outcomes.items():
            self.aws_calls.labels(operation, outcome).inc(count)
            if outcome in THROTTLE_CODES:
                self.aws_throttles.labels(operation).inc(count)
        self.aws_retries.inc(retries)

    def sqs_totals(self, *, received: int, deleted: int) -> None:
        """The source's running totals; only the growth since the last call is counted."""
        for operation, total in (("receive", received), ("delete", deleted)):
            grown = total - self._sqs_seen[operation]
            if grown > 0:
                self.sqs.labels(operation).inc(grown)
            self._sqs_seen[operation] = max(total, self._sqs_seen[operation])

    def ledger_counts(self, by_state: dict[str, int], *, active_clients: int) -> None:
        for state, count in by_state.items():
            self.decisions.labels(state).set(count)
        self.active_clients.set(active_clients)

    def backoff(self, loop: str, *, failures: int, delay_s: float) -> None:
        """The back-off of one loop (``poll`` or ``enforcement``), as the status shows it."""
        self.backoff_failures.labels(loop).set(failures)
        self.backoff_delay.labels(loop).set(delay_s if failures else 0.0)
