"""``compile_state``: approved, unexpired decisions + config + now → ``DesiredState``.

Pure and deterministic: no clock, no I/O, no AWS. Shuffling the decisions gives the same
document; the same configuration gives the same rule bytes whatever the decisions are.

Steps (each in ``addresses``/``rules``):
1. collect the active decisions' networks (campaign members, CIDRs, single addresses);
2. remove allowlisted ranges, splitting decided CIDRs around them;
3. drop networks wholly covered by a stronger category (block > captcha > challenge >
   rate_limit > count);
4. aggregate each (category, family) into the minimal CIDR list covering exactly them;
5. keep the best ``max_entries`` entries overall (score, then recency);
6. shard each (category, family) into ≤ 10,000-entry IP sets by a stable hash;
7. build the IP-set rules, the rate rules, the placement and the Shield section;
   rule-level decisions become one rule each in the free slots after them
   (``rule_decisions``);
8. render the exact WAFv2 requests the enforcer will send (``render``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from engine.compiler import addresses as addr
from engine.compiler.config import CompilerConfig
from engine.compiler.render import rendered
from engine.compiler.rule_decisions import compile_rule_decisions
from engine.compiler.rule_specs import (
    CATEGORY_TOKEN,
    ip_set_rule,
    protection_rules,
    rate_limit_decisions_rule,
)
from engine.schema.decision import Decision
from engine.schema.rule import (
    DesiredState,
    IPSetSpec,
    OverflowEntry,
    PlacementSpec,
    RuleSpec,
    ShieldProtectionSpec,
    ShieldSpec,
)

_FAMILIES = ((4, "IPV4", "v4"), (6, "IPV6", "v6"))


def compile_state(
    decisions: Iterable[Decision], config: CompilerConfig, now: datetime
) -> DesiredState:
    """Compile the desired WAF/Shield state; see the module docstring for the steps."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    decisions = list(decisions)
    candidates, overflow = addr.collect(decisions, now, config.categories)
    candidates, dropped = addr.remove_allowlisted(candidates, config.allowlist)
    overflow += dropped
    candidates, dropped = addr.drop_superseded(candidates)
    overflow += dropped
    entries = addr.aggregate(candidates, collapse=config.aggregate)
    entries, dropped = addr.apply_budget(entries, config.max_entries)
    overflow += dropped

    ip_sets, set_names, dropped = _ip_sets(entries, config)
    overflow += dropped
    rules = _rules(config, set_names)
    rule_rules, dropped = compile_rule_decisions(decisions, config, now, rules)
    overflow += dropped
    rules = sorted([*rules, *rule_rules], key=lambda r: (r.priority, r.name))
    state = DesiredState(
        ip_sets=tuple(ip_sets),
        rules=tuple(rules),
        placement=placement_spec(config),
        shield=shield_spec(config),
        overflow=tuple(sorted(overflow, key=_overflow_key)),
        generated_at=now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        owner_prefix=config.owner_prefix,
        count_only=config.count_only,
    )
    return rendered(state)


def _overflow_key(o: OverflowEntry) -> tuple:
    return (o.reason, o.category, addr.address_key(o.client), o.decision_ids, o.detail)


def ip_set_name(config: CompilerConfig, category: str, family: str, shard: int) -> str:
    return f"{config.owner_prefix}{CATEGORY_TOKEN[category]}-{family}-{shard}"


def _ip_sets(
    entries: list[addr.Entry], config: CompilerConfig
) -> tuple[list[IPSetSpec], dict[str, list[str]], list[OverflowEntry]]:
    """Every enabled category gets at least shard 0 of both families (possibly empty), so its
    rule's statement does not change when the first address of a family appears."""
    grouped: dict[tuple[str, int], list[addr.Entry]] = {}
    for entry in entries:
        grouped.setdefault((entry.category, entry.version), []).append(entry)
    specs: list[IPSetSpec] = []
    names: dict[str, list[str]] = {}
    overflow: list[OverflowEntry] = []
    for category in sorted(config.categories, key=addr.PRECEDENCE.index):
        names[category] = []
        for version, ip_version, family in _FAMILIES:
            buckets, dropped = addr.shard(
                grouped.get((category, version), []),
                per_set=config.max_entries_per_set,
                max_shards=config.max_shards,
                min_shards=config.min_shards,
            )
            overflow += dropped
            for k, bucket in enumerate(buckets):
                name = ip_set_name(config, category, family, k)
                names[category].append(name)
                specs.append(
                    IPSetSpec(
                        name=name,
                        scope=config.scope,
                        ip_version=ip_version,
                        addresses=tuple(text for _entry, text in bucket),
                        category=category,
                        description=f"wafsmith {category} {ip_version} shard {k}",
                    )
                )
    specs.sort(key=lambda s: s.name)
    return specs, names, overflow


def _rules(config: CompilerConfig, set_names: dict[str, list[str]]) -> list[RuleSpec]:
    rules: list[RuleSpec] = []
    for category, names in set_names.items():
        if category == "rate_limit":
            rules.append(rate_limit_decisions_rule(config, names))
        else:
            rules.append(ip_set_rule(config, category, names))
    rules.extend(protection_rules(config))
    rules.sort(key=lambda r: (r.priority, r.name))
    return rules


def placement_spec(config: CompilerConfig) -> PlacementSpec:
    p = config.placement
    return PlacementSpec(
        mode=p.mode,
        scope=config.scope,
        web_acl_name=p.web_acl_name,
        rule_group_name=f"{config.owner_prefix}{p.rule_group_suffix}",
        rule_group_capacity=p.rule_group_capacity,
        priority_min=p.priority_min,
        priority_max=p.priority_max,
        web_acl_wcu_budget=p.web_acl_wcu_budget,
    )


def shield_spec(config: CompilerConfig) -> ShieldSpec:
    """Shield protections; count-only mode also keeps automatic response in Count."""
    shield = config.shield
    if not shield.enabled:
        return ShieldSpec(enabled=False)
    prots = []
    for p in sorted(shield.protections, key=lambda p: p.resource_arn):
        action = None if p.auto_response == "off" else p.auto_response.upper()
        if action == "BLOCK" and config.count_only:
            action = "COUNT"
        name = f"{config.owner_prefix}{p.name}"  # the prefix marks the protection as ours
        prots.append(
            ShieldProtectionSpec(name=name, resource_arn=p.resource_arn, auto_response=action)
        )
    return ShieldSpec(enabled=True, protections=tuple(prots))


def enforced_decision_ids(decisions: Iterable[Decision], state: DesiredState) -> list[str]:
    """Ids of the decisions the document enforces: all but those left in its overflow."""
    left_out = {i for o in state.overflow for i in o.decision_ids}
    return [d.id for d in decisions if d.id and d.id not in left_out]
