"""``deploy/aws/wafsmith.yaml``: cfn-lint passes, and the stack deploys on the moto server.

moto's CloudFormation creates the queues, bucket, roles, log group, ECS cluster, task
definition and service, and security groups. It does not implement AWS::SQS::QueuePolicy
(skipped with a warning), the bucket's NotificationConfiguration (not applied), the service's
LaunchType (it reports EC2) or the task's Fargate settings (network mode, CPU), the container's
Secrets, nor AWS::SecretsManager::Secret, so the CreateDatabase=true path (an RDS instance
whose URL is kept in a generated secret) is checked by cfn-lint only; the
ExistingDatabaseUrlSecret path deploys (its execution-role grant is checked).
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((REPO / "deploy").rglob("*.yaml"))
STACK = REPO / "deploy" / "aws" / "wafsmith.yaml"
POLICY = REPO / "data" / "iam" / "wafsmith-policy.json"
DOCKERFILE_TEXT = (REPO / "Dockerfile").read_text().replace("\\\n", " ")


def cloudformation_templates() -> list[Path]:
    return [p for p in TEMPLATES if "AWSTemplateFormatVersion" in p.read_text()]


def test_every_template_passes_cfn_lint() -> None:
    from cfnlint.api import lint_file

    templates = cloudformation_templates()
    assert STACK in templates
    for template in templates:
        assert [str(m) for m in lint_file(template)] == [], template.name


@pytest.fixture()
def aws(aws_endpoint, boto_session):
    return lambda service: boto_session.client(service, endpoint_url=aws_endpoint)


def deploy(aws, name: str, **parameters: str) -> dict:
    ec2 = aws("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    given = {"Image": "registry.example/wafsmith:0.1.0", "VpcId": vpc,
             "SubnetIds": ",".join(subnets), **parameters}  # fmt: skip
    cfn = aws("cloudformation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # moto: "not supported" resources
        cfn.create_stack(
            StackName=name,
            TemplateBody=STACK.read_text(),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def document(policy: str | dict) -> dict:
    """A policy document as boto3 decodes it, or as moto's CloudFormation stores an inline
    role policy: the Python repr of the template's mapping (a moto quirk)."""
    return ast.literal_eval(policy) if isinstance(policy, str) else policy


def task_container(aws, outputs: dict) -> dict:
    ecs = aws("ecs")
    (service,) = ecs.describe_services(
        cluster=outputs["ClusterName"], services=[outputs["ServiceName"]]
    )["services"]
    assert service["desiredCount"] == 1  # (moto's CloudFormation drops LaunchType)
    task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert task["family"].endswith("-engine")
    (container,) = task["containerDefinitions"]
    return container


def test_the_stack_wires_bucket_queue_role_and_engine(aws) -> None:
    out = deploy(aws, "wafsmith", WebAclName="site-acl", EnforcementMode="count_only")

    sqs = aws("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=out["QueueUrl"], AttributeNames=["All"])
    redrive = json.loads(attrs["Attributes"]["RedrivePolicy"])
    dlq = sqs.get_queue_attributes(QueueUrl=out["DeadLetterQueueUrl"], AttributeNames=["QueueArn"])
    assert redrive == {"deadLetterTargetArn": dlq["Attributes"]["QueueArn"], "maxReceiveCount": 5}
    assert attrs["Attributes"]["VisibilityTimeout"] == "300"
    assert aws("s3").head_bucket(Bucket=out["LogBucketName"])

    container = task_container(aws, out)
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert container["image"] == "registry.example/wafsmith:0.1.0"
    assert container["command"] == ["run", "--config", "/etc/wafsmith/wafsmith.toml"]
    assert env["WAFSMITH_SOURCE__QUEUE_URL"] == out["QueueUrl"]
    assert env["WAFSMITH_ENFORCEMENT__WEB_ACL_NAME"] == "site-acl"
    assert env["WAFSMITH_ENFORCEMENT__MODE"] == "count_only"
    assert "WAFSMITH_DATABASE_URL" not in env and not container.get("secrets")
    healthcheck = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", DOCKERFILE_TEXT, re.M)
    assert container["healthCheck"]["command"] == ["CMD", *json.loads(healthcheck.group(1))]
    logs = container["logConfiguration"]["options"]
    assert logs["awslogs-group"] == out["EngineLogGroupName"]
    (group,) = aws("logs").describe_log_groups(logGroupNamePrefix=logs["awslogs-group"])[
        "logGroups"
    ]
    assert group["retentionInDays"] == 30


def test_the_task_role_is_the_shipped_policy_with_bucket_and_queue_filled_in(aws) -> None:
    out = deploy(aws, "wafsmith")
    iam = aws("iam")
    role = out["TaskRoleArn"].rsplit("/", 1)[-1]
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    got = document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
    queue = out["QueueArn"].rsplit(":", 1)[-1]
    shipped = POLICY.read_text().replace("LOG_BUCKET", out["LogBucketName"])
    shipped = shipped.replace("LOG_QUEUE", queue)
    want = json.loads(shipped)

    def normal(statement: dict) -> dict:
        listed = {k: sorted(v) if isinstance(v, list) else [v] for k, v in statement.items()
                  if k in ("Action", "Resource")}  # fmt: skip
        return {**statement, **listed}

    assert [normal(s) for s in got["Statement"]] == [normal(s) for s in want["Statement"]]


def test_an_existing_bucket_and_database_secret_are_used_as_given(aws) -> None:
    secret = aws("secretsmanager").create_secret(
        Name="wafsmith-ledger-url", SecretString="postgresql+psycopg://u:p@db:5432/wafsmith"
    )["ARN"]
    out = deploy(aws, "wafsmith", ExistingLogBucket="site-logs", ExistingDatabaseUrlSecret=secret)
    assert out["LogBucketName"] == "site-logs"
    assert "site-logs" not in {b["Name"] for b in aws("s3").list_buckets()["Buckets"]}
    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in aws("cloudformation").list_stack_resources(StackName="wafsmith")[
            "StackResourceSummaries"
        ]
    }
    assert "ReadNewDatabaseUrl" not in resources and "Database" not in resources
    policy = aws("iam").get_role_policy(
        RoleName=resources["ExecutionRole"], PolicyName="read-the-ledger-url"
    )["PolicyDocument"]
    (statement,) = document(policy)["Statement"]
    assert (statement["Action"], statement["Resource"]) == ("secretsmanager:GetSecretValue", secret)
