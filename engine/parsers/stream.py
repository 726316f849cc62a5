"""Bytes in, newline-aligned blocks of decompressed text out.

gzip is detected by its magic bytes, never by a name. Decompression is streamed with ISA-L
(``isal_zlib``, the fastest inflate per core), member after member, so concatenated gzip files
work. A truncated or damaged member ends the stream but everything inflated before it is kept
and the damage is counted on the object (``truncated_gzip`` / ``corrupt_gzip``).

Memory and time are bounded whatever the input (:class:`ParseLimits`): reading stops after
``max_object_bytes`` decompressed bytes (``object_too_large``), and a line longer than
``max_line_bytes`` is skipped as it streams past (``line_too_long``), so a gzip bomb without
a newline costs one block of memory, not its size.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from queue import Queue
from typing import BinaryIO, NamedTuple, TypeVar

import numpy as np
from isal import isal_zlib

from engine.parsers.arrays import count_lines
from engine.parsers.result import (
    CORRUPT_GZIP,
    LINE_TOO_LONG,
    OBJECT_TOO_LARGE,
    TRAILING_GARBAGE,
    TRUNCATED_GZIP,
    Tally,
)

T = TypeVar("T")

GZIP_MAGIC = b"\x1f\x8b"
READ_CHUNK = 1 << 20  # compressed bytes per read
BLOCK_BYTES = 8 << 20  # decompressed bytes per parsed block (cut at a newline)
INFLATE_STEP = 1 << 20  # bound on one inflate call's output (memory, and gzip bombs)


DEFAULT_MAX_OBJECT_BYTES = 4 << 30  # decompressed; AWS log objects stay far below
DEFAULT_MAX_LINE_BYTES = 256 << 10  # above every parser's own line cap (WAF: 256 KiB)


@dataclass(frozen=True)
class ParseLimits:
    """Caps on what one object may cost, whatever its bytes."""

    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES

    def __post_init__(self) -> None:
        if self.max_object_bytes < 1 or self.max_line_bytes < 1:
            raise ValueError("parse limits must be positive")


class ReadFailed(Exception):
    """Reading the object's bytes failed (its source, not its content): ``__cause__`` says why."""


class Block(NamedTuple):
    """A run of whole lines: its text, the 1-based number of its first line, its line count."""

    first_line: int
    data: bytes
    lines: int


