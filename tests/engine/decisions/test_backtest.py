"""Backtests on a crafted history: numbers an analyst sees before approving a rule."""

from __future__ import annotations

import pytest

from engine.decisions.backtest import Backtester, RuleDraft, backtest
from engine.decisions.history import HistoryError, RequestHistory
from engine.schema.decision import Action, Decision
from tests.support.history import crafted


@pytest.fixture()
def history(tmp_path, clock) -> RequestHistory:
    store = RequestHistory(tmp_path / "history", clock=clock, retention_hours=24)
    store.append(crafted(clock.now()))
    return store


def _decision(client: str, clock, **kw) -> Decision:
    return Decision(
        client=client,
        action=Action.BLOCK,
        ttl_s=600,
        score=0.9,
        detector="t",
        decided_at=clock.now(),
        **kw,
    )


def test_single_client_decision(history, clock) -> None:
    result = backtest(_decision("203.0.113.7", clock), history, hours=3)
    assert result.requests_matched == 100
    assert result.distinct_clients == 1
    assert result.benign_looking_clients == 0  # all 401s
    assert result.top_clients == [("203.0.113.7", 100)]
    assert result.requests_scanned == 100 + 20 + 3 + 7 + 4 + 6 + 50
    longer = backtest(_decision("203.0.113.7", clock), history, hours=6)
    assert longer.requests_matched == 150


def test_subnet_rule_counts_benign_neighbours(history) -> None:
    result = backtest(RuleDraft(clients=["198.51.100.0/24"]), history, hours=3)
    assert result.requests_matched == 50 + 3 + 6
    assert result.distinct_clients == 12
    # 198.51.100.200 only got 200s; .77 was blocked by WAF; scanners got 404s.
    assert result.benign_looking_clients == 1
    assert result.top_clients[0] == ("198.51.100.77", 6)
    doc = result.to_dict()
    assert doc["distinct_clients"] == 12 and doc["since"].endswith("Z")


def test_path_and_method_matchers(history) -> None:
    scan = backtest({"path_prefix": "/wp-admin"}, history, hours=3)
    assert (scan.requests_matched, scan.distinct_clients) == (50, 10)
    regex = backtest(RuleDraft(path_regex=r"\.php$"), history, hours=3)
    assert regex.requests_matched == 50
    login = backtest(RuleDraft(path_prefix="/login", methods=["post"]), history, hours=3)
    assert login.requests_matched == 100
    none = backtest(RuleDraft(path_prefix="/login", methods=["GET"]), history, hours=3)
    assert (none.requests_matched, none.distinct_clients, none.sample) == (0, 0, [])
    host = backtest(RuleDraft(hosts=["SHOP.example.com"], clients=["192.0.2.10"]), history, hours=3)
    assert host.requests_matched == 20


def test_ipv6_ranges(history) -> None:
    result = backtest(RuleDraft(clients=["2001:db8::/48"]), history, hours=3)
    assert (result.requests_matched, result.distinct_clients) == (7, 1)
    wide = backtest(RuleDraft(clients=["2001:db8::/32"]), history, hours=3)
    assert (wide.requests_matched, wide.distinct_clients, wide.benign_looking_clients) == (
        11,
        2,
        1,
    )


def test_campaign_members_are_what_is_matched(history, clock) -> None:
    campaign = _decision(
        "198.51.100.0/24", clock, members=("198.51.100.1", "198.51.100.2", "198.51.100.200")
    )
    result = backtest(campaign, history, hours=3)
    assert (result.requests_matched, result.distinct_clients) == (13, 3)


def test_benign_clients_given_by_caller(history) -> None:
    draft = RuleDraft(clients=["198.51.100.0/24"])
    as_set = backtest(draft, history, hours=3, benign_clients={"198.51.100.1", "10.0.0.1"})
    assert as_set.benign_looking_clients == 1
    seen: list[list[str]] = []

    def verdicts(clients: list[str]) -> list[bool]:
        seen.append(clients)
        return [c.endswith(".200") or c.endswith(".77") for c in clients]

    assert backtest(draft, history, hours=3, benign_clients=verdicts).benign_looking_clients == 2
    assert seen[0] == sorted(seen[0]) and len(seen[0]) == 12
    with pytest.raises(HistoryError, match="flags"):
        backtest(draft, history, hours=3, benign_clients=lambda clients: [True])


def test_sample_is_most_recent_requests(history, clock) -> None:
    result = backtest(RuleDraft(path_prefix="/login"), history, hours=3, sample_size=3)
    assert len(result.sample) == 3
    first = result.sample[0]
    assert first["client_ip"] == "203.0.113.7" and first["path"] == "/login"
    assert first["event_time"] >= result.sample[1]["event_time"]


@pytest.mark.parametrize(
    "draft",
    [
        {},
        {"clients": ["0.0.0.0/0"]},
        {"path_regex": "(unclosed"},
        {"clients": ["x"]},
        {"paths": ["/"]},
    ],
)
def test_bad_drafts_are_refused(history, draft) -> None:
    with pytest.raises(ValueError):
        backtest(draft, history, hours=1)


def test_bad_window_is_refused(history) -> None:
    with pytest.raises(HistoryError, match="hours"):
        backtest(RuleDraft(path_prefix="/"), history, hours=0)


def test_service_hook_shape(history, clock) -> None:
    hook = Backtester(history)
    doc = hook("198.51.100.0/24", hours=3.0)
    assert (doc["client"], doc["requests"], doc["clients"], doc["benign_clients"]) == (
        "198.51.100.0/24",
        59,
        12,
        1,
    )
    assert doc["hours"] == 3.0 and doc["notes"] == []
    assert doc["history_to"] == clock.now()
    wide = hook(_decision("203.0.113.7", clock), hours=48)
    assert wide["requests"] == 150
    assert wide["notes"] == ["only the last 24 h of requests are kept"]
    assert wide["history_from"] == history.horizon


def test_service_hook_on_empty_history(tmp_path, clock) -> None:
    doc = Backtester(RequestHistory(tmp_path, clock=clock))("192.0.2.1", hours=2)
    assert (doc["requests"], doc["clients"]) == (0, 0)
    assert doc["notes"] == ["no request history is retained yet"]
