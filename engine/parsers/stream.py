"""Bytes in, newline-aligned blocks of decompressed text out.

gzip is detected by its magic bytes, never by a name. Decompression is streamed with ISA-L
(``isal_zlib``, the fastest inflate per core), member after member, so concatenated gzip files
work. A truncated or damaged member ends the stream but everything inflated before it is kept
and the damage is counted on the object (``truncated_gzip`` / ``corrupt_gzip``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from queue import Queue
from typing import BinaryIO, NamedTuple, TypeVar

from isal import isal_zlib

from engine.parsers.arrays import count_lines
from engine.parsers.result import CORRUPT_GZIP, TRAILING_GARBAGE, TRUNCATED_GZIP, Tally

T = TypeVar("T")

GZIP_MAGIC = b"\x1f\x8b"
READ_CHUNK = 1 << 20  # compressed bytes per read
BLOCK_BYTES = 8 << 20  # decompressed bytes per parsed block (cut at a newline)
INFLATE_STEP = 1 << 20  # bound on one inflate call's output (memory, and gzip bombs)


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
        chunk = data.read(READ_CHUNK)
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
    data: bytes | bytearray | memoryview | BinaryIO, tally: Tally
) -> Iterator[bytes]:
    """Decompressed chunks of the object (plain input passes through)."""
    chunks = iter_raw(data)
    first = next(chunks, b"")
    while first == b"":
        first = next(chunks, None)
        if first is None:
            return
    if first.startswith(GZIP_MAGIC) or (len(first) == 1 and first == GZIP_MAGIC[:1]):
        yield from _inflate(chunks, first, tally)
    else:
        yield first
        yield from chunks


def iter_blocks(chunks: Iterator[bytes], block_bytes: int | None = None) -> Iterator[bytes]:
    """Blocks of whole lines, each ending with ``\\n`` (one is added to an unterminated tail)."""
    block_bytes = block_bytes or BLOCK_BYTES
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size < block_bytes:
            continue
        cut = chunk.rfind(b"\n")
        if cut < 0:
            continue  # no line ends in this chunk: keep reading until one does
        pending[-1] = chunk[: cut + 1]
        yield b"".join(pending)
        tail = chunk[cut + 1 :]
        pending, size = ([tail], len(tail)) if tail else ([], 0)
    if pending:
        block = b"".join(pending)
        if block:
            yield block if block.endswith(b"\n") else block + b"\n"


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
