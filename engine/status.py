"""The status contract: the documents a running engine publishes and the status API reads.

The engine (``wafsmith run``, ``wafsmith enforce``) writes JSON documents into the ledger's
status store; ``engine.service`` reads them back for the status API, ``/metrics`` and the
dashboard. Both sides use the records below and ``publish`` / ``read``, never a key or a
field name spelt as a bare string, so writer and reader cannot drift apart.

====================  ==================  ==============================================
record                key                 what it holds
====================  ==================  ==============================================
``EngineStatus``      ``engine``          ingestion totals and lag, active clients, model
``EnforcementStatus`` ``enforcement``     the last enforcement cycle (or refused document)
``TrafficSeries``     ``traffic``         requests / blocked / allowed per minute
``TopClients``        ``clients.top``     the highest-scoring clients and their features
``EvidenceSamples``   ``samples``         sample requests of those clients
====================  ==================  ==============================================

``LeaseStatus`` (who holds the enforcer lease) is read from the lease's own row, the truth,
rather than published.

Reading is tolerant: a field missing from a document reads as None (an older engine did not
write it), and keys this version does not know are ignored (a newer engine wrote them). A
missing document reads as None, which the service reports as "no engine has reported".
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from engine.core.errors import WafsmithError
from engine.core.lease import LeaseHolder
from engine.schema import features as F
from engine.schema.evidence import EvidenceSample
from engine.schema.verdict import ClientVerdict

_R = TypeVar("_R")


class StatusKey(enum.StrEnum):
    """Where each document lives in the ledger's status store."""

    ENGINE = "engine"
    ENFORCEMENT = "enforcement"
    TRAFFIC = "traffic"
    TOP_CLIENTS = "clients.top"
    SAMPLES = "samples"


class StatusError(WafsmithError, ValueError):
    """A stored status document that is not a JSON object of the expected kind."""


def _mapping(data: Any, what: str) -> Mapping[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise StatusError(f"the {what} status is not a JSON object: {data!r}")
    return data


def _flat(cls: type[_R], data: Any) -> _R:
    """A record of scalar fields read tolerantly: missing → None, unknown keys ignored."""
    doc = _mapping(data, cls.__name__)
    return cls(**{f.name: doc.get(f.name) for f in fields(cls)})  # type: ignore[arg-type]


def _tuple(values: Any) -> tuple[Any, ...] | None:
    return None if values is None else tuple(values)


def _list(values: Iterable[Any] | None) -> list[Any] | None:
    return None if values is None else list(values)


# -- engine: ingestion, active clients, model ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestStatus:
    """Ingestion since the engine started (``engine.telemetry.IngestTelemetry``)."""

    lag_s: float | None = None  # newest ingested request → now: the detection's data lag
    object_lag_s: float | None = None  # last object: landed in S3 → committed
    lines_per_s: float | None = None  # over the last objects
    objects: int | None = None
    rows: int | None = None
    malformed: int | None = None
    malformed_by_reason: dict[str, int] | None = None
    source_errors: int | None = None
    rows_by_format: dict[str, int] | None = None
    quarantined: int | None = None  # poison objects set aside with their reason
    repaired_by_reason: dict[str, int] | None = None  # lines kept after mending a bad byte

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> IngestStatus:
        return _flat(cls, data)


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """The isolation-forest artifact the anomaly detector scores with (all None: none yet)."""

    version: str | None = None  # spec hash prefix @ fitted time
    trained_at: str | None = None  # ISO-8601 UTC
    training_window: dict[str, Any] | None = None  # start, end, clients (the model card's)
    source: str | None = None  # "online trainer" (persisted artifact) or "stream bootstrap"
    refit_every_s: float | None = None  # the refit schedule
    drift: dict[str, Any] | None = None  # latest scored window against the training window

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> ModelStatus:
        return _flat(cls, data)


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """What the engine loop publishes about itself every ``loop.status_interval_s``."""

    KEY: ClassVar[StatusKey] = StatusKey.ENGINE

    ingest: IngestStatus = field(default_factory=IngestStatus)
    active_clients: int | None = None
    model: ModelStatus = field(default_factory=ModelStatus)
    notices: tuple[str, ...] = ()  # e.g. "behind CloudFront: ALB logs cannot identify viewers"
    # Per loop ("poll", "enforcement"): failures in a row, last delay, next attempt (epoch s).
    backoff: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ingest": self.ingest.to_dict(),
            "active_clients": self.active_clients,
            "model": self.model.to_dict(),
            "notices": list(self.notices),
            "backoff": self.backoff,
        }

    @classmethod
    def from_dict(cls, data: Any) -> EngineStatus:
        doc = _mapping(data, "engine")
        return cls(
            ingest=IngestStatus.from_dict(doc.get("ingest")),
            active_clients=doc.get("active_clients"),
            model=ModelStatus.from_dict(doc.get("model")),
            notices=tuple(str(n) for n in doc.get("notices") or ()),
            backoff=doc.get("backoff"),
        )


