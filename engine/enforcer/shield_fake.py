"""A stateful, recording Shield Advanced fake for the calls moto does not serve.

moto lacks ``GetSubscriptionState`` and the application-layer automatic response calls
(reference §11.2), so tests and the embedded demo use this fake behind the same ``ShieldApi``
interface. It keeps state (subscription, automatic response per resource, and protections
unless a ``backend`` serves them), answers with AWS's error codes, and records every call like
a Cloud Custodian placebo file: ``dump(folder)`` writes ``shield.<Operation>_<n>.json``
holding ``{"status_code", "data"}``.

With ``backend=Boto3ShieldApi(endpoint_url=moto)`` the protection calls moto implements
(Create/Describe/List/DeleteProtection) go to moto over HTTP, and only the missing calls are
answered here:

>>> shield = RecordingShieldFake(backend=Boto3ShieldApi(endpoint_url=url))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from engine.enforcer.aws_clients import ShieldApi, make_client_error

_PROTECTABLE = re.compile(
    r"^arn:aws[\w-]*:(elasticloadbalancing:[^:]+:\d{12}:loadbalancer/"
    r"|cloudfront::\d{12}:distribution/|globalaccelerator::\d{12}:accelerator/"
    r"|route53:::hostedzone/|ec2:[^:]+:\d{12}:eip-allocation/)"
)
_L7_CAPABLE = re.compile(
    r"^arn:aws[\w-]*:(elasticloadbalancing:[^:]+:\d{12}:loadbalancer/app/"
    r"|cloudfront::\d{12}:distribution/)"
)
_AUTO = "ApplicationLayerAutomaticResponseConfiguration"


class RecordingShieldFake:
    """``ShieldApi`` with in-memory state; ``calls`` lists every request and its outcome.

    ``subscribed`` sets the subscription state (``ACTIVE``/``INACTIVE``); the fake never
    lets the engine subscribe. ``associated_web_acls`` (resource ARN → web ACL ARN), when
    given, enforces AWS's precondition that automatic response needs an associated web ACL.
    ``backend`` serves the protection calls (e.g. moto); otherwise they are kept here too.
    """

    def __init__(
        self,
        *,
        subscribed: bool = True,
        account: str = "123456789012",
        associated_web_acls: dict[str, str] | None = None,
        backend: ShieldApi | None = None,
    ) -> None:
        self.subscribed = subscribed
        self.account = account
        self.associated_web_acls = associated_web_acls
        self.backend = backend
        self.protections: dict[str, dict[str, Any]] = {}  # local mode only
        self.auto_response: dict[str, dict[str, Any]] = {}  # resource ARN → configuration
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.RLock()

    # -- recording ---------------------------------------------------------------------
    def _record(
        self, operation: str, params: dict[str, Any], fn: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        with self._lock:
            try:
                reply = fn()
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
                self.calls.append(
                    {
                        "operation": operation,
                        "params": params,
                        "status_code": status,
                        "data": {"Error": exc.response.get("Error", {})},
                    }
                )
                raise
            reply = json.loads(json.dumps(reply, default=str))
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
            body = {"status_code": call["status_code"], "data": call["data"]}
            path.write_text(json.dumps(body, indent=2, sort_keys=True, default=str))
            paths.append(path)
        return paths

    # -- protections (local or backend) ------------------------------------------------------
    def _with_auto(self, prot: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in prot.items() if k != _AUTO}
        conf = self.auto_response.get(prot["ResourceArn"])
        if conf is not None:
            out[_AUTO] = dict(conf)
        return out

    def _all(self) -> list[dict[str, Any]]:
        if self.backend is None:
            return list(self.protections.values())
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            reply = self.backend.list_protections(**({"NextToken": token} if token else {}))
            items.extend(reply.get("Protections", []))
            token = reply.get("NextToken")
            if not token:
                return items

    def _by_resource(self, arn: str, operation: str) -> dict[str, Any]:
        for prot in self._all():
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
        state = "ACTIVE" if self.subscribed else "INACTIVE"
        return self._record("GetSubscriptionState", {}, lambda: {"SubscriptionState": state})

    def list_protections(self, **kw: Any) -> dict[str, Any]:
        return self._record(
            "ListProtections",
            kw,
            lambda: {"Protections": [self._with_auto(p) for p in self._all()]},
        )

    def describe_protection(self, **kw: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            if "ResourceArn" in kw:
                return {"Protection": self._with_auto(self._by_resource(kw["ResourceArn"], op))}
            for prot in self._all():
                if prot["Id"] == kw.get("ProtectionId"):
                    return {"Protection": self._with_auto(prot)}
            raise make_client_error("ResourceNotFoundException", "no such protection", op)

        op = "DescribeProtection"
        return self._record(op, kw, run)

    def create_protection(self, **kw: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            self._require_subscription("CreateProtection")
            if self.backend is not None:
                return self.backend.create_protection(**kw)
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
            found = [p for p in self._all() if p["Id"] == kw["ProtectionId"]]
            if self.backend is not None:
                self.backend.delete_protection(**kw)
            elif self.protections.pop(kw["ProtectionId"], None) is None:
                raise make_client_error(
                    "ResourceNotFoundException", "no such protection", "DeleteProtection"
                )
            for prot in found:
                self.auto_response.pop(prot["ResourceArn"], None)
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
            self._by_resource(arn, op)
            if self.associated_web_acls is not None and arn not in self.associated_web_acls:
                raise make_client_error(
                    "InvalidOperationException", f"no web ACL is associated with {arn}", op
                )
            if self.auto_response.get(arn, {}).get("Status") == "ENABLED":
                raise make_client_error(
                    "InvalidOperationException", "automatic response is already enabled", op
                )
            self.auto_response[arn] = {"Status": "ENABLED", "Action": {action: {}}}
            return {}

        return self._record(op, kw, run)

    def update_application_layer_automatic_response(self, **kw: Any) -> dict[str, Any]:
        op = "UpdateApplicationLayerAutomaticResponse"

        def run() -> dict[str, Any]:
            action = self._check_action(kw["Action"], op)
            arn = kw["ResourceArn"]
            self._by_resource(arn, op)
            conf = self.auto_response.get(arn, {})
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
            arn = kw["ResourceArn"]
            self._by_resource(arn, op)
            if self.auto_response.get(arn, {}).get("Status") != "ENABLED":
                raise make_client_error(
                    "InvalidOperationException", "operation would not cause any change", op
                )
            self.auto_response[arn] = {"Status": "DISABLED"}
            return {}

        return self._record(op, kw, run)
