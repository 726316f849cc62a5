"""AWS WAF logs: one JSON object per request (log-formats.md §4).

Read with ``pyarrow.json`` against an explicit schema of the fields used (never inferred).
Records concatenated without a newline (``}{``, seen from Firehose) are split before reading.
A block the reader rejects is re-read line by line by bisection; a line that still fails is
split on object boundaries with a streaming decoder, so one bad record costs only itself.
pyarrow's reader is only ever handed lines that start with ``{`` and end with ``}``: given a
lone ``null`` (or one before any object) with an explicit schema it crashes the process.
Headers are picked case-insensitively, vectorised over the flattened header list: the first
occurrence, except ``X-Forwarded-For``, whose occurrences are joined in order with ", " (a
client-sent header before the proxy's own must not hide the chain the proxy appended).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from engine.core.netaddr import normalize_column
from engine.parsers import arrays
from engine.parsers.columnar import MAX_LINE_BYTES, Entry, Piece, blank_lines, drop_rows
from engine.parsers.detect import WAF
from engine.parsers.registry import PARSERS
from engine.parsers.repair import repair_utf8
from engine.parsers.result import (
    INVALID_CLIENT_IP,
    INVALID_JSON,
    INVALID_TIMESTAMP,
    INVALID_UTF8,
    LINE_TOO_LONG,
    NESTING_TOO_DEEP,
    Tally,
)
from engine.parsers.stream import Block
from engine.schema import request as rq

MAX_RECORD_BYTES = 4 * MAX_LINE_BYTES  # WAF records carry all headers (up to ~20 KiB+)

_HEADER = pa.struct([("name", pa.string()), ("value", pa.string())])
WAF_SCHEMA = pa.schema(
    [
        ("timestamp", pa.int64()),
        ("action", pa.string()),
        ("terminatingRuleId", pa.string()),
        ("terminatingRuleType", pa.string()),
        (
            "httpRequest",
            pa.struct(
                [
                    ("clientIp", pa.string()),
                    ("country", pa.string()),
                    ("headers", pa.list_(_HEADER)),
                    ("uri", pa.string()),
                    ("args", pa.string()),
                    ("httpVersion", pa.string()),
                    ("httpMethod", pa.string()),
                    ("requestId", pa.string()),
                ]
            ),
        ),
        ("labels", pa.list_(pa.struct([("name", pa.string())]))),
    ]
)
_PARSE = pajson.ParseOptions(
    explicit_schema=WAF_SCHEMA, unexpected_field_behavior="ignore", newlines_in_values=False
)
_HEADERS_WANTED = {
    "host": rq.HOST,
    "user-agent": rq.USER_AGENT,
    "referer": rq.REFERER,
    "x-forwarded-for": rq.X_FORWARDED_FOR,
}
_HEADERS_JOINED = frozenset({"x-forwarded-for"})  # list-valued: every occurrence counts


def objects_only(text: bytes) -> bool:
    """Whether every non-empty line of ``text`` starts with ``{`` and ends with ``}`` (before
    an optional ``\\r``): the only lines pyarrow's reader may see. Whole-buffer byte compares,
    no per-line arrays (a block of 8 million empty lines costs milliseconds)."""
    raw = np.frombuffer(text, dtype=np.uint8)
    if not len(raw):
        return True
    newline = raw == 10
    after = np.ones_like(newline)  # the next byte is a newline (or there is none)
    after[:-1] = newline[1:]
    cr_lf = (raw == 13) & after  # a "\r" just before the newline is not content
    content = ~newline & ~cr_lf
    before = np.ones_like(newline)  # the byte before is a newline (or there is none)
    before[1:] = newline[:-1]
    ends_line = after.copy()  # the next byte ends the line: a newline, or "\r\n"
    ends_line[:-1] |= cr_lf[1:]
    if np.any(content & before & (raw != ord("{"))):
        return False
    return not np.any(content & ends_line & (raw != ord("}")))


def _has_blank_line(text: bytes) -> bool:
    """Whether ``text`` holds an empty line (or one of just ``\r``), which the reader skips."""
    return text.startswith((b"\n", b"\r\n")) or b"\n\n" in text or b"\n\r\n" in text


def _read(text: bytes) -> pa.Table:
    """pyarrow's JSON reader on ``text``; refuses (``ArrowInvalid``) what could crash it."""
    if not objects_only(text):
        raise pa.ArrowInvalid("a line is not a JSON object")
    options = pajson.ReadOptions(use_threads=False, block_size=len(text) + 1)
    return pajson.read_json(io.BytesIO(text), read_options=options, parse_options=_PARSE)


