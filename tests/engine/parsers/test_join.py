"""WAF ↔ ALB / CloudFront join by request id: WAF records get their status back, so the
detectors that need statuses fire from a web ACL's log; the buffers stay bounded and no WAF
record is ever lost."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.parsers import parse_object
from engine.parsers.join import RequestJoin, join_key
from engine.pipeline import analyze_tables
from engine.schema import request as rq

FIXTURES = Path(__file__).resolve().parents[3] / "data" / "fixtures" / "join"
PAIRS = [("waf-alb.log.gz", "alb.log.gz"), ("waf-cloudfront.log.gz", "cloudfront.log.gz")]


def parsed(name: str) -> pa.Table:
    res = parse_object((FIXTURES / name).read_bytes(), key=name)
    assert not res.malformed
    return res.table


def joined(join: RequestJoin, *tables: pa.Table) -> pa.Table:
    out = [join.feed(t) for t in tables] + [join.flush()]
    return pa.concat_tables(out).sort_by([(rq.EVENT_TIME, "ascending")])


@pytest.mark.parametrize(("waf_log", "partner_log"), PAIRS)
def test_join_restores_status_and_credential_stuffing_fires_from_the_waf_log(waf_log, partner_log):
    waf, partner = parsed(waf_log), parsed(partner_log)
    assert waf[rq.STATUS].null_count == waf.num_rows  # a web ACL's log has no status

    alone = analyze_tables([waf])
    assert "credential_stuffing" not in {d.detector for d in alone.decisions}

    join = RequestJoin()
    out = joined(join, waf, partner)  # the WAF log lands first; CloudFront's within the hour
    assert join.counts.matched == waf.num_rows and join.counts.unmatched == 0
    assert out.num_rows == waf.num_rows and out[rq.STATUS].null_count == 0
    assert set(out[rq.SOURCE].to_pylist()) == {rq.SOURCE_WAF}  # the viewer's records, kept
    status_of = dict(zip(join_key(partner[rq.REQUEST_ID]).to_pylist(),
                         partner[rq.STATUS].to_pylist(), strict=True))  # fmt: skip
    got = dict(zip(join_key(out[rq.REQUEST_ID]).to_pylist(), out[rq.STATUS].to_pylist(),
                   strict=True))  # fmt: skip
    assert got == status_of  # each WAF record has its own request's status
    assert 401 in got.values()

    res = analyze_tables([out])
    stuffers = {d.client for d in res.decisions if d.detector == "credential_stuffing"}
    assert stuffers == {d.client for d in alone.decisions}  # the same client, now by status
    assert len(stuffers) == 1


def test_partner_first_or_waf_first_gives_the_same_rows():
    waf, alb = parsed("waf-alb.log.gz"), parsed("alb.log.gz")
    a = joined(RequestJoin(), alb, waf)
    b = joined(RequestJoin(), waf.slice(0, 100), alb, waf.slice(100))
    assert a.sort_by(rq.REQUEST_ID).equals(b.sort_by(rq.REQUEST_ID))


def test_unmatched_waf_records_are_released_never_dropped_and_buffers_stay_bounded():
    waf, alb = parsed("waf-alb.log.gz"), parsed("alb.log.gz")
    join = RequestJoin(max_rows=50, max_wait_s=3600)
    out = join.feed(waf)  # no partner yet: all but the newest 50 are released unmatched
    assert out.num_rows == waf.num_rows - 50 and join.waiting == (50, 0)
    assert out[rq.STATUS].null_count == out.num_rows
    rest = joined(join, alb)
    assert join.waiting == (0, 0)
    assert out.num_rows + rest.num_rows == waf.num_rows
    assert join.counts.matched == 50 and join.counts.unmatched == waf.num_rows - 50
    assert join.counts.partners_expired == alb.num_rows - 50


def test_records_past_the_wait_are_released_by_event_time():
    waf, alb = parsed("waf-alb.log.gz"), parsed("alb.log.gz")
    join = RequestJoin(max_wait_s=60)
    late = alb.filter(pc.greater(alb[rq.EVENT_TIME], pc.max(waf[rq.EVENT_TIME])))
    assert late.num_rows == 0  # the whole ALB log is older than the newest WAF record...
    out = joined(join, waf, alb)  # ... so WAF records > 60 s older than it waited too long
    first_minute_end = pc.max(waf[rq.EVENT_TIME]).cast(pa.int64()).as_py() - 60_000
    old = pc.less(waf[rq.EVENT_TIME].cast(pa.int64()), first_minute_end)
    assert join.counts.unmatched == pc.sum(old).as_py()
    assert out.num_rows == waf.num_rows


def test_a_partner_delivered_twice_adds_no_rows():
    waf, cf = parsed("waf-cloudfront.log.gz"), parsed("cloudfront.log.gz")
    out = joined(RequestJoin(), cf, cf, waf)
    assert out.num_rows == waf.num_rows and out[rq.STATUS].null_count == 0


@settings(max_examples=60, deadline=None)
@given(
    root=st.from_regex(r"1-[0-9a-f]{8}-[0-9a-f]{24}", fullmatch=True),
    before=st.lists(
        st.sampled_from(["Self=1-67891233-12456789abcdef012345678", "Sampled=1", "Lineage=a:0"]),
        max_size=2,
    ),
    after=st.lists(st.sampled_from(["Sampled=0", "Parent=53995c3f42cd8ad8"]), max_size=2),
)
def test_alb_trace_ids_key_on_their_root_component(root, before, after):
    trace = ";".join([*before, f"Root={root}", *after])
    keys = join_key(pa.array([trace, root, "", None], pa.string())).to_pylist()
    assert keys == [root, root, None, None]


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(0, 315), order=st.permutations(["waf", "partner_a", "partner_b"]))
def test_any_delivery_order_joins_every_record(cut, order):
    waf, cf = parsed("waf-cloudfront.log.gz"), parsed("cloudfront.log.gz")
    parts = {"waf": waf, "partner_a": cf.slice(0, cut), "partner_b": cf.slice(cut)}
    join = RequestJoin()
    out = joined(join, *(parts[k] for k in order))
    assert out.num_rows == waf.num_rows and out[rq.STATUS].null_count == 0
    assert join.counts.matched == waf.num_rows
