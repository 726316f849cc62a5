"""`wafsmith analyze` on a web ACL's log together with the ALB's or CloudFront's log of the same
requests: each request is analysed once, as its WAF record with its partner's status, so
credential stuffing is found from the web ACL's log (issue 11: "the status comes back then").

``--join auto`` pairs the logs when their keys are AWS's own log paths; ``on`` and ``off``
decide for keys that name no layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.parsers import parse_object
from engine.pipeline import WAF_AND_PARTNER_LOGS
from tests.support.join import AWS_KEYS
from tests.support.join import JOIN_FIXTURES as FIXTURES


def analyze(folder: Path, tmp_path: Path, *flags: str) -> dict:
    out = tmp_path / "decisions.json"
    assert main(["analyze", str(folder), "--json", str(out), *flags]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def rows_of(name: str) -> int:
    return parse_object((FIXTURES / name).read_bytes(), key=name).rows


def stuffers(doc: dict) -> set[str]:
    return {d["client"] for d in doc["decisions"] if d["detector"] == "credential_stuffing"}


def test_aws_log_paths_of_both_are_joined_and_stuffing_is_found(tmp_path):
    folder = tmp_path / "logs"
    for name, key in AWS_KEYS.items():
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / name, folder / key)
    doc = analyze(folder, tmp_path)
    join = doc["stats"]["join"]
    waf_rows = rows_of("waf-alb.log.gz")
    assert join["matched"] == waf_rows and join["unmatched"] == 0
    assert doc["stats"]["rows"] == waf_rows  # each request once, not once per log
    assert doc["stats"]["rows_by_source"] == {"waf": waf_rows}
    assert WAF_AND_PARTNER_LOGS not in doc["stats"]["notices"]
    assert len(stuffers(doc)) == 1


def test_the_web_acl_log_alone_finds_no_stuffing_and_joins_nothing(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    shutil.copy(FIXTURES / "waf-alb.log.gz", folder)
    doc = analyze(folder, tmp_path)
    assert "join" not in doc["stats"]
    assert not stuffers(doc)


PAIRS = [("waf-alb.log.gz", "alb.log.gz"), ("waf-cloudfront.log.gz", "cloudfront.log.gz")]


@pytest.mark.parametrize(("waf_log", "partner_log"), PAIRS)
def test_keys_without_a_layout_join_on_request(tmp_path, waf_log, partner_log):
    folder = tmp_path / "logs"
    folder.mkdir()
    for name in (waf_log, partner_log):
        shutil.copy(FIXTURES / name, folder)
    plain = analyze(folder, tmp_path)  # auto: these names say nothing, so no join
    assert "join" not in plain["stats"]
    assert plain["stats"]["rows"] == rows_of(waf_log) + rows_of(partner_log)
    # every request counted twice, and the operator is told so and how to avoid it
    assert plain["stats"]["notices"] == [WAF_AND_PARTNER_LOGS]
    joined = analyze(folder, tmp_path, "--join", "on")
    assert joined["stats"]["join"]["matched"] == rows_of(waf_log)
    assert joined["stats"]["notices"] == []
    assert joined["stats"]["rows"] == rows_of(waf_log)
    assert len(stuffers(joined)) == 1
    off = analyze(folder, tmp_path, "--join", "off")
    assert "join" not in off["stats"]
