"""``wafsmith enforce --once`` in-process against moto over HTTP, from a file and the ledger."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from engine.cli import enforce
from engine.core.clock import FakeClock
from engine.decisions.ledger import Ledger
from engine.schema.decision import Action, Decision, Status
from engine.status import EnforcementStatus, read
from tests.support.enforcement import approved_blocks
from tests.support.waf import NOW, WEB_ACL, acl_body, all_addresses, ip_set_contents

AT = NOW.isoformat()


def _write_decisions(path: Path, clients: list[str], ttl_s: int = 3600) -> Path:
    rows = [
        Decision(
            client=c,
            action=Action.BLOCK,
            ttl_s=ttl_s,
            score=0.8,
            detector="cli",
            decided_at=NOW,
            status=Status.APPROVED,
            id=f"d{i}",
        ).to_dict()
        for i, c in enumerate(clients)
    ]
    path.write_text(json.dumps({"decisions": rows}))
    return path


def main(argv: list[str]) -> int:
    """The ``wafsmith`` dispatcher with just this subcommand (others may be mid-build)."""
    parser = argparse.ArgumentParser(prog="wafsmith")
    enforce.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def _run(capsys, *argv: str) -> tuple[int, dict]:
    # Tests do not wait for AWS's 1 write/s budget: pacing itself is tested on a FakeClock.
    code = main(["enforce", "--writes-per-second", "1000", "--reads-per-second", "1000", *argv])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else {})


def test_enforce_once_from_a_file_then_nothing_to_do(
    aws_endpoint, wafv2, web_acl, tmp_path, capsys
):
    path = _write_decisions(tmp_path / "d.json", ["192.0.2.10", "2001:db8::7"])
    args = [
        "--once",
        "--decisions",
        str(path),
        "--endpoint-url",
        aws_endpoint,
        "--web-acl",
        WEB_ACL,
        "--now",
        AT,
    ]

    code, summary = _run(capsys, *args)

    assert code == 0, summary
    assert summary["ok"] and summary["mode"] == "enforce"
    assert summary["calls"]["CreateIPSet"] == len(summary["entries"])
    assert sum(summary["entries"].values()) == 2
    assert summary["next_expiry"] == (NOW + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert all_addresses(ip_set_contents(wafv2)) == {"192.0.2.10/32", "2001:db8::7/128"}

    code, again = _run(capsys, *args)
    assert code == 0 and again["writes"] == 0 and again["plan"] == []


def test_dry_run_prints_the_plan_and_writes_nothing(aws_endpoint, wafv2, web_acl, tmp_path, capsys):
    path = _write_decisions(tmp_path / "d.json", ["192.0.2.10"])
    code, summary = _run(
        capsys,
        "--once",
        "--dry-run",
        "--decisions",
        str(path),
        "--endpoint-url",
        aws_endpoint,
        "--web-acl",
        WEB_ACL,
        "--now",
        AT,
    )
    assert code == 0
    assert summary["writes"] == 0
    assert {s["operation"] for s in summary["plan"]} == {
        "CreateIPSet",
        "CreateRuleGroup",
        "UpdateWebACL",
    }
    assert wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] == []


def test_cycle_errors_give_a_non_zero_exit(aws_endpoint, wafv2, tmp_path, capsys):
    path = _write_decisions(tmp_path / "d.json", ["192.0.2.10"])
    code, summary = _run(
        capsys,
        "--once",
        "--decisions",
        str(path),
        "--endpoint-url",
        aws_endpoint,
        "--web-acl",
        "no-such-acl",
        "--now",
        AT,
    )
    assert code == 1
    assert not summary["ok"]
    assert "no-such-acl" in summary["errors"][0]["message"]


def test_bad_inputs_exit_2_with_a_clear_message(aws_endpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("WAFSMITH_DATABASE_URL", raising=False)
    assert main(["enforce", "--once", "--endpoint-url", aws_endpoint]) == 2
    assert "--decisions" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"decisions": [{"client": "0.0.0.0/0", "action": "block"}]}')
    assert main(["enforce", "--once", "--decisions", str(bad)]) == 2
    assert "decision #0" in capsys.readouterr().err
    assert main(["enforce", "--decisions", str(bad)]) == 2  # --once is required


def test_enforce_reads_the_ledger_and_marks_decisions_applied(
    aws_endpoint, wafv2, web_acl, tmp_path, capsys
):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    clock = FakeClock(NOW)
    with approved_blocks(url, ("198.51.100.1", "198.51.100.3"), detector="cli"):
        pass  # written and closed: the command opens the ledger itself

    code, summary = _run(
        capsys,
        "--once",
        "--database-url",
        url,
        "--endpoint-url",
        aws_endpoint,
        "--web-acl",
        WEB_ACL,
        "--now",
        AT,
    )

    assert code == 0, summary
    assert summary["marked_applied"] == 2
    assert all_addresses(ip_set_contents(wafv2)) == {"198.51.100.1/32", "198.51.100.3/32"}
    with Ledger.open(url, clock=clock) as ledger:
        assert {d.status for d in ledger.enforceable(NOW)} == {Status.APPLIED}
        published = read(ledger, EnforcementStatus)
        assert published is not None and published.record.ok
        assert published.record.mode == "enforce" and published.record.writes


@pytest.mark.parametrize("flag", ["--count-only"])
def test_count_only_flag(aws_endpoint, wafv2, web_acl, tmp_path, capsys, flag):
    path = _write_decisions(tmp_path / "d.json", ["192.0.2.10"])
    code, summary = _run(
        capsys,
        "--once",
        flag,
        "--decisions",
        str(path),
        "--endpoint-url",
        aws_endpoint,
        "--web-acl",
        WEB_ACL,
        "--now",
        AT,
    )
    assert code == 0 and summary["mode"] == "count_only"
    group = wafv2.list_rule_groups(Scope="REGIONAL")["RuleGroups"][0]
    rules = wafv2.get_rule_group(Name=group["Name"], Scope="REGIONAL", Id=group["Id"])["RuleGroup"][
        "Rules"
    ]
    assert all(r["Action"] == {"Count": {}} for r in rules)


def test_config_with_shield_creates_protections_in_moto(
    aws_endpoint, wafv2, web_acl, tmp_path, capsys
):
    alb = (
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop/0123456789abcdef"
    )
    config = tmp_path / "enforcement.toml"
    config.write_text(
        "[compiler]\n"
        "[compiler.shield]\nenabled = true\n"
        "[[compiler.shield.protections]]\n"
        f'name = "wafsmith-shop"\nresource_arn = "{alb}"\nauto_response = "count"\n'
    )
    path = _write_decisions(tmp_path / "d.json", ["192.0.2.10"])
    code, summary = _run(
        capsys,
        "--once",
        "--config",
        str(config),
        "--decisions",
        str(path),
        "--endpoint-url",
        aws_endpoint,
        "--web-acl",
        WEB_ACL,
        "--now",
        AT,
    )
    assert code == 0, summary
    assert summary["shield"] == {"enabled": True, "subscription": "ACTIVE", "active": True}
    assert summary["calls"]["CreateProtection"] == 1
    assert summary["calls"]["EnableApplicationLayerAutomaticResponse"] == 1
    shield = boto3.client("shield", endpoint_url=aws_endpoint, region_name="us-east-1")
    assert [p["ResourceArn"] for p in shield.list_protections()["Protections"]] == [alb]


def test_engine_settings_file_supplies_endpoint_and_web_acl(
    aws_endpoint, wafv2, web_acl, tmp_path, capsys
):
    settings = tmp_path / "wafsmith.toml"
    settings.write_text(
        f'[aws]\nendpoint_url = "{aws_endpoint}"\nregion = "us-east-1"\n'
        f'[enforcement]\nmode = "enforce"\nweb_acl_name = "{WEB_ACL}"\n'
        '[enforcement.compiler]\nowner_prefix = "ws-"\n'
    )
    path = _write_decisions(tmp_path / "d.json", ["192.0.2.10"])
    code, summary = _run(
        capsys, "--once", "--config", str(settings), "--decisions", str(path), "--now", AT
    )
    assert code == 0, summary
    assert all(name.startswith("ws-") for name in summary["entries"])
    assert all_addresses(ip_set_contents(wafv2, prefix="ws-")) == {"192.0.2.10/32"}
    assert any(r["Name"] == "ws-rules" for r in acl_body(wafv2)["Rules"])


def test_engine_settings_in_count_only_mode_are_enforced_in_count(
    aws_endpoint, wafv2, web_acl, tmp_path, capsys
):
    """The CLI reads a settings file as ``wafsmith run`` does: count-only never blocks."""
    settings = tmp_path / "wafsmith.toml"
    settings.write_text(
        f'[aws]\nendpoint_url = "{aws_endpoint}"\n'
        f'[enforcement]\nmode = "count_only"\nweb_acl_name = "{WEB_ACL}"\n'
    )
    path = _write_decisions(tmp_path / "d.json", ["192.0.2.10"])
    code, summary = _run(
        capsys, "--once", "--config", str(settings), "--decisions", str(path), "--now", AT
    )
    assert code == 0, summary
    assert summary["mode"] == "count_only"
    group = wafv2.list_rule_groups(Scope="REGIONAL")["RuleGroups"][0]
    rules = wafv2.get_rule_group(Name=group["Name"], Scope="REGIONAL", Id=group["Id"])["RuleGroup"][
        "Rules"
    ]
    assert rules and all(r["Action"] == {"Count": {}} for r in rules)
