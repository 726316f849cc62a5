"""Ledger test helpers: the moment the ledger tests' fake clock starts at."""

from __future__ import annotations

from datetime import UTC, datetime

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
