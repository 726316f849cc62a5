"""Proposal policy: escalation with an injected history, NAT cap, campaigns, no repeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.decisions.proposals import (
    InMemoryOffences,
    ProposalConfig,
    ProposalPolicy,
    campaign_label,
)
from engine.schema.decision import Action
from engine.schema.verdict import ClientVerdict

T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def verdict(client="192.0.2.9", score=0.9, kind="volumetric_flood", at=T, members=()):
    return ClientVerdict(client=client, score=score, kind=kind, severity="high",
                         detector="volumetric_flood", reasons=("900 requests in one minute",),
                         window_end=at, members=members)


def test_repeat_offenders_escalate_to_block_with_longer_ttls():
    history = InMemoryOffences()
    policy = ProposalPolicy(ProposalConfig(base_ttl_s=600), history)
    v = verdict(score=0.55, kind="unusual_behaviour")
    first = policy.propose([v])[0]
    assert first.action is Action.COUNT and first.ttl_s == 600
    assert first.decided_at == T  # event time, not wall time
    later = T + timedelta(seconds=601)
    second = policy.propose([verdict(score=0.55, kind="unusual_behaviour", at=later)])[0]
    assert second.action is Action.CHALLENGE and second.ttl_s == 2400
    third = policy.propose(
        [verdict(score=0.55, kind="unusual_behaviour", at=later + timedelta(hours=1))]
    )[0]
    assert third.action is Action.BLOCK and third.ttl_s == 9600
    assert any("repeat offender" in r for r in third.reasons)


def test_the_models_verdict_alone_never_blocks_unless_policy_says_so():
    at = [T + timedelta(days=8 * i) for i in range(4)]  # each after the last one expired
    policy = ProposalPolicy(ProposalConfig(), InMemoryOffences())
    actions = [policy.propose([verdict(score=0.95, kind="anomaly", at=t)])[0].action for t in at]
    assert actions == [Action.CHALLENGE] * 4  # high score and repeat offences: still capped
    # Beside a rule's verdict, the rule decides how far the client goes.
    both = policy.propose([verdict(score=0.95, kind="anomaly", at=at[-1] + timedelta(days=8)),
                           verdict(score=0.8, at=at[-1] + timedelta(days=8))])[0]
    assert both.action is Action.BLOCK
    lifted = ProposalPolicy(
        ProposalConfig(max_action_by_kind={}, block_kinds=("anomaly",)), InMemoryOffences()
    )
    assert lifted.propose([verdict(score=0.95, kind="anomaly")])[0].action is Action.BLOCK


def test_history_may_be_a_plain_callable():
    policy = ProposalPolicy(ProposalConfig(), history=lambda client: 5)
    d = policy.propose([verdict()])[0]
    assert d.action is Action.BLOCK and d.ttl_s == ProposalConfig().max_ttl_s


def test_no_repeat_while_in_force_unless_stronger():
    policy = ProposalPolicy()
    assert len(policy.propose([verdict(score=0.65, kind="anomaly")])) == 1
    assert policy.propose([verdict(score=0.65, kind="anomaly", at=T + timedelta(minutes=1))]) == []
    stronger = policy.propose([verdict(score=0.95, at=T + timedelta(minutes=2))])
    assert stronger and stronger[0].action is Action.BLOCK


def test_verdicts_of_one_client_combine_into_one_decision():
    policy = ProposalPolicy()
    a = verdict(score=0.8)
    b = ClientVerdict(client="192.0.2.9", score=0.7, kind="injection_probe", severity="high",
                      detector="injection", reasons=("3 injection requests",), window_end=T)
    (d,) = policy.propose([a, b])
    assert d.detector == "volumetric_flood" and len(d.reasons) == 2


def test_nat_gateway_is_capped_below_block():
    (d,) = ProposalPolicy().propose([verdict(score=0.99)], nat_clients=["192.0.2.9"])
    assert d.action is Action.CHALLENGE
    assert any("shared gateway" in r for r in d.reasons)


def test_campaign_is_one_decision_and_later_ones_carry_only_new_members():
    policy = ProposalPolicy()
    members = tuple(f"100.64.{i // 200}.{i % 200}" for i in range(600))
    (d,) = policy.propose([verdict(client=members[0], kind="distributed_flood",
                                   members=members[:400])])
    assert len(d.members) == 400 and d.client == members[0]
    (d2,) = policy.propose([verdict(client=members[0], kind="distributed_flood",
                                    members=members, at=T + timedelta(minutes=1))])
    assert set(d2.members) == set(members[400:]) and d2.client == members[0]


def test_campaign_filling_a_network_is_labelled_with_that_cidr():
    full = [f"198.51.100.{i}" for i in range(256)]
    assert campaign_label(full) == "198.51.100.0/24"
    assert campaign_label(full[:200]) == "198.51.100.0"
