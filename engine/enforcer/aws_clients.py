"""Narrow interfaces to the AWS calls the enforcer makes, and their boto3 implementations.

The reconciler talks to ``WafV2Api`` and ``ShieldApi`` only, so a fault-injecting wrapper
(``faults.py``) or the recording Shield fake (``shield_fake.py``) slot in behind the same
interface. Methods take boto3's keyword arguments (PascalCase) and return boto3's reply dicts;
errors arrive as ``botocore.exceptions.ClientError`` and are classified by ``error_code``.
"""

from __future__ import annotations

from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# Every WAFv2 operation the engine calls; the IAM policy test checks the policy against this.
WAFV2_READS = (
    "ListIPSets",
    "GetIPSet",
    "ListRuleGroups",
    "GetRuleGroup",
    "ListWebACLs",
    "GetWebACL",
)
WAFV2_WRITES = (
    "CreateIPSet",
    "UpdateIPSet",
    "DeleteIPSet",
    "CreateRuleGroup",
    "UpdateRuleGroup",
    "DeleteRuleGroup",
    "UpdateWebACL",
)
SHIELD_OPERATIONS = (
    "GetSubscriptionState",
    "ListProtections",
    "DescribeProtection",
    "CreateProtection",
    "DeleteProtection",
    "EnableApplicationLayerAutomaticResponse",
    "UpdateApplicationLayerAutomaticResponse",
    "DisableApplicationLayerAutomaticResponse",
)


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ``ClientError`` (``""`` when the reply carried none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def make_client_error(
    code: str,
    message: str,
    operation: str,
    *,
    status: int = 400,
    extra: dict[str, Any] | None = None,
) -> ClientError:
    """A ``ClientError`` shaped like the one botocore raises for ``code`` (used by fakes)."""
    error: dict[str, Any] = {"Code": code, "Message": message, **(extra or {})}
    reply = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(reply, operation)  # type: ignore[arg-type]


class WafV2Api(Protocol):
    """The WAFv2 calls the enforcer makes, with boto3's keyword arguments and replies."""

    def list_ip_sets(self, **kw: Any) -> dict[str, Any]: ...
    def get_ip_set(self, **kw: Any) -> dict[str, Any]: ...
    def create_ip_set(self, **kw: Any) -> dict[str, Any]: ...
    def update_ip_set(self, **kw: Any) -> dict[str, Any]: ...
    def delete_ip_set(self, **kw: Any) -> dict[str, Any]: ...
    def list_rule_groups(self, **kw: Any) -> dict[str, Any]: ...
    def get_rule_group(self, **kw: Any) -> dict[str, Any]: ...
    def create_rule_group(self, **kw: Any) -> dict[str, Any]: ...
    def update_rule_group(self, **kw: Any) -> dict[str, Any]: ...
    def delete_rule_group(self, **kw: Any) -> dict[str, Any]: ...
    def list_web_acls(self, **kw: Any) -> dict[str, Any]: ...
    def get_web_acl(self, **kw: Any) -> dict[str, Any]: ...
    def update_web_acl(self, **kw: Any) -> dict[str, Any]: ...


class ShieldApi(Protocol):
    """The Shield Advanced calls the enforcer makes (global endpoint, us-east-1)."""

    def get_subscription_state(self) -> dict[str, Any]: ...
    def list_protections(self, **kw: Any) -> dict[str, Any]: ...
    def describe_protection(self, **kw: Any) -> dict[str, Any]: ...
    def create_protection(self, **kw: Any) -> dict[str, Any]: ...
    def delete_protection(self, **kw: Any) -> dict[str, Any]: ...
    def enable_application_layer_automatic_response(self, **kw: Any) -> dict[str, Any]: ...
    def update_application_layer_automatic_response(self, **kw: Any) -> dict[str, Any]: ...
    def disable_application_layer_automatic_response(self, **kw: Any) -> dict[str, Any]: ...


def _client(
    service: str,
    *,
    region: str,
    endpoint_url: str | None,
    max_attempts: int,
    session: boto3.session.Session | None,
) -> Any:
    # botocore's own retries stay small: the enforcer's retry loop owns backoff and pacing.
    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=60,
    )
    sess = session or boto3.session.Session()
    return sess.client(service, region_name=region, endpoint_url=endpoint_url, config=config)


