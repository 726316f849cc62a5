"""The engine's Prometheus metrics: counters for objects, lines, malformed lines by reason,
proposals by detector, AWS calls by operation and outcome, SQS messages, a latency histogram,
served by ``wafsmith run --no-api`` on its metrics-only listener (moto plays S3, SQS, WAFv2),
and, without the engine in the process, the published counts as counters on the API."""

from __future__ import annotations

import re
import signal
import socket
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from engine.demo.standin import bootstrap
from engine.status import EngineStatus, IngestStatus, publish
from engine.telemetry import EngineMetrics
from tests.support.alb import alb_object, flood_object
from tests.support.engine_process import start_engine, write_engine_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, or None when absent."""
    for line in text.splitlines():
        match = re.match(r"^(\w+)(\{[^}]*\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return None


@pytest.mark.slow
def test_run_without_api_serves_the_engine_counters(aws_endpoint, s3, tmp_path) -> None:
    demo = bootstrap(aws_endpoint)
    port = free_port()
    config = write_engine_config(
        tmp_path / "engine.toml",
        demo,
        tmp_path / "var",
        source={"kind": "sqs", "queue_url": demo.queue_url, "wait_time_s": 1},
        metrics={"port": port},
    )
    minute = (datetime.now(UTC) - timedelta(minutes=20)).replace(second=0, microsecond=0)
    flood, _ = flood_object(minute, "203.0.113.9", requests=600)
    prefix = "AWSLogs/123456789012/elasticloadbalancing/us-east-1"
    s3.put_object(Bucket=demo.bucket, Key=f"{prefix}/flood.log.gz", Body=flood)
    junk = alb_object(["this is not an ALB line", "neither is this"])
    s3.put_object(Bucket=demo.bucket, Key=f"{prefix}/junk.log.gz", Body=junk)

    proc = start_engine(config)
    text = ""
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.TransportError:
                text = ""
            done = (sample(text, "wafsmith_objects_total") or 0) >= 2
            pushed = sample(text, "wafsmith_aws_calls_total", outcome="ok") is not None
            if done and pushed and sample(text, "wafsmith_sqs_messages_total", operation="delete"):
                break
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == 0, err[-3000:]
    assert "# TYPE wafsmith_objects_total counter" in text
    assert sample(text, "wafsmith_objects_total") == 2
    assert sample(text, "wafsmith_lines_total", format="alb") >= 600
    assert (
        sum(
            v
            for line in text.splitlines()
            if line.startswith("wafsmith_malformed_total{")
            for v in [float(line.rsplit(" ", 1)[1])]
        )
        >= 2
    )
    assert sample(text, "wafsmith_proposals_total", detector="volumetric_flood") >= 1
    assert sample(text, "wafsmith_sqs_messages_total", operation="receive") >= 2
    assert sample(text, "wafsmith_sqs_messages_total", operation="delete") >= 1
    assert sample(text, "wafsmith_aws_calls_total", outcome="ok") >= 1
    assert sample(text, "wafsmith_object_seconds_count") == 2
    assert sample(text, "wafsmith_enforcement_cycles_total", result="ok") >= 1
    assert sample(text, "wafsmith_decisions", state="applied") is not None


def test_api_scrapes_the_engine_registry_without_repeating_a_family(service, tokens) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app

    metrics = EngineMetrics()
    metrics.ledger_counts({"proposed": 2}, active_clients=7)
    metrics.cycle_done(
        ok=False,
        outcomes={("GetIPSet", "ok"): 2, ("UpdateIPSet", "ThrottlingException"): 3},
        retries=3,
    )
    publish(service.ledger, EngineStatus(ingest=IngestStatus(objects=4), active_clients=7))
    app = create_app(service, engine_registry=metrics.registry)
    text = TestClient(app).get("/metrics", headers=tokens.header("viewer")).text
    families = re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE)
    assert len(families) == len(set(families)), "a metric family appears twice"
    assert sample(text, "wafsmith_aws_throttles_total", operation="UpdateIPSet") == 3
    assert sample(text, "wafsmith_aws_retries_total") == 3
    assert sample(text, "wafsmith_decisions", state="proposed") == 2
    assert sample(text, "wafsmith_enforcement_cycles_total", result="failed") == 1


def test_served_alone_the_published_totals_are_counters(client, service, tokens) -> None:
    ingest = IngestStatus(objects=5, malformed=3, malformed_by_reason={"bad_line": 3})
    publish(service.ledger, EngineStatus(ingest=ingest))
    text = client.get("/metrics", headers=tokens.header("viewer")).text
    assert "# TYPE wafsmith_objects_total counter" in text
    assert sample(text, "wafsmith_objects_total") == 5
    assert sample(text, "wafsmith_malformed_total", reason="bad_line") == 3
