"""Parsers stage: log bytes (gzip or plain) → Arrow tables in the canonical request schema.

Public API::

    parse_object(data, *, fmt="auto", key=None, max_bad_samples=20) -> ParseResult
    detect_format(head, key=None) -> "alb" | "cloudfront" | "waf" | "unknown"
    PARSERS  # Registry of parser classes: "alb", "cloudfront", "waf"
    BadLine, ParseResult

Bad data never raises: every unusable line is counted by reason in ``ParseResult.malformed``
and a bounded sample is kept in ``bad_samples``; the rest of the object is still read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa

from engine.parsers import alb, cloudfront, waf  # noqa: F401  (register the parsers)
from engine.parsers.detect import UNKNOWN, detect_format
from engine.parsers.registry import PARSERS, LogParser
from engine.parsers.result import (
    EMPTY_OBJECT,
    UNKNOWN_FORMAT,
    BadLine,
    ParseResult,
    Tally,
)
from engine.parsers.stream import Block, iter_blocks, iter_decompressed, iter_numbered, prefetch
from engine.schema.request import REQUEST_SCHEMA

__all__ = ["PARSERS", "BadLine", "LogParser", "ParseResult", "detect_format", "parse_object"]

DETECT_BYTES = 64 * 1024


def _count_unknown(blocks: Iterator[Block], tally: Tally) -> None:
    """An object no parser recognises: every non-empty line is counted, the first sampled."""
    for first_line, block, _ in blocks:
        for i, line in enumerate(block.split(b"\n")[:-1]):
            if line.strip():
                if tally.counts[UNKNOWN_FORMAT] == 0:
                    tally.add(UNKNOWN_FORMAT, first_line + i, line)
                else:
                    tally.counts[UNKNOWN_FORMAT] += 1


def parse_object(
    data: bytes | BinaryIO,
    *,
    fmt: str = "auto",
    key: str | None = None,
    max_bad_samples: int = 20,
) -> ParseResult:
    """Parse one log object (bytes or a binary stream; gzip is detected by magic bytes).

    ``fmt="auto"`` detects the format from the content, then from the S3 ``key`` layout.
    An explicit ``fmt`` must be a registered parser name.
    """
    tally = Tally(max_samples=max_bad_samples)
    if fmt != "auto":
        PARSERS.get(fmt)  # refuse unknown names before reading anything
    damage = Tally(max_samples=0)  # gzip damage, counted on the prefetch thread
    blocks = prefetch(iter_numbered(iter_blocks(iter_decompressed(data, damage))))
    try:
        first = next(blocks, None)
        if first is None:
            tally.merge(damage)
            if not tally.counts:
                tally.add(EMPTY_OBJECT, 0)
            return _result(None, UNKNOWN, tally, 0)
        found = detect_format(first.data[:DETECT_BYTES], key) if fmt == "auto" else fmt
        seen = [0]
        every = _measured(first, blocks, seen)
        if found == UNKNOWN:
            _count_unknown(every, tally)
            tables = None
        else:
            parser = PARSERS.get(found)(tally)
            tables = [t for t in parser.parse(every) if t.num_rows]
    finally:
        blocks.close()
    tally.merge(damage)
    if not tables and not tally.counts:  # nothing but blank, comment or header lines
        tally.add(EMPTY_OBJECT, 0)
    return _result(tables, found, tally, seen[0])


def _measured(first: Block, rest: Iterator[Block], seen: list[int]) -> Iterator[Block]:
    """``first`` then ``rest``, summing their decompressed bytes into ``seen[0]``."""
    seen[0] += len(first.data)
    yield first
    for block in rest:
        seen[0] += len(block.data)
        yield block


def _result(tables: list[pa.Table] | None, fmt: str, tally: Tally, nbytes: int) -> ParseResult:
    if tables:
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    else:
        table = REQUEST_SCHEMA.empty_table()
    return ParseResult(
        table=table,
        format=fmt,
        rows=table.num_rows,
        malformed=tally.as_dict(),
        bad_samples=list(tally.samples),
        bytes_read=nbytes,
    )
