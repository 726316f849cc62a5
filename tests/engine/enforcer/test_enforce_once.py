"""The one enforcement path (``engine.enforcement``) against moto over HTTP and a real ledger:
what the engine loop, ``wafsmith enforce --once`` and the rule preview all run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.decisions.ledger import Ledger
from engine.enforcement import (
    build_reconciler,
    compiler_config,
    enforcement_mode,
    reconciler_from_settings,
)
from engine.enforcer import Mode
from engine.schema.decision import Status
from engine.settings import Settings
from engine.status import EnforcementStatus, read
from tests.support.enforcement import approved_blocks, enforce_cycle, enforcement_settings
from tests.support.waf import NOW, acl_body, all_addresses, ip_set_contents

CLIENTS = ("198.51.100.1", "198.51.100.3")


@pytest.fixture()
def ledger(tmp_path) -> Iterator[Ledger]:
    """A SQLite ledger holding two approved block decisions."""
    with approved_blocks(f"sqlite:///{tmp_path / 'ledger.db'}", CLIENTS) as opened:
        yield opened


def test_enforcing_converges_publishes_the_cycle_and_marks_applied(
    aws_endpoint, wafv2, web_acl, ledger, fake_clock
):
    done = enforce_cycle(ledger, enforcement_settings(aws_endpoint, mode="enforce"), fake_clock)

    assert done.result is not None and done.result.ok, done.result
    assert all_addresses(ip_set_contents(wafv2)) == {f"{c}/32" for c in CLIENTS}
    status = read(ledger, EnforcementStatus)
    assert status is not None
    assert status.record == EnforcementStatus.from_dict(done.result.to_dict())
    assert status.record.ok is True and status.record.writes == done.result.writes
    assert sorted(done.applied) == sorted(d.id for d in ledger.enforceable(NOW))
    assert {d.status for d in ledger.enforceable(NOW)} == {Status.APPLIED}


def test_an_invalid_document_sends_nothing_and_the_status_says_why(
    aws_endpoint, wafv2, web_acl, ledger, fake_clock
):
    # One WCU cannot hold the block rule: the validator refuses the document.
    settings = enforcement_settings(
        aws_endpoint, mode="enforce", compiler={"placement": {"rule_group_capacity": 1}}
    )
    before = acl_body(wafv2)

    done = enforce_cycle(ledger, settings, fake_clock, Mode.ENFORCE)

    assert done.result is None and done.violations
    assert wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] == []
    assert acl_body(wafv2)["Rules"] == before["Rules"]
    status = read(ledger, EnforcementStatus)
    assert status is not None
    assert status.record.ok is False and status.record.writes == 0
    assert status.record.errors is not None
    assert [e["message"] for e in status.record.errors] == [str(v) for v in done.violations]
    assert any("rule_group_capacity" in e["message"] for e in status.record.errors)
    assert {d.status for d in ledger.enforceable(NOW)} == {Status.APPROVED}


@pytest.mark.parametrize(
    ("setting", "mode"), [("dry_run", Mode.DRY_RUN), ("count_only", Mode.COUNT_ONLY)]
)
def test_dry_run_and_count_only_mark_nothing_applied(
    aws_endpoint, wafv2, web_acl, ledger, fake_clock, setting, mode
):
    done = enforce_cycle(ledger, enforcement_settings(aws_endpoint, mode=setting), fake_clock, mode)

    assert done.result is not None and done.result.ok
    assert done.applied == []
    assert {d.status for d in ledger.enforceable(NOW)} == {Status.APPROVED}
    if mode is Mode.DRY_RUN:
        assert done.result.writes == 0
        assert wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] == []


def test_cloudfront_scope_calls_wafv2_in_us_east_1_whatever_the_region(fake_clock):
    """CloudFront's WAF is addressed in us-east-1; the engine's Region is for its logs."""
    settings = Settings(
        aws={"region": "eu-west-1"},
        enforcement={"scope": "CLOUDFRONT", "web_acl_name": "cdn-acl"},
    )
    engine = reconciler_from_settings(settings, clock=fake_clock)
    cli = build_reconciler(
        compiler_config(settings), region="eu-west-1", endpoint_url=None, clock=fake_clock
    )
    regional = build_reconciler(
        compiler_config(Settings(aws={"region": "eu-west-1"})),
        region="eu-west-1",
        endpoint_url=None,
        clock=fake_clock,
    )
    assert engine is not None
    assert engine.wafv2._client.meta.region_name == "us-east-1"
    assert cli.wafv2._client.meta.region_name == "us-east-1"
    assert regional.wafv2._client.meta.region_name == "eu-west-1"


def test_the_enforcement_table_names_the_web_acl_and_the_settings_stay_as_loaded():
    settings = Settings(
        enforcement={
            "web_acl_name": "site-acl",
            "mode": "count_only",
            "compiler": {"placement": {"web_acl_name": "other-acl", "priority_min": 150}},
        }
    )
    config = compiler_config(settings)
    assert config.placement.web_acl_name == "site-acl"
    assert config.placement.priority_min == 150
    assert config.count_only is True
    assert settings.enforcement.compiler["placement"]["web_acl_name"] == "other-acl"


@pytest.mark.parametrize(
    ("mode", "table", "count_only", "enforced_as"),
    [
        ("count_only", {"count_only": False}, True, Mode.COUNT_ONLY),  # the mode wins
        ("enforce", {"count_only": True}, True, Mode.COUNT_ONLY),  # never marked applied
        ("enforce", {}, False, Mode.ENFORCE),
        ("dry_run", {"count_only": True}, True, Mode.DRY_RUN),
    ],
)
def test_count_only_settings_give_a_count_only_document_enforced_as_such(
    mode, table, count_only, enforced_as
):
    settings = Settings(enforcement={"mode": mode, "compiler": table})
    config = compiler_config(settings)
    assert config.count_only is count_only
    assert enforcement_mode(config, dry_run=mode == "dry_run") is enforced_as
