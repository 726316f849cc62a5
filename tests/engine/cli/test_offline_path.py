"""The offline path as a user chains it: ``analyze --json`` → ``compile`` → ``enforce``.

``analyze`` writes proposals; ``compile``/``enforce --decisions`` compile approved decisions
only. A file with nothing approved used to compile into empty IP sets with exit 0; now it is
refused with the counts, and ``--approve-all`` treats the proposals as approved.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import wafsmith
from tests.support.waf import WEB_ACL, all_addresses, ip_set_contents


@pytest.fixture(scope="module")
def proposals(tmp_path_factory) -> Path:
    """``wafsmith analyze --json`` over a generated ALB log holding fake Googlebots."""
    from benchmarks.alb_generator import generate_gzip

    folder = tmp_path_factory.mktemp("offline")
    log = folder / "123456789012_elasticloadbalancing_us-east-1_app.shop.1_20261130T0805Z.log.gz"
    log.write_bytes(generate_gzip(3000, n_clients=300))
    out = folder / "out.json"
    done = wafsmith("analyze", str(log), "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["decisions"], "the fake Googlebots must be proposed"
    return out


def _in_force_at(path: Path) -> str:
    """A time at which every decision of the file is in force (the first one's decision)."""
    return max(d["decided_at"] for d in json.loads(path.read_text())["decisions"])


def test_compile_refuses_a_file_of_proposals_and_names_the_problem(proposals):
    total = len(json.loads(proposals.read_text())["decisions"])
    done = wafsmith("compile", "--decisions", str(proposals), "--now", _in_force_at(proposals))
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"0 of {total} decisions are approved" in done.stderr
    assert "--approve-all" in done.stderr
    assert "Traceback" not in done.stderr


def test_compile_with_approve_all_fills_the_ip_sets(proposals):
    done = wafsmith(
        "compile", "--decisions", str(proposals), "--approve-all", "--now", _in_force_at(proposals)
    )
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    clients = {d["client"] for d in json.loads(proposals.read_text())["decisions"]}
    entries = {a for s in state["ip_sets"] for a in s["addresses"]}
    assert {e.split("/")[0] for e in entries} & clients


def test_approved_decisions_that_all_expired_are_refused_not_compiled_empty(proposals):
    done = wafsmith(
        "compile", "--decisions", str(proposals), "--approve-all", "--now", "2030-01-01T00:00:00Z"
    )
    assert done.returncode == 1
    assert "approved decisions are in force at 2030-01-01T00:00:00Z" in done.stderr
    assert "--now" in done.stderr


def test_enforce_refuses_proposals_and_sends_nothing(proposals, aws_endpoint, wafv2, web_acl):
    done = wafsmith(
        "enforce", "--once", "--decisions", str(proposals), "--endpoint-url", aws_endpoint,
        "--web-acl", WEB_ACL, "--now", _in_force_at(proposals),
    )
    assert done.returncode == 2
    assert "decisions are approved; approve them or pass --approve-all" in done.stderr
    assert wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] == []


def test_analyze_compile_enforce_chain_with_approve_all(proposals, aws_endpoint, wafv2, web_acl):
    now = _in_force_at(proposals)
    compiled = wafsmith("compile", "--decisions", str(proposals), "--approve-all", "--now", now)
    assert compiled.returncode == 0, compiled.stderr
    expected = {a for s in json.loads(compiled.stdout)["ip_sets"] for a in s["addresses"]}

    done = wafsmith(
        "enforce", "--once", "--decisions", str(proposals), "--approve-all",
        "--endpoint-url", aws_endpoint, "--web-acl", WEB_ACL, "--now", now,
        "--writes-per-second", "1000", "--reads-per-second", "1000",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] and summary["mode"] == "enforce"
    assert expected and all_addresses(ip_set_contents(wafv2)) == expected
