"""``wafsmith check`` against moto: one line per check, non-zero exit on a failure, and
``wafsmith run`` refusing to start when a check fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.demo.standin import bootstrap
from tests.support.cli import wafsmith

NO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture()
def demo_aws(aws_endpoint):
    return bootstrap(aws_endpoint)


def settings_file(tmp_path: Path, demo_aws, *, queue_url: str | None = None,
                  web_acl: str | None = None, mode: str = "enforce") -> Path:
    path = tmp_path / "wafsmith.toml"
    path.write_text(f"""
data_dir = "{tmp_path / 'var'}"
[aws]
endpoint_url = "{demo_aws.endpoint_url}"
region = "{demo_aws.region}"
[source]
kind = "sqs"
queue_url = "{queue_url or demo_aws.queue_url}"
wait_time_s = 0
[enforcement]
mode = "{mode}"
web_acl_name = "{web_acl or demo_aws.web_acl_name}"
[api]
enabled = false
""", encoding="utf-8")
    return path


def by_name(stdout: str) -> dict[str, str]:
    """``STATUS name detail`` lines → name → the line."""
    return {line.split()[1]: line for line in stdout.splitlines() if line.strip()}


def web_acl_body(wafv2, name: str) -> dict:
    found = next(a for a in wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"] if a["Name"] == name)
    return wafv2.get_web_acl(Name=name, Scope="REGIONAL", Id=found["Id"])["WebACL"]


def test_every_check_passes_against_a_ready_account(tmp_path, demo_aws, wafv2):
    before = web_acl_body(wafv2, demo_aws.web_acl_name)
    done = wafsmith("check", "--config", str(settings_file(tmp_path, demo_aws)))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = by_name(done.stdout)
    assert set(lines) == {"config", "credentials", "clock", "ledger", "queue", "bucket",
                          "web_acl", "permissions"}
    assert lines["credentials"].startswith("OK") and "arn:aws:" in lines["credentials"]
    assert lines["clock"].split()[0] in {"OK", "WARN"}
    assert lines["queue"].startswith("OK") and demo_aws.queue_url in lines["queue"]
    assert lines["web_acl"].startswith("OK") and demo_aws.web_acl_name in lines["web_acl"]
    assert lines["permissions"].startswith("OK")
    assert "UpdateIPSet" in lines["permissions"] and "UpdateWebACL" in lines["permissions"]
    assert lines["bucket"].startswith("SKIP")
    # the dry calls changed nothing
    assert web_acl_body(wafv2, demo_aws.web_acl_name) == before
    assert wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] == []


def test_a_missing_queue_and_web_acl_fail_with_their_names(tmp_path, demo_aws):
    config = settings_file(tmp_path, demo_aws, queue_url=demo_aws.queue_url + "-gone",
                           web_acl="no-such-acl")
    done = wafsmith("check", "--config", str(config), "--json")
    assert done.returncode == 1
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["queue"]["status"] == "fail" and "does not exist" in checks["queue"]["detail"]
    assert checks["web_acl"]["status"] == "fail" and "no-such-acl" in checks["web_acl"]["detail"]
    assert checks["ledger"]["status"] == "ok"


def test_no_credentials_fail_the_check_and_run_refuses_to_start(tmp_path, demo_aws):
    config = settings_file(tmp_path, demo_aws)
    done = wafsmith("check", "--config", str(config), env=NO_CREDENTIALS)
    assert done.returncode == 1
    assert by_name(done.stdout)["credentials"].startswith("FAIL  credentials  no AWS credentials")

    run = wafsmith("run", "--config", str(config), env=NO_CREDENTIALS, timeout=60)
    assert run.returncode == 2
    assert "refusing to start: " in run.stderr and "no AWS credentials" in run.stderr
    assert "Traceback" not in run.stderr
