"""Rule-level decisions: the record, its ledger life, its backtest and its proposal from a
residential-proxy stuffing campaign too spread to block by address."""

from __future__ import annotations

import json
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.core.clock import FakeClock
from engine.decisions import Ledger, apply_policy, db
from engine.decisions.backtest import backtest
from engine.decisions.history import RequestHistory
from engine.decisions.rule_answers import (
    RuleAnswerConfig,
    RuleAnswerer,
    propose_rule_answer,
    rule_answers,
)
from engine.pipeline import analyze_tables
from engine.schema.decision import Action, Decision, DecisionError, RuleAnswer, Status
from tests.support.rule_answers import PROXIES, SHOPPERS, residential_stuffing

LOGIN_LIMIT = RuleAnswer(
    kind="rate_based", path="/login", method="post", limit=50, window_s=300, aggregate="CONSTANT"
)


def _rule_decision(clock, rule=LOGIN_LIMIT, **kw) -> Decision:
    fields = {
        "client": "ignored: the scope names a rule decision",
        "action": Action.BLOCK,
        "ttl_s": 3600,
        "score": 0.9,
        "detector": "distributed_stuffing",
        "decided_at": clock.now(),
        "members": ("100.64.0.1", "100.65.0.38"),
        "rule": rule,
    }
    return Decision(**{**fields, **kw})


# -- the record ------------------------------------------------------------------------------


def test_rule_decision_names_its_scope_and_round_trips_through_json(clock) -> None:
    d = _rule_decision(clock)
    assert d.client == "rule POST /login" and d.rule.method == "POST"
    doc = json.loads(json.dumps(d.to_dict()))
    assert doc["rule"]["limit"] == 50 and doc["members"] == ["100.64.0.1", "100.65.0.38"]
    assert Decision.from_dict(doc) == d


