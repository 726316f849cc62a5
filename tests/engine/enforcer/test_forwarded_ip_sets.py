"""Behind CloudFront, WAF on the ALB sees the edge as the source address: a block on the
viewer must match the forwarded address. From ``wafsmith analyze`` of such WAF logs to
``wafsmith compile`` (validated offline, botocore's model included) to ``wafsmith enforce``
on moto, with no configuration: IP-set rules carry ``IPSetForwardedIPConfig`` on the header
and position the viewer was read from (X-Forwarded-For, last entry)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from engine.cli.main import main
from engine.compiler import compile_state, validate
from engine.compiler.config import config_from_dict
from tests.support.cloudfront import EDGE, FORWARDED, VIEWER, references, waf_line, write
from tests.support.waf import NOW, WEB_ACL, all_addresses, ip_set_contents


def analyzed(tmp_path: Path, capsys) -> Path:
    """``wafsmith analyze --json`` of a flood through a CloudFront edge, decisions approved."""
    log = write(tmp_path / "waf.log.gz", [waf_line(i, EDGE, [VIEWER]) for i in range(400)])
    (tmp_path / "c.toml").write_text("[features]\nallowed_lateness_s = 0\n")
    out = tmp_path / "analysis.json"
    assert main(["analyze", str(log), "--config", str(tmp_path / "c.toml"),
                 "--json", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    doc = json.loads(out.read_text())
    assert {d["client"] for d in doc["decisions"]} == {VIEWER}
    for d in doc["decisions"]:
        d["status"] = "approved"
        d["decided_at"] = NOW.isoformat()
    out.write_text(json.dumps(doc))
    return out


def test_compile_matches_the_forwarded_address_behind_cloudfront(tmp_path, capsys):
    doc = analyzed(tmp_path, capsys)
    assert main(["compile", "--decisions", str(doc), "--now", NOW.isoformat()]) == 0
    out = capsys.readouterr()
    state = json.loads(out.out)
    assert "X-Forwarded-For" in out.err
    block = next(r for r in state["rules"] if r["category"] == "block")
    assert block["forwarded_ip_config"] == FORWARDED
    refs = references(state["requests"])
    assert refs and all(r["IPSetForwardedIPConfig"] == FORWARDED for r in refs)


def test_without_cloudfront_the_rules_match_the_source_address(tmp_path, capsys):
    doc = json.loads(analyzed(tmp_path, capsys).read_text())
    doc["stats"]["cloudfront_forwarded_rows"] = 0
    (tmp_path / "direct.json").write_text(json.dumps(doc))
    assert main(["compile", "--decisions", str(tmp_path / "direct.json"),
                 "--now", NOW.isoformat()]) == 0  # fmt: skip
    state = json.loads(capsys.readouterr().out)
    assert all("forwarded_ip_config" not in r for r in state["rules"] if r["kind"] == "ip_set")
    assert all("IPSetForwardedIPConfig" not in r for r in references(state["requests"]))


def test_validator_names_a_bad_forwarded_config(tmp_path):
    from engine.schema.decision import Action, Decision, Status

    decision = Decision(client=VIEWER, action=Action.BLOCK, ttl_s=3600, score=0.9,
                        detector="t", decided_at=NOW, status=Status.APPROVED, id="d1")  # fmt: skip
    config = config_from_dict({"ip_sets_forwarded_ip": {"position": "ANY"}})
    good = compile_state([decision], config, NOW)
    assert validate(good) == []
    rule = next(r for r in good.rules if r.category == "block")
    broken = {**FORWARDED, "Position": "MIDDLE", "HeaderName": "X Forwarded"}
    bad_rule = replace(rule, forwarded_ip_config=broken)
    bad = replace(good, rules=tuple(bad_rule if r is rule else r for r in good.rules))
    fields = {v.field for v in validate(bad, model=False)}
    assert any(f.endswith("forwarded_ip_config.Position") for f in fields)
    assert any(f.endswith("forwarded_ip_config.HeaderName") for f in fields)


def test_enforce_on_moto_puts_the_viewer_behind_a_forwarded_ip_rule(
    aws_endpoint, wafv2, web_acl, tmp_path, capsys
):
    doc = analyzed(tmp_path, capsys)
    code = main(["enforce", "--once", "--decisions", str(doc), "--endpoint-url", aws_endpoint,
                 "--web-acl", WEB_ACL, "--now", NOW.isoformat(), "--writes-per-second", "1000",
                 "--reads-per-second", "1000"])  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["ok"], summary
    assert all_addresses(ip_set_contents(wafv2)) == {f"{VIEWER}/32"}
    groups = wafv2.list_rule_groups(Scope="REGIONAL")["RuleGroups"]
    rules = []
    for g in groups:
        body = wafv2.get_rule_group(Name=g["Name"], Scope="REGIONAL", Id=g["Id"])["RuleGroup"]
        rules += body["Rules"]
    acl = wafv2.get_web_acl(Name=WEB_ACL, Scope="REGIONAL", Id=web_acl["Id"])["WebACL"]
    refs = references([r["Statement"] for r in rules + acl["Rules"]])
    assert refs and all(r.get("IPSetForwardedIPConfig") == FORWARDED for r in refs)
