"""A retained request history for backtests: hourly Parquet partitions under the data directory.

The pipeline appends canonical request tables (``engine.schema.request``); rows land in the
partition of their *event* hour (``hour=YYYY-MM-DDTHH/part-*.parquet``) and partitions older
than ``retention_hours`` before the injected clock's now are dropped. Each file is written
to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine.core.clock import Clock
from engine.core.errors import WafsmithError
from engine.schema.request import CLIENT_IP, EVENT_TIME, REQUEST_SCHEMA, conform

PARTITION_PREFIX = "hour="
HOUR_FORMAT = "%Y-%m-%dT%H"


class HistoryError(WafsmithError, ValueError):
    """A table that cannot be retained (missing event time or client) or a bad query."""


class RequestHistory:
    """Append-only, hour-partitioned store of canonical requests with event-time retention.

    Parameters
    ----------
    root
        Directory of the partitions (created on first append), e.g. ``<data_dir>/history``.
    clock
        Supplies "now" for retention and for the default query window.
    retention_hours
        Partitions whose hour ended more than this long before now are deleted.
    """

    def __init__(self, root: Path, *, clock: Clock, retention_hours: int = 24) -> None:
        if retention_hours < 1:
            raise HistoryError(f"retention_hours must be >= 1, got {retention_hours}")
        self.root = Path(root)
        self.clock = clock
        self.retention_hours = retention_hours

    @property
    def horizon(self) -> datetime:
        """Oldest event time still retained at the clock's now."""
        return self.clock.now() - timedelta(hours=self.retention_hours)

    def append(self, table: pa.Table | pa.RecordBatch, *, part: str | None = None) -> int:
        """Retain the rows of ``table`` newer than the horizon; return how many were written.

        ``part`` names the files written (one per hour partition): appending again under the
        same name replaces them, so re-processing a re-delivered object is idempotent.
        """
        if part is not None and not part.replace("-", "").isalnum():
            raise HistoryError(f"part name {part!r} must be letters, digits and dashes")
        table = conform(table)
        for name in (EVENT_TIME, CLIENT_IP):
            if table.column(name).null_count:
                raise HistoryError(f"{table.column(name).null_count} row(s) lack {name}")
        keep = pc.greater_equal(
            table.column(EVENT_TIME), pa.scalar(self.horizon, REQUEST_SCHEMA.field(EVENT_TIME).type)
        )
        table = table.filter(keep)
        if table.num_rows == 0:
            return 0
        hours = pc.floor_temporal(table.column(EVENT_TIME), unit="hour")
        for hour in pc.unique(hours).to_pylist():
            rows = table.filter(pc.equal(hours, pa.scalar(hour, hours.type)))
            self._write(hour, rows, part or uuid.uuid4().hex)
        return table.num_rows

    def _write(self, hour: datetime, rows: pa.Table, part: str) -> None:
        directory = self.root / f"{PARTITION_PREFIX}{hour.astimezone(UTC).strftime(HOUR_FORMAT)}"
        directory.mkdir(parents=True, exist_ok=True)
        name = f"part-{part}.parquet"
        tmp = directory / f".{name}.tmp"
        pq.write_table(rows, tmp, compression="zstd")
        tmp.replace(directory / name)

    def partitions(self) -> dict[datetime, Path]:
        """Retained hour partitions by the hour they start."""
        out: dict[datetime, Path] = {}
        if not self.root.is_dir():
            return out
        for path in self.root.iterdir():
            if path.is_dir() and path.name.startswith(PARTITION_PREFIX):
                try:
                    start = datetime.strptime(path.name[len(PARTITION_PREFIX) :], HOUR_FORMAT)
                except ValueError:
                    continue  # not ours
                out[start.replace(tzinfo=UTC)] = path
        return dict(sorted(out.items()))

    def prune(self) -> int:
        """Delete partitions wholly older than the horizon; return how many were deleted."""
        horizon = self.horizon
        removed = 0
        for start, path in self.partitions().items():
            if start + timedelta(hours=1) <= horizon:
                shutil.rmtree(path)
                removed += 1
        return removed

    def read(
        self,
        *,
        since: datetime,
        until: datetime | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """Retained requests with ``since <= event_time < until`` (until defaults to now)."""
        until = until or self.clock.now()
        if since.tzinfo is None or until.tzinfo is None:
            raise HistoryError("history query times must be timezone-aware (UTC)")
        wanted = list(columns) if columns else list(REQUEST_SCHEMA.names)
        unknown = set(wanted) - set(REQUEST_SCHEMA.names)
        if unknown:
            raise HistoryError(f"unknown request column(s): {sorted(unknown)}")
        read_cols = wanted if EVENT_TIME in wanted else [*wanted, EVENT_TIME]
        schema = pa.schema([REQUEST_SCHEMA.field(c) for c in read_cols])
        tables = []
        first_hour = since.replace(minute=0, second=0, microsecond=0)
        for start, path in self.partitions().items():
            if start < first_hour or start >= until:
                continue
            for file in sorted(path.glob("part-*.parquet")):
                try:
                    tables.append(pq.read_table(file, columns=read_cols, schema=schema))
                except FileNotFoundError:
                    continue  # its partition was pruned by retention while we listed it
        if not tables:
            return schema.empty_table().select(wanted)
        table = pa.concat_tables(tables)
        times = table.column(EVENT_TIME)
        ts_type = REQUEST_SCHEMA.field(EVENT_TIME).type
        inside = pc.and_(
            pc.greater_equal(times, pa.scalar(since, ts_type)),
            pc.less(times, pa.scalar(until, ts_type)),
        )
        return table.filter(inside).select(wanted)
