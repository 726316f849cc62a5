"""``wafsmith demo``: the whole engine against an AWS stand-in on 127.0.0.1, no account needed.

A moto server plays S3, SQS and WAFv2 (Shield Advanced is the recording fake); the simulator's
labelled traffic lands in the bucket as ALB, CloudFront and WAF log objects over (accelerated)
time; the engine ingests them through S3 → SQS notifications, proposes decisions, auto-approves
what the demo policy allows, leaves the rest for the analyst on the dashboard, and keeps the
web ACL's IP sets converged — with the operator's own rules in that ACL left untouched.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.core.clock import AcceleratedClock
from engine.demo.simulator import Simulation
from engine.demo.standin import DemoAws, bootstrap, client, start_moto
from engine.demo.traffic import TimedObject, simulate_demo, timed_objects
from engine.enforcer import RecordingShieldFake
from engine.runner import EngineRunner
from engine.settings import Settings

if TYPE_CHECKING:
    from api.server import ApiThread

# Floods, known attack tools and injection probes are pushed by policy; scanners, credential
# stuffing and scrapers wait for an analyst on the dashboard.
DEMO_POLICY = {
    "auto_approve": [
        {
            "name": "floods-tools-probes",
            "detectors": ["volumetric_flood", "distributed_flood", "attack_tools", "injection"],
            "min_score": 0.7,
        }
    ],
    "max_new_entries_per_push": 2_000,
}
ENGINE_PREFIX = "wafsmith-"


@dataclass
class DemoOptions:
    minutes: int | None = None  # None: run until interrupted
    speed: float = 30.0  # simulated seconds per real second
    seed: int = 7
    port: int = 8080
    data_dir: Path = Path("var/demo")
    serve_api: bool = True
    corpora_dir: Path | None = None  # real scan traces for the scanners (see simulate_demo)


@dataclass
class Feeder:
    """Puts each object into the bucket once the simulated clock reaches its arrival time."""

    objects: list[TimedObject]
    aws: DemoAws
    clock: AcceleratedClock
    until: float | None
    put: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def run(self, stop: threading.Event) -> None:
        s3 = client("s3", self.aws.endpoint_url, self.aws.region)
        for obj in self.objects:
            if self.until is not None and obj.available_at > self.until:
                break
            while not stop.is_set() and self.clock.time() < obj.available_at:
                stop.wait(0.05)
            if stop.is_set():
                break
            s3.put_object(Bucket=self.aws.bucket, Key=obj.key, Body=obj.data)
            self.put += 1
        self.done.set()


def demo_settings(aws: DemoAws, options: DemoOptions) -> Settings:
    return Settings(
        data_dir=options.data_dir,
        aws={"endpoint_url": aws.endpoint_url, "region": aws.region},
        source={"kind": "sqs", "queue_url": aws.queue_url},
        enforcement={"mode": "enforce", "web_acl_name": aws.web_acl_name, "interval_s": 60.0},
        api={"enabled": options.serve_api, "port": options.port},
        # The demo's clock runs ``speed`` times faster than the wall, and so does the idle
        # close's: its default 30 s would be one wall second at 30x, shorter than a busy
        # machine's pause between two simulated objects, and panes would close before their
        # minute's objects had all landed. Two simulated minutes is two delivery rounds.
        loop={"idle_sleep_s": 0.1, "status_interval_s": 30.0, "idle_close_s": 120.0},
        policy=DEMO_POLICY,
        model={"enabled": True, "refit_every_s": 900.0},  # an isolation forest learnt online
    )


def run_demo(
    options: DemoOptions, *, announce: Any = print, interrupt: threading.Event | None = None
) -> dict[str, Any]:
    """Run the demo; with ``options.minutes`` return the summary when that much has played.

    Setting ``interrupt`` (or Ctrl-C) ends it early; the summary covers what was played.
    """
    options.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(options.data_dir)  # each demo starts from an empty ledger and history
    options.data_dir.mkdir(parents=True)
    for var, value in (("AWS_ACCESS_KEY_ID", "demo"), ("AWS_SECRET_ACCESS_KEY", "demo")):
        os.environ.setdefault(var, value)  # the stand-in takes any credentials
    server, endpoint = start_moto()
    stop = interrupt or threading.Event()
    try:
        aws = bootstrap(endpoint)
        simulation = simulate_demo(
            minutes=options.minutes or 60, seed=options.seed, corpora_dir=options.corpora_dir
        )
        objects = timed_objects(simulation)
        start = simulation.config.start.timestamp()
        clock = AcceleratedClock(start, speed=options.speed)
        until = None if options.minutes is None else start + options.minutes * 60
        settings = demo_settings(aws, options)
        runner = EngineRunner.from_settings(settings, clock=clock, shield=RecordingShieldFake())
        analyst, _ = runner.ledger.create_token("demo-analyst", "analyst")
        admin, _ = runner.ledger.create_token("demo-admin", "admin")
        api = _start_api(settings, clock) if options.serve_api else None
        dashboard = f"http://127.0.0.1:{options.port}/" if api else "(off)"
        announce(
            f"wafsmith demo: AWS stand-in at {endpoint}; dashboard {dashboard}\n"
            f"  analyst token: {analyst}\n  admin token:   {admin}"
        )
        feeder = Feeder(objects, aws, clock, until)
        threading.Thread(target=feeder.run, args=(stop,), name="demo-feeder", daemon=True).start()
        progress = Progress(runner, start, announce)
        try:
            _drive(runner, feeder, stop, progress)
        finally:
            stop.set()
            if api is not None:
                api.stop()
                api.service.ledger.close()
        runner.enforce(clock.now())
        summary = summarize(runner, aws, simulation, feeder)
        runner.close()
        return summary
    finally:
        stop.set()
        server.stop()


@dataclass
class Progress:
    """One line per simulated minute: what has landed, what was proposed, what is blocked —
    so a newcomer sees the engine work from the first minute, not a silent screen."""

    runner: EngineRunner
    start: float
    announce: Any
    minute: int = 0

    def tick(self) -> None:
        minute = int((self.runner.clock.time() - self.start) // 60)
        if minute > self.minute:
            self.minute = minute
            self.announce(self.line())

    def line(self) -> str:
        tele = self.runner.telemetry
        states = self.runner.ledger.counts_by_state()
        cycle = self.runner.last_cycle
        blocked = 0 if cycle is None else sum(
            n for name, n in cycle.entries.items() if "block" in name
        )
        return (
            f"  minute {self.minute:>3}: {tele.objects:,} objects, {tele.rows:,} lines, "
            f"{sum(states.values()):,} proposals ({states.get('proposed', 0):,} waiting for "
            f"an analyst), {blocked:,} addresses blocked in WAF"
        )


def _drive(
    runner: EngineRunner, feeder: Feeder, stop: threading.Event, progress: Progress | None = None
) -> None:
    """Step the engine until interrupted, or until the feeder is done and the queue is empty."""
    idle_polls = 0
    try:
        while not stop.is_set():
            report = runner.step(stop)
            if progress is not None:
                progress.tick()
            if report.objects:
                idle_polls = 0
            elif feeder.done.is_set():
                idle_polls += 1
                if idle_polls >= 3:  # three empty long polls after the last object: drained
                    return
    except KeyboardInterrupt:
        return


def _start_api(settings: Settings, clock: AcceleratedClock) -> ApiThread:
    from api.server import ApiThread
    from engine.service import Service

    service = Service.from_settings(settings, clock=clock)
    api = ApiThread(service, host=settings.api.host, port=settings.api.port)
    api.start()
    return api


def summarize(runner: EngineRunner, aws: DemoAws, simulation: Simulation, feeder: Feeder) -> dict:
    """Objects, lines, decisions by state, and who ended up blocked, checked against labels."""
    entries = waf_entries(aws)
    blocking = [
        ipaddress.ip_network(a) for name, addrs in entries.items() if "block" in name for a in addrs
    ]
    labels = simulation.labels.to_pylist()
    blocked = {row["client_ip"] for row in labels if _covered(row["client_ip"], blocking)}
    attackers = {row["client_ip"] for row in labels if row["label"] == "attack"}
    tele = runner.telemetry
    return {
        "objects": tele.objects,
        "objects_put": feeder.put,
        "lines": tele.rows,
        "malformed": dict(tele.malformed),
        "rows_by_format": dict(tele.rows_by_format),
        "decisions_by_state": runner.ledger.counts_by_state(),
        "attackers": len(attackers),
        "attackers_blocked": len(blocked & attackers),
        "benign_clients": len(labels) - len(attackers),
        "benign_clients_blocked": len(blocked - attackers),
        "waf_entries": {name: len(addrs) for name, addrs in sorted(entries.items())},
        "last_cycle_ok": None if runner.last_cycle is None else runner.last_cycle.ok,
    }


def waf_entries(aws: DemoAws) -> dict[str, list[str]]:
    """The engine-owned IP sets in the stand-in WAF and their addresses."""
    waf = client("wafv2", aws.endpoint_url, aws.region)
    out: dict[str, list[str]] = {}
    for summary in waf.list_ip_sets(Scope=aws.scope, Limit=100).get("IPSets", []):
        if summary["Name"].startswith(ENGINE_PREFIX):
            got = waf.get_ip_set(Name=summary["Name"], Scope=aws.scope, Id=summary["Id"])
            out[summary["Name"]] = list(got["IPSet"]["Addresses"])
    return out


def _covered(ip: str, networks: list[Any]) -> bool:
    addr = ipaddress.ip_address(ip)
    return any(addr.version == n.version and addr in n for n in networks)
