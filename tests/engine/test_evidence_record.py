"""The evidence sample record: its fields are request columns, and its JSON form reads
tolerantly across engine versions but refuses what is not a sample."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.schema.decision import Action, Decision, DecisionError
from engine.schema.evidence import (
    FIELDS,
    PRIORITY,
    SAMPLE_COLUMNS,
    EvidenceError,
    EvidenceSample,
)
from engine.schema.request import REQUEST_SCHEMA
from engine.schema.verdict import ClientVerdict, VerdictError

text = st.none() | st.text(max_size=40)
integer = st.none() | st.integers(min_value=-(2**15), max_value=2**15 - 1)
samples = st.builds(
    EvidenceSample,
    event_time=text,
    method=text,
    path=text,
    query=text,
    status=integer,
    user_agent=text,
    priority=integer,
)


def test_fields_are_the_sample_columns_of_the_request_schema() -> None:
    assert (*SAMPLE_COLUMNS, PRIORITY) == FIELDS
    assert set(SAMPLE_COLUMNS) <= set(REQUEST_SCHEMA.names)


@given(samples)
def test_json_round_trip(sample: EvidenceSample) -> None:
    assert EvidenceSample.from_dict(json.loads(json.dumps(sample.to_dict()))) == sample


def test_missing_fields_read_as_none_and_unknown_keys_are_ignored() -> None:
    assert EvidenceSample.from_dict({"path": "/x", "ja4": "t13d"}) == EvidenceSample(path="/x")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"requests_1m": 520, "sample_requests": [{"path": "/login"}]}, "none of the sample"),
        ({"path": 7}, "path must be text"),
        ({"status": "401"}, "status must be an integer"),
        ({"status": True}, "status must be an integer"),
        (["GET", "/login"], "is a JSON object"),
    ],
)
def test_what_is_not_a_sample_is_refused(item, message) -> None:
    with pytest.raises(EvidenceError, match=message):
        EvidenceSample.from_dict(item)


def test_decisions_and_verdicts_carry_samples_and_refuse_other_shapes() -> None:
    when = datetime(2026, 3, 1, tzinfo=UTC)
    row = {"path": "/login", "status": 401, "priority": 3}
    decision = Decision("192.0.2.1", Action.BLOCK, 60, 0.9, "x", evidence=(row,), decided_at=when)
    assert decision.evidence == (EvidenceSample(path="/login", status=401, priority=3),)
    assert Decision.from_dict(json.loads(json.dumps(decision.to_dict()))) == decision
    with pytest.raises(DecisionError, match="none of the sample"):
        Decision("192.0.2.1", Action.BLOCK, 60, 0.9, "x", evidence=({"rpm": 5},))
    with pytest.raises(VerdictError, match="must be an integer"):
        ClientVerdict("192.0.2.1", 0.9, "flood", "high", "x", evidence=({"status": 2.5},))
