"""What every part of the facade shares: the ledger, the clock and the cached state counts."""

from __future__ import annotations

from datetime import datetime

from engine.core.clock import Clock
from engine.decisions import Ledger


class ServiceBase:
    """The attributes ``Service.__init__`` sets, declared once for the parts that use them."""

    ledger: Ledger
    clock: Clock
    _counts: tuple[float, dict[str, int]] | None  # (monotonic time, decisions per state)

    def now(self) -> datetime:
        return self.clock.now()

    def _forget_counts(self) -> None:
        """The ledger changed through this service: count decisions again on the next read."""
        self._counts = None