def pick_headers(
    headers: pa.Array, names: list[str], joined: frozenset[str] = frozenset()
) -> dict[str, pa.Array]:
    """Each wanted header per record, matching names case-insensitively: its first value, or
    for a name in ``joined`` all its non-null values in order, joined with ", "."""
    n = len(headers)
    flat = headers.flatten()
    parents = np.asarray(pc.list_parent_indices(headers))
    lowered = pc.utf8_lower(pc.struct_field(flat, "name"))
    values = pc.struct_field(flat, "value")
    out: dict[str, pa.Array] = {}
    for name in names:
        hits = np.asarray(pc.indices_nonzero(pc.fill_null(pc.equal(lowered, name), False)))
        if name in joined:
            out[name] = _joined(values, hits, parents, n)
            continue
        rows, first = np.unique(parents[hits], return_index=True)
        pick = np.full(n, -1, dtype=np.int64)
        pick[rows] = hits[first]
        out[name] = pc.take(values, pa.array(pick, mask=pick < 0))
    return out


def _joined(values: pa.Array, hits: np.ndarray, parents: np.ndarray, n: int) -> pa.Array:
    """Per record, its values at ``hits`` (ascending flat positions) joined with ", "; null
    where it has none. Positions ascend with the record, so a record's values are a run."""
    if len(hits):
        hits = hits[values.is_valid().to_numpy(zero_copy_only=False)[hits]]
    counts = np.bincount(parents[hits], minlength=n) if len(hits) else np.zeros(n, np.int64)
    offsets = pa.array(np.r_[0, np.cumsum(counts)], pa.int32())
    lists = pa.ListArray.from_arrays(
        offsets, pc.take(values, pa.array(hits)), mask=pa.array(counts == 0)
    )
    return pc.binary_join(lists, ", ")


def label_names(labels: pa.Array) -> pa.Array:
    """``[{"name": ...}, ...]`` → ``["...", ...]`` keeping the list offsets."""
    names = pc.struct_field(labels.values, "name")
    return pa.ListArray.from_arrays(labels.offsets, names, mask=labels.is_null())


def _null_if(values: pa.Array, *placeholders: str) -> pa.Array:
    bad = pc.fill_null(pc.is_in(values, pa.array(placeholders, pa.string())), False)
    return pc.if_else(bad, pa.scalar(None, pa.string()), values)


def to_canonical(piece: Piece, tally: Tally) -> pa.Table:
    """One read piece of WAF records → canonical rows."""
    t = piece.table.combine_chunks()
    request = arrays.as_array(t["httpRequest"])
    ip = normalize_column(pc.struct_field(request, "clientIp"))
    t = t.append_column("__ip", ip)
    t = drop_rows(
        Piece(t, piece.locate),
        [(INVALID_TIMESTAMP, pc.is_null(t["timestamp"])), (INVALID_CLIENT_IP, pc.is_null(ip))],
        tally,
    ).combine_chunks()
    request = arrays.as_array(t["httpRequest"])
    headers = pick_headers(
        pc.struct_field(request, "headers"), list(_HEADERS_WANTED), _HEADERS_JOINED
    )
    columns = {
        rq.EVENT_TIME: pc.cast(t["timestamp"], rq.TIMESTAMP_TYPE),
        rq.CLIENT_IP: t["__ip"],
        rq.SOURCE: arrays.constant(rq.SOURCE_WAF, t.num_rows),
        rq.METHOD: pc.struct_field(request, "httpMethod"),
        rq.PATH: pc.struct_field(request, "uri"),
        rq.QUERY: arrays.empty_to_null(pc.struct_field(request, "args")),
        rq.PROTOCOL: pc.struct_field(request, "httpVersion"),
        rq.REQUEST_ID: _null_if(pc.struct_field(request, "requestId"), "null", ""),
        rq.WAF_ACTION: t["action"],
        rq.WAF_RULE: t["terminatingRuleId"],
        rq.COUNTRY: _null_if(pc.struct_field(request, "country"), "-", ""),
        rq.WAF_LABELS: label_names(arrays.as_array(t["labels"])),
        **{column: headers[name] for name, column in _HEADERS_WANTED.items()},
    }
    return rq.conform(pa.table(columns))