class _Delegating:
    """Forward the named calls to a boto3 client, dropping ``ResponseMetadata``."""

    _client: Any

    def _call(self, method: str, kw: dict[str, Any]) -> dict[str, Any]:
        reply = dict(getattr(self._client, method)(**kw))
        reply.pop("ResponseMetadata", None)
        return reply


class Boto3WafV2Api(_Delegating):
    """``WafV2Api`` over a boto3 ``wafv2`` client.

    >>> api = Boto3WafV2Api(endpoint_url="http://127.0.0.1:5000")  # doctest: +SKIP

    CLOUDFRONT scope must be addressed in us-east-1; pass that region for it.
    """

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        max_attempts: int = 2,
        session: boto3.session.Session | None = None,
        client: Any = None,
    ) -> None:
        self._client = client or _client(
            "wafv2",
            region=region,
            endpoint_url=endpoint_url,
            max_attempts=max_attempts,
            session=session,
        )
        self.region = region

    def list_ip_sets(self, **kw: Any) -> dict[str, Any]:
        return self._call("list_ip_sets", kw)

    def get_ip_set(self, **kw: Any) -> dict[str, Any]:
        return self._call("get_ip_set", kw)

    def create_ip_set(self, **kw: Any) -> dict[str, Any]:
        return self._call("create_ip_set", kw)

    def update_ip_set(self, **kw: Any) -> dict[str, Any]:
        return self._call("update_ip_set", kw)

    def delete_ip_set(self, **kw: Any) -> dict[str, Any]:
        return self._call("delete_ip_set", kw)

    def list_rule_groups(self, **kw: Any) -> dict[str, Any]:
        return self._call("list_rule_groups", kw)

    def get_rule_group(self, **kw: Any) -> dict[str, Any]:
        return self._call("get_rule_group", kw)

    def create_rule_group(self, **kw: Any) -> dict[str, Any]:
        return self._call("create_rule_group", kw)

    def update_rule_group(self, **kw: Any) -> dict[str, Any]:
        return self._call("update_rule_group", kw)

    def delete_rule_group(self, **kw: Any) -> dict[str, Any]:
        return self._call("delete_rule_group", kw)

    def list_web_acls(self, **kw: Any) -> dict[str, Any]:
        return self._call("list_web_acls", kw)

    def get_web_acl(self, **kw: Any) -> dict[str, Any]:
        return self._call("get_web_acl", kw)

    def update_web_acl(self, **kw: Any) -> dict[str, Any]:
        return self._call("update_web_acl", kw)


class Boto3ShieldApi(_Delegating):
    """``ShieldApi`` over a boto3 ``shield`` client (always us-east-1, Shield is global)."""

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        max_attempts: int = 2,
        session: boto3.session.Session | None = None,
        client: Any = None,
    ) -> None:
        self._client = client or _client(
            "shield",
            region="us-east-1",
            endpoint_url=endpoint_url,
            max_attempts=max_attempts,
            session=session,
        )

    def get_subscription_state(self) -> dict[str, Any]:
        return self._call("get_subscription_state", {})

    def list_protections(self, **kw: Any) -> dict[str, Any]:
        return self._call("list_protections", kw)

    def describe_protection(self, **kw: Any) -> dict[str, Any]:
        return self._call("describe_protection", kw)

    def create_protection(self, **kw: Any) -> dict[str, Any]:
        return self._call("create_protection", kw)

    def delete_protection(self, **kw: Any) -> dict[str, Any]:
        return self._call("delete_protection", kw)

    def enable_application_layer_automatic_response(self, **kw: Any) -> dict[str, Any]:
        return self._call("enable_application_layer_automatic_response", kw)

    def update_application_layer_automatic_response(self, **kw: Any) -> dict[str, Any]:
        return self._call("update_application_layer_automatic_response", kw)

    def disable_application_layer_automatic_response(self, **kw: Any) -> dict[str, Any]:
        return self._call("disable_application_layer_automatic_response", kw)
