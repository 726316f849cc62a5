"""Parsers stage: log bytes (gzip or plain) → Arrow tables in the canonical request schema.

Public API::

    parse_object(data, *, fmt="auto", key=None, max_bad_samples=20) -> ParseResult
    detect_format(head, key=None) -> "alb" | "cloudfront" | "waf" | "unknown"
    PARSERS  # Registry of parser classes: "alb", "cloudfront", "waf"
    BadLine, ParseResult

Bad data never raises: every unusable line is counted by reason in ``ParseResult.malformed``
and a bounded sample is kept in ``bad_samples``; the rest of the object is still read. A
parser that fails on an object anyway (a bug, recursion, a reader's limit) fails for that
object alone: it is counted as ``poison_object`` with the error in ``ParseResult.error``, and
the rows read before the failure are kept (``ParseResult.poison`` names why the object was not
read to its end, so the engine can set it aside).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

import pyarrow as pa

from engine.parsers import alb, arrays, cloudfront, waf  # noqa: F401  (register the parsers)
from engine.parsers.detect import UNKNOWN, detect_format
from engine.parsers.parallel import parse_blocks
from engine.parsers.registry import PARSERS, LogParser
from engine.parsers.result import (
    EMPTY_OBJECT,
    POISON_OBJECT,
    UNKNOWN_FORMAT,
    BadLine,
    ParseResult,
    Tally,
)
from engine.parsers.stream import (
    Block,
    ParseLimits,
    ReadFailed,
    iter_decompressed,
    iter_numbered_blocks,
    prefetch,
)
from engine.schema.request import REQUEST_SCHEMA

__all__ = [
    "PARSERS",
    "BadLine",
    "LogParser",
    "ParseLimits",
    "ParseResult",
    "detect_format",
    "parse_object",
]

DETECT_BYTES = 64 * 1024


def _count_unknown(blocks: Iterator[Block], tally: Tally) -> None:
    """An object no parser recognises: every non-empty line is counted, the first sampled.

    Counted with vectorised line arithmetic: a gigabyte of newlines costs seconds, not minutes.
    """
    for first_line, block, _ in blocks:
        n = arrays.count_nonblank_lines(block)
        if n and tally.counts[UNKNOWN_FORMAT] == 0:
            start, number = 0, 0
            while not block[start : block.find(b"\n", start)].strip():
                start, number = block.find(b"\n", start) + 1, number + 1
            line = block[start : block.find(b"\n", start)]
            tally.add(UNKNOWN_FORMAT, first_line + number, line)
            n -= 1
        if n:
            tally.counts[UNKNOWN_FORMAT] += n


def parse_object(
    data: bytes | BinaryIO,
    *,
    fmt: str = "auto",
    key: str | None = None,
    max_bad_samples: int = 20,
    limits: ParseLimits | None = None,
    sink: Callable[[pa.Table], None] | None = None,
) -> ParseResult:
    """Parse one log object (bytes or a binary stream; gzip is detected by magic bytes).

    ``fmt="auto"`` detects the format from the content, then from the S3 ``key`` layout.
    An explicit ``fmt`` must be a registered parser name. ``limits`` caps the decompressed
    bytes read and the length of a line (``object_too_large``, ``line_too_long``).

    With a ``sink``, each block's rows are handed to it as soon as they are parsed, in order,
    and not kept: ``result.table`` is then empty and ``result.rows`` counts the rows handed
    over. A caller that only summarises or writes the rows (``wafsmith parse``) so holds a
    few blocks in memory instead of the whole object.
    """
    tally = Tally(max_samples=max_bad_samples)
    if fmt != "auto":
        PARSERS.get(fmt)  # refuse unknown names before reading anything
    limits = limits or ParseLimits()
    damage = Tally(max_samples=max_bad_samples)  # gzip damage and caps, on the reader thread
    chunks = iter_decompressed(data, damage, limits)
    blocks = prefetch(iter_numbered_blocks(chunks, limits=limits, tally=damage))
    found, seen, error = UNKNOWN, [0], None
    tables: list[pa.Table] = []
    handed = 0
    try:
        first = next(blocks, None)
        if first is not None:
            found = detect_format(first.data[:DETECT_BYTES], key) if fmt == "auto" else fmt
            every = _measured(first, blocks, seen)
            if found == UNKNOWN:
                _count_unknown(every, tally)
            else:
                for table in parse_blocks(PARSERS.get(found), every, tally):
                    if not table.num_rows:
                        continue
                    if sink is None:
                        tables.append(table)
                    else:
                        _hand(sink, table)
                        handed += table.num_rows
    except (ReadFailed, SinkFailed) as failed:  # not the data's fault: the caller's to handle
        raise failed.__cause__ from None
    except Exception as exc:  # one object's failure, whatever it is: named, counted, kept
        error = f"{type(exc).__name__}: {exc}"[:1000]
        tally.add(POISON_OBJECT, 0)
    finally:
        blocks.close()
    tally.merge(damage)
    if not tables and not handed and not tally.counts:  # only blank, comment, header lines
        tally.add(EMPTY_OBJECT, 0)
    result = _result(tables, found, tally, seen[0])
    result.rows += handed
    result.error = error
    result.repaired = {reason: n for reason, n in sorted(tally.repaired.items()) if n}
    return result


class SinkFailed(Exception):
    """The caller's sink raised (``__cause__``): its error, not the object's, so it is not
    counted as ``poison_object``."""


def _hand(sink: Callable[[pa.Table], None], table: pa.Table) -> None:
    try:
        sink(table)
    except Exception as exc:
        raise SinkFailed(str(exc)) from exc


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
