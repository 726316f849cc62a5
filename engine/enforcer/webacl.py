"""Web ACL read-modify-write that leaves everything foreign exactly as it was.

``UpdateWebACL`` replaces every mutable field, so the request is built from the ``GetWebACL``
reply: every rule without the engine's prefix (operator rules, ``ShieldMitigationRuleGroup_…``,
managed groups) is copied back as the same dict, and every other mutable field the model
defines (DefaultAction, VisibilityConfig, CustomResponseBodies, CaptchaConfig, TokenDomains,
AssociationConfig, …) is copied unchanged. The field list comes from botocore's model, so
fields AWS adds later are carried over too.
"""

from __future__ import annotations

import functools
from typing import Any

import botocore.session

from engine.core.errors import WafsmithError
from engine.enforcer.state import canonical_rule

_IDENTITY = frozenset({"Name", "Scope", "Id", "LockToken", "Rules"})
FMS_WEB_ACL_PREFIX = "FMManagedWebACLV2"


class WebAclConflict(WafsmithError):
    """The web ACL cannot take the engine's rules without touching something foreign."""


@functools.cache
def mutable_fields() -> tuple[str, ...]:
    """Members of ``UpdateWebACL`` other than identity, token and rules (from the model)."""
    model = botocore.session.get_session().get_service_model("wafv2")
    members = model.operation_model("UpdateWebACL").input_shape.members
    return tuple(m for m in members if m not in _IDENTITY)


def refuse_firewall_manager(body: dict[str, Any]) -> None:
    """Firewall Manager owns these ACLs; the engine must not manage them."""
    if body.get("ManagedByFirewallManager") or str(body.get("Name", "")).startswith(
        FMS_WEB_ACL_PREFIX
    ):
        raise WebAclConflict(
            f"web ACL {body.get('Name')!r} is managed by AWS Firewall Manager; "
            "wafsmith refuses to modify it"
        )


def split_rules(
    rules: list[dict[str, Any]], owner_prefix: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(engine-owned rules, foreign rules), each in the ACL's order."""
    owned = [r for r in rules if str(r.get("Name", "")).startswith(owner_prefix)]
    foreign = [r for r in rules if not str(r.get("Name", "")).startswith(owner_prefix)]
    return owned, foreign


def engine_rules_differ(current_owned: list[dict[str, Any]], desired: list[dict[str, Any]]) -> bool:
    def key(rules: list[dict[str, Any]]) -> list[str]:
        return sorted(canonical_rule(r) for r in rules)

    return key(current_owned) != key(desired)


def merged_rules(
    body: dict[str, Any],
    desired: list[dict[str, Any]],
    owner_prefix: str,
    owned_range: tuple[int, int],
) -> list[dict[str, Any]]:
    """Foreign rules untouched plus the desired engine rules, by priority.

    Refuses when an engine rule would take a foreign rule's priority or falls outside the
    engine's priority range.
    """
    _, foreign = split_rules(list(body.get("Rules", [])), owner_prefix)
    taken = {int(r["Priority"]): r["Name"] for r in foreign}
    low, high = owned_range
    for rule in desired:
        prio = int(rule["Priority"])
        if prio in taken:
            raise WebAclConflict(
                f"engine rule {rule['Name']!r} wants priority {prio}, held by "
                f"foreign rule {taken[prio]!r}; change the placement range"
            )
        if not low <= prio <= high:
            raise WebAclConflict(
                f"engine rule {rule['Name']!r} priority {prio} is outside the "
                f"engine's range {low}..{high}"
            )
    return sorted(foreign + list(desired), key=lambda r: int(r["Priority"]))


def update_request(
    body: dict[str, Any], rules: list[dict[str, Any]], *, scope: str, lock_token: str
) -> dict[str, Any]:
    """``UpdateWebACL`` parameters: identity, token, ``rules`` and every other field as read."""
    request: dict[str, Any] = {
        "Name": body["Name"],
        "Scope": scope,
        "Id": body["Id"],
        "LockToken": lock_token,
        "Rules": rules,
    }
    for name in mutable_fields():
        value = body.get(name)
        if value is None or (name == "Description" and value == ""):
            continue  # absent stays absent; moto reports a missing description as ""
        request[name] = value
    return request
