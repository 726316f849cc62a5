"""Injected time: engine code takes a clock instead of calling ``time.time()`` or ``sleep``."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """What the engine needs of time: now (epoch seconds and aware UTC) and waiting."""

    def time(self) -> float: ...

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real wall clock."""

    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock tests advance by hand; ``sleep`` advances it instead of waiting."""

    def __init__(self, start: float | datetime = 1_700_000_000.0) -> None:
        if isinstance(start, datetime):
            start = start.timestamp()
        self._t = float(start)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def time(self) -> float:
        with self._lock:
            return self._t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def monotonic(self) -> float:
        return self.time()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            self.advance(seconds)


SYSTEM_CLOCK = SystemClock()


class AcceleratedClock:
    """Simulated time running ``speed`` times faster than the wall clock, from ``start``.

    The demo replays an hour of traffic in minutes: windows, TTLs and write pacing all follow
    the simulated time, and ``sleep`` waits the correspondingly shorter real time.
    """

    def __init__(self, start: float | datetime, *, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        if isinstance(start, datetime):
            start = start.timestamp()
        self.start = float(start)
        self.speed = float(speed)
        self._real0 = time.monotonic()

    def time(self) -> float:
        return self.start + (time.monotonic() - self._real0) * self.speed

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def monotonic(self) -> float:
        return self.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)
