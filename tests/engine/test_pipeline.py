"""The analysis pipeline end to end: streaming semantics, results and stats."""

from __future__ import annotations

import json

from features.traffic import BROWSER_UAS, Traffic

from engine.pipeline import Analyzer, analyze_tables
from engine.schema.decision import Decision


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
