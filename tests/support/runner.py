"""Engine-loop test helpers: the tests' event-time start, a runner on the demo stand-ins, a
few loop steps, and the engine's WAF block set."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from engine.core.clock import FakeClock
from engine.enforcer import RecordingShieldFake
from engine.runner import EngineRunner
from engine.settings import Settings

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def engine_block_set(wafv2) -> list[str]:
    sets = {s["Name"]: s for s in wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"]}
    found = sets["wafsmith-block-v4-0"]
    return wafv2.get_ip_set(Name=found["Name"], Scope="REGIONAL", Id=found["Id"])["IPSet"][
        "Addresses"
    ]


def make_runner(demo_aws, tmp_path: Path, clock: FakeClock, mode: str = "enforce") -> EngineRunner:
    settings = Settings(
        data_dir=tmp_path,
        aws={"endpoint_url": demo_aws.endpoint_url, "region": demo_aws.region},
        source={
            "kind": "sqs",
            "queue_url": demo_aws.queue_url,
            "wait_time_s": 0,
            "visibility_timeout_s": 30,
        },
        enforcement={"mode": mode, "web_acl_name": demo_aws.web_acl_name, "interval_s": 60},
        policy={
            "auto_approve": [
                {"name": "floods", "detectors": ["volumetric_flood"], "min_score": 0.5}
            ]
        },
    )
    return EngineRunner.from_settings(settings, clock=clock, shield=RecordingShieldFake())


def drain(runner: EngineRunner, rounds: int = 5) -> list:
    outcomes = []
    for _ in range(rounds):
        outcomes.extend(runner.step().objects)
    return outcomes
