"""One configuration for every command: the engine's TOML + ``WAFSMITH_*``, flags on top.

``analyze --config`` and ``compile --config`` used to reject the engine's own
``wafsmith.example.toml``; ``wafsmith config show`` prints what a command would use, secrets
redacted; a configuration error is one line naming the problem, never a traceback.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.support.cli import REPO, wafsmith

EXAMPLE = REPO / "data" / "config" / "wafsmith.example.toml"


@pytest.fixture(scope="module")
def alb_log(tmp_path_factory) -> Path:
    from benchmarks.alb_generator import generate_gzip

    folder = tmp_path_factory.mktemp("config")
    log = folder / "123456789012_elasticloadbalancing_us-east-1_app.shop.1_20261130T0805Z.log.gz"
    log.write_bytes(generate_gzip(3000, n_clients=300))
    return log


def _engine_toml(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "wafsmith.toml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    return path


def test_config_show_merges_file_and_environment_and_redacts_secrets():
    done = wafsmith(
        "config", "show", "--config", str(EXAMPLE),
        env={
            "WAFSMITH_ENFORCEMENT__MODE": "count_only",
            "WAFSMITH_DATABASE_URL": "postgresql+psycopg://wafsmith:hunter2@db.internal/wafsmith",
        },
    )
    assert done.returncode == 0, done.stderr
    shown = tomllib.loads(done.stdout)  # the output is itself a settings file
    assert shown["enforcement"]["mode"] == "count_only"  # the environment wins
    assert shown["enforcement"]["web_acl_name"] == "my-site-acl"  # from the file
    assert shown["aws"]["region"] == "eu-west-1"
    assert "hunter2" not in done.stdout
    assert shown["database_url"] == "postgresql+psycopg://wafsmith:***@db.internal/wafsmith"


def test_config_show_reads_wafsmith_config_and_prints_json():
    done = wafsmith("config", "show", "--json", env={"WAFSMITH_CONFIG": str(EXAMPLE)})
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["source"]["queue_url"].endswith("/wafsmith-alb-logs")
    assert shown["policy"]["max_blocked_share"] == 0.05


def test_analyze_reads_the_engine_settings_detection_table(alb_log, tmp_path):
    plain = tmp_path / "plain.json"
    done = wafsmith("analyze", str(alb_log), "--config", str(EXAMPLE), "--json", str(plain))
    assert done.returncode == 0, done.stderr
    clients = {d["client"] for d in json.loads(plain.read_text())["decisions"]}
    assert clients
    spared = sorted(clients)[0]
    config = _engine_toml(tmp_path, f'[detection.gates]\nallowlist = ["{spared}"]\n')
    gated = tmp_path / "gated.json"
    done = wafsmith("analyze", str(alb_log), "--config", str(config), "--json", str(gated))
    assert done.returncode == 0, done.stderr
    assert {d["client"] for d in json.loads(gated.read_text())["decisions"]} == clients - {spared}


def test_compile_reads_the_engine_settings_and_flags_override(tmp_path):
    decisions = tmp_path / "d.json"
    decisions.write_text(json.dumps({"decisions": [{
        "client": "192.0.2.7", "action": "block", "ttl_s": 3600, "score": 0.9,
        "detector": "manual", "decided_at": "2026-11-30T09:00:00Z", "status": "approved",
    }]}))
    base = ("compile", "--decisions", str(decisions), "--now", "2026-11-30T09:10:00Z")
    done = wafsmith(*base, "--config", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    assert state["placement"]["web_acl_name"] == "my-site-acl"
    assert not state["count_only"]

    done = wafsmith(*base, "--count-only",
                    env={"WAFSMITH_CONFIG": str(EXAMPLE),
                         "WAFSMITH_ENFORCEMENT__WEB_ACL_NAME": "other-acl"})
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    assert state["placement"]["web_acl_name"] == "other-acl"
    assert state["count_only"]


@pytest.mark.parametrize("command", [
    ("config", "show", "--config"), ("run", "--no-api", "--config"),
    ("compile", "--decisions", "x.json", "--config"), ("analyze", "x.log", "--config"),
    ("token", "--config"),
])
def test_a_toml_syntax_error_is_one_line_with_its_position(tmp_path, command):
    bad = tmp_path / "bad.toml"
    bad.write_text('log_level = "INFO"\n[aws\nregion = "eu-west-1"\n')
    tail = ("list",) if command[0] == "token" else ()
    done = wafsmith(*command, str(bad), *tail)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "TOML syntax error" in lines[0] and "line 2" in lines[0] and str(bad) in lines[0]


def test_an_unsupported_database_scheme_is_one_line(tmp_path):
    done = wafsmith("token", "list", env={"WAFSMITH_DATABASE_URL": "mysql://u@db/wafsmith"})
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "unsupported database URL scheme 'mysql'" in done.stderr


def test_an_unreachable_database_is_one_line_with_the_password_hidden(tmp_path):
    url = "postgresql+psycopg://wafsmith:hunter2@127.0.0.1:1/wafsmith"
    done = wafsmith("token", "--database-url", url, "list")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "cannot reach the database" in done.stderr
    assert "127.0.0.1:1" in done.stderr and "hunter2" not in done.stderr
