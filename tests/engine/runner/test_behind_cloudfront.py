"""The engine loop on WAF logs behind CloudFront, against moto: the viewer (read from
X-Forwarded-For through a CloudFront edge) reaches the block set behind a rule matching the
forwarded address, the edge never does, and the status says where the viewer came from."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

from engine.core.clock import FakeClock
from engine.pipeline import BEHIND_CLOUDFRONT_XFF
from engine.status import EngineStatus, read
from tests.support.cloudfront import EDGE, EDGE_2, FORWARDED, VIEWER, references, waf_line
from tests.support.runner import START, drain, make_runner
from tests.support.waf import all_addresses, ip_set_contents

KEY = (
    "AWSLogs/123456789012/WAFLogs/us-east-1/wafsmith-demo-acl/2026/03/02/10/00/"
    "123456789012_waflogs_us-east-1_wafsmith-demo-acl_20260302T1000Z_abcd1234.log.gz"
)


def at(line: str, offset_ms: int) -> str:
    """A WAF record moved to START + ``offset_ms``."""
    record = json.loads(line)
    record["timestamp"] = int(START.timestamp() * 1000) + offset_ms
    return json.dumps(record)


def test_viewer_behind_cloudfront_is_blocked_by_its_forwarded_address(
    demo_aws, s3, wafv2, tmp_path
):
    lines = [at(waf_line(i, EDGE, [VIEWER]), i * 150) for i in range(400)]
    # a quiet viewer later on moves the watermark past the flood's minutes
    lines += [at(waf_line(i, EDGE_2, ["192.0.2.44"]), 300_000 + i * 1000) for i in range(3)]
    s3.put_object(Bucket=demo_aws.bucket, Key=KEY, Body=gzip.compress("\n".join(lines).encode()))
    runner = make_runner(demo_aws, tmp_path, FakeClock(START + timedelta(minutes=8)))
    drain(runner)
    runner.publish_status(force=True)
    assert all_addresses(ip_set_contents(wafv2)) == {f"{VIEWER}/32"}  # never the edge
    rules = []
    for g in wafv2.list_rule_groups(Scope="REGIONAL")["RuleGroups"]:
        rules += wafv2.get_rule_group(Name=g["Name"], Scope="REGIONAL", Id=g["Id"])["RuleGroup"][
            "Rules"
        ]
    refs = references([r["Statement"] for r in rules])
    assert refs and all(r.get("IPSetForwardedIPConfig") == FORWARDED for r in refs)
    assert read(runner.ledger, EngineStatus).record.notices == (BEHIND_CLOUDFRONT_XFF,)
    runner.close()
