"""Format behaviour a user relies on: detection, header-driven CloudFront, WAF headers."""

from __future__ import annotations

import json

import pytest

from engine.parsers import PARSERS, detect_format, parse_object
from engine.schema.request import (
    CLIENT_IP,
    COUNTRY,
    EVENT_TIME,
    HOST,
    PATH,
    QUERY,
    REFERER,
    REQUEST_ID,
    STATUS,
    USER_AGENT,
    WAF_ACTION,
    WAF_LABELS,
    WAF_RULE,
    X_FORWARDED_FOR,
)
from tests.support.expectations import only_row, plain

ALB_HEAD = b"h2 2026-11-30T08:01:04.587184Z app/x/1 192.0.2.1:1 - 0 0 0 200 200 1 1 "
CF_HEAD = b"#Version: 1.0\n#Fields: date time c-ip\n"
WAF_HEAD = b'{"timestamp":1700000000000,"action":"ALLOW"}\n'
ALB_KEY = (
    "logs/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2026/11/30/123456789012_"
    "elasticloadbalancing_us-east-2_app.shop.50dc6c_20261130T0805Z_192.0.2.9_2x8s.log.gz"
)
WAF_KEY = (
    "AWSLogs/111111111111/WAFLogs/us-east-1/TEST-WEBACL/2021/10/28/19/50/"
    "111111111111_waflogs_us-east-1_TEST-WEBACL_20211028T1950Z_e0ca43b5.log.gz"
)
CF_KEY = "example-prefix/EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz"


def test_registry_names_the_three_formats() -> None:
    assert PARSERS.names() == ["alb", "cloudfront", "waf"]


@pytest.mark.parametrize(
    ("head", "key", "expected"),
    [
        (ALB_HEAD, None, "alb"),
        (b"#\n" + ALB_HEAD, None, "alb"),
        (CF_HEAD, None, "cloudfront"),
        (b"2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\n", None, "cloudfront"),
        (WAF_HEAD, None, "waf"),
        (b"\n\n  " + WAF_HEAD, None, "waf"),
        (b"garbage", None, "unknown"),
        (b"garbage", ALB_KEY, "alb"),
        (b"garbage", WAF_KEY, "waf"),
        (b"garbage", "firehose/aws-waf-logs-shop-1-2026-11-30-08-00-00-uuid", "waf"),
        (b"garbage", CF_KEY, "cloudfront"),
        (WAF_HEAD, CF_KEY, "waf"),  # clear content wins over the key
        (b"garbage", "AWSLogs/1/elasticloadbalancing/r/2026/11/30/conn_log.1_x.log.gz", "unknown"),
    ],
)
def test_detect_format(head: bytes, key: str | None, expected: str) -> None:
    assert detect_format(head, key) == expected


def test_unknown_explicit_format_is_refused() -> None:
    with pytest.raises(KeyError, match="known: alb, cloudfront, waf"):
        parse_object(b"", fmt="apache")


def test_cloudfront_columns_follow_the_fields_header() -> None:
    """Field order is read from #Fields, not assumed; unknown fields are ignored."""
    data = (
        b"#Version: 1.0\n"
        b"#Fields: cs-uri-stem c-ip x-new-field time sc-status date cs(User-Agent) cs-uri-query\n"
        b"/a\t2001:DB8::1\tzzz\t01:02:03\t404\t2026-11-30\tbot%2F1.0%20(x)\tq=%2541\n"
    )
    row = only_row(parse_object(data).table)
    assert plain(row[EVENT_TIME]) == "2026-11-30T01:02:03.000Z"
    assert (row[PATH], row[CLIENT_IP], row[STATUS]) == ("/a", "2001:db8::1", 404)
    assert row[USER_AGENT] == "bot/1.0 (x)"
    assert row[QUERY] == "q=%41"  # decoded exactly once


def test_cloudfront_a_second_fields_header_switches_the_layout() -> None:
    data = (
        b"#Fields: date time c-ip cs-uri-stem\n2026-11-30\t00:00:01\t192.0.2.1\t/first\n"
        b"#Fields: cs-uri-stem date time c-ip\n/second\t2026-11-30\t00:00:02\t192.0.2.2\n"
    )
    result = parse_object(data)
    assert result.malformed == {}
    assert result.table.column(PATH).to_pylist() == ["/first", "/second"]
    assert result.table.column(CLIENT_IP).to_pylist() == ["192.0.2.1", "192.0.2.2"]


def waf_record(headers: list[dict], **extra) -> bytes:
    record = {
        "timestamp": 1700000000123,
        "action": "BLOCK",
        "terminatingRuleId": "rate-limit",
        "terminatingRuleType": "RATE_BASED",
        "rateBasedRuleList": [{"rateBasedRuleName": "rate-limit", "limitKey": "IP"}],
        "httpRequest": {"clientIp": "203.0.113.9", "country": "-", "headers": headers,
                        "uri": "/x", "args": "", "httpVersion": "HTTP/2.0", "httpMethod": "GET",
                        "requestId": "null"},
        **extra,
    }  # fmt: skip
    return json.dumps(record).encode() + b"\n"


def test_waf_headers_are_matched_case_insensitively_first_one_wins() -> None:
    headers = [
        {"name": "HOST", "value": "shop.example.com"},
        {"name": "user-agent", "value": "ua-1"},
        {"name": "User-Agent", "value": "ua-2"},
        {"name": "x-forwarded-FOR", "value": "198.51.100.1, 192.0.2.7"},
        {"name": "Referer"},  # no value, as in the AWS documentation example
        {"name": "Accept", "value": "*/*"},
    ]
    row = only_row(parse_object(waf_record(headers, labels=[{"name": "a:b"}, {"name": "c"}])).table)
    assert (row[HOST], row[USER_AGENT], row[REFERER]) == ("shop.example.com", "ua-1", None)
    assert row[X_FORWARDED_FOR] == "198.51.100.1, 192.0.2.7"
    assert row[WAF_LABELS] == ["a:b", "c"]
    assert (row[COUNTRY], row[REQUEST_ID], row[QUERY]) == (None, None, None)
    assert plain(row[EVENT_TIME]) == "2023-11-14T22:13:20.123Z"
    assert (row[WAF_ACTION], row[WAF_RULE]) == ("BLOCK", "rate-limit")


def test_waf_records_joined_without_newline_are_split() -> None:
    one = waf_record([]).strip()
    result = parse_object(one + one + b"\n" + one + one + one)
    assert result.rows == 5 and result.malformed == {}


def test_waf_brace_pair_inside_a_string_does_not_break_the_record() -> None:
    record = waf_record([{"name": "Host", "value": "a}{b"}])
    result = parse_object(record + record)
    assert result.rows == 2 and result.malformed == {}
    assert result.table.column(HOST).to_pylist() == ["a}{b", "a}{b"]


def test_waf_empty_headers_and_missing_labels() -> None:
    row = only_row(parse_object(waf_record([])).table)
    assert (row[HOST], row[USER_AGENT], row[WAF_LABELS]) == (None, None, None)
