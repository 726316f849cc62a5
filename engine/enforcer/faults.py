"""Fault injection around any ``WafV2Api``: the errors moto never produces, on demand.

AWS throttles (``ThrottlingException``, ``WAFLimitsExceededException``), loses races
(``WAFOptimisticLockException``), briefly cannot see a just-created entity
(``WAFUnavailableEntityException``) and fails internally (``WAFInternalErrorException``, 5xx).
This wrapper raises those errors at configured rates from a seeded RNG *before* forwarding a
call, so the call does not take effect, and can simulate a process crash after N writes.
Tests and the demo use it to prove that decisions are never lost.

>>> api = FaultInjectingWafV2Api(Boto3WafV2Api(endpoint_url=url),  # doctest: +SKIP
...                              rates={"ThrottlingException": 0.2}, seed=7)
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

from engine.enforcer.aws_clients import WafV2Api, make_client_error

FAULT_STATUS = {
    "ThrottlingException": 400,
    "WAFLimitsExceededException": 400,
    "WAFOptimisticLockException": 400,
    "WAFUnavailableEntityException": 400,
    "WAFInternalErrorException": 500,
}

WRITE_METHODS = frozenset(
    {
        "create_ip_set",
        "update_ip_set",
        "delete_ip_set",
        "create_rule_group",
        "update_rule_group",
        "delete_rule_group",
        "update_web_acl",
    }
)
READ_METHODS = frozenset(
    {
        "list_ip_sets",
        "get_ip_set",
        "list_rule_groups",
        "get_rule_group",
        "list_web_acls",
        "get_web_acl",
    }
)


class SimulatedCrash(BaseException):
    """The process 'dies' here: deliberately not an ``Exception`` so nothing catches it."""


def _method_to_operation(method: str) -> str:
    words = method.split("_")
    special = {"ip": "IP", "acl": "ACL", "acls": "ACLs", "sets": "Sets"}
    return "".join(special.get(w, w.capitalize()) for w in words)


class FaultInjectingWafV2Api:
    """Wrap ``inner`` and raise injected AWS errors with the given per-code probabilities.

    ``rates`` maps an error code (keys of ``FAULT_STATUS``) to the probability that a call
    fails with it; ``methods`` limits injection to some calls (default: every call).
    ``crash_after_writes=N`` lets N writes through, then raises ``SimulatedCrash`` on the next.
    ``injected`` counts what was raised, per code.
    """

    def __init__(
        self,
        inner: WafV2Api,
        *,
        rates: dict[str, float] | None = None,
        seed: int = 0,
        methods: frozenset[str] | None = None,
        crash_after_writes: int | None = None,
    ) -> None:
        unknown = set(rates or {}) - set(FAULT_STATUS)
        if unknown:
            raise ValueError(
                f"unknown fault codes {sorted(unknown)}; known: {sorted(FAULT_STATUS)}"
            )
        total = sum((rates or {}).values())
        if total > 1.0:
            raise ValueError(f"fault rates add up to {total} > 1")
        self._inner = inner
        self._rates = dict(rates or {})
        self._rng = random.Random(seed)
        self._methods = methods or (WRITE_METHODS | READ_METHODS)
        self._crash_after = crash_after_writes
        self._lock = threading.Lock()
        self.writes_forwarded = 0
        self.injected: Counter[str] = Counter()

    def _maybe_fail(self, method: str) -> None:
        with self._lock:
            if (
                method in WRITE_METHODS
                and self._crash_after is not None
                and self.writes_forwarded >= self._crash_after
            ):
                raise SimulatedCrash(f"simulated crash before write #{self.writes_forwarded + 1}")
            if method not in self._methods:
                return
            draw = self._rng.random()
            for code, rate in sorted(self._rates.items()):
                if code == "WAFOptimisticLockException" and method not in WRITE_METHODS:
                    continue  # AWS raises lock conflicts on writes only
                if draw < rate:
                    self.injected[code] += 1
                    raise make_client_error(
                        code,
                        f"injected {code}",
                        _method_to_operation(method),
                        status=FAULT_STATUS[code],
                    )
                draw -= rate

    def _forward(self, method: str, kw: dict[str, Any]) -> dict[str, Any]:
        self._maybe_fail(method)
        reply = getattr(self._inner, method)(**kw)
        if method in WRITE_METHODS:
            with self._lock:
                self.writes_forwarded += 1
        return reply

    def list_ip_sets(self, **kw: Any) -> dict[str, Any]:
        return self._forward("list_ip_sets", kw)

    def get_ip_set(self, **kw: Any) -> dict[str, Any]:
        return self._forward("get_ip_set", kw)

    def create_ip_set(self, **kw: Any) -> dict[str, Any]:
        return self._forward("create_ip_set", kw)

    def update_ip_set(self, **kw: Any) -> dict[str, Any]:
        return self._forward("update_ip_set", kw)

    def delete_ip_set(self, **kw: Any) -> dict[str, Any]:
        return self._forward("delete_ip_set", kw)

    def list_rule_groups(self, **kw: Any) -> dict[str, Any]:
        return self._forward("list_rule_groups", kw)

    def get_rule_group(self, **kw: Any) -> dict[str, Any]:
        return self._forward("get_rule_group", kw)

    def create_rule_group(self, **kw: Any) -> dict[str, Any]:
        return self._forward("create_rule_group", kw)

    def update_rule_group(self, **kw: Any) -> dict[str, Any]:
        return self._forward("update_rule_group", kw)

    def delete_rule_group(self, **kw: Any) -> dict[str, Any]:
        return self._forward("delete_rule_group", kw)

    def list_web_acls(self, **kw: Any) -> dict[str, Any]:
        return self._forward("list_web_acls", kw)

    def get_web_acl(self, **kw: Any) -> dict[str, Any]:
        return self._forward("get_web_acl", kw)

    def update_web_acl(self, **kw: Any) -> dict[str, Any]:
        return self._forward("update_web_acl", kw)
