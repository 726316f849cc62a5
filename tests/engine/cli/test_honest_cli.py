"""Honest CLI output: JSON on stdout when asked, a warning and a non-zero exit when nothing
could be parsed, AWS errors in one line, examples in every ``--help``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli.main import COMMAND_MODULES, main
from tests.support.cli import wafsmith

APACHE = '127.0.0.1 - - [07/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 123 "-" "curl/8"\n'
NO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
}


@pytest.fixture(scope="module")
def alb_log(tmp_path_factory) -> Path:
    from benchmarks.alb_generator import generate_gzip

    folder = tmp_path_factory.mktemp("honest")
    log = folder / "123456789012_elasticloadbalancing_us-east-1_app.shop.1_20261130T0805Z.log.gz"
    log.write_bytes(generate_gzip(3000, n_clients=300))
    return log


def test_json_dash_writes_the_document_to_stdout(alb_log, tmp_path):
    done = wafsmith("analyze", str(alb_log), "--json", "-", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["decisions"] and doc["stats"]["rows"] == 3000
    assert not (tmp_path / "-").exists()  # no file named "-"

    as_json = wafsmith("analyze", str(alb_log), "-o", "json")
    assert json.loads(as_json.stdout)["decisions"] == doc["decisions"]
    table = wafsmith("analyze", str(alb_log), "-o", "table")
    assert "decision(s) from 3,000 requests" in table.stdout


@pytest.mark.parametrize("command", ["parse", "analyze"])
def test_an_apache_log_is_a_warning_and_a_non_zero_exit(tmp_path, command):
    log = tmp_path / "access.log"
    log.write_text(APACHE * 5)
    done = wafsmith(command, str(log))
    assert done.returncode == 1
    assert "warning: nothing in 1 object(s) could be parsed (unknown_format 5)" in done.stderr


def test_no_credentials_is_one_line_not_a_traceback():
    done = wafsmith("parse", "s3://wafsmith-logs/AWSLogs/", env=NO_CREDENTIALS)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "no AWS credentials found" in done.stderr


def test_an_unreachable_endpoint_is_one_line(tmp_path):
    done = wafsmith(
        "analyze", "s3://wafsmith-logs/AWSLogs/", "--endpoint-url", "http://127.0.0.1:1",
        env={"AWS_MAX_ATTEMPTS": "1"},
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "cannot reach the AWS endpoint" in done.stderr and "127.0.0.1:1" in done.stderr


def test_every_command_help_has_examples(capsys):
    for module in COMMAND_MODULES:
        name = module.rsplit(".", 1)[1]
        with pytest.raises(SystemExit) as stop:
            main([name, "--help"])
        assert stop.value.code == 0
        text = capsys.readouterr().out
        assert "examples:" in text, name
        assert "wafsmith " + name in text.split("examples:", 1)[1], name


def test_enforce_without_credentials_names_the_cause_in_one_line(tmp_path, aws_endpoint):
    decisions = tmp_path / "d.json"
    decisions.write_text(json.dumps({"decisions": [{
        "client": "192.0.2.7", "action": "block", "ttl_s": 3600, "score": 0.9,
        "detector": "manual", "decided_at": "2026-11-30T09:00:00Z", "status": "approved",
    }]}))
    done = wafsmith(
        "enforce", "--once", "--decisions", str(decisions), "--endpoint-url", aws_endpoint,
        "--web-acl", "prod-acl", "--now", "2026-11-30T09:10:00Z", env=NO_CREDENTIALS,
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["ok"] is False  # the full summary stays on stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no AWS credentials found" in lines[0], done.stderr


def test_the_table_leads_each_decision_with_a_reason_that_fired(tmp_path, capsys):
    """The headline is a check that fired, in plain numbers; the quiet checks are counted,
    not shown as the decision's reason ("1 distinct paths (threshold 15)" was)."""
    from engine.cli.analyze import headline
    from tests.support.alb import flood_object
    from tests.support.runner import START

    data, _ = flood_object(START, "203.0.113.9")
    log = tmp_path / "flood.log.gz"
    log.write_bytes(data)
    out = tmp_path / "out.json"
    assert main(["analyze", str(log), "--json", str(out)]) == 0
    decision = next(d for d in json.loads(out.read_text())["decisions"]
                    if d["client"] == "203.0.113.9")  # fmt: skip
    capsys.readouterr()
    assert main(["analyze", str(log)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "203.0.113.9" in x)
    assert headline(decision["reasons"]) in line

    reasons = ["12 requests in 5 min (threshold 600)", "480 requests in one minute (threshold 120)"]
    assert headline(reasons) == "480 requests in one minute (threshold 120) [+1 quiet]"
    assert headline(["25.95 distinct paths answered 4xx (threshold 15)"]).startswith("≈ 26 ")
