"""``Backoff``: exponential waits, capped, jittered within bounds, reset by one success."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.core.backoff import Backoff


@given(
    failures=st.integers(1, 80),
    draws=st.lists(st.floats(0.0, 0.999999), min_size=80, max_size=80),
)
def test_each_wait_is_the_doubled_base_jittered_and_capped(failures, draws):
    feed = iter(draws)
    backoff = Backoff(base_s=0.5, cap_s=60.0, jitter=0.5, random=lambda: next(feed))
    now = 100.0
    for n in range(1, failures + 1):
        assert backoff.ready(now)
        delay = backoff.failed(now, "boom")
        ceiling = min(60.0, 0.5 * 2 ** (n - 1))
        assert ceiling * 0.5 <= delay <= ceiling
        assert not backoff.ready(now + delay * 0.99)
        now += delay
    assert backoff.state.failures == failures and backoff.state.last_error == "boom"
    backoff.succeeded()
    assert backoff.ready(now) and backoff.state.failures == 0
