"""Property tests: no input produces an invalid document, an allowlisted address, a widened
aggregate or a silently dropped decision; and the document ignores input order.

Addresses are drawn from small spaces (10.0.0.0/22 and 2001:db8::/120) so that CIDRs,
members, allowlists and decisions overlap a lot, and budgets/set sizes are small so that
budget overflow and sharding happen in most examples.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import random
from datetime import timedelta
from typing import get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.compiler import CompilerConfig, compile_state, validate
from engine.compiler.config import CustomKeyConfig
from engine.compiler.modelcheck import check_document
from engine.schema.decision import Action, Decision
from engine.schema.requests import is_placeholder_arn, placeholder_arn
from engine.schema.rule import DesiredState
from tests.support.compiler import NOW, make_decision

V4 = ipaddress.ip_network("10.0.0.0/22")
V6 = ipaddress.ip_network("2001:db8::/120")
ACTIONS = ["block", "rate_limit", "challenge", "captcha", "count"]


@st.composite
def networks(draw, max_extra: int = 8) -> str:
    """An address (no prefix) or a CIDR up to ``max_extra`` bits wider, in V4 or V6."""
    space = draw(st.sampled_from([V4, V6]))
    extra = draw(st.integers(0, max_extra))
    prefix = space.max_prefixlen - extra
    offset = draw(st.integers(0, space.num_addresses - 1))
    addr = ipaddress.ip_address(int(space.network_address) + offset)
    net = ipaddress.ip_network(f"{addr}/{prefix}", strict=False)
    return str(net.network_address) if extra == 0 else str(net)


@st.composite
def decisions(draw) -> Decision:
    # Members are single addresses: drawn as such (filtering them out of CIDRs discarded
    # most draws and tripped hypothesis' filter_too_much health check at random).
    members = draw(st.lists(networks(max_extra=0), max_size=4))
    return Decision(
        client=draw(networks()),
        action=draw(st.sampled_from(ACTIONS)),
        ttl_s=draw(st.integers(1, 7200)),
        score=draw(st.floats(0, 1)),
        detector="prop",
        decided_at=NOW - timedelta(seconds=draw(st.integers(0, 3600))),
        status=draw(st.sampled_from(["approved", "applied", "proposed"])),
        id=f"d{draw(st.integers(0, 10**9))}",
        members=tuple(members),
    )


def decision_lists(max_size: int):
    """Decisions with distinct ids, as the ledger hands them over (with a repeated id, two
    overflow entries could differ by score alone, and their order would be the input's)."""
    return st.lists(decisions(), max_size=max_size, unique_by=lambda d: d.id)


@st.composite
def configs(draw) -> CompilerConfig:
    return CompilerConfig(
        allowlist=draw(st.lists(networks(), max_size=4)),
        aggregate=draw(st.booleans()),
        max_entries=draw(st.integers(1, 120)),
        max_entries_per_set=draw(st.integers(1, 40)),
        max_shards=draw(st.sampled_from([1, 2, 4])),
        categories=draw(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=5, unique=True)),
        count_only=draw(st.booleans()),
    )


def hosts(text: str) -> range:
    net = ipaddress.ip_network(text, strict=False)
    return range(int(net.network_address), int(net.broadcast_address) + 1)


def covered(texts) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {4: set(), 6: set()}
    for text in texts:
        out[ipaddress.ip_network(text, strict=False).version].update(hosts(text))
    return out


def targets(d: Decision) -> tuple[str, ...]:
    return d.members or (d.client,)


PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(decision_lists(60), configs())
def test_every_document_is_valid(items, config):
    state = compile_state(items, config, NOW)
    assert validate(state) == []
    assert all(len(s.addresses) <= config.max_entries_per_set for s in state.ip_sets)
    assert sum(len(s.addresses) for s in state.ip_sets) <= config.max_entries


@PROPS
@given(decision_lists(60), configs())
def test_no_allowlisted_address_and_no_widening(items, config):
    state = compile_state(items, config, NOW)
    allowed = covered(config.allowlist)
    decided = {
        category: covered(
            t for d in items if d.is_active(NOW) and d.action == category for t in targets(d)
        )
        for category in config.categories
    }
    for spec in state.ip_sets:
        version = 4 if spec.ip_version == "IPV4" else 6
        for entry in spec.addresses:
            addresses = set(hosts(entry))
            assert not addresses & allowed[version], (entry, config.allowlist)
            assert addresses <= decided[spec.category][version], (
                f"{entry} covers undecided addresses"
            )


@PROPS
@given(decision_lists(60), configs())
def test_nothing_is_dropped_silently(items, config):
    state = compile_state(items, config, NOW)
    reported = {i for o in state.overflow for i in o.decision_ids}
    allowed = covered(config.allowlist)
    listed: dict[tuple[str, int], set[int]] = {}
    for spec in state.ip_sets:
        version = 4 if spec.ip_version == "IPV4" else 6
        listed.setdefault((spec.category, version), set()).update(
            h for a in spec.addresses for h in hosts(a)
        )
    for d in items:
        if not d.is_active(NOW) or d.id in reported:
            continue
        for target in targets(d):
            version = ipaddress.ip_network(target, strict=False).version
            missing = set(hosts(target)) - listed.get((d.action.value, version), set())
            assert not missing - allowed[version], f"{d.id} {target} lost without a report"


