"""The traffic simulator: determinism, S3 layout, labels, and round trips through the parsers."""

from __future__ import annotations

import gzip
import json
import re
import urllib.parse
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from engine.demo.simulator import preset, render, simulate, view, write_local, write_s3
from engine.demo.simulator.simulate import (
    C_END,
    C_ID,
    C_START,
    L_CAMPAIGN,
    L_CLIENT,
    L_KIND,
    L_LABEL,
    L_REQUESTS,
)
from engine.schema import request as rq

ALB_KEY = re.compile(
    r"^AWSLogs/\d{12}/elasticloadbalancing/[a-z0-9-]+/\d{4}/\d{2}/\d{2}/\d{12}_elasticloadbalancing_"
    r"[a-z0-9-]+_app\.[\w-]+\.[0-9a-f]+_\d{8}T\d{4}Z_[\d.]+_[0-9a-z]{8}\.log\.gz$"
)
CLOUDFRONT_KEY = re.compile(r"^cloudfront/[A-Z0-9]+\.\d{4}-\d{2}-\d{2}-\d{2}\.[0-9A-Z]+\.gz$")
WAF_KEY = re.compile(
    r"^AWSLogs/\d{12}/WAFLogs/[a-z0-9-]+/[\w-]+/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}/"
    r"\d{12}_waflogs_[a-z0-9-]+_[\w-]+_\d{8}T\d{4}Z_[0-9a-f]{8}\.log\.gz$"
)
# Columns every format's parser must reproduce exactly (after the format's own nulling).
COMPARED = (
    rq.CLIENT_IP,
    rq.CLIENT_PORT,
    rq.METHOD,
    rq.HOST,
    rq.PATH,
    rq.QUERY,
    rq.PROTOCOL,
    rq.STATUS,
    rq.ORIGIN_STATUS,
    rq.BYTES_IN,
    rq.BYTES_OUT,
    rq.DURATION_MS,
    rq.USER_AGENT,
    rq.REFERER,
    rq.TLS_PROTOCOL,
    rq.TLS_CIPHER,
    rq.REQUEST_ID,
    rq.COUNTRY,
    rq.EVENT_TIME,
)


@pytest.fixture(scope="module")
def tiny():
    return simulate(preset("tiny"), seed=7)


@pytest.fixture(scope="module")
def tiny_objects(tiny):
    return render(tiny)


def test_same_seed_gives_identical_bytes(tiny_objects):
    again = render(simulate(preset("tiny"), seed=7))
    assert [(o.key, o.data) for o in again] == [(o.key, o.data) for o in tiny_objects]


def test_different_seed_gives_different_traffic(tiny):
    other = simulate(preset("tiny"), seed=8)
    assert not other.requests.equals(tiny.requests)
    assert set(other.labels[L_CLIENT].to_pylist()) != set(tiny.labels[L_CLIENT].to_pylist())


def test_objects_sit_at_real_s3_key_layouts(tiny_objects):
    by_fmt = {f: [o for o in tiny_objects if o.fmt == f] for f in ("alb", "cloudfront", "waf")}
    assert all(by_fmt.values())
    assert all(ALB_KEY.match(o.key) for o in by_fmt["alb"]), by_fmt["alb"][0].key
    assert all(CLOUDFRONT_KEY.match(o.key) for o in by_fmt["cloudfront"])
    assert all(WAF_KEY.match(o.key) for o in by_fmt["waf"]), by_fmt["waf"][0].key


def test_every_request_is_rendered_once_per_format(tiny, tiny_objects):
    for fmt in ("alb", "cloudfront", "waf"):
        lines = 0
        for o in tiny_objects:
            if o.fmt == fmt:
                text = gzip.decompress(o.data).decode()
                lines += sum(1 for ln in text.splitlines() if ln and not ln.startswith("#"))
        assert lines == tiny.requests.num_rows


def test_alb_files_hold_the_five_minutes_before_their_end_time(tiny_objects):
    for o in (o for o in tiny_objects if o.fmt == "alb"):
        end = re.search(r"_(\d{8}T\d{4})Z_", o.key).group(1)
        for line in gzip.decompress(o.data).decode().splitlines():
            stamp = line.split(" ")[1]  # the ``time`` field
            minute = stamp[:4] + stamp[5:7] + stamp[8:10] + "T" + stamp[11:13] + stamp[14:16]
            assert minute < end or (minute == end and stamp[17:23] == "00.000")


