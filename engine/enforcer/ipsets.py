"""IP-set phase: read the engine's sets, then create what is missing and update what changed.

What is sent is the compiler's rendered ``CreateIPSet`` request (``desired.requests``), or the
update derived from it, with the ownership digest and, for an update, the set's Id and
LockToken filled in. An update re-applies *the diff* (added and removed entries against what
this cycle read), not a stale snapshot: on ``WAFOptimisticLockException`` the set is read
again and the same diff is applied to its new contents, so a concurrent writer's entries are
not lost (only then do the addresses sent differ from the rendered ones). One ``UpdateIPSet``
per changed set per cycle; unchanged sets get no write at all.
"""

from __future__ import annotations

from typing import Any

from engine.enforcer.calls import EnforcerCallError, LockConflict
from engine.enforcer.cycle import Cycle, Step
from engine.enforcer.state import (
    ActualIPSet,
    aligned,
    canonical_addresses,
    digest_of,
    fetch_ip_set,
    list_ip_sets,
    sorted_addresses,
)
from engine.schema.requests import ip_set_update, placeholder_arn, with_digest
from engine.schema.waf_limits import MAX_ADDRESSES_PER_IP_SET as MAX_ADDRESSES

PHASE = "ipsets"
Request = dict[str, Any]  # a rendered CreateIPSet request (engine.schema.requests)


def _resource(name: str) -> str:
    return f"ipset/{name}"


def _description(request: Request, content: frozenset[str]) -> str:
    return with_digest(request["Description"], digest_of(sorted_addresses(content)))


def _addresses(request: Request, content: frozenset[str]) -> list[str]:
    """The rendered addresses when they are the content to write, else ``content`` sorted."""
    rendered = request["Addresses"]
    return list(rendered) if frozenset(rendered) == content else sorted_addresses(content)


def read(cycle: Cycle) -> None:
    """List the scope's IP sets, keep the engine's, GetIPSet each desired one; note drift."""
    desired = cycle.ip_set_requests
    for item in list_ip_sets(cycle.wafv2, cycle.caller, cycle.scope):
        if not item.name.startswith(cycle.prefix):
            continue
        if item.owned_digest is None:
            if item.name in desired:
                cycle.blocked_names.add(item.name)
                cycle.drift.add(
                    _resource(item.name),
                    "name_conflict",
                    "an IP set without wafsmith's ownership mark holds this name",
                )
                cycle.fail(
                    _resource(item.name),
                    "ListIPSets",
                    EnforcerCallError(
                        "ListIPSets",
                        "NameConflict",
                        f"IP set {item.name!r} exists but was not created by wafsmith; refusing "
                        "to adopt it (rename or delete it, or change owner_prefix)",
                    ),
                )
            continue
        if item.name in cycle.owned_sets:
            cycle.duplicate_sets.append(item)
            cycle.drift.add(
                _resource(item.name), "stale", "duplicate engine-owned IP set", arn=item.arn
            )
            continue
        cycle.owned_sets[item.name] = item
    for name, item in cycle.owned_sets.items():
        if name in desired:
            fetch_ip_set(cycle.wafv2, cycle.caller, cycle.scope, item)
            _note_drift(cycle, desired[name], item)
        else:
            cycle.drift.add(_resource(name), "stale", "engine-owned IP set no longer desired")
    for name in desired.keys() - cycle.owned_sets.keys() - cycle.blocked_names:
        cycle.drift.add(_resource(name), "missing", "desired IP set does not exist")


def _wanted(request: Request, actual: frozenset[str] | None) -> frozenset[str]:
    raw = frozenset(request["Addresses"])
    return canonical_addresses(raw) if actual is None else aligned(raw, actual)


def _note_drift(cycle: Cycle, request: Request, item: ActualIPSet) -> None:
    assert item.addresses is not None
    name = request["Name"]
    want = _wanted(request, item.addresses)
    have = aligned(item.addresses, want)
    if have == want:
        return
    data = {"extra": len(have - want), "absent": len(want - have)}
    if digest_of(sorted_addresses(item.addresses)) != item.owned_digest:
        cycle.drift.add(
            _resource(name),
            "manual_edit",
            "entries differ from what wafsmith last wrote",
            **data,
        )
    else:
        cycle.drift.add(
            _resource(name),
            "pending_change",
            "desired entries changed since the last write",
            **data,
        )


def apply(cycle: Cycle) -> None:
    """Create missing sets, update changed ones; fill ``cycle.arns`` and ``cycle.entries``."""
    for name, request in sorted(cycle.ip_set_requests.items()):
        if name in cycle.blocked_names:
            continue
        actual = cycle.owned_sets.get(name)
        want = _wanted(request, None if actual is None else actual.addresses)
        if actual is None:
            cycle.arns[name] = placeholder_arn(name, cycle.scope)
            cycle.entries[name] = len(want)
            step = Step(
                PHASE,
                "CreateIPSet",
                _resource(name),
                "missing",
                {"addresses": len(want), "ip_version": request["IPAddressVersion"]},
            )
            cycle.run_step(step, lambda r=request, w=want: _create(cycle, r, w))
            continue
        assert actual.addresses is not None
        actual.addresses = aligned(actual.addresses, want)
        cycle.arns[name] = actual.arn
        cycle.entries[name] = len(actual.addresses)
        if actual.addresses == want and actual.description == _description(request, want):
            continue
        detail = {
            "add": len(want - actual.addresses),
            "remove": len(actual.addresses - want),
            "addresses": len(want),
        }
        cycle.entries[name] = len(want)
        step = Step(PHASE, "UpdateIPSet", _resource(name), "entries changed", detail)
        cycle.run_step(step, lambda r=request, a=actual, w=want: _update(cycle, r, a, w))


