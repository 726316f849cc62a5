"""The combined-log reader the benchmarks use for the real corpora."""

from __future__ import annotations

from collections import Counter

import pyarrow.compute as pc
import pytest

from engine.demo.simulator.combined import parse_line, read_combined, split_target, to_canonical
from engine.schema import request as rq

LINES = [
    # plain combined, trailing space (secrepo)
    '192.0.2.1 - - [22/Oct/2021:02:28:56 -0700] "GET /a%20b/x.html?q=1 HTTP/1.1" 200 1486 '
    '"-" "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)" ',
    # wrapped in an extra pair of quotes, CRLF (scanner-logs-dvwa)
    '"192.0.2.2 - - [22/Dec/2016:16:30:52 +0300] "POST /administrator/index.php HTTP/1.1" 303 382 '
    '"http://192.0.2.9/DVWA" "Mozilla/5.0 (Windows NT 6.1; WOW64)""\r',
    # empty request line and no size (honeynet)
    '192.0.2.3 - - [13/Jul/2004:12:41:13 -0400] "-" 408 - "-" "-"',
    # absolute-URI proxy probe
    '192.0.2.4 - - [13/Jul/2004:12:41:14 -0400] "GET http://www.yahoo.com/ HTTP/1.1" 404 1 "-" "-"',
    # anonymised address: parses, but is no client
    'x.x.x.x - - [13/Jul/2004:12:41:15 -0400] "GET / HTTP/1.1" 200 10 "-" "-"',
]


def test_parse_line_handles_the_corpora_quirks():
    a, b, c, d, _ = (parse_line(x) for x in LINES)
    assert (a.ip, a.method, a.target, a.status, a.bytes_out) == (
        "192.0.2.1",
        "GET",
        "/a%20b/x.html?q=1",
        200,
        1486,
    )
    assert a.time_ms == 1634894936000  # 02:28:56 -0700 = 09:28:56Z
    assert a.user_agent.startswith("Mozilla/5.0 (compatible; AhrefsBot")
    assert (b.ip, b.method, b.status, b.referer) == (
        "192.0.2.2",
        "POST",
        303,
        "http://192.0.2.9/DVWA",
    )
    assert (c.method, c.target, c.bytes_out, c.user_agent) == (None, None, None, None)
    assert split_target(d.target) == ("/", None)
    assert parse_line("not a log line") is None


def test_read_combined_counts_what_it_cannot_parse(tmp_path):
    f = tmp_path / "access.log"
    f.write_bytes(("\n".join([*LINES, "garbage \xff line"]) + "\n").encode("utf-8"))
    log = read_combined(f)
    assert (len(log.records), log.malformed) == (5, 1)
    table = to_canonical(log)
    assert table.schema == rq.REQUEST_SCHEMA
    assert table.num_rows == 4  # the anonymised address is not a client
    assert table[rq.STATUS].to_pylist() == table[rq.ORIGIN_STATUS].to_pylist()
    assert sorted(pc.unique(table[rq.CLIENT_IP]).to_pylist()) == [
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.3",
        "192.0.2.4",
    ]
    row = table.filter(pc.equal(table[rq.CLIENT_IP], "192.0.2.1")).to_pylist()[0]
    assert (row[rq.PATH], row[rq.QUERY]) == ("/a%20b/x.html", "q=1")


@pytest.mark.parametrize(
    "name",
    [
        "elastic-apache-logs/apache_logs-first1000.log",
        "secrepo-weblogs/access-2018-12-15-first1200.log",
    ],
)
def test_real_corpora_read_completely(fixtures_dir, name):
    path = fixtures_dir / "corpora" / name
    log = read_combined(path)
    assert (len(log.records), log.malformed) == (len(path.read_bytes().splitlines()), 0)


def test_analyze_corpora_flags_the_bulk_downloader(fixtures_dir):
    """secrepo's 2018-12-15 log: one client walks hundreds of missing log archives."""
    from benchmarks.analyze_corpora import analyze_file
    from engine.demo.simulator.derive_profile import crawler_regex
    from engine.pipeline import analyze_tables

    corpora = fixtures_dir / "corpora"
    path = corpora / "secrepo-weblogs/access-2018-12-15-first1200.log"
    log = read_combined(path)
    busiest, requests = Counter(r.ip for r in log.records).most_common(1)[0]
    assert requests > 400
    rep = analyze_file(path, crawler_regex(corpora, frozenset({"http-library"})), analyze_tables)
    assert (rep["rows"], rep["unparsed_lines"]) == (len(log.records), 0)
    assert rep["clients"] == len({r.ip for r in log.records})
    assert rep["flagged"][busiest]["action"] == "block"
    assert rep["flagged"][busiest]["detector"] == "scanner"
    assert sum(rep["by_action"].values()) == len(rep["flagged"])
    assert all(f["detector"] and f["reason"] for f in rep["flagged"].values())
    assert rep["declared_crawlers_blocked"] == []
