"""One seeded, labelled request stream: benign populations plus attack campaigns."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.core.feeds import CLOUDFRONT, feed_networks
from engine.demo.simulator import attacks, benign, norule, populations
from engine.demo.simulator.addresses import AddressAllocator
from engine.demo.simulator.config import DATA_DIR, CampaignSpec, SecondWave, SimConfig
from engine.demo.simulator.stream import Profile, StreamBuilder
from engine.schema import request as rq

# Label-table columns (kept outside the canonical request schema on purpose).
L_CLIENT = "client_ip"
L_LABEL = "label"  # "benign" | "attack"
L_KIND = "kind"
L_CAMPAIGN = "campaign_id"
L_USERS = "users"  # humans behind the address (NAT gateways > 1)
L_FIRST = "first_seen"
L_LAST = "last_seen"
L_REQUESTS = "requests"

C_ID = "campaign_id"
C_KIND = "kind"
C_START = "start"
C_END = "end"
C_CLIENTS = "clients"

TS = pa.timestamp("ms", tz="UTC")


@dataclass(frozen=True)
class Simulation:
    """The ground truth of one run: requests, who each client is, and the campaigns."""

    seed: int
    config: SimConfig
    requests: pa.Table  # REQUEST_SCHEMA, every column filled (the "truth" view)
    labels: pa.Table  # one row per client
    campaigns: pa.Table  # one row per attack campaign


def load_crawlers() -> list[dict]:
    return json.loads((DATA_DIR / "crawler_networks.json").read_text(encoding="utf-8"))["crawlers"]


def simulate(config: SimConfig, seed: int) -> Simulation:
    """Generate the stream for ``seed``; the same (config, seed) always gives the same rows."""
    rng = np.random.default_rng(seed)
    prof = Profile.load()
    mat = attacks.AttackMaterial.load(config.corpora_dir)
    crawlers = load_crawlers()
    # Pools avoid crawler networks and CloudFront's (an ALB reads those as edges, not clients).
    reserved = [n for c in crawlers for n in c["networks"]] + feed_networks((CLOUDFRONT,))
    alloc = AddressAllocator(rng, reserved)
    b = StreamBuilder(rng, config.host)
    t0, t1 = config.start_ms, config.end_ms
    who: dict[str, tuple[str, str, str | None, int]] = {}  # ip -> (label, kind, campaign, users)

    for ip in alloc.residential(config.browsers, config.ipv6_fraction, reuse=0.1):
        benign.browser(b, prof, ip, t0, t1)
        who[ip] = ("benign", "browser", None, 1)
    lo, hi = config.nat_users
    for ip in alloc.residential(config.nat_gateways):
        users = int(rng.integers(lo, hi + 1))
        benign.nat_gateway(b, prof, ip, users, t0, t1)
        who[ip] = ("benign", "nat_gateway", None, users)
    for i in range(config.crawlers):
        spec = crawlers[i % len(crawlers)]
        ip = alloc.in_network(str(rng.choice(spec["networks"])))
        benign.crawler(b, prof, ip, str(rng.choice(spec["user_agents"])), t0, t1)
        who[ip] = ("benign", "crawler", None, 1)
    for ip in alloc.spread(config.api_pollers):
        benign.api_poller(b, ip, t0, t1)
        who[ip] = ("benign", "api_poller", None, 1)
    for i, ip in enumerate(alloc.spread(config.health_checkers)):
        benign.health_checker(b, ip, benign.MONITOR_AGENTS[i % len(benign.MONITOR_AGENTS)], t0, t1)
        who[ip] = ("benign", "health_checker", None, 1)

    for kind in norule.LOOKALIKES.values() if config.lookalikes else ():
        for ip in alloc.residential(config.lookalikes):
            norule.lookalike(b, prof, kind, ip, t0, t1)
            who[ip] = ("benign", kind, None, 1)

    camp_rows = []
    for n, spec in enumerate(config.campaigns):
        cid = f"c{n:02d}-{spec.kind}"
        jitter = rng.uniform(-config.start_jitter_min, config.start_jitter_min)
        start_min = min(max(0.0, spec.start_min + jitter), config.minutes - 1)
        c0 = t0 + int(start_min * 60_000)
        c1 = min(t1, c0 + int(spec.duration_min * 60_000))
        spec = _jittered(spec, config.param_jitter, rng)
        if spec.subnets:
            ips = alloc.concentrated(spec.clients, spec.subnets)
        elif spec.pool == "residential":
            ips = alloc.residential(spec.clients, reuse=0.3)  # /24s shared with benign users
        else:
            ips = alloc.spread(spec.clients)
        attacks.emit(b, prof, mat, spec, ips, c0, c1)
        for ip in ips:
            who[ip] = ("attack", spec.kind, cid, 1)
        camp_rows.append((cid, spec.kind, c0, c1, len(ips)))

    wave = config.second_wave
    if wave != SecondWave():  # its own generator: streams without it stay byte-identical
        b.rng, saved = np.random.default_rng([seed, 11]), b.rng
        alloc._rng = b.rng
        extra = populations.add(b, prof, alloc, wave, t0, t1)
        who.update(extra)
        for _label, kind, cid, _users in extra.values():
            if cid and cid not in {r[0] for r in camp_rows}:
                members = sum(1 for v in extra.values() if v[2] == cid)
                camp_rows.append((cid, kind, t0, t1, members))
        b.rng = saved
    requests = b.table(t0, t1)
    return Simulation(seed, config, requests, _labels(requests, who), _campaigns(camp_rows))


def _jittered(spec: CampaignSpec, spread: float, rng: np.random.Generator) -> CampaignSpec:
    """The campaign with its rate (and size, above 4 addresses) scaled by U(1±spread)."""
    if spread == 0:
        return spec
    update = {"rate_per_client": spec.rate_per_client * rng.uniform(1 - spread, 1 + spread)}
    if spec.clients > 4:
        update["clients"] = max(1, round(spec.clients * rng.uniform(1 - spread, 1 + spread)))
    return spec.model_copy(update=update)


def _labels(requests: pa.Table, who: dict) -> pa.Table:
    stats = requests.group_by(rq.CLIENT_IP).aggregate(
        [(rq.EVENT_TIME, "min"), (rq.EVENT_TIME, "max"), (rq.EVENT_TIME, "count")]
    )
    seen = dict(
        zip(
            stats[rq.CLIENT_IP].to_pylist(),
            zip(
                stats[f"{rq.EVENT_TIME}_min"].to_pylist(),
                stats[f"{rq.EVENT_TIME}_max"].to_pylist(),
                stats[f"{rq.EVENT_TIME}_count"].to_pylist(),
                strict=True,
            ),
            strict=True,
        )
    )
    ips = sorted(ip for ip in who if ip in seen)  # clients whose requests all fell outside: none
    return pa.table(
        {
            L_CLIENT: pa.array(ips, pa.string()),
            L_LABEL: pa.array([who[ip][0] for ip in ips], pa.string()),
            L_KIND: pa.array([who[ip][1] for ip in ips], pa.string()),
            L_CAMPAIGN: pa.array([who[ip][2] for ip in ips], pa.string()),
            L_USERS: pa.array([who[ip][3] for ip in ips], pa.int32()),
            L_FIRST: pa.array([seen[ip][0] for ip in ips], TS),
            L_LAST: pa.array([seen[ip][1] for ip in ips], TS),
            L_REQUESTS: pa.array([seen[ip][2] for ip in ips], pa.int64()),
        }
    )


def _campaigns(rows: list[tuple]) -> pa.Table:
    return pa.table(
        {
            C_ID: pa.array([r[0] for r in rows], pa.string()),
            C_KIND: pa.array([r[1] for r in rows], pa.string()),
            C_START: pa.array([r[2] for r in rows], pa.int64()).cast(TS),
            C_END: pa.array([r[3] for r in rows], pa.int64()).cast(TS),
            C_CLIENTS: pa.array([r[4] for r in rows], pa.int32()),
        }
    )


def attack_requests(sim: Simulation) -> pa.Table:
    """The requests sent by attack clients (a convenience for checks and reports)."""
    attackers = pc.filter(sim.labels[L_CLIENT], pc.equal(sim.labels[L_LABEL], "attack"))
    return sim.requests.filter(pc.is_in(sim.requests[rq.CLIENT_IP], value_set=attackers))
