"""IP-set phase: read the engine's sets, then create what is missing and update what changed.

An update re-applies *the diff* (added and removed entries against what this cycle read), not
a stale snapshot: on ``WAFOptimisticLockException`` the set is read again and the same diff is
applied to its new contents, so a concurrent writer's entries are not lost. One
``UpdateIPSet`` per changed set per cycle; unchanged sets get no write at all.
"""

from __future__ import annotations

from engine.enforcer.calls import EnforcerCallError, LockConflict
from engine.enforcer.cycle import Cycle, Step
from engine.enforcer.state import (
    OWNER_TAG_KEY,
    ActualIPSet,
    aligned,
    canonical_addresses,
    digest_of,
    fetch_ip_set,
    list_ip_sets,
    owned_description,
    sorted_addresses,
)
from engine.schema.rule import IPSetSpec, placeholder_arn
from engine.schema.waf_limits import MAX_ADDRESSES_PER_IP_SET as MAX_ADDRESSES

PHASE = "ipsets"


def _resource(name: str) -> str:
    return f"ipset/{name}"


def _description(spec: IPSetSpec, content: frozenset[str]) -> str:
    return owned_description(spec.description, digest_of(sorted_addresses(content)))


def read(cycle: Cycle) -> None:
    """List the scope's IP sets, keep the engine's, GetIPSet each desired one; note drift."""
    desired = {s.name: s for s in cycle.desired.ip_sets}
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


def _wanted(spec: IPSetSpec, actual: frozenset[str] | None) -> frozenset[str]:
    raw = frozenset(spec.addresses)
    return canonical_addresses(raw) if actual is None else aligned(raw, actual)


def _note_drift(cycle: Cycle, spec: IPSetSpec, item: ActualIPSet) -> None:
    assert item.addresses is not None
    want = _wanted(spec, item.addresses)
    have = aligned(item.addresses, want)
    if have == want:
        return
    data = {"extra": len(have - want), "absent": len(want - have)}
    if digest_of(sorted_addresses(item.addresses)) != item.owned_digest:
        cycle.drift.add(
            _resource(spec.name),
            "manual_edit",
            "entries differ from what wafsmith last wrote",
            **data,
        )
    else:
        cycle.drift.add(
            _resource(spec.name),
            "pending_change",
            "desired entries changed since the last write",
            **data,
        )


def apply(cycle: Cycle) -> None:
    """Create missing sets, update changed ones; fill ``cycle.arns`` and ``cycle.entries``."""
    for spec in sorted(cycle.desired.ip_sets, key=lambda s: s.name):
        if spec.name in cycle.blocked_names:
            continue
        actual = cycle.owned_sets.get(spec.name)
        want = _wanted(spec, None if actual is None else actual.addresses)
        if actual is None:
            cycle.arns[spec.name] = placeholder_arn(spec.name, cycle.scope)
            cycle.entries[spec.name] = len(want)
            step = Step(
                PHASE,
                "CreateIPSet",
                _resource(spec.name),
                "missing",
                {"addresses": len(want), "ip_version": spec.ip_version},
            )
            cycle.run_step(step, lambda s=spec, w=want: _create(cycle, s, w))
            continue
        assert actual.addresses is not None
        actual.addresses = aligned(actual.addresses, want)
        cycle.arns[spec.name] = actual.arn
        cycle.entries[spec.name] = len(actual.addresses)
        if actual.addresses == want and actual.description == _description(spec, want):
            continue
        detail = {
            "add": len(want - actual.addresses),
            "remove": len(actual.addresses - want),
            "addresses": len(want),
        }
        cycle.entries[spec.name] = len(want)
        step = Step(PHASE, "UpdateIPSet", _resource(spec.name), "entries changed", detail)
        cycle.run_step(step, lambda s=spec, a=actual, w=want: _update(cycle, s, a, w))


def _create(cycle: Cycle, spec: IPSetSpec, want: frozenset[str]) -> str:
    if len(want) > MAX_ADDRESSES:
        raise EnforcerCallError(
            "CreateIPSet", "TooManyAddresses", f"{spec.name}: {len(want)} entries > {MAX_ADDRESSES}"
        )
    try:
        reply = cycle.caller.write(
            "CreateIPSet",
            cycle.wafv2.create_ip_set,
            Name=spec.name,
            Scope=cycle.scope,
            Description=_description(spec, want),
            IPAddressVersion=spec.ip_version,
            Addresses=sorted_addresses(want),
            Tags=[{"Key": OWNER_TAG_KEY, "Value": cycle.prefix}],
        )
    except EnforcerCallError as exc:
        if exc.code not in ("WAFDuplicateItemException", "WafV2DuplicateItem"):
            raise  # (moto spells the duplicate code WafV2DuplicateItem)
        return _adopt_duplicate(cycle, spec, want)
    summary = reply["Summary"]
    cycle.arns[spec.name] = summary["ARN"]
    cycle.owned_sets[spec.name] = ActualIPSet(
        spec.name,
        summary["Id"],
        summary["ARN"],
        summary.get("Description", ""),
        summary.get("LockToken", ""),
        spec.ip_version,
        want,
    )
    return "applied"


