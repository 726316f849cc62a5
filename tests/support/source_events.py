"""Builders for notification bodies in the shapes S3, SNS and EventBridge deliver them."""

from __future__ import annotations

import json
from urllib.parse import quote_plus


def s3_event(*records: dict) -> str:
    return json.dumps({"Records": list(records)})


def s3_record(key: str, *, name="ObjectCreated:Put", bucket="logs", etag="abc", size=10) -> dict:
    """The record shape moto sends (thinner than AWS's, see aws-wafv2-shield.md §11.3)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-30T07:31:45.521Z",
        "eventName": name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "logs",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key), "size": size, "eTag": etag},
        },
    }


def eventbridge(key: str, detail_type="Object Created") -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": detail_type,
            "source": "aws.s3",
            "account": "123456789012",
            "time": "2026-11-30T07:31:45Z",
            "region": "us-east-1",
            "resources": ["arn:aws:s3:::logs"],
            "detail": {
                "version": "0",
                "bucket": {"name": "logs"},
                "object": {"key": key, "size": 5, "etag": "e", "sequencer": "00617F08299329D189"},
                "reason": "PutObject",
            },
        }
    )


def sns(message: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:logs",
            "Subject": "Amazon S3 Notification",
            "Message": message,
        }
    )
