"""Rules phase: the engine's rule group and its web ACL reference (or rules in the web ACL).

The rules, the rule group and the web ACL's reference are the compiler's rendered requests
(``desired.requests``); this phase fills in the ARNs the IP-set phase resolved, the ownership
digest and, for updates, Id and LockToken, and changes nothing else (count-only documents
arrive with every action already Count).

``rule_group`` placement: the group is created or updated only when its rules changed, and the
web ACL is touched only when its reference rule is missing or different — routine changes
touch IP sets alone. ``web_acl`` placement: the engine's rules go straight into the web ACL.
Either way every foreign rule and field of the web ACL is copied back unchanged.
"""

from __future__ import annotations

from typing import Any

from engine.core.errors import WafsmithError
from engine.enforcer.calls import EnforcerCallError, LockConflict
from engine.enforcer.cycle import Cycle, Step
from engine.enforcer.state import (
    ActualRuleGroup,
    canonical_rule,
    digest_of,
    fetch_rule_group,
    fetch_web_acl,
    find_web_acl,
    list_rule_groups,
)
from engine.enforcer.webacl import (
    engine_rules_differ,
    merged_rules,
    refuse_firewall_manager,
    split_rules,
    update_request,
)
from engine.schema.requests import (
    UnresolvedPlaceholder,
    marked_digest,
    placeholder_arn,
    rule_group_update,
    with_arns,
    with_digest,
)

PHASE = "rules"
GROUP_ARN = "__rule_group__"  # key of the engine's rule group in ``cycle.arns``


class UnresolvedArn(WafsmithError):
    """A rendered request names an object whose ARN this cycle did not resolve."""


def _group_mode(cycle: Cycle) -> bool:
    return cycle.desired.placement.mode == "rule_group"


def _resolved(cycle: Cycle, value: Any) -> Any:
    """``value`` (rendered requests) with each placeholder ARN replaced by the real one."""
    arns = {placeholder_arn(n, cycle.scope): a for n, a in cycle.arns.items() if n != GROUP_ARN}
    if GROUP_ARN in cycle.arns:
        group = placeholder_arn(cycle.desired.placement.rule_group_name, cycle.scope, "rulegroup")
        arns[group] = cycle.arns[GROUP_ARN]
    try:
        return with_arns(value, arns)
    except UnresolvedPlaceholder as exc:
        raise UnresolvedArn(str(exc)) from None


def _rules_digest(rules: list[dict[str, Any]]) -> str:
    return digest_of(sorted(canonical_rule(r) for r in rules))


def read(cycle: Cycle) -> None:
    """Find the engine's rule groups and the target web ACL; note drift."""
    placement = cycle.desired.placement
    for group in list_rule_groups(cycle.wafv2, cycle.caller, cycle.scope):
        if not group.name.startswith(cycle.prefix):
            continue
        if marked_digest(group.description) is not None:
            if group.name in cycle.owned_groups:  # a racing writer's second create
                cycle.duplicate_groups.append(group)
                cycle.drift.add(f"rulegroup/{group.name}", "stale", "duplicate engine rule group")
                continue
            cycle.owned_groups[group.name] = group
        elif _group_mode(cycle) and group.name == placement.rule_group_name:
            cycle.blocked_names.add(group.name)
            cycle.drift.add(
                f"rulegroup/{group.name}",
                "name_conflict",
                "a rule group without wafsmith's ownership mark holds this name",
            )
            cycle.fail(
                f"rulegroup/{group.name}",
                "ListRuleGroups",
                EnforcerCallError(
                    "ListRuleGroups",
                    "NameConflict",
                    f"rule group {group.name!r} was not created by wafsmith; refusing to adopt it",
                ),
            )
    mine = cycle.owned_groups.get(placement.rule_group_name) if _group_mode(cycle) else None
    if mine is not None:
        fetch_rule_group(cycle.wafv2, cycle.caller, cycle.scope, mine)
        assert mine.rules is not None
        if _rules_digest(mine.rules) != marked_digest(mine.description):
            cycle.drift.add(
                f"rulegroup/{mine.name}",
                "manual_edit",
                "rules differ from what wafsmith last wrote",
            )
    elif _group_mode(cycle) and placement.rule_group_name not in cycle.blocked_names:
        cycle.drift.add(
            f"rulegroup/{placement.rule_group_name}",
            "missing",
            "the engine's rule group does not exist",
        )
    for name in cycle.owned_groups:
        if not _group_mode(cycle) or name != placement.rule_group_name:
            cycle.drift.add(f"rulegroup/{name}", "stale", "engine-owned rule group not desired")
    if placement.web_acl_name:
        cycle.web_acl = find_web_acl(cycle.wafv2, cycle.caller, cycle.scope, placement.web_acl_name)
        if cycle.web_acl is None:
            cycle.drift.add(
                f"webacl/{placement.web_acl_name}",
                "missing",
                "the target web ACL does not exist (wafsmith never creates it)",
            )
            cycle.fail(
                f"webacl/{placement.web_acl_name}",
                "ListWebACLs",
                EnforcerCallError(
                    "ListWebACLs",
                    "WAFNonexistentItemException",
                    f"web ACL {placement.web_acl_name!r} not found in scope {cycle.scope}",
                ),
            )
        else:
            refuse_firewall_manager(cycle.web_acl.body)


