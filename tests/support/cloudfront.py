"""Behind-CloudFront test helpers: edge and viewer addresses from the packaged feed, WAF log
lines that carry X-Forwarded-For, and the forwarded-IP config IP-set rules must carry."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

EDGE = "130.176.88.10"  # CLOUDFRONT_ORIGIN_FACING in the packaged feed

EDGE_2 = "205.251.249.20"  # CLOUDFRONT (edge) in the packaged feed

VIEWER = "198.51.100.77"

T0 = 1764489600000  # 2025-11-30T08:00:00Z


def waf_line(i: int, client: str, forwarded: list[str]) -> str:
    headers = [{"name": "Host", "value": "shop.example.com"}]
    headers += [{"name": "X-Forwarded-For", "value": v} for v in forwarded]
    return json.dumps({
        "timestamp": T0 + i * 150, "action": "ALLOW", "terminatingRuleId": "Default_Action",
        "terminatingRuleType": "REGULAR",
        "httpRequest": {"clientIp": client, "country": "US", "headers": headers,
                        "uri": "/search", "args": f"q={i}", "httpVersion": "HTTP/1.1",
                        "httpMethod": "GET", "requestId": f"r{i}"},
        "labels": [],
    })  # fmt: skip


def write(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


FORWARDED = {"FallbackBehavior": "NO_MATCH", "HeaderName": "X-Forwarded-For", "Position": "LAST"}


def references(statement: Any) -> list[dict]:
    """Every IPSetReferenceStatement inside a WAFv2 statement."""
    if isinstance(statement, dict):
        found = [statement["IPSetReferenceStatement"]] if "IPSetReferenceStatement" in statement \
            else []  # fmt: skip
        return found + [r for v in statement.values() for r in references(v)]
    if isinstance(statement, list):
        return [r for v in statement for r in references(v)]
    return []
