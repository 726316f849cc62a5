"""Client identity behind trusted proxies, through ``wafsmith parse`` and ``wafsmith analyze``.

An attacker behind the load balancer (a trusted proxy, 10.0.0.0/8) sends its own
``X-Forwarded-For: 8.8.8.8``; the load balancer adds a second header with the real address.
Reading only the first header put the block on 8.8.8.8; a ``garbage`` entry put it on the
proxy itself. Every header now counts, in order, and a chain that names nobody leaves the
row without a client (counted), never blames the proxy.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.cli.main import main
from engine.features.identity import XFF_MISSING, XFF_ONLY_PROXIES, XFF_UNPARSEABLE
from tests.support.expectations import FIXTURES, without_expectations

PROXY = "10.0.0.5"
T0 = 1764489600000  # 2025-11-30T08:00:00Z
CONFIG = '[features]\ntrusted_proxies = ["10.0.0.0/8"]\nallowed_lateness_s = 0\n'


def waf_record(i: int, client_ip: str, forwarded: list[str]) -> str:
    headers = [{"name": "Host", "value": "shop.example.com"}]
    headers += [{"name": "X-Forwarded-For", "value": v} for v in forwarded]
    return json.dumps(
        {
            "timestamp": T0 + i * 150,  # 400 requests a minute
            "action": "ALLOW",
            "terminatingRuleId": "Default_Action",
            "terminatingRuleType": "REGULAR",
            "httpRequest": {
                "clientIp": client_ip,
                "country": "US",
                "headers": headers,
                "uri": "/search",
                "args": "",
                "httpVersion": "HTTP/1.1",
                "httpMethod": "GET",
                "requestId": f"r{i}",
            },
            "labels": [],
        }
    )


def flood_object(path: Path, *forwarded: str, n: int = 400) -> Path:
    """A gzip'd WAF log object: ``n`` requests through the proxy, each carrying ``forwarded``."""
    lines = [waf_record(i, PROXY, list(forwarded)) for i in range(n)]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def analyze(tmp_path: Path, log: Path, capsys) -> dict:
    config = tmp_path / "wafsmith.toml"
    config.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "result.json"
    assert main(["analyze", str(log), "--config", str(config), "--json", str(out)]) == 0
    capsys.readouterr()
    return json.loads(out.read_text())


def blocked(doc: dict) -> set[str]:
    return {d["client"] for d in doc["decisions"]}


def test_parse_joins_every_forwarded_header_and_applies_the_address_rules(tmp_path, capsys):
    log = tmp_path / "waf.log"
    log.write_bytes(without_expectations(FIXTURES / "waf" / "waf-proxies.jsonl"))
    out = tmp_path / "rows.parquet"
    assert main(["parse", str(log), "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["rows"], doc["malformed"]) == (7, {"invalid_client_ip": 2})  # scoped, octet 300
    rows = pq.read_table(out).to_pylist()
    assert rows[0]["x_forwarded_for"] == "8.8.8.8, 203.0.113.50"
    assert [r["client_ip"] for r in rows[5:]] == ["198.51.100.9", "2001:db8::9"]


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        (["8.8.8.8", "203.0.113.50"], "203.0.113.50"),  # a spoofed first header
        (["garbage", "203.0.113.51, 10.0.0.9"], "203.0.113.51"),  # garbage, then the chain
        (["::ffff:203.0.113.52"], "203.0.113.52"),  # a mapped entry is its IPv4 address
    ],
)
def test_the_flood_is_blamed_on_the_real_client(tmp_path, capsys, forwarded, client):
    doc = analyze(tmp_path, flood_object(tmp_path / "waf.log.gz", *forwarded), capsys)
    assert blocked(doc) == {client}
    assert doc["stats"]["no_client_identity_rows"] == {}


@pytest.mark.parametrize(
    ("forwarded", "reason"),
    [
        (["garbage"], XFF_UNPARSEABLE),
        (["203.0.113.53, garbage"], XFF_UNPARSEABLE),  # stop at the first unreadable entry
        (["fe80::1%eth0"], XFF_UNPARSEABLE),  # a scoped address names nobody
        ([], XFF_MISSING),
        (["10.0.0.7, 10.0.0.8"], XFF_ONLY_PROXIES),
    ],
)
def test_a_chain_naming_nobody_is_counted_and_never_blames_the_proxy(
    tmp_path, capsys, forwarded, reason
):
    doc = analyze(tmp_path, flood_object(tmp_path / "waf.log.gz", *forwarded), capsys)
    assert blocked(doc) == set()  # neither the proxy nor a guess
    assert doc["stats"]["no_client_identity_rows"] == {reason: 400}
