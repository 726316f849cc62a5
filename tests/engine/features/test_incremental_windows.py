"""Incremental sliding windows equal the full re-reduction of every pane (the oracle).

Two stores get the same batches — out of order, late, split across objects, closed early
by an idle source, evicted and re-coded — and every window of every evaluation must be
identical, feature by feature, bit for bit.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.features import FeatureConfig, FeatureStore
from tests.support.traffic import BROWSER_UAS, Traffic

PATHS = ["/", "/login", "/search", "/static/app.css", "/admin/.env", "/p/1", "/p/2", "/p/3"]
CLIENTS = [f"198.51.{i // 256}.{i % 256}" for i in range(512)]

event = st.tuples(
    st.integers(0, 9),  # client
    st.floats(0, 1500, allow_nan=False),  # event time, seconds (25 minutes)
    st.integers(0, len(PATHS) - 1),
    st.sampled_from([200, 200, 200, 301, 401, 404, 500]),
    st.integers(0, 3),  # user agent
)
step = st.tuples(
    st.lists(event, min_size=1, max_size=40),
    st.sampled_from(["watermark", "watermark", "idle", "compact"]),
)


def batch(events) -> object:
    tr = Traffic()
    for c, t, p, status, ua in events:
        tr.add(CLIENTS[c], t, PATHS[p], status=status, ua=BROWSER_UAS[ua])
    return tr.table()


def assert_same(oracle, incremental) -> None:
    assert oracle.window_end_ms == incremental.window_end_ms
    assert oracle.frames.keys() == incremental.frames.keys()
    for w, want in oracle.frames.items():
        got = incremental.frames[w]
        np.testing.assert_array_equal(got.codes, want.codes, err_msg=f"{w}-minute codes")
        assert got.columns.keys() == want.columns.keys()
        for name, col in want.columns.items():
            np.testing.assert_array_equal(got.columns[name], col, err_msg=f"{w} min {name}")
        np.testing.assert_array_equal(got.fingerprint_keys, want.fingerprint_keys)
        np.testing.assert_array_equal(got.path_keys, want.path_keys)


def replay(steps, cfg: FeatureConfig, *, always_splice: bool = True) -> FeatureStore:
    oracle, incremental = FeatureStore(cfg, incremental=False), FeatureStore(cfg)
    if always_splice:  # never fall back to a full re-reduction, however many clients changed
        incremental._windows.full_share = np.inf
    for events, action in steps:
        table = batch(events)
        oracle.add(table)
        incremental.add(table)
        final = action == "idle"
        panes = oracle.closable(final=final)
        assert incremental.closable(final=final) == panes
        for pane in panes:
            assert_same(oracle.snapshot(pane), incremental.snapshot(pane))
        oracle.evict()
        incremental.evict()
        if action == "compact":  # client codes renumbered, as evict does on a busy site
            oracle._compact()
            incremental._compact()
    panes = oracle.closable(final=True)
    for pane in panes:
        assert_same(oracle.snapshot(pane), incremental.snapshot(pane))
    return incremental


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(step, min_size=1, max_size=6),
    lateness=st.sampled_from([0, 30, 150]),
    windows=st.sampled_from([(1, 5, 15, 60), (1, 2, 5), (1, 3, 10)]),
)
def test_incremental_windows_equal_the_full_re_reduction(steps, lateness, windows):
    replay(steps, FeatureConfig(allowed_lateness_s=lateness, windows_min=windows))


def test_a_steady_stream_of_short_visits_is_evaluated_incrementally_and_exactly():
    """Each client visits for two minutes: most of the hour's clients are unchanged at a
    boundary, so the splice (not the fallback) does the work."""
    steps = []
    rng = np.random.default_rng(3)
    for minute in range(40):
        events = [
            ((minute // 2) * 6 + j, minute * 60 + float(rng.uniform(0, 60)),
             int(rng.integers(len(PATHS))), 200, int(rng.integers(4)))
            for j in range(6)
        ]
        steps.append((events, "watermark"))
    cfg = FeatureConfig(allowed_lateness_s=0, windows_min=(1, 5, 15))
    store = replay(steps, cfg, always_splice=False)
    assert store._windows.incremental_evaluations > store._windows.full_evaluations
