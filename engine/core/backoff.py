"""Exponential back-off with jitter for work that keeps failing (polls, enforcement cycles).

Without it, a loop whose every attempt fails (bad credentials, an unreachable endpoint)
retries as fast as it can: with bad credentials ``wafsmith run`` made 117–148 enforcement
cycles in 30 s, each reading WAF against the account-wide quota. After the n-th consecutive
failure the next attempt waits ``min(cap, base · 2^(n-1))`` scaled by a jitter factor drawn in
``[1 - jitter, 1]`` (so many engines do not retry in step); one success resets it. Time and
randomness are injected: ``now`` comes from the caller's clock, ``random`` is a callable.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class BackoffState:
    """What a status record shows of one back-off: how many failures in a row, the last
    delay, and when (epoch seconds) the next attempt may run."""

    failures: int = 0
    delay_s: float = 0.0
    next_attempt_at: float | None = None
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "failures": self.failures,
            "delay_s": round(self.delay_s, 3),
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
        }


class Backoff:
    """Gate for one kind of attempt: ``ready(now)``, then ``failed(now, error)`` or
    ``succeeded()``."""

    def __init__(
        self,
        *,
        base_s: float = 1.0,
        cap_s: float = 300.0,
        jitter: float = 0.5,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError("back-off needs 0 < base_s <= cap_s")
        if not 0.0 <= jitter < 1.0:
            raise ValueError("back-off jitter must be within [0, 1)")
        self.base_s = base_s
        self.cap_s = cap_s
        self.jitter = jitter
        self._random = random
        self.state = BackoffState()

    def ready(self, now: float) -> bool:
        """Whether an attempt may run at ``now``."""
        at = self.state.next_attempt_at
        return at is None or now >= at

    def failed(self, now: float, error: str | None = None) -> float:
        """Record a failure at ``now``; return the delay before the next attempt."""
        failures = self.state.failures + 1
        ceiling = min(self.cap_s, self.base_s * 2 ** min(failures - 1, 63))
        delay = ceiling * (1.0 - self.jitter * self._random())
        self.state = BackoffState(failures, delay, now + delay, error)
        return delay

    def succeeded(self) -> None:
        """An attempt worked: the next one runs without waiting."""
        if self.state.failures or self.state.next_attempt_at is not None:
            self.state = BackoffState()
