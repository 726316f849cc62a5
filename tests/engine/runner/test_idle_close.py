"""Real time: `wafsmith run` fed ONE object whose last minute holds a flood, and nothing after.

No later row ever moves the watermark past the flood's pane; the engine must close it because
the source has gone idle (``loop.idle_close_s``, default settings) and block the flooder in
AWS WAF within a minute of wall time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.demo.standin import bootstrap
from tests.support.alb import last_minute_flood_object

REPO = Path(__file__).resolve().parents[3]
ATTACKER = "203.0.113.66"
DEADLINE_S = 60


def write_config(path: Path, demo, data_dir: Path, logs: Path) -> Path:
    path.write_text(
        f"""
data_dir = "{data_dir}"
log_level = "WARNING"
[aws]
endpoint_url = "{demo.endpoint_url}"
region = "{demo.region}"
[source]
kind = "local"
paths = ["{logs}"]
[enforcement]
mode = "enforce"
web_acl_name = "{demo.web_acl_name}"
[api]
enabled = false
[metrics]
port = 0  # an ephemeral port: engines and test runs beside each other never collide
[policy]
auto_approve = [{{name = "floods", detectors = ["volumetric_flood"], min_score = 0.5}}]
""",
        encoding="utf-8",
    )
    return path


def block_set(wafv2) -> list[str]:
    for summary in wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"]:
        if summary["Name"] == "wafsmith-block-v4-0":
            found = wafv2.get_ip_set(Name=summary["Name"], Scope="REGIONAL", Id=summary["Id"])
            return found["IPSet"]["Addresses"]
    return []


def test_a_flood_in_the_last_minute_of_the_only_object_is_blocked_within_a_minute(
    aws_endpoint, wafv2, tmp_path
):
    demo = bootstrap(aws_endpoint)
    logs = tmp_path / "logs"
    logs.mkdir()
    last_minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    (logs / "only.log.gz").write_bytes(last_minute_flood_object(last_minute, ATTACKER))
    data_dir = tmp_path / "var"
    config = write_config(tmp_path / "engine.toml", demo, data_dir, logs)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", "--config", str(config), "--no-api"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        started = time.monotonic()
        while not (data_dir / "wafsmith.db").exists() and time.monotonic() - started < 120:
            time.sleep(0.1)  # interpreter and imports up: the engine is being built
        deadline = time.monotonic() + DEADLINE_S
        blocked = block_set(wafv2)
        while f"{ATTACKER}/32" not in blocked and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            time.sleep(0.5)
            blocked = block_set(wafv2)
        assert f"{ATTACKER}/32" in blocked
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, proc.stderr.read().decode()[-3000:]