def _create(cycle: Cycle, request: Request, want: frozenset[str]) -> str:
    name = request["Name"]
    if len(want) > MAX_ADDRESSES:
        raise EnforcerCallError(
            "CreateIPSet", "TooManyAddresses", f"{name}: {len(want)} entries > {MAX_ADDRESSES}"
        )
    body = {
        **request,
        "Description": _description(request, want),
        "Addresses": _addresses(request, want),
    }
    try:
        reply = cycle.caller.write("CreateIPSet", cycle.wafv2.create_ip_set, **body)
    except EnforcerCallError as exc:
        if exc.code not in ("WAFDuplicateItemException", "WafV2DuplicateItem"):
            raise  # (moto spells the duplicate code WafV2DuplicateItem)
        return _adopt_duplicate(cycle, request, want)
    summary = reply["Summary"]
    cycle.arns[name] = summary["ARN"]
    cycle.owned_sets[name] = ActualIPSet(
        name,
        summary["Id"],
        summary["ARN"],
        summary.get("Description", ""),
        summary.get("LockToken", ""),
        request["IPAddressVersion"],
        want,
    )
    return "applied"


def _adopt_duplicate(cycle: Cycle, request: Request, want: frozenset[str]) -> str:
    """Another writer created the set between our read and our create: adopt and update it."""
    name = request["Name"]
    for item in list_ip_sets(cycle.wafv2, cycle.caller, cycle.scope):
        if item.name == name and item.owned_digest is not None:
            fetch_ip_set(cycle.wafv2, cycle.caller, cycle.scope, item)
            cycle.owned_sets[name] = item
            cycle.arns[name] = item.arn
            return _update(cycle, request, item, want)
    raise EnforcerCallError(
        "CreateIPSet",
        "WAFDuplicateItemException",
        f"{name} exists without wafsmith's ownership mark",
    )


def _update(cycle: Cycle, request: Request, actual: ActualIPSet, want: frozenset[str]) -> str:
    assert actual.addresses is not None
    name = request["Name"]
    add, remove = want - actual.addresses, actual.addresses - want
    current = actual
    for attempt in range(1, cycle.lock_attempts + 1):
        assert current.addresses is not None
        current.addresses = aligned(current.addresses, want)  # after a re-read: canonical
        target = (current.addresses | add) - remove
        description = _description(request, target)
        if target == current.addresses and description == current.description:
            cycle.entries[name] = len(target)
            return "converged"  # a concurrent writer already applied our diff
        if len(target) > MAX_ADDRESSES:
            raise EnforcerCallError(
                "UpdateIPSet",
                "TooManyAddresses",
                f"{name}: {len(target)} entries > {MAX_ADDRESSES}",
            )
        body = ip_set_update(request, id=current.id, lock_token=current.lock_token)
        body["Description"] = description
        body["Addresses"] = _addresses(request, target)
        try:
            reply = cycle.caller.write("UpdateIPSet", cycle.wafv2.update_ip_set, **body)
        except LockConflict:
            if attempt == cycle.lock_attempts:
                break
            cycle.backoff(attempt)
            current = fetch_ip_set(cycle.wafv2, cycle.caller, cycle.scope, current)
            continue
        current.addresses, current.description = target, description
        current.lock_token = reply.get("NextLockToken", "")
        cycle.entries[name] = len(target)
        return "applied"
    raise EnforcerCallError(
        "UpdateIPSet",
        "WAFOptimisticLockException",
        f"{name}: still conflicting after {cycle.lock_attempts} "
        "re-reads; the next cycle will retry",
        attempts=cycle.lock_attempts,
    )


def delete_stale(cycle: Cycle) -> None:
    """Delete engine-owned sets no longer desired (after rules stopped referencing them)."""
    desired = cycle.ip_set_requests
    stale = [s for n, s in sorted(cycle.owned_sets.items()) if n not in desired]
    for item in stale + cycle.duplicate_sets:
        step = Step(
            PHASE, "DeleteIPSet", _resource(item.name), "no longer desired", {"arn": item.arn}
        )
        cycle.run_step(step, lambda i=item: _delete(cycle, i))


def _delete(cycle: Cycle, item: ActualIPSet) -> str:
    return cycle.delete_owned(
        "DeleteIPSet",
        cycle.wafv2.delete_ip_set,
        item,
        lambda: fetch_ip_set(cycle.wafv2, cycle.caller, cycle.scope, item),
    )


def push_changed(cycle: Cycle, names: list[str]) -> None:
    """Fast path: re-read and update only the sets ``names``, which exist in
    ``cycle.owned_sets`` (known from the last converged cycle); the diff is applied as in
    ``apply``."""
    for name in sorted(names):
        request = cycle.ip_set_requests[name]
        item = cycle.owned_sets[name]
        cycle.arns[name] = item.arn
        step = Step(
            PHASE,
            "UpdateIPSet",
            _resource(name),
            "entries changed (fast path)",
            {"addresses": len(request["Addresses"])},
        )
        cycle.run_step(step, lambda r=request, i=item: _fetch_and_update(cycle, r, i))


def _fetch_and_update(cycle: Cycle, request: Request, item: ActualIPSet) -> str:
    fetch_ip_set(cycle.wafv2, cycle.caller, cycle.scope, item)
    assert item.addresses is not None
    if item.owned_digest != digest_of(sorted_addresses(item.addresses)):
        raise EnforcerCallError(
            "GetIPSet",
            "ManualEdit",
            f"{request['Name']} was edited outside wafsmith; a full cycle follows",
        )
    return _update(cycle, request, item, _wanted(request, item.addresses))
