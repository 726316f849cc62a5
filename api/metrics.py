"""Prometheus metrics, one ``CollectorRegistry`` per app (so several apps never collide).

Under ``wafsmith run`` the engine's own registry (``engine.telemetry.EngineMetrics``: objects,
lines, malformed by reason, proposals by detector, AWS calls, throttles, retries, SQS
messages, object latency, decisions by state) is scraped with the app's. Served alone
(``wafsmith serve``) the app reads what the engine last published to the ledger instead:
decisions by state, objects and malformed lines (as counters) and the engine gauges below.
HTTP request counts and latencies are recorded by a middleware.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine.service import Service


class EngineCollector(Collector):
    """Metrics taken from ``Service.metrics()`` (the ledger) on every scrape.

    ``live``: the engine's own registry is scraped beside this one, so the families it
    already has (decisions, objects, malformed, active clients) are not repeated here.
    """

    def __init__(self, service: Service, *, live: bool = False) -> None:
        self._service = service
        self._live = live

    def collect(self) -> Iterator[Metric]:
        snapshot = self._service.metrics()
        if not self._live:
            yield from _published_counts(snapshot)
        for name, help_text in ENGINE_GAUGES.items():
            value = snapshot.get(name)
            if value is not None and not (self._live and name in LIVE_GAUGES):
                yield GaugeMetricFamily(f"wafsmith_{name}", help_text, value=float(value))


def _published_counts(snapshot: dict) -> Iterator[Metric]:
    by_state = GaugeMetricFamily(
        "wafsmith_decisions", "Decisions in the ledger by state", labels=["state"]
    )
    for state, count in sorted(snapshot["decisions_by_state"].items()):
        by_state.add_metric([state], count)
    yield by_state
    if snapshot.get("objects_total") is not None:
        yield CounterMetricFamily(
            "wafsmith_objects", "Log objects processed", value=snapshot["objects_total"]
        )
    malformed = snapshot.get("malformed_by_reason")
    if malformed is not None:
        family = CounterMetricFamily(
            "wafsmith_malformed", "Malformed log lines quarantined, by reason", labels=["reason"]
        )
        for reason, count in sorted(malformed.items()):
            family.add_metric([reason], count)
        yield family


ENGINE_GAUGES = {
    "ingest_lag_seconds": "Seconds the ingest is behind the newest object",
    "lines_per_second": "Log lines parsed per second (engine-reported)",
    "active_clients": "Clients with traffic in the current window",
    "enforcement_errors": "Errors in the last enforcement cycle",
    "drift_items": "WAF entries that differ from the desired state",
    "model_age_seconds": "Age of the scoring model",
    "status_age_seconds": "Seconds since the engine last published its status",
}


# Gauges the engine's live registry carries itself.
LIVE_GAUGES = frozenset({"active_clients"})


class ApiMetrics:
    """The app's registry and its HTTP instruments (plus the engine's, when given)."""

    def __init__(self, service: Service, engine_registry: Collector | None = None) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(EngineCollector(service, live=engine_registry is not None))
        if engine_registry is not None:
            self.registry.register(engine_registry)
        self.requests = Counter(
            "wafsmith_http_requests",
            "HTTP requests served",
            ["method", "route", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "wafsmith_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )

    def install(self, app: FastAPI) -> None:
        @app.middleware("http")
        async def record(request: Request, call_next) -> Response:
            started = time.perf_counter()
            response = await call_next(request)
            route = request.scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.latency.labels(request.method, template).observe(time.perf_counter() - started)
            self.requests.labels(request.method, template, str(response.status_code)).inc()
            return response
