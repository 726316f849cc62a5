"""The shipped IAM policy grants exactly the AWS actions the engine's code calls.

The calls are found by a static scan: every boto3 operation name (snake_case, from botocore's
service models) that appears as an attribute or string in the code that talks to that service
(``engine/enforcer`` for wafv2 and Shield, ``engine/sources`` for S3 and SQS).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import botocore.session
from botocore import xform_name

REPO = Path(__file__).resolve().parents[3]
POLICY = REPO / "data" / "iam" / "wafsmith-policy.json"
CODE = {
    "wafv2": ["engine/enforcer"],
    "shield": ["engine/enforcer"],
    "s3": ["engine/sources"],
    "sqs": ["engine/sources"],
}
# Operations whose IAM action has another name.
IAM_NAME = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "CopyObject"): "s3:PutObject",  # the quarantine copy (its source needs GetObject)
}
# Permission-only dependencies: CreateIPSet/CreateRuleGroup send Tags (ownership marker).
DEPENDENT = {"wafv2:TagResource"}


def called_actions() -> set[str]:
    session = botocore.session.get_session()
    actions = set()
    for service, folders in CODE.items():
        ops = {xform_name(o): o for o in session.get_service_model(service).operation_names}
        text = "".join(p.read_text() for f in folders for p in sorted((REPO / f).rglob("*.py")))
        tokens = set(re.findall(r"\.([a-z][a-z0-9_]*)\b", text))
        tokens |= set(re.findall(r"[\"']([a-z][a-z0-9_]*)[\"']", text))
        for token in tokens & ops.keys():
            op = ops[token]
            actions.add(IAM_NAME.get((service, op), f"{service}:{op}"))
    return actions


def policy_actions() -> set[str]:
    doc = json.loads(POLICY.read_text())
    assert doc["Version"] == "2012-10-17"
    out = set()
    for statement in doc["Statement"]:
        assert statement["Effect"] == "Allow"
        assert not any("*" in a for a in statement["Action"]), "no wildcard actions"
        out.update(statement["Action"])
    return out


def test_policy_covers_every_call_and_nothing_more():
    called = called_actions()
    assert "wafv2:UpdateIPSet" in called and "sqs:ReceiveMessage" in called  # scan sanity
    assert policy_actions() == called | DEPENDENT


def test_engine_owned_writes_are_scoped_by_the_name_prefix():
    doc = json.loads(POLICY.read_text())
    for statement in doc["Statement"]:
        writes = [
            a
            for a in statement["Action"]
            if re.match(r"wafv2:(Create|Update|Delete)(IPSet|RuleGroup)$", a)
        ]
        if writes:
            resources = statement["Resource"]
            assert all("/wafsmith-*/" in r for r in resources), statement["Sid"]
    never = {
        "shield:CreateSubscription",
        "shield:DeleteSubscription",
        "shield:UpdateSubscription",
        "wafv2:DeleteWebACL",
        "wafv2:CreateWebACL",
    }
    assert not never & policy_actions()
