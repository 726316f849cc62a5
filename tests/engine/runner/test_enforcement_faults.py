"""Enforcement faults at a high rate (throttling, lock conflicts, 5xx) through the engine loop:
no approved decision is lost, and none is applied twice."""

from __future__ import annotations

from datetime import timedelta

from engine.core.clock import FakeClock
from engine.enforcer import Boto3WafV2Api, FaultInjectingWafV2Api, RecordingShieldFake
from engine.runner import EngineRunner
from engine.schema.decision import Status
from engine.settings import Settings
from tests.support.alb import flood_object
from tests.support.runner import START, engine_block_set

FAULTS = {
    "ThrottlingException": 0.15,
    "WAFOptimisticLockException": 0.15,
    "WAFInternalErrorException": 0.1,
    "WAFUnavailableEntityException": 0.05,
}
ATTACKERS = [f"203.0.113.{10 + 2 * i}" for i in range(6)]  # not adjacent: no aggregation


def test_faulty_waf_loses_no_approved_decision_and_applies_none_twice(
    demo_aws,
    s3,
    wafv2,
    tmp_path,
):
    clock = FakeClock(START + timedelta(minutes=40))
    settings = Settings(
        data_dir=tmp_path,
        aws={"endpoint_url": demo_aws.endpoint_url, "region": demo_aws.region},
        source={"kind": "sqs", "queue_url": demo_aws.queue_url, "wait_time_s": 0},
        enforcement={"mode": "enforce", "web_acl_name": demo_aws.web_acl_name, "interval_s": 4},
        policy={
            "auto_approve": [
                {"name": "floods", "detectors": ["volumetric_flood"], "min_score": 0.5}
            ],
            "max_blocked_share": 1.0,
        },
    )
    api = FaultInjectingWafV2Api(
        Boto3WafV2Api(region=demo_aws.region, endpoint_url=demo_aws.endpoint_url),
        rates=FAULTS,
        seed=3,
    )
    runner = EngineRunner.from_settings(
        settings, clock=clock, wafv2=api, shield=RecordingShieldFake()
    )
    for i, attacker in enumerate(ATTACKERS):
        data, _ = flood_object(START + timedelta(minutes=6 * i), attacker, requests=1200)
        s3.put_object(Bucket=demo_aws.bucket, Key=f"logs/{i}.log.gz", Body=data)

    cycles = []
    for _ in range(60):  # the loop keeps cycling; every failed cycle is retried by a later one
        report = runner.step()
        if report.cycle is not None:
            cycles.append(report.cycle)
        clock.advance(5)
        if cycles and cycles[-1].ok and runner.telemetry.objects == len(ATTACKERS):
            break

    assert sum(api.injected.values()) > 0, "the faults were really injected"
    assert any(not c.ok for c in cycles), "some cycles failed along the way"
    assert cycles[-1].ok
    blocked = set(engine_block_set(wafv2))
    assert {f"{a}/32" for a in ATTACKERS} <= blocked
    for attacker in ATTACKERS:
        (decision,) = runner.ledger.list(client=attacker).items
        assert decision.status is Status.APPLIED
        moves = [(e.from_status, e.to_status) for e in runner.ledger.audit(decision.id)]
        assert moves.count((Status.APPROVED, Status.APPLIED)) == 1
    runner.close()