@PARSERS.register(WAF)
class WafParser:
    """AWS WAF JSON log → canonical requests."""

    name = WAF
    independent_blocks = True  # no state across blocks: they may be parsed in parallel

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def parse(self, blocks: Iterator[Block]) -> Iterator[pa.Table]:
        for first_line, block, lines in blocks:
            for piece in self.read_block(block, first_line, lines):
                if piece.table.num_rows:
                    yield to_canonical(piece, self.tally)

    def read_block(self, block: bytes, first_line: int, lines: int) -> list[Piece]:
        """Fast path: the block as one JSON-lines read; then ``}{`` joins; then line by line."""
        if not arrays.is_utf8(block):
            return self._salvage(block, first_line)
        table = self._try_read(block, lines)
        if table is not None:
            return [Piece(table, self._block_locator(block, first_line))]
        if b"}{" in block:  # Firehose may join records without a newline
            text = block.replace(b"}{", b"}\n{")
            table = self._try_read(text, arrays.count_lines(text))
            if table is not None:
                split = [line for line in text.split(b"\n")[:-1] if line.strip()]
                return [Piece(table, lambda rows: [(first_line, split[r]) for r in rows])]
        return self._salvage(block, first_line)

    @staticmethod
    def _try_read(text: bytes, lines: int) -> pa.Table | None:
        """The records of ``text``, or None when the reader fails or loses lines."""
        try:
            table = _read(text)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        if table.num_rows == lines and not _has_blank_line(text):
            return table  # one record per line: row r is the r-th line
        if table.num_rows + blank_lines(text) == lines:
            return table  # one record per non-blank line
        return None  # a line held several records (or none): read line by line

    @staticmethod
    def _block_locator(block: bytes, first_line: int):
        def locate(rows: list[int]) -> list[Entry]:
            lines = block.split(b"\n")
            data = [i for i, line in enumerate(lines[:-1]) if line.strip(b"\r")]
            return [(first_line + data[r], lines[data[r]]) for r in rows]

        return locate

    def _salvage(self, block: bytes, first_line: int) -> list[Piece]:
        entries: list[Entry] = []
        for i, raw in enumerate(block.split(b"\n")[:-1]):
            line = raw.strip()
            if not line:
                continue
            if len(line) > MAX_RECORD_BYTES and b"}{" not in line:
                self.tally.add(LINE_TOO_LONG, first_line + i, line)
                continue
            if not arrays.is_utf8(line):  # one bad byte must not hide the request
                line = repair_utf8(line)
                self.tally.repaired[INVALID_UTF8] += 1
            entries.append((first_line + i, line))
        return self._robust(entries)

    def _robust(self, entries: list[Entry]) -> list[Piece]:
        if not entries:
            return []
        try:
            table = _read(b"\n".join(raw for _, raw in entries) + b"\n")
            if table.num_rows == len(entries):
                return [Piece(table, lambda rows: [entries[r] for r in rows])]
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        if len(entries) > 1:
            mid = len(entries) // 2
            return self._robust(entries[:mid]) + self._robust(entries[mid:])
        return self._split_objects(*entries[0])

    def _split_objects(self, line_no: int, raw: bytes) -> list[Piece]:
        """A line the reader rejects: decode it object by object (``}{`` joins, garbage)."""
        text = raw.decode("utf-8")
        decoder = json.JSONDecoder()
        records: list[Entry] = []
        pos = 0
        while pos < len(text):
            try:
                obj, end = decoder.raw_decode(text, pos)
                record = json.dumps(obj).encode() if isinstance(obj, dict) else b""
            except RecursionError:  # nested deeper than a decoder can follow: not a record
                self.tally.add(NESTING_TOO_DEEP, line_no, text[pos:])
                break
            except ValueError:
                self.tally.add(INVALID_JSON, line_no, text[pos:])
                break
            if record and len(text[pos:end]) <= MAX_RECORD_BYTES:
                records.append((line_no, record))
            elif isinstance(obj, dict):
                self.tally.add(LINE_TOO_LONG, line_no, text[pos:end])
            else:
                self.tally.add(INVALID_JSON, line_no, text[pos:end])
            pos = end
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
        if len(records) == 1 and records[0][1] == raw:
            self.tally.add(INVALID_JSON, line_no, raw)  # decodes, but not to the WAF schema
            return []
        pieces: list[Piece] = []
        for record in records:
            try:
                table = _read(record[1] + b"\n")
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                self.tally.add(INVALID_JSON, line_no, record[1])
                continue
            pieces.append(Piece(table, lambda rows, r=record: [r for _ in rows]))
        return pieces
