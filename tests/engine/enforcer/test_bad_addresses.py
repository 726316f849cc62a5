"""Rows stored before today's address rules never take enforcement down.

A scoped IPv6 client (``fe80::1%eth0``) used to be accepted by the API and approved; every
compile then failed and nothing reached the WAF. Such rows are inserted here directly into
the ledger, as an old database holds them, and ``wafsmith enforce --once`` runs over it
against moto: the other decisions are pushed, the bad one is reported in the overflow with
its reason, and a mapped IPv4 spelling is enforced (or allowlisted) as the IPv4 address.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import sqlalchemy as sa

from engine.cli import enforce
from engine.compiler import CompilerConfig, compile_state, with_allowlist
from engine.core.clock import FakeClock
from engine.decisions import db
from engine.decisions.ledger import Ledger
from engine.decisions.ledger_rows import columns
from engine.schema.decision import Action, Decision, Status
from tests.support.waf import NOW, WEB_ACL, all_addresses, ip_set_contents


def _approved(client: str, ident: str) -> Decision:
    return Decision(
        client=client,
        action=Action.BLOCK,
        ttl_s=3600,
        score=0.9,
        detector="old",
        decided_at=NOW,
        status=Status.APPROVED,
        id=ident,
    )


def _insert_old_rows(url: str, rows: dict[str, str], allowlist: list[str]) -> None:
    """Decision rows (id → client text) and allowlist rows written as they were stored."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for ident, client in rows.items():
            row = columns(_approved("192.0.2.1", ident))  # a valid record, then its old client
            row.update(client=client, created_at=NOW, updated_at=NOW, version=1)
            conn.execute(db.decisions.insert(), [row])
        for cidr in allowlist:
            conn.execute(
                db.allowlist.insert(), [{"cidr": cidr, "created_by": "old", "created_at": NOW}]
            )
    engine.dispose()


def _enforce(capsys, *argv: str) -> tuple[int, dict]:
    parser = argparse.ArgumentParser(prog="wafsmith")
    enforce.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["enforce", "--writes-per-second", "1000", "--reads-per-second", "1000", *argv]
    )
    code = int(args.func(args))
    return code, json.loads(capsys.readouterr().out)


def test_a_stored_scoped_client_goes_to_overflow_and_the_rest_is_enforced(
    aws_endpoint, wafv2, web_acl, tmp_path, capsys
):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    clock = FakeClock(NOW)
    with Ledger.open(url, clock=clock) as ledger:
        good = ledger.propose(replace(_approved("198.51.100.1", "x"), id=None, status="proposed"))
        ledger.approve(good.id, by="analyst@example.com")
    _insert_old_rows(
        url,
        {
            "scoped": "fe80::1%eth0",  # what the API used to accept
            "mapped": "::ffff:c633:6402",  # 198.51.100.2 as normalize_client used to write it
            "mapped-allowed": "::ffff:c633:6403",  # 198.51.100.3, allowlisted as IPv4 below
        },
        allowlist=["198.51.100.3", "fe80::2%eth0"],  # an old scoped allowlist row too
    )

    code, summary = _enforce(
        capsys,
        "--once",
        "--database-url",
        url,
        "--endpoint-url",
        aws_endpoint,
        "--web-acl",
        WEB_ACL,
        "--now",
        NOW.isoformat(),
    )

    assert code == 0, summary
    assert all_addresses(ip_set_contents(wafv2)) == {"198.51.100.1/32", "198.51.100.2/32"}
    assert summary["not_enforced"] == 2  # the scoped client, the allowlisted mapped one
    assert summary["marked_applied"] == 2  # the good and the mapped decision
    with Ledger.open(url, clock=clock) as ledger:
        stored = {d.id: d for d in ledger.list(limit=10).items}
        assert stored["scoped"].client == "fe80::1%eth0"  # listed as stored, not lost
        assert stored["scoped"].status is Status.APPROVED
        assert stored["mapped"].status is Status.APPLIED


def test_old_rows_compile_with_their_reasons_and_old_allowlist_rows_do_not_break_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    clock = FakeClock(NOW)
    Ledger.open(url, clock=clock).close()
    _insert_old_rows(
        url,
        {
            "scoped": "fe80::1%eth0",
            "mapped": "::ffff:c633:6402",  # 198.51.100.2
            "mapped-allowed": "::ffff:c633:6403",  # 198.51.100.3, allowlisted as IPv4 below
        },
        allowlist=["198.51.100.3", "fe80::2%eth0"],  # an old scoped allowlist row too
    )
    with Ledger.open(url, clock=clock) as ledger:
        # what the engine compiles: its decisions and the ledger's allowlist
        config = with_allowlist(CompilerConfig(), [e.cidr for e in ledger.allowlist()])
        state = compile_state(ledger.enforceable(NOW), config, NOW)
        assert [s.addresses for s in state.ip_sets if s.addresses] == [("198.51.100.2/32",)]
        reasons = {(o.client, o.reason) for o in state.overflow}
        assert reasons == {("fe80::1%eth0", "invalid_address"), ("198.51.100.3/32", "allowlisted")}
        (bad,) = [o for o in state.overflow if o.reason == "invalid_address"]
        assert bad.decision_ids == ("scoped",) and "scoped" in bad.detail
        # an analyst can still lift it, and an admin can remove the old allowlist row
        ledger.revoke("scoped", by="analyst@example.com")
        ledger.remove_allowlist("fe80::2%eth0", by="admin")
        assert [e.cidr for e in ledger.allowlist()] == ["198.51.100.3"]
