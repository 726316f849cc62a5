"""Which log format an object holds, from its first bytes and (if given) its S3 key.

Content decides when it is conclusive; the key layout is the tie-breaker for content that
says nothing (e.g. a legacy CloudFront file without a ``#Fields`` header). Buckets are shared
and prefixes operator-chosen, so the key alone never overrides clear content.
"""

from __future__ import annotations

import re

ALB = "alb"
CLOUDFRONT = "cloudfront"
WAF = "waf"
UNKNOWN = "unknown"

_ALB_LINE = re.compile(
    rb"^(?:https?|h2|grpcs|ws|wss) \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z "
)
_CF_LINE = re.compile(rb"^\d{4}-\d{2}-\d{2}\t\d{2}:\d{2}:\d{2}\t")
_CF_KEY = re.compile(r"(?:^|/)[A-Z0-9]{8,20}\.\d{4}-\d{2}-\d{2}-\d{2}\.[^/]+$")
_ALB_KEY = re.compile(r"(?:^|/|_)elasticloadbalancing(?:/|_)")
_WAF_KEY = re.compile(r"(?:^|/)(?:WAFLogs/|aws-waf-logs-)|_waflogs_")


def detect_from_key(key: str | None) -> str:
    """The format an S3 key layout announces, or ``"unknown"``."""
    if not key:
        return UNKNOWN
    if "/conn_log." in key:  # ALB connection logs are a different record
        return UNKNOWN
    if _ALB_KEY.search(key):
        return ALB
    if _WAF_KEY.search(key):
        return WAF
    if _CF_KEY.search(key):
        return CLOUDFRONT
    return UNKNOWN


def detect_from_content(head: bytes) -> str:
    """The format the first non-empty, non-comment lines show, or ``"unknown"``."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith((b"#Version", b"#Fields")):
        return CLOUDFRONT
    if text.startswith(b"{"):
        return WAF
    for line in text.split(b"\n", 8)[:8]:
        line = line.strip(b"\r")
        if not line or line.startswith(b"#"):
            continue
        if line.startswith(b"{"):
            return WAF
        if _ALB_LINE.match(line):
            return ALB
        if _CF_LINE.match(line):
            return CLOUDFRONT
        return UNKNOWN
    return UNKNOWN


def detect_format(head: bytes, key: str | None = None) -> str:
    """Content first; the key layout only when the content is inconclusive."""
    found = detect_from_content(head)
    return found if found != UNKNOWN else detect_from_key(key)