def test_cloudfront_objects_have_headers_and_encoded_agents(tiny_objects):
    o = next(o for o in tiny_objects if o.fmt == "cloudfront")
    lines = gzip.decompress(o.data).decode().splitlines()
    assert lines[0] == "#Version: 1.0"
    assert lines[1].startswith("#Fields: date time x-edge-location")
    fields = lines[1].split(" ")[1:]
    for line in lines[2:]:
        values = line.split("\t")
        assert len(values) == len(fields) == 33
        assert " " not in values[fields.index("cs(User-Agent)")]


def test_waf_records_are_json_lines_with_millisecond_timestamps(tiny_objects):
    o = next(o for o in tiny_objects if o.fmt == "waf")
    for line in gzip.decompress(o.data).decode().splitlines():
        rec = json.loads(line)
        assert isinstance(rec["timestamp"], int) and rec["timestamp"] > 1_700_000_000_000
        assert rec["httpRequest"]["clientIp"]


def test_labels_match_the_traffic(tiny):
    req, labels = tiny.requests, tiny.labels
    assert set(labels[L_CLIENT].to_pylist()) == set(req[rq.CLIENT_IP].unique().to_pylist())
    counts = req.group_by(rq.CLIENT_IP).aggregate([(rq.EVENT_TIME, "count")])
    per_ip = dict(
        zip(
            counts[rq.CLIENT_IP].to_pylist(),
            counts[f"{rq.EVENT_TIME}_count"].to_pylist(),
            strict=True,
        )
    )
    assert all(per_ip[r[L_CLIENT]] == r[L_REQUESTS] for r in labels.to_pylist())
    # attack clients send only inside their campaign's window
    camps = {r[C_ID]: r for r in tiny.campaigns.to_pylist()}
    attackers = labels.filter(pc.equal(labels[L_LABEL], "attack")).to_pylist()
    assert attackers and all(r[L_CAMPAIGN] in camps for r in attackers)
    for r in attackers:
        c = camps[r[L_CAMPAIGN]]
        assert c[C_START] <= r["first_seen"] and r["last_seen"] <= c[C_END]
    kinds = set(labels[L_KIND].to_pylist())
    assert {"browser", "crawler", "nat_gateway", "api_poller", "health_checker"} <= kinds


def test_crawlers_come_from_their_published_networks(tiny):
    import ipaddress

    from engine.demo.simulator.simulate import load_crawlers

    nets = [ipaddress.ip_network(n) for c in load_crawlers() for n in c["networks"]]
    labels = tiny.labels.to_pylist()
    for r in labels:
        inside = any(ipaddress.ip_address(r[L_CLIENT]) in n for n in nets)
        assert inside == (r[L_KIND] == "crawler"), r


def test_distributed_flood_members_stay_under_per_ip_thresholds():
    small = preset("small")
    floods = [c for c in small.campaigns if c.kind == "distributed_flood"]
    sim = simulate(small.model_copy(update={"campaigns": floods}), seed=101)
    req = sim.requests
    members = sim.labels.filter(pc.equal(sim.labels[L_KIND], "distributed_flood"))
    assert members.num_rows >= 200
    sub = req.filter(pc.is_in(req[rq.CLIENT_IP], value_set=members[L_CLIENT]))
    from benchmarks.baselines.waf_rate import waf_rate_rule

    assert waf_rate_rule(sub, limit=100).flagged == {}  # under 100 per 5 min, every member
    by_campaign: dict[str, set[str]] = {}
    for r in members.to_pylist():
        by_campaign.setdefault(r[L_CAMPAIGN], set()).add(r[L_CLIENT].rsplit(".", 1)[0])
    concentrated, residential = sorted(by_campaign.values(), key=len)
    assert len(concentrated) <= 3  # a botnet packed into a few /24s ...
    assert len(residential) > 100  # ... and residential proxies spread over many
    benign_24s = {
        r[L_CLIENT].rsplit(".", 1)[0] for r in sim.labels.to_pylist() if r[L_LABEL] == "benign"
    }
    assert not concentrated & benign_24s
    assert len(residential & benign_24s) >= 20  # a /24 block would hit real users


def _sorted(t: pa.Table) -> pa.Table:
    return t.sort_by([(rq.REQUEST_ID, "ascending")])