def _adopt_duplicate(cycle: Cycle, spec: IPSetSpec, want: frozenset[str]) -> str:
    """Another writer created the set between our read and our create: adopt and update it."""
    for item in list_ip_sets(cycle.wafv2, cycle.caller, cycle.scope):
        if item.name == spec.name and item.owned_digest is not None:
            fetch_ip_set(cycle.wafv2, cycle.caller, cycle.scope, item)
            cycle.owned_sets[spec.name] = item
            cycle.arns[spec.name] = item.arn
            return _update(cycle, spec, item, want)
    raise EnforcerCallError(
        "CreateIPSet",
        "WAFDuplicateItemException",
        f"{spec.name} exists without wafsmith's ownership mark",
    )


def _update(cycle: Cycle, spec: IPSetSpec, actual: ActualIPSet, want: frozenset[str]) -> str:
    assert actual.addresses is not None
    add, remove = want - actual.addresses, actual.addresses - want
    current = actual
    for attempt in range(1, cycle.lock_attempts + 1):
        assert current.addresses is not None
        current.addresses = aligned(current.addresses, want)  # after a re-read: canonical
        target = (current.addresses | add) - remove
        description = _description(spec, target)
        if target == current.addresses and description == current.description:
            cycle.entries[spec.name] = len(target)
            return "converged"  # a concurrent writer already applied our diff
        if len(target) > MAX_ADDRESSES:
            raise EnforcerCallError(
                "UpdateIPSet",
                "TooManyAddresses",
                f"{spec.name}: {len(target)} entries > {MAX_ADDRESSES}",
            )
        try:
            reply = cycle.caller.write(
                "UpdateIPSet",
                cycle.wafv2.update_ip_set,
                Name=spec.name,
                Scope=cycle.scope,
                Id=current.id,
                Description=description,
                Addresses=sorted_addresses(target),
                LockToken=current.lock_token,
            )
        except LockConflict:
            if attempt == cycle.lock_attempts:
                break
            cycle.backoff(attempt)
            current = fetch_ip_set(cycle.wafv2, cycle.caller, cycle.scope, current)
            continue
        current.addresses, current.description = target, description
        current.lock_token = reply.get("NextLockToken", "")
        cycle.entries[spec.name] = len(target)
        return "applied"
    raise EnforcerCallError(
        "UpdateIPSet",
        "WAFOptimisticLockException",
        f"{spec.name}: still conflicting after {cycle.lock_attempts} "
        "re-reads; the next cycle will retry",
        attempts=cycle.lock_attempts,
    )


def delete_stale(cycle: Cycle) -> None:
    """Delete engine-owned sets no longer desired (after rules stopped referencing them)."""
    desired = {s.name for s in cycle.desired.ip_sets}
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


def push_changed(cycle: Cycle, specs: list[IPSetSpec]) -> None:
    """Fast path: re-read and update only ``specs``, whose sets exist in ``cycle.owned_sets``
    (known from the last converged cycle); the diff is applied as in ``apply``."""
    for spec in sorted(specs, key=lambda s: s.name):
        item = cycle.owned_sets[spec.name]
        cycle.arns[spec.name] = item.arn
        step = Step(
            PHASE,
            "UpdateIPSet",
            _resource(spec.name),
            "entries changed (fast path)",
            {"addresses": len(spec.addresses)},
        )
        cycle.run_step(step, lambda s=spec, i=item: _fetch_and_update(cycle, s, i))


def _fetch_and_update(cycle: Cycle, spec: IPSetSpec, item: ActualIPSet) -> str:
    fetch_ip_set(cycle.wafv2, cycle.caller, cycle.scope, item)
    assert item.addresses is not None
    if item.owned_digest != digest_of(sorted_addresses(item.addresses)):
        raise EnforcerCallError(
            "GetIPSet",
            "ManualEdit",
            f"{spec.name} was edited outside wafsmith; a full cycle follows",
        )
    return _update(cycle, spec, item, _wanted(spec, item.addresses))
