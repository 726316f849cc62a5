"""Blocks of one object parsed on two threads, results in block order.

A parser whose blocks do not depend on each other (``independent_blocks = True``: ALB, where
each block picks its own layout, and WAF JSON) can parse block *n + 1* while block *n* is
still being converted: the CSV and JSON readers, Arrow compute and numpy release the GIL, so
a second core does real work (decompression already runs on its own thread, see
:func:`engine.parsers.stream.prefetch`). Each block gets its own parser and :class:`Tally`;
tallies are merged in block order, so counts, samples and row order are exactly those of a
sequential parse. At most ``threads + 1`` blocks are in flight, so memory stays bounded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pyarrow as pa

from engine.parsers.registry import LogParser
from engine.parsers.result import Tally
from engine.parsers.stream import Block

PARSE_THREADS = 2  # the machine's second core; more threads only contend for the GIL


Outcome = tuple[list[pa.Table], Tally, Exception | None]


def _one(parser: type[LogParser], block: Block, max_samples: int) -> Outcome:
    """One block's tables and tally, and the error that stopped it (kept, not raised, so the
    rows and counts before the error are handed on first, as a sequential parse would)."""
    tally = Tally(max_samples=max_samples)
    tables: list[pa.Table] = []
    try:
        for table in parser(tally).parse(iter([block])):
            tables.append(table)
    except Exception as error:  # re-raised by _collect, in block order
        return tables, tally, error
    return tables, tally, None


def parse_blocks(
    parser: type[LogParser], blocks: Iterator[Block], tally: Tally, threads: int | None = None
) -> Iterator[pa.Table]:
    """``parser(tally).parse(blocks)``, on ``threads`` threads (default ``PARSE_THREADS``)
    when the parser allows it."""
    threads = PARSE_THREADS if threads is None else threads
    if threads < 2 or not getattr(parser, "independent_blocks", False):
        yield from parser(tally).parse(blocks)
        return
    pending: deque[Future[Outcome]] = deque()
    with ThreadPoolExecutor(threads, thread_name_prefix="wafsmith-parse") as pool:
        try:
            for block in blocks:
                pending.append(pool.submit(_one, parser, block, tally.max_samples))
                if len(pending) > threads:
                    yield from _collect(pending.popleft(), tally)
            while pending:
                yield from _collect(pending.popleft(), tally)
        finally:
            for future in pending:  # an error or an early stop: drop what is still queued
                future.cancel()


def _collect(future: Future[Outcome], tally: Tally) -> Iterator[pa.Table]:
    tables, own, error = future.result()
    tally.merge(own)
    yield from tables
    if error is not None:
        raise error