# -- enforcement --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnforcementStatus:
    """The last enforcement cycle: ``CycleResult.to_dict()``, or a refused document.

    The nested parts (calls, plan steps, entries, drift, errors, Shield) are the enforcer's
    own JSON and stay plain dicts here; an error is ``{"resource", "operation", "code",
    "message"}`` whichever way the cycle failed.
    """

    KEY: ClassVar[StatusKey] = StatusKey.ENFORCEMENT

    mode: str | None = None  # dry_run | count_only | enforce
    ok: bool | None = None
    started_at: str | None = None  # ISO-8601 UTC
    finished_at: str | None = None
    writes: int | None = None
    calls: dict[str, Any] | None = None
    plan: tuple[dict[str, Any], ...] | None = None
    entries: dict[str, int] | None = None  # IP set → entries
    drift: dict[str, Any] | None = None
    errors: tuple[dict[str, Any], ...] | None = None
    shield: dict[str, Any] | None = None
    next_expiry: str | None = None

    @classmethod
    def refused(cls, *, mode: str, at: datetime, violations: Iterable[object]) -> EnforcementStatus:
        """The compiled document broke a WAFv2 constraint, so nothing was sent to AWS."""
        when = at.isoformat()
        errors = tuple(
            {
                "resource": "desired_state",
                "operation": "validate",
                "code": "invalid_document",
                "message": str(v),
            }
            for v in violations
        )
        return cls(mode=mode, ok=False, started_at=when, finished_at=when, writes=0, errors=errors)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["plan"] = _list(self.plan)
        out["errors"] = _list(self.errors)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> EnforcementStatus:
        record = _flat(cls, data)
        errors = None if record.errors is None else tuple(_error(e) for e in record.errors)
        return replace(record, plan=_tuple(record.plan), errors=errors)


def _error(item: Any) -> dict[str, Any]:
    """An error of an older document, which may be a bare sentence."""
    return dict(item) if isinstance(item, Mapping) else {"message": str(item)}


# -- traffic ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrafficSeries:
    """Requests per interval of event time, oldest first (the dashboard's charts)."""

    KEY: ClassVar[StatusKey] = StatusKey.TRAFFIC

    interval_s: float | None = None
    t: tuple[int, ...] | None = None  # interval starts, epoch seconds
    requests: tuple[int, ...] | None = None
    blocked: tuple[int, ...] | None = None  # denied by the WAF (or answered 403)
    allowed: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "interval_s": self.interval_s,
            "t": _list(self.t),
            "requests": _list(self.requests),
            "blocked": _list(self.blocked),
            "allowed": _list(self.allowed),
        }

    @classmethod
    def from_dict(cls, data: Any) -> TrafficSeries:
        doc = _mapping(data, "traffic")
        return cls(
            interval_s=doc.get("interval_s"),
            t=_tuple(doc.get("t")),
            requests=_tuple(doc.get("requests")),
            blocked=_tuple(doc.get("blocked")),
            allowed=_tuple(doc.get("allowed")),
        )


# -- clients ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientSummary:
    """One client's latest verdict: score, kind, request count and the features read."""

    client: str | None = None
    score: float | None = None
    kind: str | None = None
    requests: int | None = None  # in the detector's window, when it reported the count
    features: dict[str, float] | None = None

    @classmethod
    def from_verdict(cls, verdict: ClientVerdict) -> ClientSummary:
        count = verdict.features.get(F.REQ_COUNT)
        return cls(
            client=verdict.client,
            score=verdict.score,
            kind=verdict.kind,
            requests=None if count is None else int(count),
            features=dict(verdict.features),
        )

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> ClientSummary:
        return _flat(cls, data)


def top_verdicts(verdicts: Iterable[ClientVerdict], *, limit: int) -> list[ClientVerdict]:
    """The ``limit`` highest-scoring verdicts, highest first (ties keep their order)."""
    return sorted(verdicts, key=lambda v: -v.score)[:limit]


