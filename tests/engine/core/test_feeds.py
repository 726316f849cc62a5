"""``wafsmith feeds``: the packaged CloudFront and crawler lists, and installing newer copies.

Updates are validated before anything is written: a file with one bad entry (garbage, a /0,
a network wider than any publisher's) changes nothing and says which entry is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cli.main import main
from engine.core.feeds import FeedError, feed_from_document, load_feed

AWS_DOC = {
    "syncToken": "1787433425",
    "createDate": "2026-12-01-10-00-00",
    "prefixes": [
        {"ip_prefix": "198.51.100.0/24", "region": "GLOBAL", "service": "CLOUDFRONT",
         "network_border_group": "GLOBAL"},
        {"ip_prefix": "203.0.113.0/25", "region": "eu-west-1",
         "service": "CLOUDFRONT_ORIGIN_FACING", "network_border_group": "eu-west-1"},
        {"ip_prefix": "192.0.2.0/24", "region": "eu-west-1", "service": "EC2",
         "network_border_group": "eu-west-1"},
    ],
    "ipv6_prefixes": [
        {"ipv6_prefix": "2001:db8:f00::/40", "region": "GLOBAL", "service": "CLOUDFRONT",
         "network_border_group": "GLOBAL"},
    ],
}  # fmt: skip


def feeds(capsys, folder: Path) -> dict[str, dict]:
    assert main(["feeds", "list", "--json", "--feeds-dir", str(folder)]) == 0
    return {f["kind"]: f for f in json.loads(capsys.readouterr().out)["feeds"]}


def update(capsys, folder: Path, path: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["feeds", "update", "--from", str(path), "--feeds-dir", str(folder), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_packaged_feeds_carry_their_networks_source_and_date(capsys, tmp_path):
    listed = feeds(capsys, tmp_path / "empty")
    assert set(listed) == {"cloudfront", "googlebot", "bingbot"}
    for f in listed.values():
        assert f["origin"] == "packaged" and f["networks"] > 0
        assert "@" in f["source"]  # the mirror's commit
    cf = listed["cloudfront"]
    assert cf["services"]["CLOUDFRONT"] > 100 and cf["services"]["CLOUDFRONT_ORIGIN_FACING"] > 10
    assert cf["ipv6"] > 0 and cf["published"].startswith("20")
    edges = load_feed("cloudfront", tmp_path / "empty").cidrs()
    probe = pa.array(["130.176.88.1", "205.251.249.7", "8.8.8.8"])
    assert edges.contains(probe).tolist() == [True, True, False]
    google = load_feed("googlebot", tmp_path / "empty").cidrs()
    assert google.contains(pa.array(["66.249.66.1", "157.55.39.1"])).tolist() == [True, False]


def test_update_installs_only_cloudfront_entries_and_takes_precedence(capsys, tmp_path):
    src = tmp_path / "ip-ranges.json"
    src.write_text(json.dumps(AWS_DOC))
    folder = tmp_path / "feeds"
    code, out, _ = update(capsys, folder, src)
    assert code == 0
    summary = json.loads(out)
    assert (summary["kind"], summary["networks"], summary["ipv6"]) == ("cloudfront", 3, 1)
    assert summary["services"] == {"CLOUDFRONT": 2, "CLOUDFRONT_ORIGIN_FACING": 1}
    assert summary["published"] == "2026-12-01T10:00:00Z" and summary["replaced"] == "packaged"
    written = json.loads((folder / "cloudfront.json").read_text())
    assert all(p["service"] != "EC2" for p in written["prefixes"])
    listed = feeds(capsys, folder)
    assert listed["cloudfront"]["origin"] == str(folder / "cloudfront.json")
    assert listed["cloudfront"]["source"] == str(src.resolve())
    assert listed["googlebot"]["origin"] == "packaged"
    edges = load_feed("cloudfront", folder).cidrs()
    assert edges.contains(pa.array(["198.51.100.9", "192.0.2.1"])).tolist() == [True, False]


@pytest.mark.parametrize(
    ("entry", "named"),
    [("not-a-cidr", "prefixes[1]"), ("0.0.0.0/0", "wider than /8"), ("10.0.0.1/8", "host bits")],
)
def test_a_bad_entry_changes_nothing_and_is_named(capsys, tmp_path, entry, named):
    doc = json.loads(json.dumps(AWS_DOC))
    doc["prefixes"][1]["ip_prefix"] = entry
    src = tmp_path / "ip-ranges.json"
    src.write_text(json.dumps(doc))
    folder = tmp_path / "feeds"
    code, out, err = update(capsys, folder, src)
    assert code == 2 and out == "" and named in err
    assert not (folder / "cloudfront.json").exists()
    assert feeds(capsys, folder)["cloudfront"]["origin"] == "packaged"


def test_crawler_lists_are_named_by_file_or_kind(capsys, tmp_path):
    doc = {"creationTime": "2026-12-01T00:00:00", "prefixes": [
        {"ipv4Prefix": "198.51.100.0/24"}, {"ipv6Prefix": "2001:db8:1::/48"}]}  # fmt: skip
    folder = tmp_path / "feeds"
    anon = tmp_path / "list.json"
    anon.write_text(json.dumps(doc))
    code, _, err = update(capsys, folder, anon)
    assert code == 2 and "--kind" in err
    code, out, _ = update(capsys, folder, anon, "--kind", "bingbot")
    assert code == 0 and json.loads(out)["networks"] == 2
    named = tmp_path / "googlebot.json"
    named.write_text(json.dumps(doc))
    assert update(capsys, folder, named)[0] == 0
    code, _, err = update(capsys, folder, named, "--kind", "cloudfront")
    assert code == 2 and "ip-ranges.json format" in err
    listed = feeds(capsys, folder)
    assert listed["bingbot"]["networks"] == 2 and listed["googlebot"]["ipv6"] == 1


_entry = st.one_of(
    st.fixed_dictionaries({"ipv4Prefix": st.text(max_size=20)}),
    st.fixed_dictionaries({"ipv6Prefix": st.text(max_size=40)}),
    st.builds(lambda a, p: {"ipv4Prefix": f"{a}/{p}"}, st.ip_addresses(v=4), st.integers(0, 40)),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.integers(),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_entry, max_size=6), st.sampled_from(["googlebot", "cloudfront"]))
def test_any_document_loads_or_is_refused_with_a_feed_error(entries, kind):
    try:
        feed = feed_from_document(kind, {"prefixes": entries}, source="t", origin="t")
    except FeedError:
        return
    assert feed.networks and feed.cidrs()
