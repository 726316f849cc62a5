"""``wafsmith parse PATH_OR_S3_URL...``: parse log objects and print one JSON summary.

Reads local files, directories (recursively, in key order) and ``s3://bucket/prefix`` URLs
through ``engine.sources.iter_objects``; detects each object's format (or takes ``--format``);
optionally writes every canonical row to ``--out FILE.parquet``. The summary on stdout has rows,
malformed lines by reason, rows by format, the event-time range, the objects read, a bounded
sample of bad lines and the throughput achieved. A progress bar goes to stderr when it is a
terminal.

An object the parser could not read to its end (``object_too_large``, ``poison_object``,
damaged gzip) is listed under ``poison`` with its reason (and the parser's error): its rows up
to that point are kept and the other objects are read as usual. ``--max-object-bytes`` and
``--max-line-bytes`` bound what one object may cost.

Exit codes: 0 every input was read (malformed lines and poison objects are counted, not
fatal); 1 an input could not be read at all (named in ``errors``), or nothing in the input could
be parsed (a warning says so: e.g. an Apache log, 100 % ``unknown_format``); 2 bad arguments.

examples:
  wafsmith parse logs/2026/11/30/ --out rows.parquet
  wafsmith parse s3://my-logs/AWSLogs/123456789012/elasticloadbalancing/ --format alb
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# Parsing does no linear algebra: when this module loads numpy (through pyarrow), OpenBLAS
# need not start its thread pool, which costs ~0.06 s of CPU at every ``wafsmith parse``.
# Only when numpy is not loaded yet, and never over a value the user set.
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pyarrow as pa
import pyarrow.compute as pc

from engine.cli.output import nothing_parsed
from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.parsers import PARSERS, ParseLimits, ParseResult, parse_object
from engine.parsers.result import POISON_REASONS
from engine.schema.request import EVENT_TIME, REQUEST_SCHEMA
from engine.sources import SourceError, iter_objects

OBJECT_LEVEL = {"trailing_garbage", "empty_object", *POISON_REASONS}


@dataclass
class Summary:
    """Totals over every object parsed."""

    max_samples: int
    rows: int = 0
    objects: int = 0
    bytes_read: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    rows_by_format: Counter[str] = field(default_factory=Counter)
    objects_by_format: Counter[str] = field(default_factory=Counter)
    start: datetime | None = None
    end: datetime | None = None
    bad_samples: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    repaired: Counter[str] = field(default_factory=Counter)
    poison: list[dict[str, str | None]] = field(default_factory=list)

    def add(self, uri: str, result: ParseResult) -> None:
        self.objects += 1
        self.rows += result.rows
        self.bytes_read += result.bytes_read
        self.malformed.update(result.malformed)
        self.repaired.update(result.repaired)
        if result.poison:
            self.poison.append({"uri": uri, "reason": result.poison, "error": result.error})
        self.rows_by_format[result.format] += result.rows
        self.objects_by_format[result.format] += 1
        if result.table.num_rows:  # rows kept in the result rather than handed to note_rows
            self.note_rows(result.table)
        for bad in result.bad_samples[: self.max_samples - len(self.bad_samples)]:
            self.bad_samples.append(
                {"uri": uri, "line_no": bad.line_no, "reason": bad.reason, "text": bad.text}
            )

    def note_rows(self, table: pa.Table) -> None:
        """Widen the event-time range to cover ``table`` (one parsed block's rows)."""
        span = pc.min_max(table.column(EVENT_TIME).cast(pa.int64())).as_py()
        if span["min"] is None:
            return
        first, last = _instant(span["min"]), _instant(span["max"])
        self.start = first if self.start is None else min(self.start, first)
        self.end = last if self.end is None else max(self.end, last)

    @property
    def lines(self) -> int:
        """Lines accounted for: rows plus line-level rejections."""
        return self.rows + sum(n for r, n in self.malformed.items() if r not in OBJECT_LEVEL)

    def to_dict(self, seconds: float, cpu_seconds: float, out: str | None) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return t.isoformat().replace("+00:00", "Z") if t else None

        doc: dict[str, Any] = {
            "rows": self.rows,
            "malformed": dict(sorted(self.malformed.items())),
            "repaired": dict(sorted(self.repaired.items())),
            "poison": self.poison,
            "rows_by_format": dict(sorted(self.rows_by_format.items())),
            "time_range": {"start": iso(self.start), "end": iso(self.end)},
            "objects": self.objects,
            "objects_by_format": dict(sorted(self.objects_by_format.items())),
            "bytes_read": self.bytes_read,
            "bad_samples": self.bad_samples,
            "throughput": {
                "seconds": round(seconds, 4),
                "cpu_seconds": round(cpu_seconds, 4),
                "lines_per_s": round(self.lines / seconds) if seconds > 0 else None,
                "mb_per_s": round(self.bytes_read / 1e6 / seconds, 2) if seconds > 0 else None,
            },
            "errors": self.errors,
        }
        if out:
            doc["out"] = out
        return doc


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECONDS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}
_TICK = _MICROSECONDS[REQUEST_SCHEMA.field(EVENT_TIME).type.unit]  # microseconds per tick