def apply(cycle: Cycle) -> None:
    """Converge the rule group (if used), then the web ACL."""
    errors = len(cycle.errors)
    if _group_mode(cycle):
        _apply_rule_group(cycle)
        if len(cycle.errors) > errors or GROUP_ARN not in cycle.arns:
            return  # never point the web ACL at a group that failed to converge
    if cycle.desired.placement.web_acl_name and cycle.web_acl is not None:
        _apply_web_acl(cycle)


# ------------------------------------------------------------------- rule group


def _group_request(cycle: Cycle) -> dict[str, Any]:
    """The rendered ``CreateRuleGroup`` request: ARNs, then the rules' digest, filled in."""
    assert cycle.requests.rule_group is not None
    request = _resolved(cycle, cycle.requests.rule_group)
    request["Description"] = with_digest(request["Description"], _rules_digest(request["Rules"]))
    return request


def _apply_rule_group(cycle: Cycle) -> None:
    name = cycle.desired.placement.rule_group_name
    if name in cycle.blocked_names:
        return
    request = _group_request(cycle)
    group = cycle.owned_groups.get(name)
    resource = f"rulegroup/{name}"
    if group is None:
        cycle.arns[GROUP_ARN] = placeholder_arn(name, cycle.scope, "rulegroup")
        step = Step(
            PHASE,
            "CreateRuleGroup",
            resource,
            "missing",
            {"rules": len(request["Rules"]), "capacity": request["Capacity"]},
        )
        cycle.run_step(step, lambda: _create_group(cycle, request))
        return
    cycle.arns[GROUP_ARN] = group.arn
    if not _group_differs(group, request):
        return
    if group.capacity and group.capacity != request["Capacity"]:
        cycle.drift.add(
            resource,
            "pending_change",
            "capacity is immutable; keeping the old one",
            actual=group.capacity,
            desired=request["Capacity"],
        )
    step = Step(
        PHASE, "UpdateRuleGroup", resource, "rules changed", {"rules": len(request["Rules"])}
    )
    cycle.run_step(step, lambda: _update_group(cycle, group, request))


def _group_differs(group: ActualRuleGroup, request: dict[str, Any]) -> bool:
    assert group.rules is not None
    return (
        sorted(canonical_rule(r) for r in group.rules)
        != sorted(canonical_rule(r) for r in request["Rules"])
        or group.description != request["Description"]
    )


def _create_group(cycle: Cycle, request: dict[str, Any]) -> str:
    reply = cycle.caller.write("CreateRuleGroup", cycle.wafv2.create_rule_group, **request)
    summary = reply["Summary"]
    cycle.arns[GROUP_ARN] = summary["ARN"]
    return "applied"


