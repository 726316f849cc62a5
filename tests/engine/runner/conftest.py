"""Fixtures for the engine-loop tests: the demo's AWS resources on the moto server."""

from __future__ import annotations

import pytest

from engine.demo.standin import bootstrap


@pytest.fixture()
def demo_aws(aws_endpoint):
    """A log bucket with S3 → SQS notifications and a web ACL holding foreign rules."""
    return bootstrap(aws_endpoint)