@pytest.mark.parametrize("fmt", ["alb", "cloudfront", "waf"])
def test_rendered_logs_parse_back_to_the_same_rows(tiny, tiny_objects, fmt):
    parsers = pytest.importorskip("engine.parsers")
    if not hasattr(parsers, "parse_object"):
        pytest.skip("engine.parsers.parse_object not available yet")
    results = [parsers.parse_object(o.data, key=o.key) for o in tiny_objects if o.fmt == fmt]
    assert {r.format for r in results} == {fmt}
    assert all(not r.malformed for r in results), [r.malformed for r in results][:3]
    got = _sorted(pa.concat_tables([r.table for r in results]))
    want = _sorted(view(tiny.requests, fmt))
    assert got.schema == rq.REQUEST_SCHEMA
    assert got.num_rows == want.num_rows
    for col in COMPARED:
        a, b = got[col].to_pylist(), want[col].to_pylist()
        if fmt == "cloudfront" and col == rq.QUERY:
            # CloudFront logs queries URL-encoded; a parser may keep them or decode them once
            b = [
                y if x == y or y is None else urllib.parse.unquote(y)
                for x, y in zip(a, b, strict=True)
            ]
        if fmt == "waf" and col == rq.QUERY:
            a = [x or None for x in a]
        assert a == b, f"{fmt}.{col}: first difference " + str(
            next(((x, y) for x, y in zip(a, b, strict=True) if x != y), None)
        )
    assert got[rq.SOURCE].unique().to_pylist() == [fmt]


def test_write_local_lays_out_keys(tmp_path, tiny_objects):
    paths = write_local(tiny_objects[:3], tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [o.key for o in tiny_objects[:3]]
    assert paths[0].read_bytes() == tiny_objects[0].data


def test_write_s3_uploads_every_object(s3, tiny_objects):
    s3.create_bucket(Bucket="sim-logs")
    keys = write_s3(tiny_objects, s3, "sim-logs", prefix="site/")
    listed = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="sim-logs"):
        listed += [o["Key"] for o in page.get("Contents", [])]
    assert sorted(listed) == sorted(keys) == sorted("site/" + o.key for o in tiny_objects)
    body = s3.get_object(Bucket="sim-logs", Key=keys[0])["Body"].read()
    assert body == next(o.data for o in tiny_objects if "site/" + o.key == keys[0])


def test_campaign_windows_are_inside_the_run(tiny):
    cfg = tiny.config
    for c in tiny.campaigns.to_pylist():
        assert cfg.start <= c[C_START] < c[C_END] <= cfg.start + timedelta(minutes=cfg.minutes)


def test_cli_writes_objects_and_labels_locally(tmp_path):
    import pyarrow.parquet as pq

    from engine.demo.simulator.__main__ import main

    assert (
        main(
            [
                "--scale",
                "tiny",
                "--seed",
                "7",
                "--out",
                str(tmp_path),
                "--corpora",
                "none",
                "--formats",
                "alb,waf",
            ]
        )
        == 0
    )
    labels = pq.read_table(tmp_path / "labels" / "labels.parquet")
    assert labels.equals(simulate(preset("tiny"), seed=7).labels)
    keys = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.gz"))
    assert keys and all(ALB_KEY.match(k) or WAF_KEY.match(k) for k in keys)


def test_cli_uploads_to_s3(s3, aws_endpoint):
    from engine.demo.simulator.__main__ import main

    s3.create_bucket(Bucket="sim-cli")
    assert (
        main(
            [
                "--scale",
                "tiny",
                "--seed",
                "7",
                "--s3",
                "s3://sim-cli/logs/",
                "--endpoint-url",
                aws_endpoint,
                "--corpora",
                "none",
            ]
        )
        == 0
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="sim-cli")["Contents"]]
    assert "logs/labels/campaigns.parquet" in keys
    assert any(CLOUDFRONT_KEY.match(k.removeprefix("logs/")) for k in keys)


def test_output_does_not_depend_on_python_hash_seed():
    import subprocess
    import sys

    code = (
        "import hashlib\n"
        "from engine.demo.simulator import preset, render, simulate\n"
        "h = hashlib.sha256()\n"
        "for o in render(simulate(preset('tiny'), 11)):\n"
        "    h.update(o.key.encode()); h.update(o.data)\n"
        "print(h.hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {"PYTHONHASHSEED": hash_seed, "PATH": "/usr/bin:/bin"}
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=str(Path(__file__).parents[2]),
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1
