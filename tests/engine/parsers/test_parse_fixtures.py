"""Every ``# expect:`` line under data/fixtures is a test, and every fixture parses whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.parsers import parse_object
from engine.schema.request import REQUEST_SCHEMA
from tests.support.expectations import (
    FIXTURES,
    MALFORMED,
    ROWS,
    Case,
    data_lines,
    load_cases,
    mismatches,
    without_expectations,
)

LOG_FILES = sorted(p for p in FIXTURES.glob("*/*") if p.suffix in {".log", ".jsonl"})
CASES = [case for path in LOG_FILES for case in load_cases(path)]
FORMAT_OF_DIR = {"alb": "alb", "cloudfront": "cloudfront", "waf": "waf"}
SAMPLES = FIXTURES / "samples"  # copies of AWS samples (data/fixtures/README.md)
CORPORA = sorted(SAMPLES.rglob("*.expect.json"))


def test_fixtures_are_present() -> None:
    assert {p.parent.name for p in LOG_FILES} == set(FORMAT_OF_DIR)
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_annotated_line(case: Case) -> None:
    """The line alone (with the CloudFront header in force) gives exactly what is expected."""
    result = parse_object(
        case.headers + case.line + b"\n", fmt=FORMAT_OF_DIR[case.path.parent.name]
    )
    if MALFORMED in case.expect:
        assert result.rows == 0
        assert result.malformed == {case.expect[MALFORMED]: 1}
        assert [s.reason for s in result.bad_samples] == [case.expect[MALFORMED]]
        assert result.bad_samples[0].line_no == case.headers.count(b"\n") + 1
        return
    assert result.malformed == {}
    assert result.rows == case.expect.get(ROWS, 1)
    assert not mismatches(result.table.to_pylist()[0], case.expect)


@pytest.mark.parametrize("path", LOG_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_whole_fixture(path: Path) -> None:
    """Parsed as one object, each annotated line lands as a row or under its reason."""
    content = without_expectations(path)
    result = parse_object(content, key=path.name)
    cases = load_cases(path)
    assert result.format == FORMAT_OF_DIR[path.parent.name]
    assert result.table.schema == REQUEST_SCHEMA
    assert result.rows == result.table.num_rows
    assert result.bytes_read == len(content) + (not content.endswith(b"\n"))
    expected_bad: dict[str, int] = {}
    for case in cases:
        if MALFORMED in case.expect:
            expected_bad[case.expect[MALFORMED]] = expected_bad.get(case.expect[MALFORMED], 0) + 1
    assert result.malformed == expected_bad
    assert result.rows + sum(result.malformed.values()) >= data_lines(content) - 1
    good = [c for c in cases if MALFORMED not in c.expect]
    rows = result.table.to_pylist()
    for case in good:  # each expectation is met by some row of the whole-file parse
        assert any(not mismatches(row, case.expect) for row in rows), case.id


@pytest.mark.parametrize("spec_path", CORPORA, ids=lambda p: p.name.removesuffix(".expect.json"))
def test_aws_sample(spec_path: Path) -> None:
    """The gzip'd AWS samples: row counts, malformed counts and chosen rows."""
    spec = json.loads(spec_path.read_text())
    source = spec_path.parent / spec["path"]
    with source.open("rb") as stream:  # streamed, as a source hands it over
        result = parse_object(stream, key=source.name)
    assert result.format == spec["format"]
    assert result.rows == spec["rows"]
    assert result.malformed == spec["malformed"]
    assert result.table.schema == REQUEST_SCHEMA
    rows = result.table.to_pylist()
    for chosen in spec.get("rows_expected", []):
        assert not mismatches(rows[chosen["row"]], chosen["expect"]), chosen["row"]
    for sample in spec.get("bad_samples_expected", []):
        got = result.bad_samples[sample["index"]]
        assert (got.line_no, got.reason) == (sample["line_no"], sample["reason"])
        assert got.text


SAMPLE_LOG_FORMATS = {
    "alb-doc-examples.log": ("alb", 7),
    "alb_access_log_sample.log": ("alb", 0),  # every client is the anonymised x.0.0.0
    "cloudfront-doc-examples.log": ("cloudfront", 3),
    "cloudfront_standard_log_sample.tsv": ("cloudfront", 0),  # every c-ip is x.x.x.x
    "cf-access-log-sample-excerpt.gz": ("cloudfront", 3249),
    "E3HXCM7PFRG6HT.2023-04-24-21.d740d76bCloudFront.gz": ("cloudfront", 0),
    "waf-doc-examples.jsonl": ("waf", 6),
    "waf_log_sample.jsonl": ("waf", 222),
    "test_waf_log.gz": ("waf", 222),
}


def sample_files() -> list[Path]:
    """Every copied sample, logs or not (the expectations beside them excepted)."""
    return sorted(p for p in SAMPLES.glob("*/*") if not p.name.endswith(".expect.json"))


def test_samples_are_present() -> None:
    assert {p.name for p in sample_files()} >= set(SAMPLE_LOG_FORMATS)
    assert len(CORPORA) == 4


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_parses_without_raising(path: Path) -> None:
    """Logs give their rows; anything else (configs, prose, CSV) is counted, never raised."""
    with path.open("rb") as stream:
        result = parse_object(stream, key=path.name)
    assert result.table.schema == REQUEST_SCHEMA
    if path.name.startswith("XXXXXXXXXXXX_elasticloadbalancing"):
        assert (result.format, result.rows) == ("alb", 0)
        assert result.malformed == {"invalid_client_ip": 100}
    elif path.name in SAMPLE_LOG_FORMATS:
        assert (result.format, result.rows) == SAMPLE_LOG_FORMATS[path.name]
    else:
        assert result.rows == 0
        assert sum(result.malformed.values()) > 0
