"""The analysis pipeline end to end: streaming semantics, results and stats."""

from __future__ import annotations

import json

from engine.pipeline import Analyzer, analyze_tables
from engine.schema.decision import Decision
from tests.support.traffic import BROWSER_UAS, Traffic


def traffic() -> Traffic:
    tr = Traffic(42)
    for i in range(20):
        tr.browser(f"198.51.100.{i + 1}", 0, 900, pages=8, ua=BROWSER_UAS[i])
    tr.flood("203.0.113.9", 400, 500, rate=10)
    return tr


def test_many_small_tables_and_one_big_table_give_the_same_decisions():
    table = traffic().table()
    one = analyze_tables([table])
    pieces = [table.slice(i, 500) for i in range(0, table.num_rows, 500)]
    many = analyze_tables(pieces)
    key = [(d.client, d.action, d.decided_at) for d in one.decisions]
    assert key == [(d.client, d.action, d.decided_at) for d in many.decisions]
    assert key and key[0][0] == "203.0.113.9"


def test_decisions_are_produced_as_panes_close_not_at_the_end():
    table = traffic().table()
    analyzer = Analyzer()
    early = []
    for start in range(0, table.num_rows, 200):
        early.extend(analyzer.feed(table.slice(start, 200)))
        if early:
            break
    assert early and early[0].client == "203.0.113.9"
    remaining_rows = table.num_rows - start - 200
    assert remaining_rows > 0  # decided before the input ended


def test_result_round_trips_through_json_and_reports_stats():
    res = analyze_tables([traffic().table()])
    doc = json.loads(json.dumps([d.to_dict() for d in res.decisions]))
    assert [Decision.from_dict(d) for d in doc] == res.decisions
    assert res.stats["rows"] == traffic().table().num_rows
    assert res.stats["evaluations"] >= 15
    assert res.stats["state_bytes_per_active_client"] > 0
    assert res.verdicts and res.verdicts[0].reasons


def _alb_log(tmp_path):
    from benchmarks.alb_generator import generate_gzip

    path = tmp_path / "123456789012_elasticloadbalancing_us-east-1_app.shop.1_20261130T0805Z.log.gz"
    path.write_bytes(generate_gzip(3000, n_clients=300))
    return path


def test_cli_analyze_writes_decisions_json_and_a_table(tmp_path, capsys):
    from engine.cli.main import main

    log = _alb_log(tmp_path)
    out = tmp_path / "decisions.json"
    assert main(["analyze", str(log), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["stats"]["rows"] == 3000 and doc["stats"]["objects"] == 1
    assert doc["decisions"], "the generator's fake Googlebots must be proposed"
    first = doc["decisions"][0]
    assert {"client", "action", "score", "detector", "reasons", "decided_at", "ttl_s"} <= set(first)
    assert first["decided_at"].startswith("2026-11-30T08:")  # event time, not wall time
    assert main(["analyze", str(log)]) == 0
    table = capsys.readouterr().out
    assert "decision(s) from 3,000 requests" in table and first["client"] in table


def test_cli_analyze_reads_s3_through_the_endpoint(tmp_path, s3, aws_endpoint, monkeypatch):
    from engine.cli.main import main

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    log = _alb_log(tmp_path)
    s3.create_bucket(Bucket="logs")
    s3.put_object(Bucket="logs", Key=f"AWSLogs/alb/{log.name}", Body=log.read_bytes())
    local, remote = tmp_path / "local.json", tmp_path / "remote.json"
    assert main(["analyze", str(log), "--json", str(local)]) == 0
    assert main(["analyze", "s3://logs/AWSLogs/", "--endpoint-url", aws_endpoint,
                 "--json", str(remote)]) == 0
    assert json.loads(remote.read_text())["decisions"] == json.loads(local.read_text())["decisions"]


def test_cli_analyze_rejects_a_bad_config(tmp_path, capsys):
    from engine.cli.main import main

    cfg = tmp_path / "bad.toml"
    cfg.write_text("[volumetric_flood]\nmin_req_per_minute = 5\n")
    assert main(["analyze", str(_alb_log(tmp_path)), "--config", str(cfg)]) == 2
    assert "min_req_per_minute" in capsys.readouterr().err
