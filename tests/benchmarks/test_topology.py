"""The CloudFront-fronted site the benchmark measures, and wafsmith on each of its logs."""

from __future__ import annotations

import json
import zlib

import pyarrow as pa

from benchmarks.bench_detection import log_batches, parse_objects
from benchmarks.topology import _expand
from engine.core.feeds import load_feed
from engine.demo.simulator import preset, render, simulate
from engine.demo.simulator.simulate import L_CLIENT, L_KIND
from engine.demo.simulator.topology import front_with_cloudfront
from engine.pipeline import BEHIND_CLOUDFRONT_ALB, analyze_tables
from engine.schema import request as rq

WAVE = dict(seo_crawlers=3, impersonators=1, flash_crowd=30, ipv6_households=5, ipv6_mobiles=3)


def test_fronted_logs_show_edges_to_the_alb_and_viewers_in_forwarded_headers():
    sim = simulate(preset("tiny", second_wave=WAVE), 1)
    fronted = front_with_cloudfront(sim)
    objects = render(sim, tables=fronted.tables)
    parsed, how = parse_objects(objects, sim)
    assert how == "engine.parsers.parse_object"
    edges = load_feed("cloudfront").cidrs()
    alb = pa.concat_tables(parsed["alb"])
    assert edges.contains(alb[rq.CLIENT_IP]).all()
    cf = pa.concat_tables(parsed["cloudfront"])
    assert not edges.contains(cf[rq.CLIENT_IP]).any()
    assert cf.num_rows == alb.num_rows + fronted.cache_hits  # hits never reach the origin
    waf_line = zlib.decompress(next(o for o in objects if o.fmt == "waf").data, 31)
    record = json.loads(waf_line.splitlines()[0])
    headers = {h["name"]: h["value"] for h in record["httpRequest"]["headers"]}
    viewers = set(sim.labels[L_CLIENT].to_pylist())
    assert headers["X-Forwarded-For"] in viewers
    assert record["httpRequest"]["clientIp"] not in viewers

    kinds = dict(zip(sim.labels[L_CLIENT].to_pylist(), sim.labels[L_KIND].to_pylist(),
                     strict=True))  # fmt: skip
    for fmt in ("alb", "waf"):
        res = analyze_tables(log_batches(fmt, parsed[fmt], objects))
        decisions, edges_hit = _expand(res.decisions, fronted.edge_viewers)
        assert edges_hit == 0
        hit = {c for d in decisions for c in (d.client, *d.members)}
        assert not {c for c in hit if kinds.get(c) in ("crawler", "seo_crawler")}
        if fmt == "alb":
            assert res.stats["notices"] == [BEHIND_CLOUDFRONT_ALB] and not res.decisions
        else:  # the viewers themselves: the impersonator among them
            assert any(kinds.get(c) == "crawler_impersonator" for c in hit)
