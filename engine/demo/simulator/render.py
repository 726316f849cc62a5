"""Render a simulated stream as ALB, CloudFront and AWS WAF log objects under real S3 keys.

The same requests are rendered three ways, as if the site logged at each layer (a WAF web
ACL attached to the ALB, and a CloudFront distribution in front of the same application):

- ALB: 33 space-separated fields (``log-formats.md`` §1.1), one object per load-balancer
  node per 5-minute interval, keyed ``AWSLogs/<acct>/elasticloadbalancing/<region>/yyyy/mm/dd/
  <acct>_elasticloadbalancing_<region>_app.<name>.<id>_<end>Z_<nodeip>_<rand>.log.gz``.
- CloudFront standard (legacy) logs: ``#Version``/``#Fields`` header, 33 tab-separated fields,
  URL-encoded user agent, objects named for the event hour ``<DIST>.<YYYY-MM-DD-HH>.<id>.gz``
  (several per hour, lines not in time order).
- AWS WAF: JSON lines, one object per 5-minute interval, keyed ``AWSLogs/<acct>/WAFLogs/
  <region>/<acl>/yyyy/mm/dd/HH/mm/<acct>_waflogs_<region>_<acl>_<ts>Z_<hash>.log.gz``.

``view(requests, fmt)`` is what a parser should return for that format: the canonical rows
with the columns the format lacks set to null (``log-formats.md`` §5).
Everything is deterministic: gzip with ``mtime=0``, names from hashes of the seed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.demo.simulator.config import SimConfig
from engine.demo.simulator.simulate import Simulation
from engine.schema import request as rq

FORMATS = ("alb", "cloudfront", "waf")
CLOUDFRONT_FIELDS = (
    "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status "
    "cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id "
    "x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher "
    "x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port "
    "time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len "
    "sc-range-start sc-range-end"
)
CLOUDFRONT_DOMAIN = "d1wafsmithsim.cloudfront.net"
CLOUDFRONT_FILES_PER_HOUR = 4
FIVE_MIN_MS = 300_000
_UA_SAFE = "/;:,.()!*'~-_+=@&?#$[]"

_NULL_IN = {
    "alb": (rq.REFERER, rq.COUNTRY, rq.X_FORWARDED_FOR, rq.WAF_ACTION, rq.WAF_RULE, rq.WAF_LABELS),
    "cloudfront": (
        rq.ORIGIN_STATUS,
        rq.COUNTRY,
        rq.X_FORWARDED_FOR,
        rq.WAF_ACTION,
        rq.WAF_RULE,
        rq.WAF_LABELS,
    ),
    "waf": (
        rq.STATUS,
        rq.ORIGIN_STATUS,
        rq.BYTES_IN,
        rq.BYTES_OUT,
        rq.DURATION_MS,
        rq.TLS_PROTOCOL,
        rq.TLS_CIPHER,
        rq.CLIENT_PORT,
        rq.X_FORWARDED_FOR,
        rq.WAF_LABELS,
    ),
}


@dataclass(frozen=True)
class LogObject:
    """One rendered S3 object."""

    key: str
    data: bytes  # gzip
    fmt: str
    rows: int


def view(requests: pa.Table, fmt: str) -> pa.Table:
    """The canonical rows a parser of ``fmt`` should produce from the rendered objects."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {FORMATS}")
    t = requests
    for name in _NULL_IN[fmt]:
        i = t.schema.get_field_index(name)
        t = t.set_column(i, t.schema.field(i), pa.nulls(t.num_rows, t.schema.field(i).type))
    i = t.schema.get_field_index(rq.REQUEST_ID)
    t = t.set_column(i, rq.REQUEST_ID, request_ids(t, fmt))
    if fmt == "waf":
        labels = [[f"awswaf:clientip:geo:country:{c or '-'}"] for c in t[rq.COUNTRY].to_pylist()]
        i = t.schema.get_field_index(rq.WAF_LABELS)
        t = t.set_column(i, rq.WAF_LABELS, pa.array(labels, pa.list_(pa.string())))
    if fmt == "cloudfront":
        secs = pc.floor_temporal(t[rq.EVENT_TIME], unit="second")
        t = t.set_column(t.schema.get_field_index(rq.EVENT_TIME), rq.EVENT_TIME, secs)
    i = t.schema.get_field_index(rq.SOURCE)
    return t.set_column(i, rq.SOURCE, pa.array([fmt] * t.num_rows, pa.string()))


