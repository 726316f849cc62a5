"""Prometheus metrics, one ``CollectorRegistry`` per app (so several apps never collide).

Engine gauges are read from the service at scrape time; HTTP request counts and latencies
are recorded by a middleware.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from engine.service import Service


class EngineCollector(Collector):
    """Gauges taken from ``Service.metrics()`` on every scrape."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self._service.metrics()
        by_state = GaugeMetricFamily(
            "wafsmith_decisions", "Decisions in the ledger by state", labels=["state"]
        )
        for state, count in sorted(snapshot["decisions_by_state"].items()):
            by_state.add_metric([state], count)
        yield by_state
        for name, help_text in ENGINE_GAUGES.items():
            value = snapshot.get(name)
            if value is not None:
                yield GaugeMetricFamily(f"wafsmith_{name}", help_text, value=float(value))


ENGINE_GAUGES = {
    "ingest_lag_seconds": "Seconds the ingest is behind the newest object",
    "lines_per_second": "Log lines parsed per second (engine-reported)",
    "objects_total": "Log objects committed (engine-reported)",
    "malformed_total": "Malformed log lines quarantined (engine-reported)",
    "active_clients": "Clients with traffic in the current window",
    "enforcement_errors": "Errors in the last enforcement cycle",
    "drift_items": "WAF entries that differ from the desired state",
    "model_age_seconds": "Age of the scoring model",
    "status_age_seconds": "Seconds since the engine last published its status",
}


class ApiMetrics:
    """The app's registry and its HTTP instruments."""

    def __init__(self, service: Service) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(EngineCollector(service))
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