def _update_group(cycle: Cycle, group: ActualRuleGroup, request: dict[str, Any]) -> str:
    for attempt in range(1, cycle.lock_attempts + 1):
        try:
            body = rule_group_update(request, id=group.id, lock_token=group.lock_token)
            cycle.caller.write("UpdateRuleGroup", cycle.wafv2.update_rule_group, **body)
            return "applied"
        except LockConflict:
            if attempt == cycle.lock_attempts:
                raise
            cycle.backoff(attempt)
            fetch_rule_group(cycle.wafv2, cycle.caller, cycle.scope, group)
            if not _group_differs(group, request):
                return "converged"
    raise AssertionError("unreachable")


# ------------------------------------------------------------------- web ACL


def desired_acl_rules(cycle: Cycle) -> list[dict[str, Any]]:
    """The engine's rules in the web ACL (the group reference, or the rules), as rendered."""
    return _resolved(cycle, list(cycle.requests.web_acl_rules))


def _owned_range(cycle: Cycle) -> tuple[int, int]:
    placement = cycle.desired.placement
    return placement.priority_min, placement.priority_max


def _apply_web_acl(cycle: Cycle) -> None:
    acl = cycle.web_acl
    assert acl is not None
    desired = desired_acl_rules(cycle)
    owned, _ = split_rules(list(acl.body.get("Rules", [])), cycle.prefix)
    if not engine_rules_differ(owned, desired):
        return
    # Refuse up front (and in dry-run) when the rules cannot be placed.
    ok = cycle.guard(
        f"webacl/{acl.name}",
        "UpdateWebACL",
        lambda: merged_rules(acl.body, desired, cycle.prefix, _owned_range(cycle)),
    )
    if not ok:
        cycle.drift.add(f"webacl/{acl.name}", "priority_conflict", cycle.errors[-1].message)
        return
    cycle.drift.add(
        f"webacl/{acl.name}",
        "pending_change",
        "engine rules in the web ACL differ from the desired ones",
        current=sorted(r["Name"] for r in owned),
        desired=sorted(r["Name"] for r in desired),
    )
    step = Step(
        PHASE,
        "UpdateWebACL",
        f"webacl/{acl.name}",
        "engine rules changed",
        {
            "engine_rules": [r["Name"] for r in desired],
            "foreign_rules": len(acl.body.get("Rules", [])) - len(owned),
        },
    )
    cycle.run_step(step, lambda: _update_acl(cycle, desired))


def _update_acl(cycle: Cycle, desired: list[dict[str, Any]]) -> str:
    acl = cycle.web_acl
    assert acl is not None
    for attempt in range(1, cycle.lock_attempts + 1):
        refuse_firewall_manager(acl.body)
        rules = merged_rules(acl.body, desired, cycle.prefix, _owned_range(cycle))
        request = update_request(acl.body, rules, scope=cycle.scope, lock_token=acl.lock_token)
        try:
            cycle.caller.write("UpdateWebACL", cycle.wafv2.update_web_acl, **request)
            return "applied"
        except LockConflict:
            if attempt == cycle.lock_attempts:
                raise
            cycle.backoff(attempt)
            fetch_web_acl(cycle.wafv2, cycle.caller, cycle.scope, acl)
            owned, _ = split_rules(list(acl.body.get("Rules", [])), cycle.prefix)
            if not engine_rules_differ(owned, desired):
                return "converged"
    raise AssertionError("unreachable")


def delete_stale_groups(cycle: Cycle) -> None:
    """Delete engine-owned rule groups no longer desired (the ACL no longer points at them)."""
    keep = cycle.desired.placement.rule_group_name if _group_mode(cycle) else None
    stale = [g for n, g in sorted(cycle.owned_groups.items()) if n != keep]
    for group in stale + cycle.duplicate_groups:
        step = Step(
            PHASE,
            "DeleteRuleGroup",
            f"rulegroup/{group.name}",
            "no longer desired",
            {"arn": group.arn},
        )
        cycle.run_step(step, lambda g=group: _delete_group(cycle, g))


def _delete_group(cycle: Cycle, group: ActualRuleGroup) -> str:
    return cycle.delete_owned(
        "DeleteRuleGroup",
        cycle.wafv2.delete_rule_group,
        group,
        lambda: fetch_rule_group(cycle.wafv2, cycle.caller, cycle.scope, group),
    )
