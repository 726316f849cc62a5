"""The status contract: records round-trip, read tolerantly, and meet in a real ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from engine.core.clock import FakeClock
from engine.decisions import Ledger
from engine.schema import features as F
from engine.schema.evidence import EvidenceSample
from engine.schema.verdict import ClientVerdict
from engine.status import (
    ClientSummary,
    EnforcementStatus,
    EngineStatus,
    EvidenceSamples,
    IngestStatus,
    ModelStatus,
    StatusError,
    StatusKey,
    TopClients,
    TrafficSeries,
    publish,
    read,
    top_verdicts,
)
from engine.telemetry import IngestTelemetry, ObjectOutcome

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LOGIN = EvidenceSample(event_time="2026-03-01T11:59:00Z", method="POST", path="/login", status=401)
SEARCH = EvidenceSample(event_time="2026-03-01T11:59:01Z", method="GET", path="/search", status=200)
RECORDS = (EngineStatus, EnforcementStatus, TrafficSeries, TopClients, EvidenceSamples)


def verdict(client: str, score: float, detector: str, *evidence: EvidenceSample) -> ClientVerdict:
    return ClientVerdict(
        client=client,
        score=score,
        kind="flood",
        severity="high",
        detector=detector,
        evidence=evidence,
        features={F.REQ_COUNT: 612.0, F.VERDICT_WINDOW_MIN: 1.0},
    )


EXAMPLES = (
    EngineStatus(
        ingest=IngestStatus(lag_s=3.5, objects=7, malformed_by_reason={"bad_time": 2}),
        active_clients=40,
        model=ModelStatus(version="abc@2026", trained_at="2026-03-01T11:00:00Z"),
    ),
    EnforcementStatus.refused(mode="enforce", at=START, violations=["IP set over 10,000"]),
    TrafficSeries(interval_s=60, t=(0, 60), requests=(5, 9), blocked=(0, 4), allowed=(5, 5)),
    TopClients.from_verdicts([verdict("203.0.113.9", 0.97, "volumetric_flood", LOGIN)]),
    EvidenceSamples.from_verdicts([verdict("203.0.113.9", 0.97, "volumetric_flood", LOGIN)]),
)


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda r: type(r).__name__)
def test_every_record_round_trips_through_json(record) -> None:
    document = json.loads(json.dumps(record.to_dict()))
    assert type(record).from_dict(document) == record


def test_each_document_kind_has_its_own_key() -> None:
    assert sorted(kind.KEY for kind in RECORDS) == sorted(StatusKey)


@pytest.mark.parametrize("kind", RECORDS, ids=lambda k: k.__name__)
def test_a_missing_field_reads_as_none_and_unknown_keys_are_ignored(kind) -> None:
    empty = kind.from_dict({"written_by_a_newer_engine": True})
    assert empty == kind()
    assert kind.from_dict({}) == kind()


@pytest.mark.parametrize("kind", RECORDS, ids=lambda k: k.__name__)
def test_a_document_that_is_not_an_object_is_refused(kind) -> None:
    with pytest.raises(StatusError, match="not a JSON object"):
        kind.from_dict(["engine", 1])


def test_an_older_engine_document_reads_with_its_gaps_as_none() -> None:
    record = EngineStatus.from_dict({"ingest": {"lag_s": 2.0}})
    assert record.ingest.lag_s == 2.0 and record.ingest.objects is None
    assert record.active_clients is None
    assert record.model == ModelStatus()
    refused = EnforcementStatus.from_dict({"ok": False, "errors": ["too many rules"]})
    assert refused.errors == ({"message": "too many rules"},)


def test_a_refused_document_reports_each_violation_as_an_error() -> None:
    record = EnforcementStatus.refused(mode="dry_run", at=START, violations=["a", "b"])
    assert (record.ok, record.writes, record.mode) == (False, 0, "dry_run")
    assert [e["message"] for e in record.errors or ()] == ["a", "b"]
    assert all(e["code"] == "invalid_document" for e in record.errors or ())


def test_top_clients_rank_by_score_and_carry_the_window_request_count() -> None:
    verdicts = [
        verdict("192.0.2.1", 0.5, "scanner"),
        verdict("192.0.2.2", 0.9, "volumetric_flood"),
        verdict("192.0.2.3", 0.7, "scanner"),
    ]
    top = TopClients.from_verdicts(top_verdicts(verdicts, limit=2))
    assert [i.client for i in top.items or ()] == ["192.0.2.2", "192.0.2.3"]
    assert top.find("192.0.2.2") == ClientSummary(
        client="192.0.2.2",
        score=0.9,
        kind="flood",
        requests=612,
        features={F.REQ_COUNT: 612.0, F.VERDICT_WINDOW_MIN: 1.0},
    )
    assert top.find("192.0.2.1") is None


def test_samples_merge_a_clients_verdicts_without_repeats() -> None:
    samples = EvidenceSamples.from_verdicts(
        [
            verdict("203.0.113.9", 0.9, "volumetric_flood", LOGIN, SEARCH),
            verdict("203.0.113.9", 0.8, "scanner", SEARCH, LOGIN),
            verdict("198.51.100.4", 0.6, "scanner"),
        ]
    )
    assert samples.for_client("203.0.113.9") == (LOGIN, SEARCH)
    assert samples.for_client("198.51.100.4") == ()
    assert samples.for_client("192.0.2.99") == ()


def test_telemetry_renders_the_ingest_record() -> None:
    telemetry = IngestTelemetry()
    outcome = ObjectOutcome(
        uri="s3://logs/a.log.gz",
        format="alb",
        rows=100,
        malformed={"bad_time": 2},
        seconds=0.5,
        lag_s=1.25,
    )
    telemetry.record(outcome, None)
    ingest = telemetry.ingest_status(now_s=START.timestamp())
    assert (ingest.objects, ingest.rows, ingest.malformed) == (1, 100, 2)
    assert ingest.lines_per_s == 200.0 and ingest.object_lag_s == 1.25
    assert ingest.lag_s is None  # no event time ingested yet
    assert telemetry.traffic_series() == TrafficSeries(
        interval_s=60, t=(), requests=(), blocked=(), allowed=()
    )


@pytest.fixture()
def ledger(tmp_path):
    clock = FakeClock(START)
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", clock=clock) as opened:
        yield opened, clock


def test_publish_then_read_through_the_ledger(ledger) -> None:
    store, clock = ledger
    assert read(store, EngineStatus) is None  # nothing published: "no engine has reported"
    publish(store, EXAMPLES[0])
    clock.advance(30)
    newer = EngineStatus(ingest=IngestStatus(lag_s=1.0), active_clients=41)
    publish(store, newer)
    found = read(store, EngineStatus)
    assert found is not None
    assert found.record == newer and found.updated_at == START + timedelta(seconds=30)
    assert read(store, TopClients) is None  # each kind under its own key
    assert store.get_status(StatusKey.ENGINE).document == newer.to_dict()