@settings(max_examples=60, deadline=None)
@given(decision_lists(60), configs(), st.randoms(use_true_random=False))
def test_input_order_does_not_matter(items, config, rng: random.Random):
    first = json.dumps(compile_state(items, config, NOW).to_dict(), sort_keys=True)
    shuffled = list(items)
    rng.shuffle(shuffled)
    assert json.dumps(compile_state(shuffled, config, NOW).to_dict(), sort_keys=True) == first


@settings(PROPS, max_examples=25)
@given(decision_lists(30), configs())
def test_rendered_requests_pass_the_botocore_model(items, config):
    assert check_document(compile_state(items, config, NOW)) == []


def _placeholders(value) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_placeholders(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_placeholders(v) for v in value))
    return {value} if isinstance(value, str) and is_placeholder_arn(value) else set()


@PROPS
@given(st.lists(decisions(), max_size=60), configs())
def test_the_requests_carry_exactly_what_the_document_says(items, config):
    """The bodies the enforcer sends hold the document's sets, reference exactly its sets,
    put every rule in Count for a count-only document, and survive a JSON round trip."""
    state = compile_state(items, config, NOW)
    requests = state.requests
    assert requests is not None
    assert [
        (b["Name"], b["Scope"], b["IPAddressVersion"], b["Addresses"]) for b in requests.ip_sets
    ] == [(s.name, s.scope, s.ip_version, list(s.addresses)) for s in state.ip_sets]
    scope = state.placement.scope
    sets = {placeholder_arn(n, scope) for r in state.rules for n in r.ip_set_names}
    assert sets <= {placeholder_arn(s.name, scope) for s in state.ip_sets}
    assert _placeholders(requests.rules) == sets
    if state.count_only:
        assert all(r["Action"] == {"Count": {}} for r in requests.rules)
    assert DesiredState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


@PROPS
@given(decision_lists(60), st.lists(networks(), max_size=4))
def test_aggregation_is_the_exact_minimal_cover(items, allowlist):
    """With one category and no budget pressure, the entries are exactly
    ``collapse_addresses`` of the decided addresses minus the allowlist."""
    items = [dataclasses.replace(d, action=Action.BLOCK) for d in items]
    config = CompilerConfig(allowlist=allowlist, categories=["block"])
    state = compile_state(items, config, NOW)
    allowed = covered(allowlist)
    for spec in state.ip_sets:
        version = 4 if spec.ip_version == "IPV4" else 6
        wanted = covered(t for d in items if d.is_active(NOW) for t in targets(d))[version]
        wanted -= allowed[version]
        cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        expected = ipaddress.collapse_addresses(cls(h) for h in sorted(wanted))
        assert sorted(spec.addresses) == sorted(str(n) for n in expected)


def test_halves_of_the_address_space_never_become_a_slash_zero():
    halves = [make_decision("0.0.0.0/1"), make_decision("128.0.0.0/1")]
    state = compile_state(halves, CompilerConfig(), NOW)
    assert state.ip_set("wafsmith-block-v4-0").addresses == ("0.0.0.0/1", "128.0.0.0/1")
    assert validate(state) == []


KEY_TYPES = list(get_args(CustomKeyConfig.model_fields["type"].annotation))  # every one


@st.composite
def protections(draw, index: int) -> dict:
    aggregate = draw(st.sampled_from(["IP", "FORWARDED_IP", "CUSTOM_KEYS", "CONSTANT"]))
    prot: dict = {
        "name": f"p{index}",
        "limit": draw(st.integers(10, 2_000_000_000)),
        "window_s": draw(st.sampled_from([60, 120, 300, 600])),
        "aggregate": aggregate,
        "action": draw(st.sampled_from(["BLOCK", "CAPTCHA", "CHALLENGE", "COUNT"])),
    }
    if aggregate == "FORWARDED_IP" or draw(st.booleans()):
        prot["forwarded_ip_header"] = draw(st.from_regex(r"\A[A-Za-z0-9-]{1,40}\Z"))
    if aggregate == "CUSTOM_KEYS":
        types = draw(st.lists(st.sampled_from(KEY_TYPES), min_size=1, max_size=5))
        if set(types) <= {"ip", "forwarded_ip"}:
            types.append("uri_path")
        prot["custom_keys"] = [
            {"type": t, "name": "x-key"}
            if t in ("header", "cookie", "query_argument")
            else {"type": t, "namespace": "bot:"}
            if t == "label_namespace"
            else {"type": t}
            for t in types[:5]
        ]
        if "forwarded_ip" in types:
            prot.setdefault("forwarded_ip_header", "X-Forwarded-For")
    if aggregate == "CONSTANT" or draw(st.booleans()):
        prot["scope_down"] = draw(
            st.sampled_from(
                [
                    {"method": "POST", "path": "/login"},
                    {"path": "/api/", "path_match": "STARTS_WITH"},
                    {"host": "www.example.com", "path": "/search", "path_match": "CONTAINS"},
                    {"statement": {"GeoMatchStatement": {"CountryCodes": ["CN"]}}},
                ]
            )
        )
    return prot


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 3).flatmap(lambda n: st.tuples(*(protections(i) for i in range(n)))),
    st.booleans(),
)
def test_any_valid_config_compiles_to_a_valid_document(prots, web_acl_mode):
    placement = {
        "mode": "web_acl" if web_acl_mode else "rule_group",
        "rule_group_capacity": 1500,
        "web_acl_wcu_budget": 5000,
    }
    config = CompilerConfig(rate_limits=list(prots), placement=placement)
    state = compile_state([make_decision("192.0.2.1", "rate_limit")], config, NOW)
    assert validate(state) == []
    assert check_document(state) == []
