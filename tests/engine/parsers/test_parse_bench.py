"""The parse benchmark and its generator run end to end on a small input."""

from __future__ import annotations

import json

import pytest

from benchmarks import alb_generator, bench_parse
from benchmarks.naive_parser import naive
from engine.parsers import parse_object
from engine.schema.request import CLIENT_IP


def test_generator_is_deterministic_and_parses_cleanly() -> None:
    data = alb_generator.generate_gzip(3000, n_clients=500, seed=3)
    assert data == alb_generator.generate_gzip(3000, n_clients=500, seed=3)
    result = parse_object(data, key="x/elasticloadbalancing/y.log.gz")
    assert (result.format, result.rows, result.malformed) == ("alb", 3000, {})
    clients = result.table.column(CLIENT_IP).unique()
    assert 50 < len(clients) <= 500
    assert any(":" in ip for ip in clients.to_pylist())  # some IPv6, normalised


def test_benchmark_reports_all_three_contenders(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_parse.main(["--lines", "2000", "--repeat", "1", "--clients", "300"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["results"]) == {"floor", "naive", "wafsmith"}
    assert all(r["lines"] == 2000 for r in doc["results"].values())
    assert set(doc["ratios_cpu"]) == {"wafsmith_over_naive", "floor_over_wafsmith"}
    whole = doc["whole_process"]  # child processes: naive parser vs `wafsmith parse`
    assert whole["naive"]["cpu_s"] > 0 and whole["wafsmith"]["cpu_s"] > 0
    assert whole["ratio_wall"] > 0 and whole["ratio_cpu"] > 0
    stages = doc["wafsmith_stages_cpu_s"]
    assert {"decompress", "tokenize_csv", "request_split", "ip_normalise"} <= set(stages)


def test_naive_peer_counts_every_line() -> None:
    data = alb_generator.generate_gzip(500, n_clients=50, seed=2)
    assert naive(data) == 500
