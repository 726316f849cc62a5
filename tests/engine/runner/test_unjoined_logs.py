"""`wafsmith run` fed a web ACL's log and the ALB's log of the same requests (one queue for
both buckets' notifications) counts every request twice, since the loop does not join them:
the status says so, so the operator can split the families before trusting the figures."""

from __future__ import annotations

from datetime import timedelta

from engine.core.clock import FakeClock
from engine.pipeline import WAF_AND_PARTNER_LOGS
from engine.status import EngineStatus, read
from tests.support.join import AWS_KEYS as KEYS
from tests.support.join import JOIN_FIXTURES as JOIN
from tests.support.runner import START, drain, make_runner


def test_status_says_when_waf_and_alb_logs_arrive_unjoined(demo_aws, s3, tmp_path):
    runner = make_runner(demo_aws, tmp_path, FakeClock(START + timedelta(minutes=15)), "dry_run")
    s3.put_object(Bucket=demo_aws.bucket, Key=KEYS["waf-alb.log.gz"],
                  Body=(JOIN / "waf-alb.log.gz").read_bytes())  # fmt: skip
    drain(runner)
    runner.publish_status(force=True)
    waf_rows = runner.analyzer.store.stats.rows_by_source["waf"]
    assert waf_rows > 0
    assert read(runner.ledger, EngineStatus).record.notices == ()  # one family: nothing to say
    s3.put_object(Bucket=demo_aws.bucket, Key=KEYS["alb.log.gz"],
                  Body=(JOIN / "alb.log.gz").read_bytes())  # fmt: skip
    drain(runner)
    runner.publish_status(force=True)
    assert runner.analyzer.store.stats.rows_by_source["alb"] == waf_rows  # the same requests, again
    assert read(runner.ledger, EngineStatus).record.notices == (WAF_AND_PARTNER_LOGS,)
    runner.close()