def iter_raw(data: bytes | bytearray | memoryview | BinaryIO) -> Iterator[bytes]:
    """The object's bytes as chunks, whether it was handed over whole or as a stream."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), READ_CHUNK):
            yield bytes(view[start : start + READ_CHUNK])
        return
    while True:
        try:
            chunk = data.read(READ_CHUNK)
        except Exception as exc:
            raise ReadFailed(str(exc)) from exc
        if not chunk:
            return
        yield chunk


def _inflate(chunks: Iterator[bytes], first: bytes, tally: Tally) -> Iterator[bytes]:
    """Inflate consecutive gzip members; stop (and count) at damage or trailing garbage."""
    inflater = isal_zlib.decompressobj(wbits=31)
    pending = first
    member_open = True
    while True:
        if pending or member_open:
            try:
                out = inflater.decompress(pending, INFLATE_STEP)
            except isal_zlib.error:
                tally.add(CORRUPT_GZIP, 0)
                return
            if out:
                yield out
            if inflater.eof:
                rest = inflater.unused_data
                inflater = isal_zlib.decompressobj(wbits=31)
                member_open = False
                if rest and not rest.startswith(GZIP_MAGIC[: len(rest)]):
                    if rest.strip(b"\x00"):  # zero padding after the last member is harmless
                        tally.add(TRAILING_GARBAGE, 0)
                    return
                pending = rest
                member_open = bool(rest)
                continue
            pending = inflater.unconsumed_tail
            if pending or len(out) == INFLATE_STEP:
                continue  # more output is waiting for room
        nxt = next(chunks, None)
        if nxt is None:
            if member_open:
                tally.add(TRUNCATED_GZIP, 0)
            return
        pending, member_open = nxt, True


def iter_decompressed(
    data: bytes | bytearray | memoryview | BinaryIO,
    tally: Tally,
    limits: ParseLimits | None = None,
) -> Iterator[bytes]:
    """Decompressed chunks of the object (plain input passes through), at most
    ``limits.max_object_bytes`` of them: the rest is not read (``object_too_large``)."""
    cap = (limits or ParseLimits()).max_object_bytes
    chunks = iter_raw(data)
    first = next(chunks, b"")
    while first == b"":
        first = next(chunks, None)
        if first is None:
            return
    if first.startswith(GZIP_MAGIC) or (len(first) == 1 and first == GZIP_MAGIC[:1]):
        out = _inflate(chunks, first, tally)
    else:
        out = _chain(first, chunks)
    seen = 0
    for chunk in out:
        if seen + len(chunk) > cap:
            if cap > seen:
                yield chunk[: cap - seen]
            tally.add(OBJECT_TOO_LARGE, 0)
            return
        seen += len(chunk)
        yield chunk


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def iter_blocks(
    chunks: Iterator[bytes],
    block_bytes: int | None = None,
    *,
    limits: ParseLimits | None = None,
    tally: Tally | None = None,
) -> Iterator[bytes]:
    """Blocks of whole lines, each ending with ``\\n`` (one is added to an unterminated tail).

    A line longer than ``limits.max_line_bytes`` is dropped as it streams by and counted in
    ``tally`` as ``line_too_long``; an empty line takes its place, so line numbers still hold.
    At most one block plus one line is held, whatever the input.
    """
    for block in iter_numbered_blocks(chunks, block_bytes, limits=limits, tally=tally):
        yield block.data


def iter_numbered_blocks(
    chunks: Iterator[bytes],
    block_bytes: int | None = None,
    *,
    limits: ParseLimits | None = None,
    tally: Tally | None = None,
) -> Iterator[Block]:
    """:func:`iter_blocks` as :class:`Block` objects: each with the number of its first line
    and its line count, counted from the newline positions already found for the line-length
    check (the text is not scanned again)."""
    block_bytes = block_bytes or BLOCK_BYTES
    max_line = (limits or ParseLimits()).max_line_bytes
    pending: list[bytes] = []
    size = 0  # bytes in pending
    newlines = 0  # newlines in pending
    first_line = 1  # number of pending's first line
    open_line = 0  # bytes of the unterminated last line in pending
    skipping = False  # inside a line already over the cap: drop up to its newline

    def dropped(line_no: int, head: bytes) -> None:
        if tally is not None:
            tally.add(LINE_TOO_LONG, line_no, head[:4096])

    for chunk in chunks:
        if skipping:
            end = chunk.find(b"\n")
            if end < 0:
                continue
            skipping, chunk = False, chunk[end:]  # keep its newline: an empty line stands in
        first = chunk.find(b"\n")
        if first >= 0 and _completes_long_line(chunk, first, open_line, max_line):
            # a line completed in this chunk is too long: cut it out of the whole lines held
            last = chunk.rfind(b"\n")
            whole = _cut_long_lines(
                b"".join(pending) + chunk[: last + 1], max_line, first_line, dropped
            )
            pending, size, open_line = [whole], len(whole), 0
            newlines = count_lines(whole)
            chunk, first = chunk[last + 1 :], -1
        nl = chunk.rfind(b"\n") if first >= 0 else -1
        chunk_newlines = count_lines(chunk) if nl >= 0 else 0
        open_line = open_line + len(chunk) if nl < 0 else len(chunk) - nl - 1
        if open_line > max_line:  # the line still open is too long: keep what precedes it
            head = b"".join(pending) + (chunk[: nl + 1] if nl >= 0 else b"")
            cut = head.rfind(b"\n")
            newlines = count_lines(head)
            dropped(first_line + newlines, head[cut + 1 :] if nl < 0 else chunk[nl + 1 :])
            pending, size, open_line, skipping = [head[: cut + 1]], cut + 1, 0, True
            if size >= block_bytes:
                yield Block(first_line, pending[0], newlines)
                first_line += newlines
                pending, size, newlines = [], 0, 0
            continue
        pending.append(chunk)
        size += len(chunk)
        newlines += chunk_newlines
        if size < block_bytes or nl < 0:
            continue  # no line ends in this chunk: keep reading until one does
        pending[-1] = chunk[: nl + 1]
        block = b"".join(pending)
        yield Block(first_line, block, newlines)  # every newline of pending is in block
        first_line += newlines
        tail = chunk[nl + 1 :]
        pending, size, newlines = ([tail], len(tail), 0) if tail else ([], 0, 0)
    if skipping:
        pending.append(b"\n")  # the dropped last line still counts as a line
        newlines += 1
    if pending:
        block = b"".join(pending)
        if block:
            if not block.endswith(b"\n"):
                block, newlines = block + b"\n", newlines + 1
            yield Block(first_line, block, newlines)


WINDOW_CHECK_MIN_LINE = 8 << 10  # below this cap the windows are too many: numpy checks


def _completes_long_line(chunk: bytes, first: int, open_line: int, max_line: int) -> bool:
    """Whether a line ending in ``chunk`` (its first newline at ``first``, ``open_line`` bytes
    of its first line held before it) is longer than ``max_line``.

    Usually answered by a few ``find`` calls (memchr) instead of listing every newline: if
    each window of ``max_line // 2`` bytes between the first and last newline holds one, no
    two consecutive newlines are more than ``max_line - 1`` bytes apart. Otherwise, or for
    small caps, the longest line is measured exactly.
    """
    if open_line + first > max_line:
        return True
    if max_line >= WINDOW_CHECK_MIN_LINE:
        step, last = max_line // 2, chunk.rfind(b"\n")
        if all(chunk.find(b"\n", at, at + step) >= 0 for at in range(first + 1, last, step)):
            return False
    ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
    return int(np.diff(ends).max(initial=1)) - 1 > max_line


def _cut_long_lines(text: bytes, max_line: int, first_line: int, dropped) -> bytes:
    """``text`` (whole lines) with each line over ``max_line`` bytes left empty; ``dropped``
    is told each one's number and head."""
    ends = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == 10)
    starts = np.r_[0, ends[:-1] + 1]
    kept, at = [], 0
    for i in np.flatnonzero(ends - starts > max_line):
        start, end = int(starts[i]), int(ends[i])
        dropped(first_line + int(i), text[start : start + 4096])
        kept.append(text[at:start])
        at = end  # keep the newline: an empty line stands in
    kept.append(text[at:])
    return b"".join(kept)


def iter_numbered(blocks: Iterator[bytes]) -> Iterator[Block]:
    """Blocks with the 1-based number of their first line and their line count."""
    line = 1
    for data in blocks:
        lines = count_lines(data)
        yield Block(line, data, lines)
        line += lines


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run ``items`` on a background thread, ``depth`` items ahead of the consumer.

    Inflating and splitting the next block (ISA-L and numpy release the GIL) then overlaps
    with parsing the current one on a second core. An error in the producer is re-raised
    here; a consumer that stops early stops the producer at its next item.
    """
    queue: Queue[object] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                queue.put(item)
                if stop.is_set():
                    return
        except BaseException as error:  # handed to the consumer, which re-raises it
            queue.put(_Failure(error))
        finally:
            queue.put(_END)

    thread = threading.Thread(target=produce, name="wafsmith-inflate", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not _END:
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while item is not _END:  # unblock the producer, wait for its end marker
            item = queue.get()
        thread.join()
