"""Helpers for the SQS source tests: queues, queue depth, a spying client, records."""

from __future__ import annotations

import json

from engine.sources import ProcessedRecord, S3SqsSource, S3SqsSourceConfig


def make_queue(sqs, name: str, *, dlq_after: int | None = None) -> str:
    attributes = {"VisibilityTimeout": "30"}
    if dlq_after is not None:
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = queue_arn(sqs, dlq_url)
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(dlq_after)}
        )
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def queue_arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def messages_in(sqs, url: str) -> tuple[int, int]:
    """``(visible, in flight)`` messages of a queue."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def build(url, sqs, s3, store, clock, **kw) -> S3SqsSource:
    config = S3SqsSourceConfig(queue_url=url, wait_time_s=0, **kw)
    return config.build(clock=clock, store=store, sqs_client=sqs, s3_client=s3)


def record_for(delivery, clock, rows=1) -> ProcessedRecord:
    return ProcessedRecord.for_object(
        delivery.obj, rows=rows, format="alb", started_at=clock.now(), finished_at=clock.now()
    )


class SpySqs:
    """The real moto client, with the visibility calls it made written down."""

    def __init__(self, client) -> None:
        self._client = client
        self.visibility_calls: list[int] = []

    def change_message_visibility(self, **kw):
        self.visibility_calls.append(kw["VisibilityTimeout"])
        return self._client.change_message_visibility(**kw)

    def __getattr__(self, name):
        return getattr(self._client, name)
