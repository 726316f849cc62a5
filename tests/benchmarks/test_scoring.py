"""The benchmark's metric computation on a hand-made example, and a tiny end-to-end run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from benchmarks.baselines.common import BaselineResult, Flag
from benchmarks.baselines.scoring import ClientIndex, from_baseline, from_decisions, score
from engine.demo.simulator.simulate import (
    C_CLIENTS,
    C_END,
    C_ID,
    C_KIND,
    C_START,
    L_CAMPAIGN,
    L_CLIENT,
    L_FIRST,
    L_KIND,
    L_LABEL,
    L_LAST,
    L_REQUESTS,
    L_USERS,
    TS,
)
from engine.schema import request as rq
from engine.schema.decision import Action, Decision

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
MS = int(START.timestamp() * 1000)

# client, label, kind, campaign, users
CLIENTS = [
    ("198.51.100.10", "attack", "distributed_flood", "c1", 1),
    ("198.51.100.11", "attack", "distributed_flood", "c1", 1),
    ("198.51.100.12", "attack", "distributed_flood", "c1", 1),
    ("203.0.113.5", "attack", "scanner_fast", "c2", 1),
    ("198.51.100.200", "benign", "browser", None, 1),  # shares the flood's /24
    ("192.0.2.7", "benign", "nat_gateway", None, 40),
    ("66.249.66.1", "benign", "crawler", None, 1),
    ("192.0.2.8", "benign", "browser", None, 1),
]


def labels() -> pa.Table:
    n = len(CLIENTS)
    return pa.table(
        {
            L_CLIENT: [c[0] for c in CLIENTS],
            L_LABEL: [c[1] for c in CLIENTS],
            L_KIND: [c[2] for c in CLIENTS],
            L_CAMPAIGN: [c[3] for c in CLIENTS],
            L_USERS: pa.array([c[4] for c in CLIENTS], pa.int32()),
            L_FIRST: pa.array([MS] * n, pa.int64()).cast(TS),
            L_LAST: pa.array([MS + 600_000] * n, pa.int64()).cast(TS),
            L_REQUESTS: pa.array([10] * n, pa.int64()),
        }
    )


def campaigns() -> pa.Table:
    return pa.table(
        {
            C_ID: ["c1", "c2"],
            C_KIND: ["distributed_flood", "scanner_fast"],
            C_START: pa.array([MS + 60_000, MS + 120_000], pa.int64()).cast(TS),
            C_END: pa.array([MS + 600_000, MS + 300_000], pa.int64()).cast(TS),
            C_CLIENTS: pa.array([3, 1], pa.int32()),
        }
    )


def decision(client: str, at_s: int, action=Action.BLOCK, members=()) -> Decision:
    return Decision(
        client=client,
        action=action,
        ttl_s=3600,
        score=0.9,
        detector="test",
        decided_at=START + timedelta(seconds=at_s),
        members=members,
    )


@pytest.fixture()
def index() -> ClientIndex:
    return ClientIndex([c[0] for c in CLIENTS])


def test_a_cidr_decision_counts_for_attackers_and_against_benign_clients_it_covers(index):
    cov = from_decisions("x", [decision("198.51.100.0/24", 90)], index)
    m = score(cov, labels(), campaigns())
    assert (m["tp"], m["fp"]) == (3, 1)
    assert m["precision"] == 0.75
    assert m["recall"] == 0.75  # 3 of 4 attack clients
    assert m["f1"] == 0.75
    assert m["benign_fpr"] == 0.25
    assert m["rule_entries"] == 1
    c1 = next(c for c in m["campaigns"] if c["campaign"] == "c1")
    assert c1["ttd_s"] == 30.0 and c1["detected_clients"] == 3
    # in force at the end of the ALB file holding the decision, plus the engine's delay
    assert c1["ttd_effective_s"] == 300 - 60 + 60
    assert m["flood_ttd_s"] == 30.0
    assert m["per_kind"]["browser"]["flagged"] == 1


def test_campaign_members_count_without_touching_their_neighbours(index):
    members = ("198.51.100.10", "198.51.100.11", "198.51.100.12")
    cov = from_decisions("x", [decision("198.51.100.10", 70, members=members)], index)
    m = score(cov, labels(), campaigns())
    assert (m["tp"], m["fp"], m["rule_entries"]) == (3, 0, 3)


def test_count_decisions_are_not_enforcement_and_crawler_nat_are_reported(index):
    cov = from_decisions(
        "x",
        [
            decision("66.249.66.1", 10, action=Action.COUNT),
            decision("192.0.2.7", 10, action=Action.CHALLENGE),
            decision("203.0.113.5", 130),
        ],
        index,
    )
    m = score(cov, labels(), campaigns())
    assert m["crawlers_flagged"] == 0
    assert (m["nat_flagged"], m["nat_blocked"], m["nat_users_affected"]) == (1, 0, 40)
    assert m["tp"] == 1
    assert m["flood_ttd_s"] is None  # the flood was never detected


def test_baseline_flags_score_the_same_way():
    res = BaselineResult(
        "b",
        "v",
        {"203.0.113.5": Flag(MS + 125_000, MS + 360_000, "r"), "66.249.66.1": Flag(MS, MS, "r")},
    )
    m = score(from_baseline(res), labels(), campaigns())
    assert (m["tp"], m["fp"], m["crawlers_blocked"], m["rule_entries"]) == (1, 1, 1, 2)
    c2 = next(c for c in m["campaigns"] if c["campaign"] == "c2")
    assert (c2["ttd_s"], c2["ttd_effective_s"]) == (5.0, 240.0)


def test_request_weighted_metrics_count_requests_after_the_block_is_in_force():
    ts = [MS + 100_000, MS + 400_000, MS + 500_000, MS + 100_000]
    ips = ["203.0.113.5", "203.0.113.5", "203.0.113.5", "192.0.2.8"]
    req = pa.table(
        {rq.CLIENT_IP: ips, rq.EVENT_TIME: pa.array(ts, pa.int64()).cast(rq.TIMESTAMP_TYPE)}
    )
    res = BaselineResult("b", "v", {"203.0.113.5": Flag(MS, MS + 360_000, "r")})
    m = score(from_baseline(res), labels(), campaigns(), req)
    assert m["request_recall"] == round(2 / 3, 6)
    assert m["request_collateral"] == 0.0


def test_ipv6_cidr_coverage():
    idx = ClientIndex(["2001:db8::1", "2001:db8:1::1", "192.0.2.1"])
    assert idx.covered("2001:db8::/48") == ["2001:db8::1"]
    assert idx.covered("192.0.2.0/24") == ["192.0.2.1"]
    assert idx.covered("192.0.2.9") == []


def test_benchmark_runs_end_to_end_on_a_tiny_stream(tmp_path):
    from benchmarks import bench_detection

    out = tmp_path / "bench.json"
    assert (
        bench_detection.main(
            [
                "--scale",
                "tiny",
                "--seed",
                "3",
                "--json",
                str(out),
                "--corpora",
                "none",
                "--ablations",
            ]
        )
        == 0
    )
    import json

    run = json.loads(out.read_text())["runs"][0]
    systems = run["systems"]
    assert {
        "waf-rbr-100",
        "waf-rbr-2000",
        "crowdsec-http",
        "aws-sa-flood-athena",
        "aws-sa-scanner-lambda",
    } <= set(systems)
    for m in systems.values():
        assert m["attack_clients"] + m["benign_clients"] == run["clients"]
        assert 0 <= m["recall"] <= 1
    if run["wafsmith"].startswith("engine."):
        assert {"wafsmith", "wafsmith-per-client-only"} <= set(systems)
    # per-IP limits cannot see the distributed flood: its members stay below 100 / 5 min
    assert systems["waf-rbr-100"]["per_kind"]["distributed_flood"]["flagged"] == 0
    assert systems["waf-rbr-100"]["per_kind"]["volumetric_flood"]["rate"] == 1.0
