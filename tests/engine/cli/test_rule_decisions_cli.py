"""``wafsmith decisions show`` / ``list`` / ``approve`` on a rule-level decision: the analyst
sees one decision with its scope and limit, and approves it like any other."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from engine.cli.main import main
from engine.core.clock import SystemClock
from engine.decisions.ledger import Ledger
from engine.schema.decision import Action, Decision, RuleAnswer


def _propose(url: str) -> str:
    with Ledger.open(url, clock=SystemClock()) as ledger:
        stored = ledger.propose(
            Decision(
                client="-",
                action=Action.BLOCK,
                ttl_s=3600,
                score=0.9,
                detector="distributed_stuffing",
                reasons=("300 of 300 members sent at most 2 request(s)",),
                decided_at=datetime.now(UTC),
                members=tuple(f"100.64.{i // 250}.{i % 250 + 1}" for i in range(300)),
                rule=RuleAnswer(
                    kind="rate_based",
                    path="/login",
                    method="POST",
                    limit=20,
                    window_s=300,
                    aggregate="CONSTANT",
                ),
            )
        )
        return str(stored.id)


def test_show_prints_scope_and_limit_and_approve_works(capsys, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    decision_id = _propose(url)

    assert main(["decisions", "show", decision_id, "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert "client      rule POST /login" in out
    assert "rule        rate_based POST /login: at most 20 requests per 300 s in all" in out
    assert "scope       POST, path exactly /login, host any" in out
    assert "members     300 address(es)" in out

    assert main(["decisions", "list", "--database-url", url]) == 0
    assert "rule POST /login" in capsys.readouterr().out  # one line in the queue

    assert main(["decisions", "approve", decision_id, "--database-url", url, "--actor", "ana"]) == 0
    capsys.readouterr()
    assert main(["decisions", "show", decision_id, "--database-url", url, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["decision"]
    assert shown["status"] == "approved" and shown["rule"]["limit"] == 20
