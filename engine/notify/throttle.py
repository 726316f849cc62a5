"""Rate limiting: at most one message per notice kind per interval, with a count of the rest.

A notice that arrives within ``min_interval_s`` of the last one sent for its kind is held
(the newest is kept, the count grows); the next ``offer`` or ``flush`` after the interval
sends it with ``suppressed`` set, so nothing is lost and nobody is flooded. A channel that
fails is counted under ``failures[channel]`` and logged; the engine goes on (a webhook that
is down never stops ingestion or enforcement).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace

from engine.core.clock import Clock
from engine.core.logging import log_event
from engine.notify.notice import Notice, NoticeKind
from engine.notify.senders import NotifyError, Sender

log = logging.getLogger("wafsmith.notify")


class RateLimitedNotifier:
    def __init__(
        self, senders: list[Sender], *, clock: Clock, min_interval_s: float = 300.0
    ) -> None:
        self.senders = senders
        self.clock = clock
        self.min_interval_s = min_interval_s
        self.sent: Counter[str] = Counter()  # notices delivered, by kind
        self.failures: Counter[str] = Counter()  # failed deliveries, by channel
        self._last_sent: dict[NoticeKind, float] = {}
        self._pending: dict[NoticeKind, tuple[Notice, int]] = {}  # newest notice, folded count

    def offer(self, notice: Notice) -> bool:
        """Send ``notice`` now if its kind is not rate limited, else hold it. True if sent."""
        held = self._pending.pop(notice.kind, None)
        folded = 0 if held is None else held[1] + 1
        if not self._due(notice.kind):
            self._pending[notice.kind] = (notice, folded)
            return False
        self._deliver(replace(notice, suppressed=notice.suppressed + folded))
        return True

    def flush(self) -> int:
        """Send the held notices whose interval has passed; returns how many were sent."""
        sent = 0
        for kind in list(self._pending):
            if self._due(kind):
                notice, folded = self._pending.pop(kind)
                self._deliver(replace(notice, suppressed=notice.suppressed + folded))
                sent += 1
        return sent

    def _due(self, kind: NoticeKind) -> bool:
        last = self._last_sent.get(kind)
        return last is None or self.clock.monotonic() - last >= self.min_interval_s

    def _deliver(self, notice: Notice) -> None:
        self._last_sent[notice.kind] = self.clock.monotonic()
        self.sent[notice.kind.value] += 1
        for sender in self.senders:
            try:
                sender.send(notice)
            except NotifyError as exc:
                self.failures[sender.name] += 1
                log_event(
                    log,
                    "notify_failed",
                    level=logging.WARNING,
                    channel=sender.name,
                    kind=notice.kind.value,
                    error=str(exc),
                )
