"""How every AWS call is made: paced, retried with full-jitter backoff, counted, classified.

- Writes go through a token bucket on the injected clock (default 1 write/s per account and
  Region, AWS's documented budget for Create/Put/Update), shared by every writer of one
  ``CallPolicy`` object, so concurrent enforcers in one process share the budget; reads
  have their own bucket (5/s, AWS's Get/List budget).
- Throttling, unavailable-entity and internal errors are retried with full-jitter
  exponential backoff (``sleep = U(0, min(cap, base * 2**attempt))``) up to a bound.
- ``WAFOptimisticLockException`` is *not* retried here: the caller must re-read and re-apply
  its diff, which only it can do (``LockConflict``).
- ``WAFInvalidParameterException`` becomes ``InvalidParameterError`` naming the field.
- Anything else is re-raised as ``EnforcerCallError``; nothing is swallowed.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from engine.core.clock import Clock
from engine.core.errors import WafsmithError
from engine.core.lease import Fence
from engine.enforcer.aws_clients import error_code

RETRYABLE = frozenset(
    {
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "WAFUnavailableEntityException",
        "WAFInternalErrorException",
        "InternalErrorException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalFailure",
    }
)
# AWS returns WAFLimitsExceededException for call-rate limits as well as quotas: retry it a
# little, then report it as a quota problem rather than retrying blindly.
LIMITS = "WAFLimitsExceededException"
LOCK = "WAFOptimisticLockException"
INVALID = "WAFInvalidParameterException"


class EnforcerCallError(WafsmithError):
    """An AWS call failed for good; ``code`` and ``operation`` say which and why."""

    def __init__(self, operation: str, code: str, message: str, *, attempts: int = 1) -> None:
        super().__init__(f"{operation} failed with {code} after {attempts} attempt(s): {message}")
        self.operation = operation
        self.code = code
        self.attempts = attempts


class InvalidParameterError(EnforcerCallError):
    """AWS rejected a parameter: a compiler/validator bug. Names the offending field."""

    def __init__(self, operation: str, exc: ClientError) -> None:
        err = exc.response.get("Error", {})
        self.field = str(err.get("Field") or exc.response.get("Field") or "?")
        self.parameter = str(err.get("Parameter") or exc.response.get("Parameter") or "?")
        self.reason = str(err.get("Reason") or exc.response.get("Reason") or "")
        message = (
            f"field={self.field} parameter={self.parameter!r} reason={self.reason!r}: "
            f"{err.get('Message', '')}"
        )
        super().__init__(operation, INVALID, message)


class LockConflict(WafsmithError):
    """Someone changed the resource since we read it; re-read and re-apply the diff."""

    def __init__(self, operation: str) -> None:
        super().__init__(f"{operation}: {LOCK} (resource changed since it was read)")
        self.operation = operation


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved; ``acquire`` sleeps on the clock."""

    def __init__(self, clock: Clock, *, rate: float = 1.0, burst: float = 1.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"token bucket needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self._clock = clock
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._last = clock.monotonic()
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def acquire(self) -> None:
        """Take a token now, then sleep off any debt (no polling loop, so float rounding on
        a large clock value cannot spin it; concurrent callers queue by their debt)."""
        with self._lock:
            now = self._clock.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            self._tokens -= 1
            wait = -self._tokens / self._rate if self._tokens < 0 else 0.0
            self.waited_s += wait
        if wait > 0:
            self._clock.sleep(wait)


@dataclass
class CallStats:
    """What one cycle sent to AWS: requests by operation, error codes, retries, writes."""

    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    lock_conflicts: int = 0
    writes: int = 0
    # Every attempt by (operation, outcome): "ok" or the AWS error code (for metrics).
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": dict(sorted(self.calls.items())),
            "errors": dict(sorted(self.errors.items())),
            "retries": self.retries,
            "lock_conflicts": self.lock_conflicts,
            "writes": self.writes,
        }


class CallPolicy:
    """Pacing and retry settings plus the shared buckets for one account and Region.

    AWS documents 1 request/s for each Create/Put/Update action and 5/s for Get/List; writes
    share one bucket (the budget is treated as shared with everyone in the account), reads
    another with a burst of ``reads_per_s``.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        writes_per_s: float = 1.0,
        reads_per_s: float = 5.0,
        max_attempts: int = 6,
        limits_attempts: int = 3,
        base_backoff_s: float = 0.5,
        max_backoff_s: float = 20.0,
        seed: int | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.clock = clock
        self.bucket = TokenBucket(clock, rate=writes_per_s)
        self.read_bucket = TokenBucket(clock, rate=reads_per_s, burst=max(1.0, reads_per_s))
        self.max_attempts = max_attempts
        self.limits_attempts = limits_attempts
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        with self._rng_lock:
            return self._rng.uniform(0, min(self.max_backoff_s, self.base_backoff_s * 2**attempt))


class Caller:
    """Makes calls for one cycle under a ``CallPolicy``, recording them in ``stats``.

    ``fence`` (the enforcer lease, ``engine.core.lease.Fence``) is checked right before every
    write attempt, after the pacing wait: a process that lost the lease raises ``LeaseLost``
    instead of writing.
    """

    def __init__(
        self, policy: CallPolicy, stats: CallStats | None = None, *, fence: Fence | None = None
    ) -> None:
        self.policy = policy
        self.stats = stats or CallStats()
        self.fence = fence

    def read(self, operation: str, fn: Callable[..., dict[str, Any]], **kw: Any) -> dict[str, Any]:
        return self._call(operation, fn, kw, write=False)

    def write(self, operation: str, fn: Callable[..., dict[str, Any]], **kw: Any) -> dict[str, Any]:
        return self._call(operation, fn, kw, write=True)

    def _call(
        self, operation: str, fn: Callable[..., dict[str, Any]], kw: dict[str, Any], *, write: bool
    ) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            (self.policy.bucket if write else self.policy.read_bucket).acquire()
            if write and self.fence is not None:
                self.fence.check()  # LeaseLost: another engine enforces now
            self.stats.calls[operation] += 1
            try:
                reply = fn(**kw)
            except ClientError as exc:
                code = error_code(exc)
                self.stats.errors[code] += 1
                self.stats.outcomes[(operation, code or "Unknown")] += 1
                if code == LOCK:
                    self.stats.lock_conflicts += 1
                    raise LockConflict(operation) from exc
                if code == INVALID:
                    raise InvalidParameterError(operation, exc) from exc
                bound = self.policy.limits_attempts if code == LIMITS else self.policy.max_attempts
                if (code in RETRYABLE or code == LIMITS) and attempt < bound:
                    self.stats.retries += 1
                    self.policy.clock.sleep(self.policy.backoff(attempt))
                    continue
                message = str(exc.response.get("Error", {}).get("Message", exc))
                if code == LIMITS:
                    message += " (quota or call-rate limit; not retried further)"
                raise EnforcerCallError(
                    operation, code or "Unknown", message, attempts=attempt
                ) from exc
            self.stats.outcomes[(operation, "ok")] += 1
            if write:
                self.stats.writes += 1
            return reply
