"""The dashboard as an analyst reads it, over a real analyzer run's decisions: reasons that
fired first in plain words and the quiet checks folded away, sketch estimates as "≈ N",
evidence as one compact request table with blank empty fields, and the queue grouped by
detector and campaign with the blast-radius holds on top."""

from __future__ import annotations

import re

import pytest

from api.reasons import split_reasons
from tests.support.signin import sign_in


@pytest.fixture()
def db_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture()
def stored(service, analysis):
    return service.ledger.propose_many(analysis.decisions)


def with_quiet_checks(stored):
    found = [d for d in stored if split_reasons(d.reasons)[1] and d.evidence]
    assert found, "the analyzer run has no decision with a check that stayed quiet"
    return found[0]


def test_fired_reasons_come_first_and_quiet_checks_are_folded(client, tokens, stored) -> None:
    decision = with_quiet_checks(stored)
    sign_in(client, tokens.viewer)
    page = client.get(f"/dashboard/decisions/{decision.id}").text
    fired_block = re.search(r'<ul class="reasons fired">(.*?)</ul>', page, re.S).group(1)
    folded = re.search(r'<details class="checked">(.*?)</details>', page, re.S).group(1)
    fired, quiet = split_reasons(decision.reasons)
    assert fired and quiet
    for reason in fired:
        assert reason.text in fired_block.replace("&amp;", "&")
    for reason in quiet:
        assert reason.text in folded.replace("&amp;", "&")
        assert reason.text not in fired_block
    assert page.index("reasons fired") < page.index("<h2>Evidence</h2>")  # why, before detail


def test_sketch_estimates_read_as_approximate_integers(client, tokens, stored) -> None:
    raw = [r for d in stored for r in d.reasons if re.search(r"\d+\.\d+ distinct", r)]
    assert raw, "the analyzer run has no sketch-estimated count"
    decision = next(d for d in stored if raw[0] in d.reasons)
    sign_in(client, tokens.viewer)
    page = client.get(f"/dashboard/decisions/{decision.id}").text
    page = page[: page.index("<h2>Audit trail</h2>")]  # the audit trail keeps the raw record
    fraction = re.search(r"(\d+\.\d+) distinct", raw[0]).group(1)
    assert f"≈ {round(float(fraction))} distinct" in page
    assert f"{fraction} distinct" not in page


def test_evidence_is_one_compact_row_per_request(client, tokens, stored) -> None:
    decision = next(d for d in stored if len(d.evidence) >= 2)
    sign_in(client, tokens.viewer)
    page = client.get(f"/dashboard/decisions/{decision.id}").text
    table = re.search(r'<table class="evidence">(.*?)</table>', page, re.S).group(1)
    header = re.findall(r"<th>(.*?)</th>", table)
    assert header == ["Time", "Method", "Path", "Query", "Status", "User agent"]
    rows = re.findall(r'<tr class="sample">(.*?)</tr>', table, re.S)
    assert len(rows) == len(decision.evidence)
    for row, sample in zip(rows, decision.evidence, strict=True):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        assert len(cells) == 6
        assert "None" not in row and "—" not in row  # empty fields are blank
        if sample.query is None:
            assert cells[3] == "<code></code>"


def test_queue_groups_by_detector_and_campaign_with_holds_on_top(client, service, tokens, stored):
    campaigns = [d for d in stored if d.members]
    assert campaigns, "the analyzer run has no campaign decision"
    held = campaigns[0]
    # The policy covers it, yet it still waits: the guard held it.
    service.put_policy(
        {"auto_approve": [{"name": "campaigns", "detectors": [held.detector], "min_score": 0.0}]},
        by="admin-alice",
    )
    sign_in(client, tokens.viewer)
    page = client.get("/dashboard/queue").text
    titles = re.findall(r'<h2 class="group[^"]*" id="g-\d+">(.*?) <small>', page)
    assert titles[0] == "Held by the blast-radius guard"
    assert page.index(f'id="d-{held.id}"') < page.index('id="g-2"')
    assert len(titles) == len(set(titles))
    assert any(t.endswith("· campaigns") for t in titles[1:]) or len(campaigns) == 1
    assert any(t.endswith("· single clients") for t in titles)