def request_ids(t: pa.Table, fmt: str) -> pa.Array:
    """The request id each format carries: ALB trace id, WAF ``requestId``, CloudFront's id."""
    if fmt == "cloudfront":
        return t[rq.REQUEST_ID].combine_chunks()
    secs = t[rq.EVENT_TIME].cast(pa.int64()).to_numpy() // 1000
    root = pc.binary_join_element_wise(
        "1-", _fmt(secs, "%08x"), "-", pc.utf8_slice_codeunits(t[rq.REQUEST_ID], 0, 24), ""
    )
    return pc.binary_join_element_wise("Root=", root, "") if fmt == "alb" else root


def _gz(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)


def _token(*parts: object, n: int = 8) -> str:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
    return digest[:n]


def _str(col: pa.ChunkedArray | pa.Array, dash: str = "-") -> pa.Array:
    return pc.fill_null(pc.cast(col, pa.string()), dash)


def _fmt(values: np.ndarray, spec: str) -> pa.Array:
    return pa.array(np.char.mod(spec, values), pa.string())


def _quoted(col) -> pa.Array:
    return pc.binary_join_element_wise('"', _str(col), '"', "")


def _stamp(ms: int, pattern: str) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime(pattern)


def alb_lines(t: pa.Table, cfg: SimConfig) -> pa.Array:
    """One ALB access-log line per row (33 fields)."""
    n = t.num_rows
    ms = t[rq.EVENT_TIME].cast(pa.int64()).to_numpy()
    dur = t[rq.DURATION_MS].to_numpy(zero_copy_only=False).astype(np.int64)
    # ``time`` (the response) is the event time; the request arrived ``duration`` earlier.
    done = pc.strftime(t[rq.EVENT_TIME], format="%Y-%m-%dT%H:%M:%S")
    created = pc.strftime(
        pa.array(ms - dur, pa.int64()).cast(rq.TIMESTAMP_TYPE), format="%Y-%m-%dT%H:%M:%S"
    )
    created = pc.binary_join_element_wise(created, "000Z", "")
    done = pc.binary_join_element_wise(done, "000Z", "")
    h2 = pc.equal(t[rq.PROTOCOL], "HTTP/2.0")
    typ = pc.if_else(h2, "h2", "https")
    client = pc.binary_join_element_wise(t[rq.CLIENT_IP], _str(t[rq.CLIENT_PORT]), ":")
    target = pa.array(np.full(n, "10.0.3.21:8080", dtype=object), pa.string())
    q = pc.if_else(pc.is_null(t[rq.QUERY]), "", pc.binary_join_element_wise("?", t[rq.QUERY], ""))
    url = pc.binary_join_element_wise(f"https://{cfg.host}:443", t[rq.PATH], q, "")
    request = pc.binary_join_element_wise('"', t[rq.METHOD], " ", url, " ", t[rq.PROTOCOL], '"', "")
    trace_ids = request_ids(t, "alb")
    status = _str(t[rq.STATUS])
    fields = [
        typ,
        done,
        f"app/{cfg.alb_name}/{cfg.alb_id}",
        client,
        target,
        "0.000",
        _fmt(dur / 1000.0, "%.3f"),
        "0.000",
        status,
        _str(t[rq.ORIGIN_STATUS]),
        _str(t[rq.BYTES_IN]),
        _str(t[rq.BYTES_OUT]),
        request,
        _quoted(t[rq.USER_AGENT]),
        _str(t[rq.TLS_CIPHER]),
        _str(t[rq.TLS_PROTOCOL]),
        f"arn:aws:elasticloadbalancing:{cfg.region}:{cfg.account}:targetgroup/sim/73e2d6bc24d8a067",
        _quoted(trace_ids),
        f'"{cfg.host}"',
        f'"arn:aws:acm:{cfg.region}:{cfg.account}:certificate/12345678-1234-1234-1234-123456789012"',
        "0",
        created,
        '"waf,forward"',
        '"-"',
        '"-"',
        '"10.0.3.21:8080"',
        pc.binary_join_element_wise('"', status, '"', ""),
        '"Acceptable"',
        '"-"',
        pc.binary_join_element_wise("TID_", t[rq.REQUEST_ID], ""),
        '"-"',
        '"-"',
        '"-"',
    ]
    cols = [
        pa.array(np.full(n, f, dtype=object), pa.string()) if isinstance(f, str) else f
        for f in fields
    ]
    return pc.binary_join_element_wise(*cols, " ")


