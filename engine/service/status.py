"""What the running engine published, read back for the status API, ``/metrics`` and the
dashboard: engine health, the last enforcement cycle, traffic, top clients and one client.

The documents and their fields are the records of ``engine.status``. A missing document
reads as "no engine has reported yet"; a missing field reads as null.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from engine.schema.decision import DecisionError, normalize_client
from engine.schema.evidence import EvidenceSample
from engine.service.decisions import DecisionMethods
from engine.service.errors import InvalidInput, NotFound
from engine.status import (
    ClientSummary,
    EnforcementStatus,
    EngineStatus,
    EvidenceSamples,
    LeaseStatus,
    Reported,
    TopClients,
    TrafficSeries,
    read,
)

T = TypeVar("T")

NOT_REPORTED = "no engine has reported yet"
MAX_SAMPLES = 20  # sample requests shown for one client


class StatusMethods(DecisionMethods):
    """Reads of the engine's status documents (decision counts come from the ledger)."""

    lease_name: str
    instance_id: str | None

    def status(self) -> dict[str, Any]:
        engine = read(self.ledger, EngineStatus)
        enforcement = read(self.ledger, EnforcementStatus)
        body = EngineStatus() if engine is None else engine.record
        last = None if enforcement is None else enforcement.record
        return {
            "reported": engine is not None,
            "message": None if engine else NOT_REPORTED,
            "reported_at": engine.updated_at if engine else None,
            "report_age_s": self._age_s(engine.updated_at) if engine else None,
            "ingest_lag_s": body.ingest.lag_s,
            "lines_per_s": body.ingest.lines_per_s,
            "objects": body.ingest.objects,
            "malformed": body.ingest.malformed,
            "active_clients": body.active_clients,
            "decisions_by_state": self.decisions_by_state(),
            "last_enforcement": _enforcement_summary(last),
            "drift": None if last is None else last.drift,
            "model_version": body.model.version,
            "model_age_s": self._age_s(body.model.trained_at),
            "lease": self.lease(),
            "notices": list(body.notices),
            "backoff": body.backoff,
            "model_source": body.model.source,
            "model_refit_every_s": body.model.refit_every_s,
            "model_drift": body.model.drift,
        }

    def lease(self) -> dict[str, Any]:
        """Who holds the enforcer lease (instance, epoch, since), how long ago it renewed, and
        whether the engine beside this API is the holder."""
        holder = self.ledger.lease_holder(self.lease_name)
        record = LeaseStatus.from_holder(self.lease_name, holder, instance_id=self.instance_id)
        return {**record.to_dict(), "renewed_age_s": self._age_s(record.renewed_at)}

    def metrics(self) -> dict[str, Any]:
        """Numbers for ``/metrics`` (None when the engine has not reported them)."""
        status = self.status()
        engine = read(self.ledger, EngineStatus)
        by_reason = None if engine is None else engine.record.ingest.malformed_by_reason
        enforcement = status["last_enforcement"] or {}
        drift = status["drift"] or {}
        return {
            "decisions_by_state": status["decisions_by_state"],
            "ingest_lag_seconds": status["ingest_lag_s"],
            "lines_per_second": status["lines_per_s"],
            "objects_total": status["objects"],
            "malformed_total": status["malformed"],
            "malformed_by_reason": None if by_reason is None else dict(by_reason),
            "active_clients": status["active_clients"],
            "enforcement_errors": enforcement.get("error_count"),
            "drift_items": len(drift.get("unresolved", [])) if drift else None,
            "model_age_seconds": status["model_age_s"],
            "status_age_seconds": status["report_age_s"],
        }

    def timeseries(self) -> dict[str, list[float]] | None:
        """Request rate and blocked / allowed rates over time, or None without data."""
        found = read(self.ledger, TrafficSeries)
        series = None if found is None else found.record
        if series is None or series.t is None or len(series.t) < 2:
            return None
        interval = float(series.interval_s or 60.0)
        n = len(series.t)

        def rate(counts: tuple[int, ...] | None) -> list[float]:
            values = list(counts or [0] * n)[:n]
            return [float(v) / interval for v in values] + [0.0] * (n - len(values))

        return {
            "t": [float(t) for t in series.t],
            "rps": rate(series.requests),
            "blocked": rate(series.blocked),
            "allowed": rate(series.allowed),
        }

    def top_clients(self, *, limit: int = 50) -> dict[str, Any]:
        found = read(self.ledger, TopClients)
        if found is None:
            return {"reported": False, "message": NOT_REPORTED, "items": []}
        items = [_client_summary(item) for item in (found.record.items or ())[:limit]]
        return {"reported": True, "message": None, "items": items}

    def client(self, ip: str) -> dict[str, Any]:
        """Features (from the engine's last report), decision history and sample requests:
        the engine's latest samples of the client first, then its decisions' evidence."""
        try:
            client = normalize_client(ip)
        except DecisionError as exc:
            raise InvalidInput(str(exc)) from None
        decisions = self.ledger.list(client=client, limit=200).items
        summary = _record(read(self.ledger, TopClients), TopClients()).find(client)
        published = _record(read(self.ledger, EvidenceSamples), EvidenceSamples())
        samples = _distinct(
            [*published.for_client(client), *(e for d in decisions for e in d.evidence)]
        )
        if summary is None and not decisions and not samples:
            raise NotFound(f"nothing is known about client {client}")
        return {
            "client": client,
            "features": None if summary is None else _client_summary(summary)["features"],
            "decisions": decisions,
            "sample_requests": samples[:MAX_SAMPLES],
        }

    def _age_s(self, when: datetime | str | None) -> float | None:
        if when is None:
            return None
        try:
            moment = when if isinstance(when, datetime) else _parse_iso(when)
        except ValueError:
            return None
        return max(0.0, (self.now() - moment).total_seconds())


def _record(found: Reported[T] | None, default: T) -> T:
    return default if found is None else found.record


def _distinct(samples: list[EvidenceSample]) -> list[EvidenceSample]:
    """``samples`` without repeats (the engine's samples recur in its decisions), in order."""
    return list(dict.fromkeys(samples))


def _client_summary(item: ClientSummary) -> dict[str, Any]:
    return {
        "client": str(item.client or ""),
        "score": item.score,
        "kind": item.kind,
        "requests": item.requests,
        "features": dict(item.features or {}),
    }


def _enforcement_summary(doc: EnforcementStatus | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    errors = list(doc.errors or [])
    return {
        "mode": doc.mode,
        "ok": doc.ok,
        "started_at": doc.started_at,
        "finished_at": doc.finished_at,
        "writes": doc.writes,
        "error_count": len(errors),
        "errors": errors,
    }


def _parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone")
    return moment
