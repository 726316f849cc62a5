"""`wafsmith compile`, config loading, and the document's JSON round trip."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from engine.cli import compile as compile_cli
from engine.compiler import CompilerConfig, compile_state, config_from_dict, load_config
from engine.core.errors import ConfigError
from engine.schema.rule import DesiredState, is_owned
from tests.support.compiler import NOW, make_decision

EXAMPLE = Path(__file__).parents[3] / "data" / "config" / "example-enforcement.toml"


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    compile_cli.register(parser.add_subparsers())
    args = parser.parse_args(["compile", *argv])
    return args.func(args)


def write_decisions(tmp_path: Path, payload) -> Path:
    path = tmp_path / "decisions.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def test_cli_prints_the_document(tmp_path, capsys):
    items = [make_decision("192.0.2.1").to_dict(), make_decision("192.0.2.0").to_dict()]
    path = write_decisions(tmp_path, {"decisions": items})
    assert run_cli("--decisions", str(path), "--now", "2026-11-30T12:00:00Z") == 0
    doc = json.loads(capsys.readouterr().out)
    block = next(s for s in doc["ip_sets"] if s["name"] == "wafsmith-block-v4-0")
    assert block["addresses"] == ["192.0.2.0/31"]
    assert DesiredState.from_dict(doc) == compile_state(
        [make_decision("192.0.2.1"), make_decision("192.0.2.0")], CompilerConfig(), NOW
    )


def test_cli_accepts_a_bare_list_and_the_example_config(tmp_path, capsys):
    path = write_decisions(tmp_path, [make_decision("2001:db8::5", "count").to_dict()])
    code = run_cli(
        "--decisions",
        str(path),
        "--config",
        str(EXAMPLE),
        "--now",
        "2026-11-30T12:00:00Z",
        "--count-only",
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["count_only"] is True
    assert {r["action"] for r in doc["rules"]} == {"COUNT"}


def test_cli_validation_failure_exits_2(tmp_path, capsys):
    path = write_decisions(
        tmp_path, [make_decision(f"10.0.{i}.1", "rate_limit").to_dict() for i in range(3)]
    )
    config = tmp_path / "c.toml"
    config.write_text("[compiler.placement]\nrule_group_capacity = 5\n", encoding="utf-8")
    code = run_cli(
        "--decisions", str(path), "--config", str(config), "--now", "2026-11-30T12:00:00Z"
    )
    out = capsys.readouterr()
    assert code == 2
    assert out.out == ""
    assert "placement.rule_group_capacity = 5" in out.err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"items": []}', "needs a 'decisions' list"),
        (
            '[{"client": "300.1.1.1", "action": "block", "ttl_s": 60, "score": 1,'
            ' "detector": "x"}]',
            "decision #0",
        ),
        (
            '[{"client": "1.2.3.4", "action": "ban", "ttl_s": 60, "score": 1, "detector": "x"}]',
            "decision #0",
        ),
        ("[5]", "decision #0 is not an object"),
    ],
)
def test_cli_bad_decisions_file_is_a_clear_error(tmp_path, capsys, content, message):
    path = tmp_path / "d.json"
    path.write_text(content, encoding="utf-8")
    assert run_cli("--decisions", str(path)) == 1
    assert message in capsys.readouterr().err


def test_cli_missing_file_and_bad_config(tmp_path, capsys):
    assert run_cli("--decisions", str(tmp_path / "nope.json")) == 1
    assert "cannot read decisions file" in capsys.readouterr().err
    path = write_decisions(tmp_path, [])
    bad = tmp_path / "bad.toml"
    bad.write_text("[compiler]\nmax_entriez = 5\n", encoding="utf-8")
    assert run_cli("--decisions", str(path), "--config", str(bad)) == 1
    assert "max_entriez" in capsys.readouterr().err


def test_example_config_loads():
    config = load_config(EXAMPLE)
    assert [r.name for r in config.rate_limits] == ["login", "api-ja4"]
    assert config.placement.mode == "rule_group"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"rate_limits": [{"name": "a", "limit": 5}]}, "rate_limits.0.limit"),
        ({"rate_limits": [{"name": "a", "limit": 50, "window_s": 30}]}, "window_s"),
        (
            {"rate_limits": [{"name": "a", "limit": 50, "aggregate": "FORWARDED_IP"}]},
            "forwarded_ip_header",
        ),
        ({"rate_limits": [{"name": "a", "limit": 50, "aggregate": "CONSTANT"}]}, "scope_down"),
        (
            {
                "rate_limits": [
                    {
                        "name": "a",
                        "limit": 50,
                        "aggregate": "CUSTOM_KEYS",
                        "custom_keys": [{"type": "ip"}],
                    }
                ]
            },
            "another key",
        ),
        (
            {
                "shield": {
                    "protections": [
                        {
                            "name": "a",
                            "resource_arn": "arn:aws:cloudfront::1:distribution/E1",
                            "auto_response": "block",
                        }
                    ]
                }
            },
            "allow_block",
        ),
        ({"allowlist": ["not-an-ip"]}, "allowlist"),
        ({"max_shards": 3}, "power of two"),
        ({"max_entries_per_set": 10_001}, "max_entries_per_set"),
        ({"placement": {"priority_min": 9_999_999, "priority_max": 10_000_001}}, "Shield"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_config_errors_name_the_setting(data, fragment):
    with pytest.raises(ConfigError, match=fragment):
        config_from_dict(data)


def test_ownership_marker_and_rule_group_reference():
    state = compile_state([], CompilerConfig(owner_prefix="acme-waf-"), NOW)
    names = [s.name for s in state.ip_sets] + [r.name for r in state.rules]
    assert all(is_owned(n, "acme-waf-") for n in names)
    assert not is_owned("ShieldMitigationRuleGroup_1_2_3", "acme-waf-")
    assert state.requests is not None
    (ref,) = state.requests.web_acl_rules
    assert ref["Name"] == "acme-waf-rules"
    assert ref["Priority"] == 100
    assert ref["OverrideAction"] == {"None": {}}


def test_from_dict_refuses_unknown_fields():
    doc = compile_state([], CompilerConfig(), NOW).to_dict()
    doc["ip_sets"][0]["adresses"] = []
    with pytest.raises(ValueError, match="adresses"):
        DesiredState.from_dict(doc)


def test_config_survives_a_model_dump_round_trip():
    """The runner and the API merge allowlists by dumping and re-validating the config."""
    config = load_config(EXAMPLE)
    assert config_from_dict(config.model_dump()) == config
    assert config_from_dict(json.loads(json.dumps(config.model_dump(mode="json")))) == config


def test_one_unreadable_decision_is_left_out_and_named_not_the_whole_file(tmp_path, capsys):
    """A scoped address (``fe80::1%eth0``, reachable through X-Forwarded-For) or any other
    unreadable entry costs only itself: the rest compiles, stderr names what was left out."""
    scoped = {**make_decision("192.0.2.7").to_dict(), "client": "fe80::1%eth0"}
    good = make_decision("192.0.2.1").to_dict()
    path = write_decisions(tmp_path, {"decisions": [scoped, good, 7]})
    assert run_cli("--decisions", str(path), "--now", "2026-11-30T12:00:00Z") == 0
    out = capsys.readouterr()
    block = next(s for s in json.loads(out.out)["ip_sets"] if s["name"] == "wafsmith-block-v4-0")
    assert block["addresses"] == ["192.0.2.1/32"]
    assert "left out decision #0: client: 'fe80::1%eth0' is a scoped" in out.err
    assert "left out decision #2 is not an object" in out.err