def cloudfront_lines(t: pa.Table, cfg: SimConfig) -> pa.Array:
    """One CloudFront standard-log line per row (33 tab-separated fields)."""
    n = t.num_rows
    secs = t[rq.EVENT_TIME].cast(pa.timestamp("s", tz="UTC"), safe=False)
    dur = t[rq.DURATION_MS].to_numpy(zero_copy_only=False) / 1000.0
    ua = pa.array(
        [
            urllib.parse.quote(u, safe=_UA_SAFE) if u is not None else "-"
            for u in t[rq.USER_AGENT].to_pylist()
        ],
        pa.string(),
    )
    static = pc.match_substring_regex(
        t[rq.PATH], r"\.(css|js|png|jpg|jpeg|gif|ico|svg|woff2?)$", ignore_case=True
    )
    result = pc.if_else(static, "Hit", "Miss")

    def const(v: str) -> pa.Array:
        return pa.array(np.full(n, v, dtype=object), pa.string())

    fields = [
        pc.strftime(secs, format="%Y-%m-%d"),
        pc.strftime(secs, format="%H:%M:%S"),
        const("FRA56-P1"),
        _str(t[rq.BYTES_OUT]),
        t[rq.CLIENT_IP],
        t[rq.METHOD],
        const(CLOUDFRONT_DOMAIN),
        t[rq.PATH],
        _str(t[rq.STATUS]),
        _str(t[rq.REFERER]),
        ua,
        _str(t[rq.QUERY]),
        const("-"),
        result,
        t[rq.REQUEST_ID],
        const(cfg.host),
        const("https"),
        _str(t[rq.BYTES_IN]),
        _fmt(dur, "%.3f"),
        const("-"),
        _str(t[rq.TLS_PROTOCOL]),
        _str(t[rq.TLS_CIPHER]),
        result,
        t[rq.PROTOCOL],
        const("-"),
        const("-"),
        _str(t[rq.CLIENT_PORT]),
        _fmt(dur * 0.8, "%.3f"),
        result,
        const("text/html"),
        _str(t[rq.BYTES_OUT]),
        const("-"),
        const("-"),
    ]
    return pc.binary_join_element_wise(*fields, "\t")


def waf_lines(t: pa.Table, cfg: SimConfig) -> list[str]:
    """One AWS WAF JSON record per row."""
    acl_arn = (
        f"arn:aws:wafv2:{cfg.region}:{cfg.account}:regional/webacl/{cfg.web_acl}/"
        "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
    )
    source_id = f"{cfg.account}-app/{cfg.alb_name}/{cfg.alb_id}"
    cols = {
        k: t[k].to_pylist()
        for k in (
            rq.CLIENT_IP,
            rq.COUNTRY,
            rq.PATH,
            rq.QUERY,
            rq.PROTOCOL,
            rq.METHOD,
            rq.REQUEST_ID,
            rq.USER_AGENT,
            rq.REFERER,
            rq.X_FORWARDED_FOR,
        )
    }
    ms = t[rq.EVENT_TIME].cast(pa.int64()).to_pylist()
    out = []
    for i, ts in enumerate(ms):
        headers = [{"name": "Host", "value": cfg.host}]
        if cols[rq.USER_AGENT][i] is not None:
            headers.append({"name": "User-Agent", "value": cols[rq.USER_AGENT][i]})
        if cols[rq.REFERER][i] is not None:
            headers.append({"name": "Referer", "value": cols[rq.REFERER][i]})
        headers.append({"name": "Accept", "value": "*/*"})
        if cols[rq.X_FORWARDED_FOR][i] is not None:  # behind CloudFront: the viewer
            headers.append({"name": "X-Forwarded-For", "value": cols[rq.X_FORWARDED_FOR][i]})
        ctry = cols[rq.COUNTRY][i] or "-"
        rec = {
            "timestamp": ts,
            "formatVersion": 1,
            "webaclId": acl_arn,
            "terminatingRuleId": "Default_Action",
            "terminatingRuleType": "REGULAR",
            "action": "ALLOW",
            "terminatingRuleMatchDetails": [],
            "httpSourceName": "ALB",
            "httpSourceId": source_id,
            "ruleGroupList": [],
            "rateBasedRuleList": [],
            "nonTerminatingMatchingRules": [],
            "requestHeadersInserted": None,
            "responseCodeSent": None,
            "httpRequest": {
                "clientIp": cols[rq.CLIENT_IP][i],
                "country": ctry,
                "headers": headers,
                "uri": cols[rq.PATH][i],
                "args": cols[rq.QUERY][i] or "",
                "httpVersion": cols[rq.PROTOCOL][i],
                "httpMethod": cols[rq.METHOD][i],
                "requestId": f"1-{ts // 1000:08x}-{cols[rq.REQUEST_ID][i][:24]}",
            },
            "labels": [{"name": f"awswaf:clientip:geo:country:{ctry}"}],
        }
        out.append(json.dumps(rec, separators=(",", ":")))
    return out


