"""Fixtures for the enforcer tests: the WAFv2 API on the moto server, a web ACL holding
foreign rules, and a reconciler on a fake clock (pacing sleeps advance it, never wait).
Helpers are in ``tests.support.waf``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.core.clock import FakeClock
from engine.enforcer import Boto3WafV2Api, CallPolicy, Reconciler
from tests.support.waf import create_production_acl


@pytest.fixture()
def api(aws_endpoint: str, boto_session) -> Boto3WafV2Api:
    # The shared session reuses the service model the ``wafv2`` fixture already loaded.
    return Boto3WafV2Api(endpoint_url=aws_endpoint, max_attempts=1, session=boto_session)


@pytest.fixture()
def web_acl(wafv2) -> dict[str, Any]:
    """A web ACL holding an operator allow rule, an operator rate rule and Shield's group."""
    return create_production_acl(wafv2)


@pytest.fixture()
def make_reconciler(api: Boto3WafV2Api, fake_clock: FakeClock) -> Callable[..., Reconciler]:
    def make(wafv2_api: Any = None, **kw: Any) -> Reconciler:
        policy = kw.pop("policy", None) or CallPolicy(fake_clock, seed=1)
        return Reconciler(wafv2_api or api, clock=fake_clock, policy=policy, **kw)

    return make
