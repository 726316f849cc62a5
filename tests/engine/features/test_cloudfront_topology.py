"""A site behind CloudFront, through ``wafsmith analyze`` with no configuration at all.

- ALB logs name CloudFront edges as clients (and carry no X-Forwarded-For): an edge that
  forwards a flood of viewers is never proposed, and the summary says once why.
- WAF logs of a web ACL on that ALB name the edge too, but carry the viewer in
  X-Forwarded-For: CloudFront's published ranges are the trusted proxies, so the viewer is
  blocked — never the edge, and never a spoofed entry the viewer sent itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from engine.cli.main import main
from engine.pipeline import BEHIND_CLOUDFRONT_ALB, BEHIND_CLOUDFRONT_XFF
from tests.support.cloudfront import EDGE, EDGE_2, T0, VIEWER, waf_line, write

DIRECT = "203.0.113.9"  # an attacker reaching the ALB directly, not through CloudFront
CONFIG = "[features]\nallowed_lateness_s = 0\n"


def alb_line(i: int, client: str) -> str:
    ts = datetime.fromtimestamp((T0 + i * 150) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (
        f'http {ts} app/lb/50dc6c495c0c9188 {client}:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 '
        f'34 366 "GET http://shop.example.com:80/search?q={i} HTTP/1.1" "Mozilla/5.0 Firefox/118" '
        f'- - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/t/73e2d6bc24d8a067 '
        f'"Root=1-58337262-{i:024x}" "-" "-" 0 {ts} "forward" "-" "-" "10.0.0.1:80" "200" "-" "-"'
    )


def analyze(tmp_path: Path, log: Path, capsys) -> tuple[dict, str]:
    config = tmp_path / "wafsmith.toml"
    config.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "result.json"
    code = main(["analyze", str(log), "--config", str(config), "--json", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    return json.loads(out.read_text()), err


def clients(doc: dict) -> set[str]:
    return {d["client"] for d in doc["decisions"]} | {
        m for d in doc["decisions"] for m in d["members"]
    }


def test_alb_logs_behind_cloudfront_never_propose_an_edge(tmp_path, capsys):
    lines = [alb_line(i, EDGE if i % 2 else EDGE_2) for i in range(800)]
    lines += [alb_line(i, DIRECT) for i in range(400)]
    doc, err = analyze(tmp_path, write(tmp_path / "alb.log.gz", lines), capsys)
    assert clients(doc) == {DIRECT}
    assert doc["stats"]["cloudfront_edge_rows"] == 800
    assert doc["stats"]["notices"] == [BEHIND_CLOUDFRONT_ALB]
    assert err.count(BEHIND_CLOUDFRONT_ALB) == 1
    assert main(["analyze", str(tmp_path / "alb.log.gz"), "--config",
                 str(tmp_path / "wafsmith.toml")]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert printed.count(BEHIND_CLOUDFRONT_ALB) == 1 and DIRECT in printed and EDGE not in printed


def test_waf_logs_behind_cloudfront_block_the_viewer_from_x_forwarded_for(tmp_path, capsys):
    # The viewer sends its own X-Forwarded-For: 8.8.8.8; CloudFront appends the real address.
    lines = [waf_line(i, EDGE if i % 2 else EDGE_2, [f"8.8.8.8, {VIEWER}"]) for i in range(400)]
    doc, err = analyze(tmp_path, write(tmp_path / "waf.log.gz", lines), capsys)
    assert clients(doc) == {VIEWER}
    assert doc["stats"]["cloudfront_forwarded_rows"] == 400
    assert doc["stats"]["cloudfront_edge_rows"] == 0
    assert doc["stats"]["notices"] == [BEHIND_CLOUDFRONT_XFF]
    assert err.count(BEHIND_CLOUDFRONT_XFF) == 1


def test_waf_rows_from_an_edge_without_forwarded_header_name_nobody(tmp_path, capsys):
    lines = [waf_line(i, EDGE, []) for i in range(400)]
    lines += [waf_line(i, DIRECT, []) for i in range(400)]
    doc, _ = analyze(tmp_path, write(tmp_path / "waf.log.gz", lines), capsys)
    assert clients(doc) == {DIRECT}
    assert doc["stats"]["no_client_identity_rows"] == {"xff_missing": 400}
    assert doc["stats"]["notices"] == []
