"""Shield phase: protections and automatic application-layer response, never the subscription.

The subscription is a human, billed decision: the engine only checks ``GetSubscriptionState``
and, when it is not ``ACTIVE``, leaves Shield alone and says so in the drift report. For each
desired protection it creates what is missing (adopting ``ResourceAlreadyExistsException``),
then enables, switches (Count ↔ Block) or disables automatic response. Protections it created
(name carries the owner prefix) and no longer needs are deleted; foreign ones are never touched.
"""

from __future__ import annotations

from typing import Any

from engine.enforcer.calls import EnforcerCallError
from engine.enforcer.cycle import Cycle, Step
from engine.schema.rule import ShieldProtectionSpec

PHASE = "shield"
_ACTION_KEY = {"COUNT": "Count", "BLOCK": "Block"}


def _resource(arn: str) -> str:
    return f"shield/{arn}"


def _list_protections(cycle: Cycle) -> list[dict[str, Any]]:
    assert cycle.shield is not None
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kw: dict[str, Any] = {"NextToken": token} if token else {}
        reply = cycle.caller.read("ListProtections", cycle.shield.list_protections, **kw)
        items.extend(reply.get("Protections", []))
        token = reply.get("NextToken")
        if not token:
            return items


def _current_auto(protection: dict[str, Any]) -> str | None:
    conf = protection.get("ApplicationLayerAutomaticResponseConfiguration") or {}
    if conf.get("Status") != "ENABLED":
        return None
    action = next(iter(conf.get("Action") or {}), None)
    return {"Count": "COUNT", "Block": "BLOCK"}.get(action or "")


def apply(cycle: Cycle) -> None:
    """Converge Shield protections and automatic response for the desired resources."""
    spec = cycle.desired.shield
    if not spec.enabled:
        return
    if cycle.shield is None:
        cycle.fail(
            "shield",
            "GetSubscriptionState",
            EnforcerCallError(
                "GetSubscriptionState",
                "ShieldNotConfigured",
                "the document enables Shield but the enforcer was given no Shield API",
            ),
        )
        return
    shield = cycle.shield
    state = cycle.caller.read("GetSubscriptionState", shield.get_subscription_state)
    cycle.shield_status["subscription"] = state.get("SubscriptionState")
    if state.get("SubscriptionState") != "ACTIVE":
        cycle.shield_status["active"] = False
        cycle.drift.add(
            "shield",
            "shield",
            "Shield Advanced subscription is not ACTIVE; "
            "wafsmith leaves Shield alone (subscribing is a human decision)",
        )
        return
    cycle.shield_status["active"] = True
    by_arn = {p["ResourceArn"]: p for p in _list_protections(cycle)}
    for prot in sorted(spec.protections, key=lambda p: p.resource_arn):
        current = by_arn.get(prot.resource_arn)
        if current is None:
            cycle.drift.add(_resource(prot.resource_arn), "shield", "resource is not protected")
            step = Step(
                PHASE,
                "CreateProtection",
                _resource(prot.resource_arn),
                "missing",
                {"name": prot.name},
            )
            if not cycle.run_step(step, lambda p=prot: _create(cycle, p, by_arn)):
                continue
            current = by_arn.get(prot.resource_arn, {"ResourceArn": prot.resource_arn})
        _converge_auto(cycle, prot, current)
    desired_arns = {p.resource_arn for p in spec.protections}
    for arn, current in sorted(by_arn.items()):
        if arn not in desired_arns and str(current.get("Name", "")).startswith(cycle.prefix):
            cycle.drift.add(_resource(arn), "stale", "engine-owned protection not desired")
            step = Step(
                PHASE,
                "DeleteProtection",
                _resource(arn),
                "no longer desired",
                {"protection_id": current.get("Id")},
            )
            cycle.run_step(step, lambda c=current: _delete(cycle, c))


def _create(cycle: Cycle, prot: ShieldProtectionSpec, by_arn: dict[str, Any]) -> str:
    assert cycle.shield is not None
    try:
        reply = cycle.caller.write(
            "CreateProtection",
            cycle.shield.create_protection,
            Name=prot.name,
            ResourceArn=prot.resource_arn,
        )  # ownership: the name prefix (no tags: no TagResource)
    except EnforcerCallError as exc:
        if exc.code != "ResourceAlreadyExistsException":
            raise
        found = cycle.caller.read(
            "DescribeProtection", cycle.shield.describe_protection, ResourceArn=prot.resource_arn
        )
        by_arn[prot.resource_arn] = found["Protection"]
        return "converged"
    by_arn[prot.resource_arn] = {
        "Id": reply["ProtectionId"],
        "Name": prot.name,
        "ResourceArn": prot.resource_arn,
    }
    return "applied"


def _converge_auto(cycle: Cycle, prot: ShieldProtectionSpec, current: dict[str, Any]) -> None:
    assert cycle.shield is not None
    shield = cycle.shield
    # A count-only document already says COUNT (the compiler's shield_spec).
    have, want = _current_auto(current), prot.auto_response
    if have == want:
        return
    if want is None and not str(current.get("Name", "")).startswith(cycle.prefix):
        cycle.drift.add(
            _resource(prot.resource_arn),
            "shield",
            "automatic response enabled on a protection wafsmith does not own; left as is",
            actual=have,
        )
        return
    cycle.drift.add(
        _resource(prot.resource_arn),
        "shield",
        "automatic response differs",
        actual=have,
        desired=want,
    )
    arn = prot.resource_arn
    if want is None:
        op, fn, kw = (
            "DisableApplicationLayerAutomaticResponse",
            shield.disable_application_layer_automatic_response,
            {"ResourceArn": arn},
        )
    else:
        action = {"Action": {_ACTION_KEY[want]: {}}, "ResourceArn": arn}
        op, fn, kw = (
            (
                "EnableApplicationLayerAutomaticResponse",
                shield.enable_application_layer_automatic_response,
                action,
            )
            if have is None
            else (
                "UpdateApplicationLayerAutomaticResponse",
                shield.update_application_layer_automatic_response,
                action,
            )
        )
    step = Step(
        PHASE, op, _resource(arn), "automatic response differs", {"actual": have, "desired": want}
    )
    cycle.run_step(step, lambda: _write_converged(cycle, op, fn, kw))


def _write_converged(cycle: Cycle, op: str, fn: Any, kw: dict[str, Any]) -> str:
    try:
        cycle.caller.write(op, fn, **kw)
    except EnforcerCallError as exc:
        if exc.code == "InvalidOperationException" and "any change" in str(exc).lower():
            return "converged"  # AWS: "operation would not cause any change"
        raise
    return "applied"


def _delete(cycle: Cycle, current: dict[str, Any]) -> str:
    assert cycle.shield is not None
    try:
        cycle.caller.write(
            "DeleteProtection", cycle.shield.delete_protection, ProtectionId=current["Id"]
        )
    except EnforcerCallError as exc:
        if exc.code == "ResourceNotFoundException":
            return "converged"
        raise
    return "applied"
