"""Notifications against a real HTTP server on 127.0.0.1: Slack-compatible and generic JSON,
rate limiting that folds notices into the next message, failures counted and never raised,
SNS publishing through moto, and ``wafsmith run`` telling a webhook that a proposal waits."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.core.clock import FakeClock
from engine.notify import Notice, NoticeKind, RateLimitedNotifier, SnsSender, WebhookSender

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Hook:
    """A local webhook: records every POSTed JSON body; answers ``status``."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture()
def hook() -> Iterator[Hook]:
    made = Hook()
    yield made
    made.server.shutdown()


def waiting(n: int = 1) -> Notice:
    return Notice(
        NoticeKind.PROPOSAL_WAITING,
        f"{n} proposal(s) wait for approval",
        "No auto-approve rule covers them.",
        NOW,
        fields={"203.0.113.7": "block by scanner (score 0.91)"},
        link="https://wafsmith.example.com/dashboard/queue",
    )


def test_slack_style_body(hook) -> None:
    notifier = RateLimitedNotifier([WebhookSender(hook.url)], clock=FakeClock(NOW))
    assert notifier.offer(waiting())
    (body,) = hook.bodies
    assert body["text"] == "[wafsmith] 1 proposal(s) wait for approval"
    block = body["blocks"][0]["text"]["text"]
    assert "203.0.113.7: block by scanner" in block
    assert "<https://wafsmith.example.com/dashboard/queue|Open in wafsmith>" in block


def test_generic_style_body(hook) -> None:
    sender = WebhookSender(hook.url, style="generic")
    RateLimitedNotifier([sender], clock=FakeClock(NOW)).offer(waiting())
    (body,) = hook.bodies
    assert body["kind"] == "proposal_waiting"
    assert body["at"] == "2026-03-01T12:00:00Z"
    assert body["fields"] == {"203.0.113.7": "block by scanner (score 0.91)"}
    assert body["suppressed"] == 0


def test_rate_limit_folds_notices_into_the_next_message(hook) -> None:
    clock = FakeClock(NOW)
    notifier = RateLimitedNotifier(
        [WebhookSender(hook.url, style="generic")], clock=clock, min_interval_s=300
    )
    assert notifier.offer(waiting(1))
    for n in range(2, 6):  # four more within the interval: held, not sent
        clock.advance(30)
        assert not notifier.offer(waiting(n))
    # another kind has its own budget
    failed = Notice(NoticeKind.ENFORCEMENT_FAILED, "Enforcement failed", "AccessDenied", NOW)
    assert notifier.offer(failed)
    assert len(hook.bodies) == 2
    assert notifier.flush() == 0  # still within the interval
    clock.advance(300)
    assert notifier.flush() == 1
    last = hook.bodies[-1]
    assert last["title"] == "5 proposal(s) wait for approval"  # the newest one
    assert last["suppressed"] == 3  # and the three folded between it and the first
    assert notifier.sent == {"proposal_waiting": 2, "enforcement_failed": 1}


def test_a_failing_or_unreachable_webhook_is_counted_not_raised(hook) -> None:
    hook.status = 500
    gone = WebhookSender("http://127.0.0.1:9/nothing-listens", timeout_s=1)
    notifier = RateLimitedNotifier([WebhookSender(hook.url), gone], clock=FakeClock(NOW))
    assert notifier.offer(waiting())
    assert notifier.failures["webhook:slack"] == 2  # both senders failed, each counted
    assert notifier.sent == {"proposal_waiting": 1}


def test_sns_gets_the_generic_body(aws_endpoint, boto_session) -> None:
    sns = boto_session.client("sns", endpoint_url=aws_endpoint)
    sqs = boto_session.client("sqs", endpoint_url=aws_endpoint)
    topic = sns.create_topic(Name="wafsmith-notices")["TopicArn"]
    queue = sqs.create_queue(QueueName="notices")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"])
    RateLimitedNotifier([SnsSender(sns, topic)], clock=FakeClock(NOW)).offer(waiting())
    (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["Subject"] == "[wafsmith] 1 proposal(s) wait for approval"
    assert json.loads(envelope["Message"])["kind"] == "proposal_waiting"


@pytest.mark.slow
def test_wafsmith_run_tells_the_webhook_that_a_proposal_waits(
    aws_endpoint, s3, tmp_path, hook
) -> None:
    from engine.demo.standin import bootstrap
    from tests.support.alb import flood_object
    from tests.support.engine_process import start_engine, write_engine_config

    demo = bootstrap(aws_endpoint)
    notify = {
        "webhook_url": hook.url,
        "webhook_style": "generic",
        "dashboard_url": "https://wafsmith.example.com",
    }
    config = write_engine_config(
        tmp_path / "engine.toml",
        demo,
        tmp_path / "var",
        source={"kind": "sqs", "queue_url": demo.queue_url, "wait_time_s": 1},
        interval_s=None,
        mode="dry_run",
        metrics={"enabled": False},
        extra={"notify": notify},
        flood_policy=False,
    )
    minute = (datetime.now(UTC) - timedelta(minutes=20)).replace(second=0, microsecond=0)
    flood, _ = flood_object(minute, "203.0.113.9", requests=600)
    key = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/flood.log.gz"
    s3.put_object(Bucket=demo.bucket, Key=key, Body=flood)
    proc = start_engine(config)
    try:
        deadline = time.monotonic() + 120
        while not hook.bodies and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == 0, err[-3000:]
    assert hook.bodies, "no notice reached the webhook"
    notice = hook.bodies[0]
    assert notice["kind"] == "proposal_waiting"
    assert "203.0.113.9" in notice["fields"]
    assert notice["link"] == "https://wafsmith.example.com/dashboard/queue"
