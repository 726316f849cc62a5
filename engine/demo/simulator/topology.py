"""CloudFront in front of the ALB: what each layer of that site logs (issue 11).

The same labelled stream, seen through a CloudFront distribution:

- CloudFront's standard logs hold every request, with the viewer as ``c-ip``.
- Cache hits (most static assets, some plain page GETs) never reach the origin: they are in
  no ALB or WAF log.
- The ALB (and a web ACL attached to it) sees the request coming from a CloudFront
  origin-facing address — a few per point of presence, shared by every viewer it serves.
  ALB logs carry no X-Forwarded-For; WAF logs carry CloudFront's ``X-Forwarded-For: viewer``.

``edge_viewers`` maps each edge address to the viewers whose requests it forwarded, so a
decision on an edge can be scored for the viewers it would block.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.core.feeds import cloudfront_services
from engine.demo.simulator.simulate import Simulation
from engine.schema import request as rq

POPS = 12  # points of presence serving the site
EDGES_PER_POP = 4
ASSET_HIT = 0.9  # share of static assets served from cache
PAGE_HIT = 0.3  # share of plain page GETs (no query) served from cache


@dataclass(frozen=True)
class Fronted:
    """Per log format, what that layer logged; and which viewers each edge forwarded."""

    tables: dict[str, pa.Table]
    edge_viewers: dict[str, set[str]]
    cache_hits: int


def _edge_addresses(rng: np.random.Generator) -> list[list[str]]:
    nets = [
        ipaddress.ip_network(n)
        for n in cloudfront_services()["CLOUDFRONT_ORIGIN_FACING"]
        if ":" not in n
    ]
    pops = []
    for p in range(POPS):
        net = nets[int(rng.integers(len(nets)))] if p >= len(nets) else nets[p]
        hosts = rng.choice(min(net.num_addresses - 2, 250), size=EDGES_PER_POP, replace=False)
        pops.append([str(net.network_address + 1 + int(h)) for h in hosts])
    return pops


def front_with_cloudfront(sim: Simulation) -> Fronted:
    """The stream of ``sim`` as the layers behind a CloudFront distribution log it."""
    rng = np.random.default_rng([sim.seed, 23])
    t = sim.requests
    n = t.num_rows
    pops = _edge_addresses(rng)
    viewers = t[rq.CLIENT_IP].combine_chunks()
    enc = pc.dictionary_encode(viewers)
    uniq, idx = enc.dictionary.to_pylist(), enc.indices.to_numpy(zero_copy_only=False)
    pop_of = rng.integers(0, POPS, size=len(uniq))  # a viewer reaches one POP
    edge_pick = rng.integers(0, EDGES_PER_POP, size=n)  # each request any of its edges
    edges = np.array([pops[pop_of[v]][e] for v, e in zip(idx, edge_pick, strict=True)], object)

    static = pc.match_substring_regex(
        t[rq.PATH], r"\.(css|js|png|jpg|jpeg|gif|ico|svg|woff2?)$", ignore_case=True
    ).to_numpy(zero_copy_only=False)
    plain_get = (
        pc.equal(t[rq.METHOD], "GET").to_numpy(zero_copy_only=False)
        & pc.is_null(t[rq.QUERY]).to_numpy(zero_copy_only=False)
        & pc.equal(t[rq.STATUS], 200).to_numpy(zero_copy_only=False)
    )
    draw = rng.random(n)
    hit = (static & (draw < ASSET_HIT)) | (~static & plain_get & (draw < PAGE_HIT))
    origin = ~hit

    at_origin = t.filter(pa.array(origin))
    origin_edges = pa.array(edges[origin], pa.string())
    ip_col = at_origin.schema.get_field_index(rq.CLIENT_IP)
    xff_col = at_origin.schema.get_field_index(rq.X_FORWARDED_FOR)
    alb = at_origin.set_column(ip_col, rq.CLIENT_IP, origin_edges)
    waf = alb.set_column(xff_col, rq.X_FORWARDED_FOR, at_origin[rq.CLIENT_IP])
    edge_viewers: dict[str, set[str]] = {}
    for e, v in zip(edges[origin], np.asarray(uniq, object)[idx[origin]], strict=True):
        edge_viewers.setdefault(str(e), set()).add(str(v))
    return Fronted({"alb": alb, "waf": waf, "cloudfront": t}, edge_viewers, int(hit.sum()))
