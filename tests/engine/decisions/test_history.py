"""The retained request history: hourly partitions, event-time retention, windowed reads."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.clock import FakeClock
from engine.decisions.history import HistoryError, RequestHistory
from engine.schema.request import CLIENT_IP, EVENT_TIME, REQUEST_SCHEMA, SOURCE, conform
from tests.support.history import requests
from tests.support.ledger import START


def test_rows_land_in_their_event_hour(tmp_path, clock) -> None:
    history = RequestHistory(tmp_path / "history", clock=clock, retention_hours=24)
    table = requests("192.0.2.1", 60, end=clock.now(), span=timedelta(hours=3))
    assert history.append(table) == 60
    hours = list(history.partitions())
    assert [h.hour for h in hours] == [9, 10, 11, 12]
    back = history.read(since=clock.now() - timedelta(hours=4), until=clock.now() + timedelta(1))
    assert back.schema == REQUEST_SCHEMA
    assert back.num_rows == 60
    assert not list((tmp_path / "history").rglob("*.tmp"))


def test_rows_older_than_retention_are_not_kept(tmp_path, clock) -> None:
    history = RequestHistory(tmp_path, clock=clock, retention_hours=2)
    table = requests("192.0.2.1", 40, end=clock.now(), span=timedelta(hours=4))
    written = history.append(table)
    assert written == 21  # every 6 minutes back to exactly the horizon (inclusive)
    times = history.read(since=clock.now() - timedelta(hours=10)).column(EVENT_TIME)
    assert pc.min(times).as_py() >= clock.now() - timedelta(hours=2)


def test_prune_follows_the_clock(tmp_path, clock) -> None:
    history = RequestHistory(tmp_path, clock=clock, retention_hours=3)
    history.append(requests("192.0.2.1", 30, end=clock.now(), span=timedelta(hours=3)))
    assert len(history.partitions()) == 4
    assert history.prune() == 0
    clock.advance(2 * 3600)
    assert history.prune() == 2  # hours 09 and 10 ended before 11:00
    assert [h.hour for h in history.partitions()] == [11, 12]
    left = history.read(since=clock.now() - timedelta(hours=48))
    assert pc.min(left.column(EVENT_TIME)).as_py() >= clock.now() - timedelta(hours=4)


def test_read_window_is_half_open_and_selects_columns(tmp_path, clock) -> None:
    history = RequestHistory(tmp_path, clock=clock)
    history.append(requests("192.0.2.1", 10, end=clock.now(), span=timedelta(minutes=10)))
    since = clock.now() - timedelta(minutes=5)
    part = history.read(since=since, until=clock.now(), columns=[CLIENT_IP])
    assert part.column_names == [CLIENT_IP]
    assert part.num_rows == 5  # minutes 0..4 before now; "now" itself is excluded
    assert history.read(since=clock.now() + timedelta(hours=1)).num_rows == 0


def test_bad_input_is_refused(tmp_path, clock) -> None:
    history = RequestHistory(tmp_path, clock=clock)
    table = requests("192.0.2.1", 3, end=clock.now())
    nulls = table.set_column(
        table.schema.get_field_index(CLIENT_IP), CLIENT_IP, pa.nulls(3, pa.string())
    )
    with pytest.raises(HistoryError, match=CLIENT_IP):
        history.append(nulls)
    assert history.partitions() == {}
    with pytest.raises(HistoryError, match="unknown request column"):
        history.read(since=clock.now(), columns=["nope"])
    with pytest.raises(HistoryError, match="retention_hours"):
        RequestHistory(tmp_path, clock=clock, retention_hours=0)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(
        st.lists(
            st.tuples(st.integers(0, 6 * 3600 - 1), st.sampled_from(["a", "b", "c"])), max_size=30
        ),
        max_size=4,
    )
)
def test_appended_rows_read_back_exactly(tmp_path_factory, batches) -> None:
    clock = FakeClock(START)
    history = RequestHistory(tmp_path_factory.mktemp("h"), clock=clock, retention_hours=6)
    expected = []
    for batch in batches:
        times = [START - timedelta(seconds=s) for s, _ in batch]
        clients = [f"192.0.2.{ord(c)}" for _, c in batch]
        table = conform(
            pa.table(
                {
                    EVENT_TIME: pa.array(times, pa.timestamp("ms", tz="UTC")),
                    CLIENT_IP: clients,
                    SOURCE: ["waf"] * len(batch),
                }
            )
        )
        assert history.append(table) == len(batch)
        expected += list(zip(times, clients, strict=True))
    back = history.read(since=START - timedelta(hours=6), until=START + timedelta(seconds=1))
    got = list(
        zip(back.column(EVENT_TIME).to_pylist(), back.column(CLIENT_IP).to_pylist(), strict=True)
    )
    assert sorted(got) == sorted(expected)
