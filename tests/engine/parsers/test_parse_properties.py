"""Hypothesis: rendered valid lines round-trip; mutated lines never raise and are counted."""

from __future__ import annotations

import gzip
import ipaddress
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.parsers import parse_object
from engine.schema.request import (
    CLIENT_IP,
    DURATION_MS,
    EVENT_TIME,
    HOST,
    PATH,
    QUERY,
    REQUEST_SCHEMA,
    USER_AGENT,
    WAF_LABELS,
)
from tests.support.expectations import data_lines, only_row, plain

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ipv4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
ipv6 = st.integers(0, 2**128 - 1).map(lambda n: ipaddress.IPv6Address(n))
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda t: t.replace(tzinfo=UTC)
)
token = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~", min_size=1,
                max_size=12)  # fmt: skip
path = st.lists(token, min_size=0, max_size=4).map(lambda parts: "/" + "/".join(parts))
query = st.one_of(st.none(), st.lists(token, max_size=3).map("&".join))
agent = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters='"\\'),
    min_size=1, max_size=40,
).filter(lambda s: s.strip() == s and s != "-")  # fmt: skip
status = st.integers(100, 599)
seconds = st.one_of(st.just(-1.0), st.integers(0, 99_999).map(lambda n: n / 1000))


def iso_ms(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@st.composite
def alb_lines(draw):
    t = draw(times)
    v6 = draw(st.booleans())
    ip = draw(ipv6) if v6 else draw(ipv4)
    client = f"[{ip.exploded.upper()}]" if v6 else ip
    port = draw(st.integers(1, 65535))
    timings = [draw(seconds) for _ in range(3)]
    p, q, ua, s = draw(path), draw(query), draw(agent), draw(status)
    host = draw(token)
    url = f"https://{host}:443{p}" + ("" if q is None else f"?{q}")
    method = draw(st.sampled_from(["GET", "POST", "HEAD", "PUT"]))
    extra = draw(st.integers(0, 3))
    line = (
        f"https {t.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} app/x/1 {client}:{port} - "
        f"{' '.join(f'{x:.3f}' if x >= 0 else '-1' for x in timings)} {s} - 7 9 "
        f'"{method} {url} HTTP/1.1" "{ua}" - - - "Root=1-a" "-" "-" 0 '
        f'{t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")} "waf" "-" "-" "-" "-" "-" "-" TID_1 "-" "-" "-"'
        + " x"
        * extra
    )
    duration = None if min(timings) < 0 else sum(timings) * 1000
    expected = {
        "event_time": iso_ms(t.replace(microsecond=t.microsecond // 1000 * 1000)),
        "client_ip": str(ipaddress.ip_address(ip)), "client_port": port, "method": method,
        "host": host, "path": p, "query": q, "status": s, "origin_status": None,
        "user_agent": ua, "waf_action": "waf", "bytes_in": 7, "bytes_out": 9,
    }  # fmt: skip
    return line, expected, duration


@SETTINGS
@given(alb_lines())
def test_alb_lines_round_trip(case) -> None:
    line, expected, duration = case
    row = only_row(parse_object(line.encode() + b"\n").table)
    assert {k: plain(row[k]) for k in expected} == expected
    if duration is None:
        assert row[DURATION_MS] is None
    else:
        assert abs(row[DURATION_MS] - duration) <= 1e-3 * max(1.0, duration)


@SETTINGS
@given(times, ipv4, path, query, agent, status)
def test_cloudfront_lines_round_trip(t, ip, p, q, ua, s) -> None:
    t = t.replace(microsecond=0)
    fields = [t.strftime("%Y-%m-%d"), t.strftime("%H:%M:%S"), ip, p, str(s),
              quote(ua, safe=""), "-" if q is None else quote(q, safe="=&")]  # fmt: skip
    data = ("#Fields: date time c-ip cs-uri-stem sc-status cs(User-Agent) cs-uri-query\n"
            + "\t".join(fields) + "\n").encode()  # fmt: skip
    row = only_row(parse_object(data).table)
    got = {k: plain(row[k]) for k in ("event_time", "client_ip", "path", "status", "user_agent")}
    assert got == {"event_time": iso_ms(t), "client_ip": ip, "path": p, "status": s,
                   "user_agent": ua}  # fmt: skip
    assert row[QUERY] == q


@SETTINGS
@given(st.integers(0, 2**41), ipv4, path, agent, st.sampled_from(["host", "HOST", "Host"]),
       st.booleans())  # fmt: skip
def test_waf_records_round_trip(ms, ip, p, ua, host_name, gz) -> None:
    record = {"timestamp": ms, "action": "COUNT", "terminatingRuleId": "r",
              "httpRequest": {"clientIp": ip, "uri": p, "httpMethod": "GET", "headers": [
                  {"name": host_name, "value": "h.example"}, {"name": "User-Agent", "value": ua}]},
              "labels": [{"name": "awswaf:x"}]}  # fmt: skip
    data = json.dumps(record).encode()
    row = only_row(parse_object(gzip.compress(data) if gz else data).table)
    assert plain(row[EVENT_TIME]) == iso_ms(
        datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    )
    assert (row[CLIENT_IP], row[PATH], row[HOST], row[USER_AGENT]) == (
        ip, p, "h.example", ua,
    )  # fmt: skip
    assert row[WAF_LABELS] == ["awswaf:x"]


VALID = {
    "alb": (
        b"https 2026-11-30T08:00:00.000000Z app/x/1 192.0.2.1:1 - 0.1 0.1 0.1 200 200 1 2 "
        b'"GET https://h:443/p?q HTTP/1.1" "ua" - - - "Root=1-a" "-" "-" 0 '
        b'2026-11-30T08:00:00.000000Z "forward" "-" "-" "-" "-" "-" "-"'
    ),
    "cloudfront": b"2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td.net\t/i\t200\t-\tua%20x",
    "waf": b'{"timestamp":1,"action":"ALLOW","httpRequest":{"clientIp":"192.0.2.1","uri":"/"}}',
}


@st.composite
def mutated(draw):
    fmt = draw(st.sampled_from(sorted(VALID)))
    line = bytearray(VALID[fmt])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "quote", "huge", "insert", "newline"]))
        pos = draw(st.integers(0, max(0, len(line) - 1)))
        if kind == "flip" and line:
            line[pos] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del line[pos:]
        elif kind == "quote":
            line[pos:pos] = b'"'
        elif kind == "huge":
            line[pos:pos] = b"A" * draw(st.sampled_from([70_000, 1 << 20]))
        elif kind == "insert":
            line[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            line[pos:pos] = b"\n"
    copies = draw(st.integers(1, 3))
    data = (VALID[fmt] + b"\n") * copies + bytes(line) + b"\n" + VALID[fmt] + b"\n"
    return fmt, data, copies


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.booleans())
def test_mutated_lines_never_raise_and_are_accounted_for(case, gz) -> None:
    fmt, data, copies = case
    payload = gzip.compress(data) if gz else data
    result = parse_object(payload, fmt=fmt)
    assert result.table.schema == REQUEST_SCHEMA
    assert result.rows == result.table.num_rows
    lines = data_lines(data)  # "#" lines are comments / headers, not records
    # the intact lines around the damage survive; nothing is silently dropped
    assert result.rows >= copies
    assert result.rows + sum(result.malformed.values()) >= min(lines, copies + 2) - 0
    assert len(result.bad_samples) <= 20
    assert result.table.column(CLIENT_IP).null_count == 0
