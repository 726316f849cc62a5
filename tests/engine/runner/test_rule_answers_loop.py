"""The engine loop proposes a rule-level answer: an ALB object holding a residential-proxy
stuffing campaign (S3 → SQS → parse → history → detectors) ends as ONE rule-level proposal on
POST /login in the ledger, with its backtest, waiting for an analyst."""

from __future__ import annotations

from datetime import timedelta

from engine.core.clock import FakeClock
from engine.schema.decision import Status
from tests.support.alb import alb_line, alb_object
from tests.support.rule_answers import MINUTES, residential_stuffing
from tests.support.runner import START, drain, make_runner

KEY = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/03/02/stuffing.log.gz"


def test_a_residential_proxy_campaign_becomes_one_rule_proposal(demo_aws, s3, tmp_path):
    rows = residential_stuffing().rows
    assert min(r["event_time"] for r in rows) >= START
    lines = [
        alb_line(
            r["event_time"],
            r["client_ip"],
            r["path"],
            status=r["status"],
            agent=r["user_agent"],
            method=r["method"],
        )
        for r in rows
    ]
    # a trailing request moves the watermark past the campaign's panes
    lines.append(alb_line(START + timedelta(minutes=MINUTES + 10), "198.51.100.1", "/"))
    s3.put_object(Bucket=demo_aws.bucket, Key=KEY, Body=alb_object(lines))
    clock = FakeClock(START + timedelta(minutes=MINUTES + 12))
    runner = make_runner(demo_aws, tmp_path, clock)

    drain(runner)

    proposed = runner.ledger.list(state=Status.PROPOSED, limit=500).items
    rules = [d for d in proposed if d.rule is not None]
    assert len(rules) == 1, [d.client for d in proposed]
    rule = rules[0]
    assert (rule.rule.method, rule.rule.path, rule.rule.kind) == ("POST", "/login", "rate_based")
    assert rule.detector == "distributed_stuffing" and len(rule.members) >= 200
    assert any(
        r.startswith("backtest over 24 h: the rule would have acted on") for r in rule.reasons
    )
    # the address decisions of the same campaign are still proposed beside it
    assert any(d.members and d.rule is None for d in proposed)
    runner.close()