def render(
    sim: Simulation,
    formats: tuple[str, ...] = FORMATS,
    tables: dict[str, pa.Table] | None = None,
) -> list[LogObject]:
    """All log objects of the stream, in key order. ``tables`` gives a format other rows than
    the stream's (e.g. ``topology.front_with_cloudfront``: what each layer logged)."""
    cfg = sim.config
    objects: list[LogObject] = []

    def rows(fmt: str) -> tuple[pa.Table, np.ndarray]:
        t = (tables or {}).get(fmt, sim.requests)
        return t, t[rq.EVENT_TIME].cast(pa.int64()).to_numpy()

    if "alb" in formats:
        t, ms = rows("alb")
        lines = np.asarray(alb_lines(t, cfg).to_pylist(), dtype=object)
        node = np.array([int(r[:8], 16) for r in t[rq.REQUEST_ID].to_pylist()]) % len(cfg.alb_nodes)
        end = (ms // FIVE_MIN_MS + 1) * FIVE_MIN_MS  # file holds (end-5min, end]
        prefix = f"AWSLogs/{cfg.account}/elasticloadbalancing/{cfg.region}"
        lb = f"app.{cfg.alb_name}.{cfg.alb_id}"
        for e in np.unique(end):
            for k, node_ip in enumerate(cfg.alb_nodes):
                sel = (end == e) & (node == k)
                if not sel.any():
                    continue
                name = (
                    f"{cfg.account}_elasticloadbalancing_{cfg.region}_{lb}_"
                    f"{_stamp(int(e), '%Y%m%dT%H%MZ')}_{node_ip}_{_token(sim.seed, e, node_ip)}"
                    ".log.gz"
                )
                key = f"{prefix}/{_stamp(int(e), '%Y/%m/%d')}/{name}"
                objects.append(
                    LogObject(key, _gz("\n".join(lines[sel]) + "\n"), "alb", int(sel.sum()))
                )
    if "cloudfront" in formats:
        t, ms = rows("cloudfront")
        lines = np.asarray(cloudfront_lines(t, cfg).to_pylist(), dtype=object)
        hour = ms // 3_600_000
        part = np.array([int(r[8:16], 16) for r in t[rq.REQUEST_ID].to_pylist()])
        part %= CLOUDFRONT_FILES_PER_HOUR
        header = f"#Version: 1.0\n#Fields: {CLOUDFRONT_FIELDS}\n"
        shuffle = np.random.default_rng(sim.seed + 7)
        for h in np.unique(hour):
            for p in range(CLOUDFRONT_FILES_PER_HOUR):
                sel = np.flatnonzero((hour == h) & (part == p))
                if sel.size == 0:
                    continue
                sel = sel[shuffle.permutation(sel.size)]  # entries are not in time order
                uid = _token(sim.seed, h, p, n=10).upper()
                hour_text = _stamp(int(h) * 3_600_000, "%Y-%m-%d-%H")
                key = f"cloudfront/{cfg.distribution}.{hour_text}.{uid}.gz"
                objects.append(
                    LogObject(
                        key, _gz(header + "\n".join(lines[sel]) + "\n"), "cloudfront", int(sel.size)
                    )
                )
    if "waf" in formats:
        t, ms = rows("waf")
        lines = np.asarray(waf_lines(t, cfg), dtype=object)
        start = ms // FIVE_MIN_MS * FIVE_MIN_MS
        base = f"AWSLogs/{cfg.account}/WAFLogs/{cfg.region}/{cfg.web_acl}"
        for s in np.unique(start):
            sel = start == s
            name = (
                f"{cfg.account}_waflogs_{cfg.region}_{cfg.web_acl}_"
                f"{_stamp(int(s), '%Y%m%dT%H%MZ')}_{_token(sim.seed, s)}.log.gz"
            )
            key = f"{base}/{_stamp(int(s), '%Y/%m/%d/%H/%M')}/{name}"
            objects.append(LogObject(key, _gz("\n".join(lines[sel]) + "\n"), "waf", int(sel.sum())))
    return sorted(objects, key=lambda o: o.key)


def write_local(objects: list[LogObject], root: Path) -> list[Path]:
    """Write objects under ``root`` at their S3 keys; returns the paths written."""
    paths = []
    for obj in objects:
        path = Path(root) / obj.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(obj.data)
        paths.append(path)
    return paths


def write_s3(objects: list[LogObject], s3_client, bucket: str, prefix: str = "") -> list[str]:
    """Upload objects to ``s3://bucket/prefix<key>`` with the given boto3 S3 client."""
    keys = []
    for obj in objects:
        key = f"{prefix}{obj.key}"
        s3_client.put_object(Bucket=bucket, Key=key, Body=obj.data)
        keys.append(key)
    return keys
