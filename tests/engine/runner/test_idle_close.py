"""Real time: `wafsmith run` fed ONE object whose last minute holds a flood, and nothing after.

No later row ever moves the watermark past the flood's pane; the engine must close it because
the source has gone idle (``loop.idle_close_s``, default settings) and block the flooder in
AWS WAF within a minute of wall time.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta

from engine.demo.standin import bootstrap
from tests.support.alb import last_minute_flood_object
from tests.support.engine_process import block_set_so_far, start_engine, write_engine_config

ATTACKER = "203.0.113.66"
DEADLINE_S = 60


def test_a_flood_in_the_last_minute_of_the_only_object_is_blocked_within_a_minute(
    aws_endpoint, wafv2, tmp_path
):
    demo = bootstrap(aws_endpoint)
    logs = tmp_path / "logs"
    logs.mkdir()
    last_minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    (logs / "only.log.gz").write_bytes(last_minute_flood_object(last_minute, ATTACKER))
    data_dir = tmp_path / "var"
    config = write_engine_config(
        tmp_path / "engine.toml",
        demo,
        data_dir,
        source={"kind": "local", "paths": [logs]},
        interval_s=None,
    )
    proc = start_engine(config)
    try:
        started = time.monotonic()
        while not (data_dir / "wafsmith.db").exists() and time.monotonic() - started < 120:
            time.sleep(0.1)  # interpreter and imports up: the engine is being built
        deadline = time.monotonic() + DEADLINE_S
        blocked = block_set_so_far(wafv2)
        while f"{ATTACKER}/32" not in blocked and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            time.sleep(0.5)
            blocked = block_set_so_far(wafv2)
        assert f"{ATTACKER}/32" in blocked
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, proc.stderr.read().decode()[-3000:]
