"""Shield phase against the recording fake (moto lacks these calls) and boto3 against moto."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.enforcer import Boto3ShieldApi, Mode, Reconciler, RecordingShieldFake
from tests.support.waf import compile_doc, decisions, v4_addresses

ALB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop/50dc6c495c0c9188"
CDN = "arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL"


def _doc(protections: list[dict], allow_block: bool = False, **extra):
    return compile_doc(
        decisions(v4_addresses(2)),
        shield={"enabled": True, "allow_block": allow_block, "protections": protections},
        **extra,
    )


def _writes(fake: RecordingShieldFake) -> list[str]:
    return [op for op in fake.operations() if not op.startswith(("Get", "List", "Describe"))]


def test_inactive_subscription_leaves_shield_alone(wafv2, web_acl, api, fake_clock):
    fake = RecordingShieldFake(subscribed=False)
    doc = _doc([{"name": "wafsmith-shop", "resource_arn": ALB}])
    result = Reconciler(api, clock=fake_clock, shield_api=fake).run_cycle(doc)
    assert result.ok
    assert fake.operations() == ["GetSubscriptionState"]
    assert result.shield["active"] is False
    assert any(d.cause == "shield" and "not ACTIVE" in d.detail for d in result.drift.found)


@pytest.fixture(params=["in-memory", "moto-backed"])
def shield_fake(request, aws_endpoint) -> RecordingShieldFake:
    """The fake alone, or answering only what moto lacks (protections live in moto)."""
    if request.param == "in-memory":
        return RecordingShieldFake()
    return RecordingShieldFake(backend=Boto3ShieldApi(endpoint_url=aws_endpoint, max_attempts=1))


def _protections(fake: RecordingShieldFake) -> dict[str, dict]:
    listed = fake.list_protections()["Protections"]
    return {p["ResourceArn"]: p for p in listed}


def test_protections_and_automatic_response_converge(wafv2, web_acl, api, fake_clock, shield_fake):
    fake = shield_fake
    rec = Reconciler(api, clock=fake_clock, shield_api=fake)
    doc = _doc(
        [
            {"name": "wafsmith-shop", "resource_arn": ALB},
            {"name": "wafsmith-cdn", "resource_arn": CDN, "auto_response": "off"},
        ]
    )
    assert rec.run_cycle(doc).ok
    assert sorted(_writes(fake)) == [
        "CreateProtection",
        "CreateProtection",
        "EnableApplicationLayerAutomaticResponse",
    ]
    assert _protections(fake)[ALB]["ApplicationLayerAutomaticResponseConfiguration"] == {
        "Status": "ENABLED",
        "Action": {"Count": {}},
    }

    calls_before = len(_writes(fake))
    assert rec.run_cycle(doc).ok
    assert len(_writes(fake)) == calls_before  # converged: no Shield write

    promoted = _doc(
        [{"name": "wafsmith-shop", "resource_arn": ALB, "auto_response": "block"}], allow_block=True
    )
    assert rec.run_cycle(promoted).ok
    assert _writes(fake)[calls_before:] == [
        "UpdateApplicationLayerAutomaticResponse",
        "DeleteProtection",
    ]
    now = _protections(fake)
    assert list(now) == [ALB]
    assert now[ALB]["ApplicationLayerAutomaticResponseConfiguration"]["Action"] == {"Block": {}}


def test_foreign_protection_is_adopted_not_deleted(wafv2, web_acl, api, fake_clock):
    fake = RecordingShieldFake()
    fake.create_protection(Name="operator protection", ResourceArn=CDN)
    rec = Reconciler(api, clock=fake_clock, shield_api=fake)
    doc = _doc([{"name": "wafsmith-cdn", "resource_arn": CDN, "auto_response": "off"}])
    assert rec.run_cycle(doc).ok
    assert rec.run_cycle(_doc([])).ok
    assert [p["Name"] for p in _protections(fake).values()] == ["operator protection"]


def test_recorded_calls_dump_as_placebo_files(tmp_path: Path):
    fake = RecordingShieldFake()
    fake.get_subscription_state()
    fake.create_protection(Name="wafsmith-shop", ResourceArn=ALB)
    try:
        fake.create_protection(Name="again", ResourceArn=ALB)
    except Exception as exc:  # the fake raises botocore's ClientError like AWS
        assert exc.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    paths = fake.dump(tmp_path)
    assert [p.name for p in paths] == [
        "shield.GetSubscriptionState_1.json",
        "shield.CreateProtection_1.json",
        "shield.CreateProtection_2.json",
    ]
    second = json.loads(paths[2].read_text())
    assert second["status_code"] == 400
    assert second["data"]["Error"]["Code"] == "ResourceAlreadyExistsException"


def test_boto3_shield_api_speaks_to_moto(aws_endpoint):
    shield = Boto3ShieldApi(endpoint_url=aws_endpoint, max_attempts=1)
    created = shield.create_protection(Name="wafsmith-shop", ResourceArn=ALB)
    listed = shield.list_protections()["Protections"]
    assert [p["Id"] for p in listed] == [created["ProtectionId"]]
    described = shield.describe_protection(ResourceArn=ALB)["Protection"]
    assert described["Name"] == "wafsmith-shop"
    shield.delete_protection(ProtectionId=created["ProtectionId"])
    assert shield.list_protections()["Protections"] == []


def test_count_only_mode_keeps_automatic_response_in_count(wafv2, web_acl, api, fake_clock):
    fake = RecordingShieldFake()
    doc = _doc(
        [{"name": "wafsmith-shop", "resource_arn": ALB, "auto_response": "block"}],
        allow_block=True,
        count_only=True,
    )
    result = Reconciler(api, clock=fake_clock, shield_api=fake).run_cycle(doc, mode=Mode.COUNT_ONLY)
    assert result.ok
    assert _protections(fake)[ALB]["ApplicationLayerAutomaticResponseConfiguration"] == {
        "Status": "ENABLED",
        "Action": {"Count": {}},
    }
