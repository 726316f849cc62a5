"""Heartbeats while one long call runs: a small thread that is stopped deterministically.

A pipeline that reads an object in batches calls ``delivery.heartbeat()`` between them. When
the read is one long call (e.g. a parser that takes the whole stream), wrap it instead:

>>> with KeepAlive(source.heartbeat, interval_s=30):
...     result = parse_object(delivery.obj.open())

The thread only *ticks*; whether a message's visibility is extended is still decided by the
source on its injected clock. Leaving the block stops the thread and joins it, so no heartbeat
runs after the block, and an error raised by a heartbeat is re-raised there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from engine.sources.objects import SourceError


class KeepAlive:
    """Call ``beat()`` every ``interval_s`` seconds on a thread while the ``with`` block runs."""

    def __init__(self, beat: Callable[[], object], *, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.beat = beat
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0
        self.error: BaseException | None = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.beat()
            except BaseException as exc:  # handed to the caller's thread in __exit__
                self.error = exc
                return
            self.beats += 1

    def __enter__(self) -> KeepAlive:
        self._thread = threading.Thread(target=self._run, name="wafsmith-keepalive", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop ticking and wait for the thread to finish its current beat."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self.error is not None and exc is None:
            raise SourceError(f"heartbeat failed: {self.error}") from self.error