def _instant(ticks: int) -> datetime:
    """An event-time value (ticks since the epoch, UTC) as a datetime: built here rather than
    by pyarrow's ``as_py``, which imports a time-zone database on first use."""
    return _EPOCH + timedelta(microseconds=ticks * _TICK)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "parse",
        help="parse ALB / CloudFront / WAF log objects and print a JSON summary",
        description=__doc__.split("\n\n")[1],
        epilog="\n\n".join(__doc__.split("\n\n")[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="PATH_OR_S3_URL")
    parser.add_argument("--format", default="auto", choices=["auto", *PARSERS.names()])
    parser.add_argument("--out", metavar="FILE.parquet", help="write all rows to this file")
    parser.add_argument("--endpoint-url", help="S3 endpoint (e.g. a moto server)")
    parser.add_argument("--max-bad-samples", type=int, default=20)
    defaults = ParseLimits()
    parser.add_argument(
        "--max-object-bytes", type=_positive, default=defaults.max_object_bytes,
        help="stop reading an object after this many decompressed bytes (object_too_large)",
    )  # fmt: skip
    parser.add_argument(
        "--max-line-bytes", type=_positive, default=defaults.max_line_bytes,
        help="skip lines longer than this (line_too_long)",
    )  # fmt: skip
    parser.set_defaults(func=run)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of bytes, got {text}")
    return value


class _NoPandas:
    """A finder that reports pandas as absent (see :func:`without_pandas`)."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("pandas is not needed to parse logs", name="pandas")


@contextlib.contextmanager
def without_pandas() -> Iterator[None]:
    """Keep pyarrow from importing pandas while logs are parsed.

    pyarrow probes for pandas the first time it converts a Python value whose type it must
    infer (a ``pc.greater(column, 16384)``): half a second or more of imports, longer than
    parsing a five-minute ALB object. Parsing never hands pandas objects to pyarrow, so the
    probe is told there is none. Only while parsing, only if pandas is not loaded already;
    pyarrow imports it again when asked for pandas explicitly (``to_pandas``).
    """
    if "pandas" in sys.modules:
        yield
        return
    sys.meta_path.insert(0, _NoPandas)  # type: ignore[arg-type]
    try:
        yield
    finally:
        sys.meta_path.remove(_NoPandas)  # type: ignore[arg-type]


def _progress_bar() -> Any:
    """A tqdm bar on stderr when it is a terminal, else None: tqdm is imported only then
    (a dozen milliseconds of start-up that a piped or scheduled run never shows)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(unit="obj", file=sys.stderr)


def run(args: argparse.Namespace, clock: Clock = SYSTEM_CLOCK) -> int:
    with without_pandas():
        return _run(args, clock)


def _run(args: argparse.Namespace, clock: Clock) -> int:
    summary = Summary(max_samples=args.max_bad_samples)
    limits = ParseLimits(max_object_bytes=args.max_object_bytes, max_line_bytes=args.max_line_bytes)
    writer = None
    if args.out:
        import pyarrow.parquet as pq  # only when rows are written: it costs start-up time

        writer = pq.ParquetWriter(args.out, REQUEST_SCHEMA)
    started, cpu_started = clock.monotonic(), time.process_time()

    def sink(table: pa.Table) -> None:  # each block's rows, summarised (and written), not kept
        summary.note_rows(table)
        if writer is not None:
            writer.write_table(table)

    progress = _progress_bar()
    try:
        for uri in args.inputs:
            try:
                for obj in iter_objects(uri, endpoint_url=args.endpoint_url):
                    with obj.open() as stream:
                        result = parse_object(
                            stream, fmt=args.format, key=obj.key,
                            max_bad_samples=args.max_bad_samples, limits=limits, sink=sink,
                        )  # fmt: skip
                    summary.add(obj.uri, result)
                    if progress is not None:
                        progress.update(1)
                        progress.set_postfix(rows=summary.rows, refresh=False)
            except SourceError as exc:
                summary.errors.append({"input": uri, "error": str(exc)})
    finally:
        if progress is not None:
            progress.close()
        if writer is not None:
            writer.close()
    seconds = clock.monotonic() - started
    doc = summary.to_dict(seconds, time.process_time() - cpu_started, args.out)
    print(json.dumps(doc, indent=2, ensure_ascii=False))
    for error in summary.errors:
        print(f"wafsmith parse: {error['input']}: {error['error']}", file=sys.stderr)
    warning = None if summary.errors else nothing_parsed(
        summary.objects, summary.rows, summary.malformed
    )
    if warning:
        print(f"wafsmith parse: warning: {warning}", file=sys.stderr)
    return 1 if summary.errors or warning else 0
