"""Write the WAF ↔ ALB / CloudFront join fixtures (``data/fixtures/join/``), byte-deterministic.

    python -m benchmarks.join_fixtures --out data/fixtures/join

One small simulated stream (browsers and one credential stuffer, 10 minutes, seed 5) logged
three times: by the ALB (``alb.log.gz``), by CloudFront (``cloudfront.log.gz``) and by two
web ACLs: one attached to the ALB (``waf-alb.log.gz``, ``requestId`` = the ALB trace id's
``Root`` component, as the simulator renders it) and one attached to the distribution
(``waf-cloudfront.log.gz``, ``requestId`` = CloudFront's ``x-edge-request-id``,
``httpSourceName`` ``CF``). No WAF record carries a status.
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

from engine.demo.simulator import CampaignSpec, preset, render, simulate
from engine.demo.simulator.render import LogObject, _gz

SEED = 5
STUFFER = CampaignSpec(
    kind="credential_stuffing", clients=1, start_min=2, duration_min=4, rate_per_client=1
)


def fixtures() -> dict[str, bytes]:
    cfg = preset("tiny", minutes=10, browsers=25, nat_gateways=0, crawlers=0, api_pollers=0,
                 health_checkers=0, campaigns=[STUFFER], param_jitter=0.0,
                 start_jitter_min=0.0)  # fmt: skip
    sim = simulate(cfg, SEED)
    objects = render(sim)
    out = {
        "alb.log.gz": _joined(objects, "alb"),
        "cloudfront.log.gz": _joined(objects, "cloudfront"),
        "waf-alb.log.gz": _joined(objects, "waf"),
    }
    # The same requests through a CloudFront-scope web ACL: its requestId is CloudFront's.
    ms = sim.requests["event_time"].cast("int64").to_pylist()
    edge_id = {
        f"1-{t // 1000:08x}-{rid[:24]}": rid
        for t, rid in zip(ms, sim.requests["request_id"].to_pylist(), strict=True)
    }
    lines = []
    for line in zlib.decompress(out["waf-alb.log.gz"], 31).decode().splitlines():
        rec = json.loads(line)
        rec["httpSourceName"] = "CF"
        rec["httpSourceId"] = f"{cfg.account}:{cfg.distribution}"
        rec["httpRequest"]["requestId"] = edge_id[rec["httpRequest"]["requestId"]]
        lines.append(json.dumps(rec, separators=(",", ":")))
    out["waf-cloudfront.log.gz"] = _gz("\n".join(lines) + "\n")
    return out


def _joined(objects: list[LogObject], fmt: str) -> bytes:
    """Every object of one format as one gzip file (CloudFront: one header)."""
    text = []
    for obj in objects:
        if obj.fmt != fmt:
            continue
        body = zlib.decompress(obj.data, 31).decode()
        if fmt == "cloudfront" and text:
            body = "".join(x for x in body.splitlines(keepends=True) if not x.startswith("#"))
        text.append(body)
    return _gz("".join(text))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in fixtures().items():
        (args.out / name).write_bytes(data)
        print(f"{args.out / name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
