"""A stateful, recording Shield Advanced fake for the calls moto does not serve.

moto lacks ``GetSubscriptionState`` and the application-layer automatic response calls
(reference §11.2), so tests and the embedded demo use this fake behind the same ``ShieldApi``
interface. It keeps state (subscription, protections, automatic response per resource),
answers with AWS's error codes, and records every call like a Cloud Custodian placebo file:
``dump(folder)`` writes ``shield.<Operation>_<n>.json`` holding ``{"status_code", "data"}``.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from pathlib import Path
from typing import Any

from engine.enforcer.api import make_client_error

_PROTECTABLE = re.compile(
    r"^arn:aws[\w-]*:(elasticloadbalancing:[^:]+:\d{12}:loadbalancer/"
    r"|cloudfront::\d{12}:distribution/|globalaccelerator::\d{12}:accelerator/"
    r"|route53:::hostedzone/|ec2:[^:]+:\d{12}:eip-allocation/)"
)
_L7_CAPABLE = re.compile(
    r"^arn:aws[\w-]*:(elasticloadbalancing:[^:]+:\d{12}:loadbalancer/app/"
    r"|cloudfront::\d{12}:distribution/)"
)


class RecordingShieldFake:
    """``ShieldApi`` held in memory; ``calls`` lists every request and its reply or error.

    ``subscribed`` sets the subscription state (``ACTIVE``/``INACTIVE``); the fake never
    lets the engine subscribe. ``associated_web_acls`` (resource ARN → web ACL ARN), when
    given, enforces AWS's precondition that automatic response needs an associated web ACL.
    """

    def __init__(
        self,
        *,
        subscribed: bool = True,
        account: str = "123456789012",
        associated_web_acls: dict[str, str] | None = None,
    ) -> None:
        self.subscribed = subscribed
        self.account = account
        self.associated_web_acls = associated_web_acls
        self.protections: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    # -- recording ---------------------------------------------------------------------
    def _record(self, operation: str, params: dict[str, Any], fn: Any) -> dict[str, Any]:
        with self._lock:
            try:
                reply = fn()
            except Exception as exc:
                err = getattr(exc, "response", {}).get("Error", {"Code": type(exc).__name__})
                status = (
                    getattr(exc, "response", {})
                    .get("ResponseMetadata", {})
                    .get("HTTPStatusCode", 400)
                )
                self.calls.append(
                    {
                        "operation": operation,
                        "params": params,
                        "status_code": status,
                        "data": {"Error": err},
                    }
                )
                raise
            self.calls.append(
                {"operation": operation, "params": params, "status_code": 200, "data": reply}
            )
            return json.loads(json.dumps(reply))

    def operations(self) -> list[str]:
        """The operation names called so far, in order."""
        return [c["operation"] for c in self.calls]

    def dump(self, folder: Path) -> list[Path]:
        """Write the recorded replies as placebo-style JSON files; return their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        counts: dict[str, int] = {}
        paths = []
        for call in self.calls:
            n = counts[call["operation"]] = counts.get(call["operation"], 0) + 1
            path = folder / f"shield.{call['operation']}_{n}.json"
            path.write_text(
                json.dumps(
                    {"status_code": call["status_code"], "data": call["data"]},
                    indent=2,
                    sort_keys=True,
                    default=str,
                )
            )
            paths.append(path)
        return paths

    # -- helpers -----------------------------------------------------------------------
    def _by_resource(self, arn: str, operation: str) -> dict[str, Any]:
        for prot in self.protections.values():
            if prot["ResourceArn"] == arn:
                return prot
        raise make_client_error(
            "ResourceNotFoundException", f"no protection for resource {arn}", operation
        )

    def _require_subscription(self, operation: str) -> None:
        if not self.subscribed:
            raise make_client_error(
                "ResourceNotFoundException", "The subscription does not exist.", operation
            )

    @staticmethod
    def _check_action(action: dict[str, Any], operation: str) -> str:
        if set(action) not in ({"Block"}, {"Count"}):
            raise make_client_error(
                "InvalidParameterException",
                "You must specify exactly one action: Block or Count",
                operation,
            )
        return next(iter(action))

    # -- ShieldApi -----------------------------------------------------------------------
    def get_subscription_state(self) -> dict[str, Any]:
        return self._record(
            "GetSubscriptionState",
            {},
            lambda: {"SubscriptionState": "ACTIVE" if self.subscribed else "INACTIVE"},
        )

    def list_protections(self, **kw: Any) -> dict[str, Any]:
        return self._record(
            "ListProtections",
            kw,
            lambda: {"Protections": [dict(p) for p in self.protections.values()]},
        )

    def describe_protection(self, **kw: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            if "ProtectionId" in kw:
                prot = self.protections.get(kw["ProtectionId"])
                if prot is None:
                    raise make_client_error(
                        "ResourceNotFoundException", "no such protection", "DescribeProtection"
                    )
                return {"Protection": dict(prot)}
            return {"Protection": dict(self._by_resource(kw["ResourceArn"], "DescribeProtection"))}

        return self._record("DescribeProtection", kw, run)

    def create_protection(self, **kw: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            self._require_subscription("CreateProtection")
            arn = kw["ResourceArn"]
            if not _PROTECTABLE.match(arn):
                raise make_client_error(
                    "InvalidResourceException",
                    f"resource {arn} cannot be protected",
                    "CreateProtection",
                )
            if any(p["ResourceArn"] == arn for p in self.protections.values()):
                raise make_client_error(
                    "ResourceAlreadyExistsException",
                    f"{arn} is already protected",
                    "CreateProtection",
                )
            pid = str(uuid.uuid4())
            self.protections[pid] = {
                "Id": pid,
                "Name": kw["Name"],
                "ResourceArn": arn,
                "HealthCheckIds": [],
                "ProtectionArn": f"arn:aws:shield::{self.account}:protection/{pid}",
            }
            return {"ProtectionId": pid}

        return self._record("CreateProtection", kw, run)

    def delete_protection(self, **kw: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            if self.protections.pop(kw["ProtectionId"], None) is None:
                raise make_client_error(
                    "ResourceNotFoundException", "no such protection", "DeleteProtection"
                )
            return {}

        return self._record("DeleteProtection", kw, run)

    def enable_application_layer_automatic_response(self, **kw: Any) -> dict[str, Any]:
        op = "EnableApplicationLayerAutomaticResponse"

        def run() -> dict[str, Any]:
            self._require_subscription(op)
            action = self._check_action(kw["Action"], op)
            arn = kw["ResourceArn"]
            if not _L7_CAPABLE.match(arn):
                raise make_client_error(
                    "InvalidParameterException", "automatic response needs an ALB or CloudFront", op
                )
            prot = self._by_resource(arn, op)
            if self.associated_web_acls is not None and arn not in self.associated_web_acls:
                raise make_client_error(
                    "InvalidOperationException", f"no web ACL is associated with {arn}", op
                )
            if (
                prot.get("ApplicationLayerAutomaticResponseConfiguration", {}).get("Status")
                == "ENABLED"
            ):
                raise make_client_error(
                    "InvalidOperationException", "automatic response is already enabled", op
                )
            prot["ApplicationLayerAutomaticResponseConfiguration"] = {
                "Status": "ENABLED",
                "Action": {action: {}},
            }
            return {}

        return self._record(op, kw, run)

    def update_application_layer_automatic_response(self, **kw: Any) -> dict[str, Any]:
        op = "UpdateApplicationLayerAutomaticResponse"

        def run() -> dict[str, Any]:
            action = self._check_action(kw["Action"], op)
            prot = self._by_resource(kw["ResourceArn"], op)
            conf = prot.get("ApplicationLayerAutomaticResponseConfiguration", {})
            if conf.get("Status") != "ENABLED":
                raise make_client_error(
                    "InvalidOperationException", "automatic response is not enabled", op
                )
            if conf.get("Action") == {action: {}}:
                raise make_client_error(
                    "InvalidOperationException", "operation would not cause any change", op
                )
            conf["Action"] = {action: {}}
            return {}

        return self._record(op, kw, run)

    def disable_application_layer_automatic_response(self, **kw: Any) -> dict[str, Any]:
        op = "DisableApplicationLayerAutomaticResponse"

        def run() -> dict[str, Any]:
            prot = self._by_resource(kw["ResourceArn"], op)
            conf = prot.get("ApplicationLayerAutomaticResponseConfiguration", {})
            if conf.get("Status") != "ENABLED":
                raise make_client_error(
                    "InvalidOperationException", "operation would not cause any change", op
                )
            prot["ApplicationLayerAutomaticResponseConfiguration"] = {"Status": "DISABLED"}
            return {}

        return self._record(op, kw, run)
