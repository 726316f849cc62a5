"""Delimited text → Arrow, columnar on the happy path and line-exact on damaged input.

``DelimitedReader.read_block`` parses one newline-aligned block with ``pyarrow.csv`` (explicit
column types, only the wanted columns). Rows whose field count differs from the block's
layout (older or newer log versions) are re-read together with their own layout. The row
count is cross-checked against the block's line count, because an unbalanced quote makes the
CSV tokenizer swallow following lines. A block that fails the check or the conversion is
halved at line boundaries and the halves read again; a region of a few hundred lines that
still fails is screened line by line (UTF-8, length, quote parity) and bisected down to the
damaged lines, so only those are lost, each counted under its reason.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from engine.parsers.arrays import count_lines, is_utf8
from engine.parsers.repair import FIELD_TOKENS as _FIELD_TOKENS
from engine.parsers.repair import repair_quotes, repair_utf8
from engine.parsers.result import (
    INVALID_TIMESTAMP,
    INVALID_UTF8,
    INVALID_VALUE,
    LINE_TOO_LONG,
    UNBALANCED_QUOTE,
    WRONG_FIELD_COUNT,
    Tally,
)

READ_BLOCK_BYTES = 1 << 20  # pyarrow's internal block: cache-sized, fastest per line
SALVAGE_LINES = 256  # a damaged region this small is screened line by line
MAX_LINE_BYTES = 64 * 1024  # longer lines are rejected (AWS caps URLs at 8 KiB, headers 20 KiB)
NULL_TOKENS = ["-"]
_TIME_TYPES = re.compile(r"conversion error to (?:timestamp|time32|time64|date32|date64)")

Entry = tuple[int, bytes]  # (1-based line number, raw line without the newline)


@dataclass
class Piece:
    """Rows read from one block, and a way back from row index to the source line."""

    table: pa.Table
    locate: Callable[[Sequence[int]], list[Entry]]


@dataclass
class DelimitedLayout:
    """How one delimited format is read."""

    delimiter: str
    quote_char: str | bool
    names_for: Callable[[int], list[str]]  # column names for a row with n fields
    min_fields: int
    types: dict[str, pa.DataType]  # the columns to read and their types
    null_values: list[str] = field(default_factory=lambda: list(NULL_TOKENS))


def _last_line(block: bytes) -> bytes:
    return block[block.rfind(b"\n", 0, len(block) - 1) + 1 :]


def blank_lines(block: bytes) -> int:
    """Empty lines in ``block`` (a CSV or JSON reader skips them), ``\\r`` alone included:
    checked only on mismatch. Vectorised, and exact for runs of empty lines (a block of
    newlines must not look damaged, or it is bisected down to single lines)."""
    data = np.frombuffer(block, dtype=np.uint8)
    newline = data == 10
    before = np.empty_like(newline)  # the byte before is a newline, or there is none
    before[0:1] = True
    before[1:] = newline[:-1]
    empty = newline & before
    crlf = np.zeros_like(newline)  # a line holding just "\r"
    crlf[1:] = newline[1:] & (data[:-1] == 13) & before[:-1]
    return int(np.count_nonzero(empty) + np.count_nonzero(crlf))


def _entries_locator(entries: list[Entry]) -> Callable[[Sequence[int]], list[Entry]]:
    return lambda rows: [entries[i] for i in rows]


def _block_locator(block: bytes, first_line: int, skipped: set[int]) -> Callable:
    """Locate rows of a clean block read: data lines are the non-empty, non-skipped ones."""

    def locate(rows: Sequence[int]) -> list[Entry]:
        lines = block.split(b"\n")
        data = [
            i for i, line in enumerate(lines[:-1]) if line.strip(b"\r") and (i + 1) not in skipped
        ]
        return [(first_line + data[r], lines[data[r]]) for r in rows]

    return locate


class DelimitedReader:
    """Reads blocks of one delimited layout into :class:`Piece` objects, counting bad lines."""

    def __init__(self, layout: DelimitedLayout, tally: Tally) -> None:
        self.layout = layout
        self.tally = tally

    # -- one pyarrow read ---------------------------------------------------------------
    def _read(
        self, text: bytes, n_fields: int, *, whole: bool = False
    ) -> tuple[pa.Table, list[tuple[int, int, str]]]:
        """Read ``text`` as rows of ``n_fields``; rows of another width are handed back.

        ``whole`` reads the text as one pyarrow block, so a line of any length fits.
        """
        other: list[tuple[int, int, str]] = []

        def handler(row: pacsv.InvalidRow) -> str:
            other.append((row.number or 0, row.actual_columns, row.text))
            return "skip"

        names = self.layout.names_for(n_fields)
        table = pacsv.read_csv(
            pa.py_buffer(text),
            read_options=pacsv.ReadOptions(
                column_names=names,
                use_threads=False,
                block_size=len(text) + 1 if whole else READ_BLOCK_BYTES,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=self.layout.delimiter,
                quote_char=self.layout.quote_char,
                double_quote=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=True,
                invalid_row_handler=handler,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=self.layout.types,  # missing columns become typed nulls
                include_columns=list(self.layout.types),
                include_missing_columns=True,
                null_values=self.layout.null_values,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                check_utf8=False,  # every text reaching here was validated as UTF-8 already
            ),
        )
        return table, other

    # -- public --------------------------------------------------------------------------
    def read_block(
        self, block: bytes, first_line: int, n_fields: int, lines: int | None = None
    ) -> list[Piece]:
        """All rows of ``block`` (its first line is ``first_line``), bad lines tallied.

        A block that fails the checks is halved at a line boundary and each half read again,
        so only a small region around the damage is finally screened line by line.
        """
        n_fields = max(n_fields, self.layout.min_fields)  # shorter rows are counted, not read
        if lines is None:
            lines = count_lines(block)
        pieces = self._read_clean(block, first_line, n_fields, lines)
        if pieces is not None:
            return pieces
        cut = block.find(b"\n", len(block) // 2)
        if lines <= SALVAGE_LINES or cut < 0 or cut + 1 >= len(block):
            return self._salvage(block, first_line, n_fields)
        head, tail = block[: cut + 1], block[cut + 1 :]
        head_lines = count_lines(head)
        return self.read_block(head, first_line, n_fields, head_lines) + self.read_block(
            tail, first_line + head_lines, n_fields, lines - head_lines
        )

    def _read_clean(
        self, block: bytes, first_line: int, n_fields: int, lines: int
    ) -> list[Piece] | None:
        """The block's rows if it passes every check, else None."""
        if self.layout.quote_char and _last_line(block).count(b'"') % 2:
            return None  # an open quote on the last line would swallow its newline unnoticed
        if not is_utf8(block):  # find the bad lines before pyarrow trips over them
            return None
        try:
            table, other = self._read(block, n_fields)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        read = table.num_rows + len(other)
        if read != lines and read + blank_lines(block) != lines:
            return None  # an unbalanced quote swallowed lines
        skipped = {number for number, _, _ in other}
        pieces = [Piece(table, _block_locator(block, first_line, skipped))]
        pieces += self._regroup(
            [
                (first_line + number - 1, text.encode("utf-8", "surrogateescape"), width)
                for number, width, text in other
            ]
        )
        return pieces

    # -- rows of another width ------------------------------------------------------------
    def _regroup(self, rows: list[tuple[int, bytes, int]]) -> list[Piece]:
        by_width: dict[int, list[Entry]] = defaultdict(list)
        for line_no, raw, width in rows:
            if raw.startswith(b"#"):
                continue  # header or comment line
            if self.layout.quote_char and raw.count(b'"') % 2:
                mended = repair_quotes(raw)  # its fields are misaligned: realign or count it
                if mended is None:
                    self.tally.add(UNBALANCED_QUOTE, line_no, raw)
                    continue
                self.tally.repaired[UNBALANCED_QUOTE] += 1
                raw, width = mended, len(_FIELD_TOKENS.findall(mended))
            if width < self.layout.min_fields:
                self.tally.add(WRONG_FIELD_COUNT, line_no, raw)
                continue
            by_width[width].append((line_no, raw))
        pieces: list[Piece] = []
        for width, entries in sorted(by_width.items()):
            pieces += self._robust(entries, width)
        return pieces

    # -- damaged blocks ------------------------------------------------------------------
    def _salvage(self, block: bytes, first_line: int, n_fields: int) -> list[Piece]:
        """Screen each line for damage a CSV reader cannot report, then read the rest."""
        entries: list[Entry] = []
        for i, raw in enumerate(block.split(b"\n")[:-1]):
            line_no = first_line + i
            line = raw.rstrip(b"\r")
            if not line.strip():
                continue
            if len(line) > MAX_LINE_BYTES:
                self.tally.add(LINE_TOO_LONG, line_no, line)
                continue
            line = self._repaired(line, line_no)
            if line is None:
                continue
            if b"\r" in line:
                self.tally.add(INVALID_VALUE, line_no, line)
                continue
            entries.append((line_no, line))
        return self._robust(entries, n_fields)

    def _repaired(self, line: bytes, line_no: int) -> bytes | None:
        """``line`` with invalid UTF-8 and unbalanced quotes mended (``engine.parsers.repair``),
        each counted as repaired; None (counted) when its quoted fields cannot be realigned."""
        if not is_utf8(line):
            line = repair_utf8(line)
            self.tally.repaired[INVALID_UTF8] += 1
        if self.layout.quote_char and line.count(b'"') % 2:
            mended = repair_quotes(line)
            if mended is None:
                self.tally.add(UNBALANCED_QUOTE, line_no, line)
                return None
            line = mended
            self.tally.repaired[UNBALANCED_QUOTE] += 1
        return line

    def _robust(self, entries: list[Entry], n_fields: int) -> list[Piece]:
        """Read ``entries``; on any failure split in halves until the bad lines are isolated."""
        if not entries:
            return []
        text = b"\n".join(raw for _, raw in entries) + b"\n"
        error: str | None = None
        try:
            table, other = self._read(text, n_fields, whole=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            error = str(exc)
        else:
            if table.num_rows + len(other) == len(entries):
                handled = {number for number, _, _ in other}
                kept = [e for i, e in enumerate(entries) if (i + 1) not in handled]
                pieces = [Piece(table, _entries_locator(kept))] if table.num_rows else []
                widths = {number: width for number, width, _ in other}
                rest = [
                    (entries[n - 1][0], entries[n - 1][1], widths[n])
                    for n in sorted(handled)
                    if widths[n] != n_fields
                ]
                return pieces + self._regroup(rest)
            error = "row count mismatch"
        if len(entries) == 1:
            line_no, raw = entries[0]
            reason = WRONG_FIELD_COUNT
            if error and "conversion error" in error:
                reason = INVALID_TIMESTAMP if _TIME_TYPES.search(error) else INVALID_VALUE
            if raw.count(b'"') % 2 and self.layout.quote_char:
                reason = UNBALANCED_QUOTE
            self.tally.add(reason, line_no, raw)
            return []
        mid = len(entries) // 2
        return self._robust(entries[:mid], n_fields) + self._robust(entries[mid:], n_fields)


def drop_rows(piece: Piece, checks: list[tuple[str, pa.Array]], tally: Tally) -> pa.Table:
    """Remove rows flagged by ``checks`` (reason, boolean mask); count and sample them.

    A row is counted once, under the first reason that flags it.
    """
    table = piece.table
    if table.num_rows == 0 or not checks:
        return table
    any_bad = None
    for reason, mask in checks:
        mask = pc.fill_null(mask, False)
        fresh = mask if any_bad is None else pc.and_(mask, pc.invert(any_bad))
        n = pc.sum(fresh).as_py() or 0
        if n:
            rows = pc.indices_nonzero(fresh).to_pylist()
            want = max(0, tally.max_samples - len(tally.samples))
            located = piece.locate(rows[:want]) if want else []
            for line_no, raw in located:
                tally.add(reason, line_no, raw)
            tally.add(reason, 0, None, n - len(located))
        any_bad = mask if any_bad is None else pc.or_(any_bad, mask)
    if any_bad is None or not pc.any(any_bad).as_py():
        return table
    return table.filter(pc.invert(any_bad))
