"""Many engines, one enforcer: `wafsmith run` processes on one PostgreSQL ledger and one queue.

Exactly one holds the enforcer lease and reconciles the WAF. SIGKILL it: a standby takes over
within a lease period (plus the loop step it is in) and the WAF converges on the ledger. Then
hang the new holder (SIGSTOP, as a long GC pause or a frozen VM would): a third engine ends
its session once it has been silent for ``stale_after_s`` and takes over; resumed, the hung
engine finds it lost the lease and makes no WAF write.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.compiler import compile_state
from engine.core.clock import SystemClock
from engine.core.lease import LeaseHolder
from engine.decisions import Ledger
from engine.demo.standin import DemoAws, bootstrap
from engine.enforcement import compiler_config
from engine.service import Service
from engine.settings import load_settings
from tests.support.alb import flood_object
from tests.support.engine_process import start_engine, write_engine_config

PERIOD_S = 1.5
STALE_AFTER_S = 8.0
# A standby tries once per period, between two steps of its loop (an SQS long poll of up to
# wait_time_s and the objects it brought): on a loaded machine a step takes seconds.
STEP_SLACK_S = 8.0
BLOCK_SET = "wafsmith-block-v4-0"


class Engine:
    """One `wafsmith run` subprocess, its JSON log in a file."""

    def __init__(self, name: str, config: Path, log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as sink:
            self.proc = start_engine(config, stderr=sink)

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line being written
        return out

    def logged(self, event: str) -> bool:
        return any(e.get("event") == event for e in self.events())

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]


def write_config(path: Path, demo: DemoAws, data_dir: Path, pg_url: str, instance: str) -> Path:
    source = {
        "kind": "sqs",
        "queue_url": demo.queue_url,
        "visibility_timeout_s": 2,
        "wait_time_s": 1,
    }
    lease = {"instance_id": instance, "period_s": PERIOD_S, "stale_after_s": STALE_AFTER_S}
    return write_engine_config(
        path, demo, data_dir, source=source, log_level="INFO", database_url=pg_url, lease=lease
    )


def wait_for(what: str, check: Callable[[], Any], timeout: float, *engines: Engine) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        for engine in engines:
            assert engine.proc.poll() is None, f"{engine.name} exited:\n{engine.tail()}"
        time.sleep(0.1)
    logs = "\n".join(f"--- {e.name}\n{e.tail()}" for e in engines)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


@pytest.fixture()
def engines() -> Iterator[list[Engine]]:
    started: list[Engine] = []
    yield started
    for engine in started:
        if engine.proc.poll() is None:
            engine.proc.send_signal(signal.SIGCONT)
            engine.proc.kill()
            engine.proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.postgres
def test_kill_the_leader_a_standby_takes_over_and_a_hung_leader_writes_nothing(
    aws_endpoint, s3, wafv2, pg_url, tmp_path, engines
):
    demo = bootstrap(aws_endpoint)
    clock = SystemClock()
    ledger = Ledger.open(pg_url, clock=clock)

    def start(instance: str) -> Engine:
        config = write_config(
            tmp_path / f"{instance}.toml", demo, tmp_path / instance, pg_url, instance
        )
        engine = Engine(instance, config, tmp_path / f"{instance}.log")
        engines.append(engine)
        return engine

    def holder() -> LeaseHolder | None:
        return ledger.lease_holder("enforcer")

    def held_by(instance: str) -> Callable[[], LeaseHolder | None]:
        return lambda: (h := holder()) is not None and h.instance_id == instance and h

    def flood(attacker: str, n: int) -> None:
        start = datetime.now(UTC) - timedelta(minutes=60 - 15 * n)  # after the last trailer
        minute = start.replace(second=0, microsecond=0)
        data, _ = flood_object(minute, attacker, requests=600)
        key = f"AWSLogs/123456789012/elasticloadbalancing/us-east-1/flood-{n}.log.gz"
        s3.put_object(Bucket=demo.bucket, Key=key, Body=data)

    def blocked() -> set[str]:
        for summary in wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"]:
            if summary["Name"] == BLOCK_SET:
                ip_set = wafv2.get_ip_set(Name=BLOCK_SET, Scope="REGIONAL", Id=summary["Id"])
                return set(ip_set["IPSet"]["Addresses"])
        return set()

    # A leads; B stands by.
    a = start("engine-a")
    first = wait_for("engine-a to take the lease", held_by("engine-a"), 120, a)
    b = start("engine-b")
    wait_for("engine-b to start", lambda: b.logged("engine_started"), 120, a, b)
    assert (holder().instance_id, holder().epoch) == ("engine-a", first.epoch)  # B stood by

    flood("203.0.113.10", 1)
    wait_for("the first flood to be blocked", lambda: "203.0.113.10/32" in blocked(), 90, a, b)
    assert holder().epoch == first.epoch

    # SIGKILL the leader: its session ends with it, and B takes over.
    a.proc.kill()
    killed_at = time.monotonic()
    a.proc.wait(timeout=30)
    second = wait_for("engine-b to take over", held_by("engine-b"), 60, b)
    takeover_s = time.monotonic() - killed_at
    assert second.epoch == first.epoch + 1
    assert takeover_s <= PERIOD_S + STEP_SLACK_S, takeover_s

    flood("203.0.113.20", 2)
    wait_for("B to block the second flood", lambda: "203.0.113.20/32" in blocked(), 90, b)

    # Hang B: C ends its session once it is stale, and takes over; resumed, B writes nothing.
    c = start("engine-c")
    wait_for("engine-c to start", lambda: c.logged("engine_started"), 120, b, c)
    b.proc.send_signal(signal.SIGSTOP)
    third = wait_for("engine-c to take over", held_by("engine-c"), 60, c)
    ended = [e for e in c.events() if e.get("event") == "lease_holder_ended"]
    assert [e["holder"] for e in ended] == ["engine-b"]  # C ended B's session: B was stale
    assert ended[0]["silent_s"] >= STALE_AFTER_S
    assert third.epoch == second.epoch + 1
    b.proc.send_signal(signal.SIGCONT)
    wait_for("B to notice it lost the lease", lambda: b.logged("lease_lost"), 60, b, c)

    flood("203.0.113.30", 3)
    wait_for("C to block the third flood", lambda: "203.0.113.30/32" in blocked(), 90, b, c)
    time.sleep(3 * PERIOD_S)  # B keeps running beside the leader for a few lease periods

    # The status API names the holder, and says whether the engine beside it leads.
    lease = Service(ledger, clock=clock, instance_id="engine-c").status()["lease"]
    assert (lease["holder"], lease["epoch"], lease["leader"]) == ("engine-c", third.epoch, True)
    lease = Service(ledger, clock=clock, instance_id="engine-b").status()["lease"]
    assert lease["leader"] is False

    for engine in (b, c):
        engine.proc.send_signal(signal.SIGTERM)
    for engine in (b, c):
        assert engine.proc.wait(timeout=60) == 0, engine.tail()

    # After B lost the lease it ran no enforcement cycle that wrote to the WAF.
    events = b.events()
    lost = next(i for i, e in enumerate(events) if e.get("event") == "lease_lost")
    late = [e for e in events[lost:] if e.get("event") == "enforcement_cycle" and e["writes"]]
    assert late == [], late
    assert not any(e.get("event") == "lease_acquired" for e in events[lost:])

    # The WAF converged on the ledger: the block set holds exactly what the ledger enforces.
    settings = load_settings(tmp_path / "engine-c.toml")
    now = clock.now()
    desired = compile_state(ledger.enforceable(now), compiler_config(settings), now)
    want = {s.name: set(s.addresses) for s in desired.ip_sets}
    assert blocked() == want[BLOCK_SET]
    assert {"203.0.113.10/32", "203.0.113.20/32", "203.0.113.30/32"} <= want[BLOCK_SET]
    ledger.close()
