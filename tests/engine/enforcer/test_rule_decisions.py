"""A rule-level decision the whole way, on the moto server and a real ledger: a residential-
proxy stuffing campaign → one rate rule proposed on POST /login with its backtest → held for
an analyst, approved → compiled into the engine's rule group → in WAF with its scope-down →
the injected clock passes its TTL → the next reconcile removes it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from engine.core.clock import FakeClock
from engine.decisions import Ledger, apply_policy
from engine.decisions.history import RequestHistory
from engine.decisions.rule_answers import rule_answers
from engine.enforcement import compiler_config, enforce_once, reconciler_from_settings
from engine.enforcer import Mode
from engine.pipeline import analyze_tables
from engine.settings import Settings
from tests.support.rule_answers import residential_stuffing
from tests.support.waf import WEB_ACL


def _rule_group_rules(wafv2) -> dict[str, dict[str, Any]]:
    groups = wafv2.list_rule_groups(Scope="REGIONAL")["RuleGroups"]
    summary = next(g for g in groups if g["Name"] == "wafsmith-rules")
    body = wafv2.get_rule_group(Name=summary["Name"], Scope="REGIONAL", Id=summary["Id"])
    return {r["Name"]: r for r in body["RuleGroup"]["Rules"]}


def _byte_matches(statement: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """FieldToMatch kind → (positional constraint, search string) of an AND of byte matches."""
    parts = statement.get("AndStatement", {}).get("Statements", [statement])
    out = {}
    for part in parts:
        bm = part["ByteMatchStatement"]
        search = bm["SearchString"]
        out[next(iter(bm["FieldToMatch"]))] = (
            bm["PositionalConstraint"],
            search.decode() if isinstance(search, bytes) else search,
        )
    return out


def test_rule_level_decision_from_proposal_to_waf_and_out_at_expiry(
    tmp_path, aws_endpoint, wafv2, web_acl
) -> None:
    table = residential_stuffing().table()
    clock = FakeClock(table["event_time"][-1].as_py() + timedelta(seconds=1))
    history = RequestHistory(tmp_path / "history", clock=clock)
    history.append(table)
    proposals = rule_answers(analyze_tables([table]).decisions, history)
    (proposal,) = [p for p in proposals if p.is_rule]
    assert any("backtest over 24 h" in r for r in proposal.reasons)

    settings = Settings(aws={"endpoint_url": aws_endpoint}, enforcement={"web_acl_name": WEB_ACL})
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", clock=clock) as ledger:
        outcome = apply_policy(ledger, [proposal], active_clients=1000, now=clock.now())
        (held,) = outcome.held  # never auto-approved: an analyst decides
        ledger.approve(str(held.id), by="analyst@example.com")

        def reconcile():
            done = enforce_once(
                ledger.enforceable(clock.now()),
                config=compiler_config(settings),
                reconciler=reconciler_from_settings(settings, clock=clock),
                mode=Mode.ENFORCE,
                now=clock.now(),
                ledger=ledger,
            )
            assert done.result is not None and done.result.ok, done.violations or done.result
            return done

        done = reconcile()
        assert done.applied == [held.id]
        name = f"wafsmith-rd-{held.id}"
        rule = _rule_group_rules(wafv2)[name]
        rate = rule["Statement"]["RateBasedStatement"]
        assert rule["Action"] == {"Block": {}} and rule["Priority"] == 5
        assert rate["AggregateKeyType"] == "CONSTANT" and rate["EvaluationWindowSec"] == 300
        assert rate["Limit"] == proposal.rule.limit
        assert _byte_matches(rate["ScopeDownStatement"]) == {
            "Method": ("EXACTLY", "POST"),
            "UriPath": ("EXACTLY", "/login"),
        }

        clock.advance(proposal.ttl_s + 1)  # past the TTL, on the injected clock
        reconcile()
        assert name not in _rule_group_rules(wafv2)
        assert {"wafsmith-block", "wafsmith-ratelimit-decisions"} <= set(_rule_group_rules(wafv2))
