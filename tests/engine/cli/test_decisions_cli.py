"""``wafsmith decisions``: an analyst's list / show / approve / reject / revoke / add, on
SQLite and PostgreSQL, every change audited with the operator's identity."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.core.clock import SystemClock
from engine.decisions.ledger import Ledger
from engine.schema.decision import Action, Decision
from tests.support.cli import wafsmith


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request, tmp_path: Path, monkeypatch) -> str:
    monkeypatch.chdir(tmp_path)  # the settings' data_dir (var/) lands in the test's folder
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture()
def proposals(ledger_url: str) -> dict[str, str]:
    """Two proposals as the engine stores them: client → decision id."""
    ledger = Ledger.open(ledger_url, clock=SystemClock())
    try:
        out = {}
        for client, detector in (("198.51.100.7", "vulnerability_scanner"),
                                 ("203.0.113.9", "volumetric_flood")):
            stored = ledger.propose(Decision(
                client=client, action=Action.BLOCK, ttl_s=3600, score=0.8, detector=detector,
                reasons=(f"{detector} fired",), decided_at=datetime.now(UTC),
            ))
            out[client] = stored.id
        return out
    finally:
        ledger.close()


def cli(capsys, url: str, *argv: str) -> tuple[int, str, str]:
    verb, rest = argv[0], argv[1:]
    code = main(["decisions", verb, "--database-url", url, *rest])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def as_json(capsys, url: str, *argv: str) -> dict:
    code, out, err = cli(capsys, url, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_list_approve_reject_revoke_with_an_audit_trail(capsys, ledger_url, proposals):
    listed = as_json(capsys, ledger_url, "list", "--status", "proposed")
    assert {d["client"] for d in listed["decisions"]} == set(proposals)
    scanner, flood = proposals["198.51.100.7"], proposals["203.0.113.9"]

    code, out, _ = cli(capsys, ledger_url, "approve", scanner, "--actor", "alice",
                       "--comment", "confirmed scanner")
    assert code == 0 and out.startswith(f"approved {scanner}: block 198.51.100.7")
    code, _, _ = cli(capsys, ledger_url, "reject", flood, "--actor", "alice")
    assert code == 0
    code, _, err = cli(capsys, ledger_url, "approve", flood, "--actor", "alice")
    assert code == 1 and "rejected" in err and "Traceback" not in err
    code, _, _ = cli(capsys, ledger_url, "revoke", scanner, "--actor", "bob",
                     "--comment", "customer NAT")
    assert code == 0

    shown = as_json(capsys, ledger_url, "show", scanner)
    assert shown["decision"]["status"] == "revoked"
    moves = [(e["actor"], e["from_status"], e["to_status"], e["comment"])
             for e in shown["audit"]]
    assert ("alice", "proposed", "approved", "confirmed scanner") in moves
    assert ("bob", "approved", "revoked", "customer NAT") in moves
    assert {d["status"] for d in as_json(capsys, ledger_url, "list")["decisions"]} == {
        "revoked", "rejected"}

    code, out, _ = cli(capsys, ledger_url, "list", "--status", "rejected")
    assert code == 0 and flood in out and scanner not in out  # the table
    code, _, err = cli(capsys, ledger_url, "show", "no-such-id")
    assert code == 1 and "no-such-id" in err


def test_add_records_an_approved_manual_decision(capsys, ledger_url):
    added = as_json(capsys, ledger_url, "add", "--client", "192.0.2.0/24", "--action", "block",
                    "--ttl", "6h", "--reason", "stuffing seen in the app logs", "--actor", "carol")
    assert (added["client"], added["status"], added["ttl_s"]) == ("192.0.2.0/24", "approved",
                                                                  6 * 3600)
    assert added["detector"] == "manual" and added["reasons"] == ["stuffing seen in the app logs"]
    audit = as_json(capsys, ledger_url, "show", added["id"])["audit"]
    assert [(e["actor"], e["to_status"]) for e in audit] == [("carol", "proposed"),
                                                             ("carol", "approved")]
    enforceable = Ledger.open(ledger_url, clock=SystemClock())
    try:
        assert [d.id for d in enforceable.enforceable()] == [added["id"]]
    finally:
        enforceable.close()


def test_add_refuses_bad_input_and_allowlisted_clients_leaving_nothing(capsys, ledger_url):
    ledger = Ledger.open(ledger_url, clock=SystemClock())
    ledger.add_allowlist("10.0.0.0/8", by="admin")
    ledger.close()
    code, _, err = cli(capsys, ledger_url, "add", "--client", "10.1.2.3", "--action", "block",
                       "--ttl", "1h", "--reason", "x")
    assert code == 1 and "allowlist" in err
    code, _, err = cli(capsys, ledger_url, "add", "--client", "fe80::1%eth0", "--action",
                       "block", "--ttl", "1h", "--reason", "x")
    assert code == 1 and "client" in err
    assert as_json(capsys, ledger_url, "list", "--status", "proposed")["decisions"] == []
    with pytest.raises(SystemExit):
        main(["decisions", "add", "--client", "192.0.2.1", "--action", "block", "--ttl", "-5",
              "--reason", "x"])


def test_the_actor_defaults_to_the_operators_user_name(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    done = wafsmith("decisions", "add", "--database-url", url, "--client", "192.0.2.9",
                    "--action", "challenge", "--ttl", "30m", "--reason", "manual", "--json",
                    env={"USER": "dana"}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stdout)
    shown = wafsmith("decisions", "show", added["id"], "--database-url", url, "--json",
                     cwd=tmp_path)
    assert {e["actor"] for e in json.loads(shown.stdout)["audit"]} == {"dana"}