def test_an_address_decision_json_is_unchanged_and_older_documents_still_load(clock) -> None:
    old = {"client": "203.0.113.7", "action": "block", "ttl_s": 60, "score": 0.5, "detector": "t"}
    d = Decision.from_dict(old)
    assert d.rule is None and not d.is_rule
    assert "rule" not in d.to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"window_s": 90}, "window_s must be one of (60, 120, 300, 600)"),
        ({"limit": 5}, "rule.limit must be an integer within 10"),
        ({"path": "login"}, "rule.path must be a URI path"),
        ({"aggregate": "COOKIE"}, "rule.aggregate must be one of"),
        ({"aggregate": "FORWARDED_IP"}, "forwarded_header"),
        ({"kind": "tarpit"}, "rule.kind must be one of"),
    ],
)
def test_invalid_rules_are_refused_with_a_clear_error(clock, change, message) -> None:
    with pytest.raises(DecisionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _rule_decision(clock, rule={**LOGIN_LIMIT.to_dict(), **change})


def test_a_challenge_rule_takes_no_limit_and_only_its_own_action(clock) -> None:
    challenge = RuleAnswer(kind="challenge", path="/account/", path_match="STARTS_WITH")
    assert _rule_decision(clock, rule=challenge, action=Action.CHALLENGE).client == (
        "rule ANY /account/*"
    )
    with pytest.raises(DecisionError, match="a challenge rule takes action"):
        _rule_decision(clock, rule=challenge, action=Action.BLOCK)
    with pytest.raises(DecisionError, match="has no limit"):
        _rule_decision(clock, rule={**challenge.to_dict(), "limit": 10}, action="challenge")


# -- the ledger ------------------------------------------------------------------------------


def test_ledger_stores_the_rule_merges_duplicates_and_never_auto_approves(
    db_url: str, clock: FakeClock
) -> None:
    with Ledger.open(db_url, clock=clock) as ledger:
        first = ledger.propose(_rule_decision(clock))
        again = ledger.propose(_rule_decision(clock, members=("100.66.1.2",)))
        assert again.id == first.id  # same scope and action: one decision in the queue
        stored = ledger.get(first.id)
        assert stored.rule == LOGIN_LIMIT and LOGIN_LIMIT.method == "POST"
        assert set(stored.members) == {"100.64.0.1", "100.65.0.38", "100.66.1.2"}
        outcome = apply_policy(ledger, [stored], active_clients=10_000, now=clock.now())
        assert outcome.approved == []
        assert outcome.reasons[first.id] == "rule-level decision: an analyst decides"
        approved = ledger.approve(first.id, by="alice")
        assert approved.status is Status.APPROVED and approved.rule == stored.rule
        assert [d.id for d in ledger.enforceable(clock.now())] == [first.id]


# -- backtest and proposal -------------------------------------------------------------------


@pytest.fixture()
def scene(tmp_path):
    table = residential_stuffing().table()
    clock = FakeClock(table["event_time"][-1].as_py() + timedelta(seconds=1))
    history = RequestHistory(tmp_path / "history", clock=clock)
    history.append(table)
    return table, clock, history


def test_backtest_of_a_rate_rule_counts_only_what_passes_its_limit(scene) -> None:
    table, clock, history = scene
    result = backtest(_rule_decision(clock), history, hours=24)
    logins = [r for r in table.to_pylist() if r["path"] == "/login" and r["method"] == "POST"]
    assert result.requests_matched == len(logins)
    assert result.distinct_clients == len({r["client_ip"] for r in logins})
    hits = result.over_limit
    assert hits is not None and 0 < hits.requests < result.requests_matched
    tighter = backtest(_rule_decision(clock, rule={**LOGIN_LIMIT.to_dict(), "limit": 10}),
                       history, hours=24)  # fmt: skip
    assert tighter.over_limit.requests > hits.requests


def test_a_residential_proxy_campaign_gets_one_rule_on_the_attacked_path(scene) -> None:
    table, _clock, history = scene
    campaigns = [
        d for d in analyze_tables([table]).decisions if d.detector == "distributed_stuffing"
    ]
    assert campaigns and {m for d in campaigns for m in d.members} <= set(PROXIES)
    out = rule_answers(campaigns, history)
    rules = [d for d in out if d.is_rule]
    assert len(rules) == 1 and len(out) == len(campaigns) + 1
    rule = rules[0].rule
    assert (rule.kind, rule.method, rule.path, rule.path_match) == (
        "rate_based", "POST", "/login", "EXACTLY"
    )  # fmt: skip
    assert rule.window_s == 300 and rule.aggregate == "CONSTANT"
    # The limit sits above the benign logins' busiest five minutes (shoppers log in rarely).
    assert rule.limit >= 10
    assert set(rules[0].members) == {m for d in campaigns for m in d.members}
    assert any(r.startswith("backtest over 24 h: the rule would have acted on") for r in
               rules[0].reasons)  # fmt: skip


def test_proposal_backtest_spares_most_benign_clients(scene) -> None:
    table, _clock, history = scene
    campaign = next(
        d for d in analyze_tables([table]).decisions if d.detector == "distributed_stuffing"
    )
    answer = propose_rule_answer(campaign, history, benign_clients=SHOPPERS)
    assert answer is not None
    hits = answer.backtest.over_limit
    assert hits.requests > 0
    # Only shoppers logging in while the flood fills the window are caught with it.
    assert hits.benign_looking_clients <= 0.1 * len(SHOPPERS)


def test_campaigns_blocked_by_address_get_no_rule(scene) -> None:
    table, _clock, history = scene
    campaign = next(
        d for d in analyze_tables([table]).decisions if d.detector == "distributed_stuffing"
    )
    patient = RuleAnswerConfig(short_lived_max_requests=1, max_members=10_000)
    assert propose_rule_answer(campaign, history, patient) is None  # two attempts each
    assert propose_rule_answer(campaign, history, RuleAnswerConfig(enabled=False)) is None
    small = RuleAnswerConfig(min_members=len(campaign.members) + 1)
    assert propose_rule_answer(campaign, history, small) is None


def test_the_engine_loop_hook_answers_a_campaign_once_per_cooldown(scene) -> None:
    table, clock, history = scene
    campaigns = [
        d for d in analyze_tables([table]).decisions if d.detector == "distributed_stuffing"
    ]
    answerer = RuleAnswerer(history, RuleAnswerConfig(cooldown_min=10))
    first = answerer(campaigns[:3], clock.now())
    assert sum(d.is_rule for d in first) == 1 and len(first) == 4
    again = answerer(campaigns[3:], clock.now() + timedelta(minutes=5))
    assert again == campaigns[3:]  # within the cooldown: the address decisions only
    later = answerer(campaigns[3:], clock.now() + timedelta(minutes=11))
    assert sum(d.is_rule for d in later) == 1


def test_the_limit_clears_the_benign_peak_before_the_campaign_by_the_headroom(scene) -> None:
    table, _clock, history = scene
    campaign = next(
        d for d in analyze_tables([table]).decisions if d.detector == "distributed_stuffing"
    )
    for headroom in (2.0, 6.0):
        answer = propose_rule_answer(campaign, history, RuleAnswerConfig(headroom=headroom))
        assert answer is not None and answer.benign_peak > 0  # shoppers' logins
        assert answer.decision.rule.limit >= max(10, answer.benign_peak * headroom)
    # Per-address counting: the busiest shopper's logins in one window.
    per_ip = propose_rule_answer(campaign, history, RuleAnswerConfig(aggregate="IP"))
    assert per_ip is None  # two attempts per proxy never pass a per-address limit of 10


def test_a_ledger_from_before_rule_decisions_upgrades_and_its_rows_still_load(
    db_url: str, clock: FakeClock
) -> None:
    engine = db.create_engine(db_url)
    db.upgrade(engine, "0003")
    row = {
        "id": "old-1", "client": "203.0.113.7", "action": "block", "status": "approved",
        "score": 0.9, "confidence": 0.8, "detector": "scanner", "reasons": ["probes"],
        "evidence": [], "members": [], "ttl_s": 3600, "decided_at": clock.now(),
        "expires_at": clock.now() + timedelta(hours=1), "created_at": clock.now(),
        "updated_at": clock.now(), "version": 1,
    }  # fmt: skip
    old_columns = sa.Table("ledger_decisions", sa.MetaData(), autoload_with=engine)
    assert "rule" not in old_columns.c
    with engine.begin() as conn:
        conn.execute(old_columns.insert().values(**row))
    engine.dispose()
    with Ledger.open(db_url, clock=clock) as ledger:
        old = ledger.get("old-1")
        assert old.client == "203.0.113.7" and old.rule is None
        assert [d.id for d in ledger.enforceable(clock.now())] == ["old-1"]


def test_the_example_settings_rule_answers_table_is_valid() -> None:
    example = Path(__file__).parents[3] / "data" / "config" / "wafsmith.example.toml"
    table = tomllib.loads(example.read_text(encoding="utf-8"))["rule_answers"]
    cfg = RuleAnswerConfig.model_validate(table)
    assert cfg == RuleAnswerConfig()  # the example documents the defaults
    with pytest.raises(ValueError, match="window_s"):
        RuleAnswerConfig.model_validate({**table, "window_s": 90})
