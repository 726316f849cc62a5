"""``deploy/compose.yaml`` and what it mounts: the compose file is valid, Prometheus' config and
alert rules pass promtool (and each alert fires on its test series), and every metric the
rules and the Grafana dashboard use is one the engine's /metrics serves.

``docker compose config`` cannot run here (the Docker CLI has no compose plugin and there is
no engine), so the file is validated against the Compose Specification's JSON schema as
vendored by check-jsonschema. promtool comes from Debian's ``prometheus`` package
(``.ci/run`` installs it); without it those tests are skipped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "wafsmith.json"
CONFIG_PATH = "/etc/wafsmith/wafsmith.toml"  # the image's one config path
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian: prometheus)")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_follows_the_compose_specification() -> None:
    schema = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    jsonschema.validate(compose(), json.loads(schema.read_text()))
    assert {"engine", "postgres", "prometheus", "grafana"} <= set(compose()["services"])


def test_every_mounted_file_is_in_the_repository_and_the_config_path_is_the_images() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"
    mounts = [v.split(":")[1] for v in services["engine"]["volumes"]]
    assert CONFIG_PATH in mounts
    assert f'"{CONFIG_PATH}"' in (REPO / "Dockerfile").read_text()


def test_prometheus_scrapes_the_engine_with_the_token_the_compose_file_creates() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["static_configs"] == [{"targets": ["engine:8080"]}]
    token_file = job["authorization"]["credentials_file"]
    mounts = compose()["services"]["prometheus"]["volumes"]
    token_dir = next(v.split(":")[1] for v in mounts if v.startswith("tokens:"))
    assert token_file.startswith(token_dir + "/")
    command = compose()["services"]["metrics-token"]["command"][0]
    assert f"/tokens/{Path(token_file).name}" in command and "--role viewer" in command


@needs_promtool
def test_promtool_accepts_the_config_and_the_rules(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("wsm_test\n")
    for name in ("alerts.yml", "prometheus.yml"):
        text = (PROMETHEUS / name).read_text()
        (tmp_path / name).write_text(text.replace("/run/wafsmith/prometheus", str(token)))
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"]):
        done = subprocess.run([PROMTOOL, *args], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_each_alert_fires_on_its_series_and_not_before() -> None:
    done = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts.test.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"][0]["rules"]
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    fired = {t["alertname"] for case in tests for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert fired == {r["alert"] for r in rules}


def served_metric_names(folder: Path) -> set[str]:
    """What the API's /metrics serves: a scrape of the real app, plus the engine gauges it
    adds once the engine has reported them (``api.metrics.ENGINE_GAUGES``)."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.metrics import ENGINE_GAUGES
    from engine.core.clock import SYSTEM_CLOCK
    from engine.decisions import Ledger
    from engine.service import Service

    ledger = Ledger.open(f"sqlite:///{folder / 'ledger.db'}", clock=SYSTEM_CLOCK)
    service = Service(ledger)
    plaintext, _ = service.create_token(name="prometheus", role="viewer")
    with TestClient(create_app(service)) as client:
        client.get("/healthz")
        body = client.get("/metrics", headers={"Authorization": f"Bearer {plaintext}"}).text
    ledger.close()
    scraped = {line.split("{")[0].split(" ")[0] for line in body.splitlines() if line[:1] != "#"}
    return scraped | {f"wafsmith_{name}" for name in ENGINE_GAUGES} | engine_metric_names()


def engine_metric_names() -> set[str]:
    """Every sample name the engine's own registry serves (``wafsmith run``), each family fed
    once so its labelled children appear."""
    from prometheus_client import generate_latest

    from engine.telemetry import EngineMetrics, ObjectOutcome

    metrics = EngineMetrics()
    outcome = ObjectOutcome("s3://b/k", "alb", 10, {"bad_line": 1}, 0.2, None)
    metrics.object_done(outcome)
    metrics.proposed(["volumetric_flood"], approved=1, held_by_guard=0)
    metrics.cycle_done(ok=True, outcomes={("UpdateIPSet", "ThrottlingException"): 1}, retries=1)
    metrics.sqs_totals(received=1, deleted=1)
    metrics.ledger_counts({"proposed": 1}, active_clients=1)
    body = generate_latest(metrics.registry).decode()
    return {line.split("{")[0].split(" ")[0] for line in body.splitlines() if line[:1] != "#"}


def test_rules_and_dashboard_use_only_metrics_the_engine_serves(tmp_path: Path) -> None:
    served = served_metric_names(tmp_path)
    rules = (PROMETHEUS / "alerts.yml").read_text()
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    used = set(re.findall(r"\bwafsmith_[a-z_]+", rules + "\n".join(exprs)))
    assert used, "no wafsmith metric referenced"
    assert used <= served, sorted(used - served)
    assert {"wafsmith_decisions", "wafsmith_ingest_lag_seconds"} <= used


def test_grafana_provisions_the_dashboard_on_the_prometheus_datasource() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "wafsmith.yml").read_text())[
        "providers"
    ]
    mounts = compose()["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {source["uid"]}
    assert source["url"] == "http://prometheus:9090"
