"""The enforcer tests' web ACL (holding foreign rules) for the CLI tests against moto."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.waf import create_production_acl


@pytest.fixture()
def web_acl(wafv2) -> dict[str, Any]:
    """A web ACL holding an operator allow rule, an operator rate rule and Shield's group."""
    return create_production_acl(wafv2)
