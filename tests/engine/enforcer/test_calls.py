"""The call layer alone: retries with full-jitter backoff, pacing, error classification."""

from __future__ import annotations

from typing import Any

import pytest

from engine.core.clock import FakeClock
from engine.enforcer.aws_clients import make_client_error
from engine.enforcer.calls import (
    Caller,
    CallPolicy,
    EnforcerCallError,
    InvalidParameterError,
    LockConflict,
    TokenBucket,
)
from engine.enforcer.faults import FaultInjectingWafV2Api


class _Flaky:
    """Fails with ``codes`` in turn, then answers ``{"ok": True}``."""

    def __init__(self, *codes: str) -> None:
        self.codes = list(codes)
        self.calls = 0

    def __call__(self, **kw: Any) -> dict[str, Any]:
        self.calls += 1
        if self.codes:
            raise make_client_error(self.codes.pop(0), "boom", "UpdateIPSet")
        return {"ok": True}


def test_throttling_and_5xx_are_retried_with_bounded_full_jitter(fake_clock: FakeClock):
    policy = CallPolicy(fake_clock, max_attempts=4, base_backoff_s=1.0, max_backoff_s=3.0, seed=1)
    caller = Caller(policy)
    fn = _Flaky("ThrottlingException", "WAFInternalErrorException", "WAFUnavailableEntityException")
    assert caller.write("UpdateIPSet", fn) == {"ok": True}
    assert fn.calls == 4 and caller.stats.retries == 3 and caller.stats.writes == 1
    backoffs = [s for s in fake_clock.sleeps if s > 0]
    caps = [min(3.0, 1.0 * 2**a) for a in (1, 2, 3)]
    assert len(backoffs) >= 3
    # Full jitter: each backoff is uniform in [0, cap]; pacing sleeps are ≤ 1 s.
    assert all(0 <= b <= max(caps) for b in backoffs)
    samples = [policy.backoff(2) for _ in range(400)]
    assert 0 <= min(samples) < 0.5 and 2.5 < max(samples) <= 3.0  # spread over [0, cap]


def test_retries_are_bounded_and_the_failure_is_raised(fake_clock: FakeClock):
    caller = Caller(CallPolicy(fake_clock, max_attempts=3, seed=1))
    fn = _Flaky(*["ThrottlingException"] * 5)
    with pytest.raises(EnforcerCallError) as info:
        caller.write("UpdateIPSet", fn)
    assert info.value.code == "ThrottlingException" and info.value.attempts == 3
    assert caller.stats.errors["ThrottlingException"] == 3


def test_limits_exceeded_gets_few_retries_then_says_quota(fake_clock: FakeClock):
    caller = Caller(CallPolicy(fake_clock, max_attempts=6, limits_attempts=2, seed=1))
    fn = _Flaky(*["WAFLimitsExceededException"] * 5)
    with pytest.raises(EnforcerCallError, match="quota or call-rate limit"):
        caller.write("CreateIPSet", fn)
    assert fn.calls == 2


def test_lock_conflicts_go_back_to_the_caller_and_unknown_errors_are_not_retried(
    fake_clock: FakeClock,
):
    caller = Caller(CallPolicy(fake_clock, seed=1))
    with pytest.raises(LockConflict):
        caller.write("UpdateIPSet", _Flaky("WAFOptimisticLockException"))
    fn = _Flaky("AccessDeniedException")
    with pytest.raises(EnforcerCallError, match="AccessDeniedException"):
        caller.read("GetIPSet", fn)
    assert fn.calls == 1


def test_invalid_parameter_names_field_parameter_and_reason(fake_clock: FakeClock):
    def reject(**kw: Any) -> dict[str, Any]:
        raise make_client_error(
            "WAFInvalidParameterException",
            "bad",
            "UpdateIPSet",
            extra={"Field": "IP_ADDRESS", "Parameter": "1.2.3.4", "Reason": "not a CIDR"},
        )

    with pytest.raises(InvalidParameterError) as info:
        Caller(CallPolicy(fake_clock)).write("UpdateIPSet", reject)
    assert (info.value.field, info.value.parameter, info.value.reason) == (
        "IP_ADDRESS",
        "1.2.3.4",
        "not a CIDR",
    )


def test_token_bucket_keeps_one_write_per_second(fake_clock: FakeClock):
    bucket = TokenBucket(fake_clock, rate=1.0)
    start = fake_clock.time()
    for _ in range(6):
        bucket.acquire()
    assert fake_clock.time() - start == pytest.approx(5.0)
    fake_clock.advance(10)  # idle time does not bank more than one write
    bucket.acquire()
    before = fake_clock.time()
    bucket.acquire()
    assert fake_clock.time() - before == pytest.approx(1.0)


def test_fault_injector_refuses_unknown_codes_and_impossible_rates():
    with pytest.raises(ValueError, match="unknown fault codes"):
        FaultInjectingWafV2Api(object(), rates={"Nope": 0.1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="add up"):
        FaultInjectingWafV2Api(
            object(),
            rates={
                "ThrottlingException": 0.7,  # type: ignore[arg-type]
                "WAFInternalErrorException": 0.6,
            },
        )


def test_no_catch_all_handler_on_the_enforcement_path():
    """Errors are handled by name and re-raised or recorded; never swallowed wholesale."""
    import re
    from pathlib import Path

    folder = Path(__file__).resolve().parents[3] / "engine" / "enforcer"
    offenders = []
    for path in sorted(folder.glob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"except\s*(:|Exception\b|BaseException\b)", line):
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert offenders == []


def test_token_bucket_never_spins_on_float_rounding():
    """At epoch ~1.7e9 a wait of 1e-17 s does not move a float clock; acquire must not loop."""
    clock = FakeClock(1_700_000_000.0)
    bucket = TokenBucket(clock, rate=5.0, burst=5.0)
    for _ in range(200):
        bucket.acquire()
    assert len(clock.sleeps) == 195  # the burst is free, every later read waits its turn
    assert clock.time() - 1_700_000_000.0 == pytest.approx(195 / 5.0)
