"""``wafsmith parse``: one JSON summary for local files, directories and s3:// prefixes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.cli.main import main
from engine.schema.request import REQUEST_SCHEMA
from tests.support.expectations import FIXTURES, without_expectations

ALB = FIXTURES / "alb" / "alb-samples.log"
WAF = FIXTURES / "waf" / "waf-samples.jsonl"
CF = FIXTURES / "cloudfront" / "cloudfront-doc.log"


def run_parse(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["parse", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.fixture()
def log_dir(tmp_path: Path) -> Path:
    (tmp_path / "b").mkdir()
    (tmp_path / "a.log").write_bytes(without_expectations(ALB))
    (tmp_path / "b" / "waf.log.gz").write_bytes(gzip.compress(without_expectations(WAF)))
    (tmp_path / "b" / "cf.log").write_bytes(without_expectations(CF))
    return tmp_path


def test_directory_summary(capsys: pytest.CaptureFixture[str], log_dir: Path) -> None:
    code, doc = run_parse(capsys, str(log_dir))
    assert code == 0
    assert doc["objects"] == 3
    assert doc["rows_by_format"] == {"alb": 13, "cloudfront": 3, "waf": 9}
    assert doc["rows"] == 25
    assert doc["repaired"] == {"unbalanced_quote": 1}  # kept, its open quote closed
    assert doc["malformed"] == {
        "invalid_client_ip": 3, "invalid_json": 1, "invalid_timestamp": 1, "invalid_value": 1,
        "wrong_field_count": 1,
    }  # fmt: skip
    assert doc["time_range"] == {
        "start": "2018-07-02T22:23:00.186000Z", "end": "2026-11-30T08:02:05Z",
    }  # fmt: skip
    assert len(doc["bad_samples"]) == 7
    assert {s["uri"] for s in doc["bad_samples"]} == {
        str(log_dir / "a.log"), str(log_dir / "b" / "waf.log.gz"),
    }  # fmt: skip
    assert doc["throughput"]["lines_per_s"] > 0 and doc["errors"] == []


def test_out_writes_every_row_as_parquet(
    capsys: pytest.CaptureFixture[str], log_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "rows.parquet"
    code, doc = run_parse(capsys, str(log_dir / "a.log"), str(log_dir / "b"), "--out", str(out))
    assert code == 0 and doc["out"] == str(out)
    table = pq.read_table(out)
    assert table.num_rows == doc["rows"] == 25
    assert table.schema.remove_metadata() == REQUEST_SCHEMA


def test_forced_format_counts_other_formats_as_malformed(
    capsys: pytest.CaptureFixture[str], log_dir: Path
) -> None:
    code = main(["parse", str(log_dir / "b" / "waf.log.gz"), "--format", "alb"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 1  # nothing parsed: the summary, a warning and a non-zero exit
    assert doc["rows"] == 0 and sum(doc["malformed"].values()) == 11
    assert "nothing in 1 object(s) could be parsed" in captured.err


def test_missing_input_is_named_and_fails(
    capsys: pytest.CaptureFixture[str], log_dir: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.log"
    code = main(["parse", str(log_dir / "a.log"), str(missing)])
    captured = capsys.readouterr()
    assert code == 1
    doc = json.loads(captured.out)
    assert doc["rows"] == 13
    assert doc["errors"][0]["input"] == str(missing)
    assert str(missing) in captured.err


def test_s3_prefix_through_moto(capsys: pytest.CaptureFixture[str], s3, aws_endpoint: str) -> None:
    s3.create_bucket(Bucket="logs")
    alb_key = (
        "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/123456789012_"
        "elasticloadbalancing_us-east-1_app.shop.1_20261130T0805Z_192.0.2.9_x.log.gz"
    )
    s3.put_object(Bucket="logs", Key=alb_key, Body=gzip.compress(without_expectations(ALB)))
    s3.put_object(
        Bucket="logs",
        Key="AWSLogs/123456789012/WAFLogs/us-east-1/acl/2026/11/30/08/05/w.log.gz",
        Body=gzip.compress(without_expectations(WAF)),
    )
    s3.put_object(Bucket="logs", Key="other/readme.txt", Body=b"not a log\n")
    code, doc = run_parse(capsys, "s3://logs/AWSLogs/", "--endpoint-url", aws_endpoint)
    assert code == 0
    assert doc["objects"] == 2
    assert doc["rows_by_format"] == {"alb": 13, "waf": 9}
    assert doc["bad_samples"][0]["uri"].startswith("s3://logs/AWSLogs/")
