"""Back-off: with no usable AWS credentials, ``wafsmith run``'s loop used to retry enforcement
as fast as it could (117–148 failed cycles in 30 s, each reading WAF). Failing polls and
cycles now wait exponentially longer (jittered, capped), reset on success, and the engine's
status record shows it."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from engine.core.clock import FakeClock
from engine.enforcer import Boto3WafV2Api, RecordingShieldFake
from engine.enforcer.faults import READ_METHODS
from engine.runner import EngineRunner
from engine.settings import Settings
from engine.status import EngineStatus, read
from tests.support.runner import START

NO_CREDENTIALS = {
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class CountingWafV2:
    """The real WAFv2 client (over HTTP to moto), counting the calls the enforcer makes."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return target(*args, **kwargs)

        return counted

    @property
    def reads(self) -> int:
        return sum(n for name, n in self.calls.items() if name in READ_METHODS)


def _runner(demo_aws, tmp_path, clock, wafv2) -> EngineRunner:
    settings = Settings(
        data_dir=tmp_path,
        aws={"endpoint_url": demo_aws.endpoint_url, "region": demo_aws.region},
        source={"kind": "sqs", "queue_url": demo_aws.queue_url, "wait_time_s": 0},
        enforcement={"mode": "enforce", "web_acl_name": demo_aws.web_acl_name, "interval_s": 1},
        loop={"backoff_base_s": 1.0, "backoff_max_s": 8.0, "status_interval_s": 1.0},
    )
    return EngineRunner.from_settings(
        settings, clock=clock, wafv2=wafv2, shield=RecordingShieldFake(), random=lambda: 0.5
    )


def test_without_credentials_polls_and_cycles_back_off_then_reset(
    demo_aws, tmp_path, monkeypatch
):
    clock = FakeClock(START + timedelta(minutes=5))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    for key, value in NO_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    wafv2 = CountingWafV2(Boto3WafV2Api(region=demo_aws.region, endpoint_url=demo_aws.endpoint_url))
    runner = _runner(demo_aws, tmp_path, clock, wafv2)

    cycles = 0
    for _ in range(300):  # 30 s of a busy loop, 0.1 s a step
        cycles += runner.step().cycle is not None
        clock.advance(0.1)

    # waits of 1, 2, 4, 8 (cap) s, each scaled by 1 - 0.5 · random() = 0.75: the attempts at
    # 0, 0.75, 2.25, 5.25, 11.25, 17.25, 23.25, 29.25 s — 8 in 30 s where a busy loop made 300
    assert cycles == 8
    assert wafv2.reads <= 3 * cycles
    assert runner.telemetry.source_errors == 8
    runner.publish_status(force=True)
    status = read(runner.ledger, EngineStatus).record.backoff
    assert status["enforcement"]["failures"] == cycles
    assert status["enforcement"]["delay_s"] == 6.0  # capped at 8 s, jittered
    assert "credentials" in status["enforcement"]["last_error"].lower()
    assert status["poll"]["failures"] == runner.telemetry.source_errors
    gauge = runner.metrics.registry.get_sample_value  # what Prometheus scrapes, too
    assert gauge("wafsmith_backoff_failures", {"loop": "enforcement"}) == cycles
    assert gauge("wafsmith_backoff_delay_seconds", {"loop": "enforcement"}) == 6.0

    # Credentials come back: the next attempts succeed and the back-off resets.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    fresh_waf = Boto3WafV2Api(region=demo_aws.region, endpoint_url=demo_aws.endpoint_url)
    wafv2._inner = fresh_waf  # boto3 resolves credentials per client: a fresh client
    runner.source = _fresh_source(runner)
    for _ in range(100):
        runner.step()
        clock.advance(0.1)
    assert runner.last_cycle is not None and runner.last_cycle.ok
    runner.publish_status(force=True)
    status = read(runner.ledger, EngineStatus).record.backoff
    assert status["enforcement"]["failures"] == 0 and status["poll"]["failures"] == 0
    assert gauge("wafsmith_backoff_failures", {"loop": "enforcement"}) == 0
    assert gauge("wafsmith_backoff_delay_seconds", {"loop": "poll"}) == 0
    runner.close()


def _fresh_source(runner: EngineRunner) -> Any:
    from engine.assembly import build_source

    runner.source.close()
    return build_source(runner.settings, clock=runner.clock, store=runner.store)