@dataclass(frozen=True, slots=True)
class TopClients:
    """The highest-scoring verdicts of the latest evaluations, highest first."""

    KEY: ClassVar[StatusKey] = StatusKey.TOP_CLIENTS

    items: tuple[ClientSummary, ...] | None = None

    @classmethod
    def from_verdicts(cls, verdicts: Iterable[ClientVerdict]) -> TopClients:
        """Summaries of ``verdicts`` in the order given (``top_verdicts`` ranks them)."""
        return cls(items=tuple(ClientSummary.from_verdict(v) for v in verdicts))

    def find(self, client: str) -> ClientSummary | None:
        return next((i for i in self.items or () if i.client == client), None)

    def to_dict(self) -> dict[str, Any]:
        return {"items": None if self.items is None else [i.to_dict() for i in self.items]}

    @classmethod
    def from_dict(cls, data: Any) -> TopClients:
        items = _mapping(data, "top clients").get("items")
        if items is None:
            return cls()
        return cls(items=tuple(ClientSummary.from_dict(i) for i in items))


@dataclass(frozen=True, slots=True)
class EvidenceSamples:
    """Sample requests per client (the evidence of its latest verdicts), most telling first."""

    KEY: ClassVar[StatusKey] = StatusKey.SAMPLES

    clients: dict[str, tuple[EvidenceSample, ...]] | None = None

    @classmethod
    def from_verdicts(cls, verdicts: Iterable[ClientVerdict]) -> EvidenceSamples:
        """Each client's evidence across its verdicts, duplicates dropped."""
        clients: dict[str, tuple[EvidenceSample, ...]] = {}
        for v in verdicts:
            seen = clients.get(v.client, ())
            clients[v.client] = seen + tuple(e for e in v.evidence if e not in seen)
        return cls(clients=clients)

    def for_client(self, client: str) -> tuple[EvidenceSample, ...]:
        return (self.clients or {}).get(client, ())

    def to_dict(self) -> dict[str, Any]:
        if self.clients is None:
            return {"clients": None}
        return {"clients": {c: [e.to_dict() for e in s] for c, s in self.clients.items()}}

    @classmethod
    def from_dict(cls, data: Any) -> EvidenceSamples:
        clients = _mapping(data, "samples").get("clients")
        if clients is None:
            return cls()
        by_client = _mapping(clients, "samples")
        return cls(
            clients={
                str(c): tuple(EvidenceSample.from_dict(e) for e in samples)
                for c, samples in by_client.items()
            }
        )


# -- the enforcer lease -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    """Who holds the enforcer lease, read from the lease's row (not a published document),
    and whether this process is that holder (``leader``: None when the API runs without an
    engine beside it, ``wafsmith serve``)."""

    name: str | None = None
    holder: str | None = None  # instance id; None: nobody has held it yet
    epoch: int | None = None  # the fencing token; grows by one per acquisition
    since: datetime | None = None
    renewed_at: datetime | None = None
    leader: bool | None = None

    @classmethod
    def from_holder(
        cls, name: str, holder: LeaseHolder | None, *, instance_id: str | None
    ) -> LeaseStatus:
        mine = None
        if instance_id is not None:
            mine = holder is not None and holder.instance_id == instance_id
        if holder is None:
            return cls(name=name, leader=mine)
        return cls(
            name=name,
            holder=holder.instance_id,
            epoch=holder.epoch,
            since=holder.since,
            renewed_at=holder.renewed_at,
            leader=mine,
        )

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# -- publishing and reading ---------------------------------------------------------------------

StatusRecord = EngineStatus | EnforcementStatus | TrafficSeries | TopClients | EvidenceSamples
_S = TypeVar("_S", EngineStatus, EnforcementStatus, TrafficSeries, TopClients, EvidenceSamples)


class StatusDocument(Protocol):
    document: dict[str, Any]
    updated_at: datetime


class StatusStore(Protocol):
    """Where documents live: ``engine.decisions.Ledger`` (``put_status`` / ``get_status``)."""

    def put_status(self, key: str, document: dict[str, Any]) -> None: ...

    def get_status(self, key: str) -> StatusDocument | None: ...


@dataclass(frozen=True, slots=True)
class Reported(Generic[_S]):
    """A document as read back, and when it was published."""

    record: _S
    updated_at: datetime


def publish(store: StatusStore, record: StatusRecord) -> None:
    """Replace the stored document of ``record``'s kind with ``record``."""
    store.put_status(record.KEY.value, record.to_dict())


def read(store: StatusStore, kind: type[_S]) -> Reported[_S] | None:
    """The stored document of ``kind``, or None when none was published."""
    found = store.get_status(kind.KEY.value)
    if found is None:
        return None
    return Reported(kind.from_dict(found.document), found.updated_at)
