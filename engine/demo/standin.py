"""An AWS stand-in on 127.0.0.1: a moto server (S3, SQS, WAFv2) and the demo's resources.

``start_moto()`` starts the server on an ephemeral loopback port; ``bootstrap()`` creates what
a real deployment would have: a log bucket whose object-created events go to an SQS queue
(with a dead-letter queue behind a redrive policy), and a web ACL that already holds rules
the engine does not own (an operator's rate-based rule and a managed rule group), so the
demo shows the enforcer leaving them alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import boto3

DEMO_REGION = "us-east-1"
DEMO_CREDENTIALS = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo"}


@dataclass(frozen=True)
class DemoAws:
    """Names and addresses of the stand-in resources."""

    endpoint_url: str
    region: str
    bucket: str
    queue_url: str
    dlq_url: str
    web_acl_name: str
    scope: str = "REGIONAL"


def start_moto(port: int = 0):
    """Start a moto server bound to 127.0.0.1; returns ``(server, endpoint_url)``."""
    from moto.server import ThreadedMotoServer  # the aws-standin extra

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on stderr
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    return server, f"http://{host}:{bound}"


def client(service: str, endpoint_url: str, region: str = DEMO_REGION):
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region, **DEMO_CREDENTIALS)


def _foreign_rules() -> list[dict]:
    """Rules an operator (and AWS) put in the web ACL; the engine must copy them back as-is."""
    return [
        {
            "Name": "operator-login-rate",
            "Priority": 1,
            "Statement": {
                "RateBasedStatement": {
                    "Limit": 500,
                    "EvaluationWindowSec": 300,
                    "AggregateKeyType": "IP",
                }
            },
            "Action": {"Block": {}},
            "VisibilityConfig": {
                "SampledRequestsEnabled": True,
                "CloudWatchMetricsEnabled": True,
                "MetricName": "operator-login-rate",
            },
        },
        {
            "Name": "AWS-AWSManagedRulesCommonRuleSet",
            "Priority": 2,
            "Statement": {
                "ManagedRuleGroupStatement": {
                    "VendorName": "AWS",
                    "Name": "AWSManagedRulesCommonRuleSet",
                }
            },
            "OverrideAction": {"None": {}},
            "VisibilityConfig": {
                "SampledRequestsEnabled": True,
                "CloudWatchMetricsEnabled": True,
                "MetricName": "AWS-AWSManagedRulesCommonRuleSet",
            },
        },
    ]


def bootstrap(
    endpoint_url: str,
    *,
    bucket: str = "wafsmith-demo-logs",
    queue: str = "wafsmith-demo-objects",
    web_acl_name: str = "demo-site",
    region: str = DEMO_REGION,
) -> DemoAws:
    """Create the bucket, its S3 → SQS notifications, a DLQ, and a web ACL with foreign rules."""
    s3 = client("s3", endpoint_url, region)
    sqs = client("sqs", endpoint_url, region)
    waf = client("wafv2", endpoint_url, region)

    dlq_url = sqs.create_queue(QueueName=f"{queue}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})
    queue_url = sqs.create_queue(
        QueueName=queue,
        Attributes={"VisibilityTimeout": "60", "RedrivePolicy": redrive},
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]

    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]},
            ]
        },
    )
    waf.create_web_acl(
        Name=web_acl_name,
        Scope="REGIONAL",
        DefaultAction={"Allow": {}},
        Rules=_foreign_rules(),
        VisibilityConfig={
            "SampledRequestsEnabled": True,
            "CloudWatchMetricsEnabled": True,
            "MetricName": web_acl_name,
        },
        Description="demo site web ACL (operator-owned rules inside)",
    )
    return DemoAws(
        endpoint_url=endpoint_url,
        region=region,
        bucket=bucket,
        queue_url=queue_url,
        dlq_url=dlq_url,
        web_acl_name=web_acl_name,
    )
