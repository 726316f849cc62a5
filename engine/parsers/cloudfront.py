"""CloudFront standard logs: tab-separated W3C format driven by each file's ``#Fields`` line.

Field order is read from the header, never assumed; a file without a header (the legacy
19-field fixtures) falls back to the documented order, and short lines get nulls. The user
agent and query string are URL-decoded exactly once (``%2520`` stays ``%20``), on distinct
values only. ``date`` + ``time`` (response finished, 1 s resolution) make the event time.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc

from engine.core.netaddr import normalize_column
from engine.parsers import arrays
from engine.parsers.columnar import DelimitedLayout, DelimitedReader, Piece, drop_rows
from engine.parsers.detect import CLOUDFRONT
from engine.parsers.registry import PARSERS
from engine.parsers.result import INVALID_CLIENT_IP, INVALID_TIMESTAMP, LINE_TOO_LONG, Tally
from engine.parsers.stream import Block
from engine.schema import request as rq

DOCUMENTED_FIELDS = (
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
)
REQUIRED = ("date", "time", "c-ip")
MAX_FIELD_BYTES = 16 * 1024

_DICT = pa.dictionary(pa.int32(), pa.string())
_TYPES: dict[str, pa.DataType] = {
    "date": pa.date32(),
    "time": pa.time32("s"),
    "c-ip": pa.string(),
    "c-port": pa.string(),
    "cs-method": _DICT,
    "x-host-header": _DICT,
    "cs(Host)": _DICT,
    "cs-uri-stem": pa.string(),
    "cs-uri-query": pa.string(),
    "sc-status": pa.int16(),
    "cs(Referer)": pa.string(),
    "cs(User-Agent)": _DICT,
    "x-edge-request-id": pa.string(),
    "cs-protocol-version": _DICT,
    "cs-bytes": pa.int64(),
    "sc-bytes": pa.int64(),
    "time-taken": pa.float64(),
    "x-forwarded-for": pa.string(),
    "ssl-protocol": _DICT,
    "ssl-cipher": _DICT,
}
_MS_PER_DAY = 86_400_000


def layout_for(fields: list[str]) -> DelimitedLayout:
    """The reading layout for one ``#Fields`` declaration."""

    def names_for(n_fields: int) -> list[str]:
        names = fields[:n_fields] + [f"extra_{i}" for i in range(len(fields), n_fields)]
        return [n if n not in names[:i] else f"dup_{i}" for i, n in enumerate(names)]

    positions = [fields.index(name) for name in REQUIRED if name in fields]
    min_fields = max(positions, default=len(fields) - 1) + 1
    types = {name: typ for name, typ in _TYPES.items() if name in fields}
    return DelimitedLayout(
        delimiter="\t", quote_char=False, names_for=names_for, min_fields=min_fields,
        types=types,
    )  # fmt: skip


def decode_once(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """URL-decode each distinct value once (values without ``%`` are left as they are)."""
    dictionary = arrays.as_dictionary(values)
    distinct = dictionary.dictionary
    encoded = pc.fill_null(pc.match_substring(distinct, "%"), False)
    if pc.any(encoded).as_py():
        picked = pc.take(distinct, pc.indices_nonzero(encoded)).to_pylist()
        plain = pa.array([unquote(v, errors="replace") for v in picked], pa.string())
        distinct = pc.replace_with_mask(distinct, encoded, plain)
    return arrays.expand(distinct, dictionary)


def _column(t: pa.Table, name: str, typ: pa.DataType) -> pa.Array:
    if name in t.column_names:
        return arrays.as_array(t[name])
    return pa.nulls(t.num_rows, typ)


def to_canonical(piece: Piece, tally: Tally) -> pa.Table:
    """One read piece of CloudFront columns → canonical rows."""
    t = piece.table
    client_ip = normalize_column(_column(t, "c-ip", pa.string()))
    days = pc.cast(_column(t, "date", pa.date32()), pa.int32())
    seconds = pc.cast(_column(t, "time", pa.time32("s")), pa.int32())
    millis = pc.add(pc.multiply(pc.cast(days, pa.int64()), _MS_PER_DAY),
                    pc.multiply(pc.cast(seconds, pa.int64()), 1000))  # fmt: skip
    event_time = pc.cast(millis, rq.TIMESTAMP_TYPE)
    agent = arrays.decoded(_column(t, "cs(User-Agent)", pa.string()))
    t = t.append_column("__ip", client_ip).append_column("__time", event_time)
    t = drop_rows(
        Piece(t, piece.locate),
        [
            (LINE_TOO_LONG, pc.greater(pc.binary_length(agent), MAX_FIELD_BYTES)),
            (INVALID_TIMESTAMP, pc.is_null(event_time)),
            (INVALID_CLIENT_IP, pc.is_null(client_ip)),
        ],
        tally,
    )
    host = arrays.decoded(_column(t, "x-host-header", pa.string()))
    if "x-host-header" not in t.column_names and "cs(Host)" in t.column_names:
        host = arrays.decoded(t["cs(Host)"])
    duration = pc.multiply(_column(t, "time-taken", pa.float64()), 1000.0)
    columns = {
        rq.EVENT_TIME: t["__time"],
        rq.CLIENT_IP: t["__ip"],
        rq.CLIENT_PORT: arrays.to_int(_column(t, "c-port", pa.string()), pa.int32()),
        rq.SOURCE: arrays.constant(rq.SOURCE_CLOUDFRONT, t.num_rows),
        rq.METHOD: arrays.decoded(_column(t, "cs-method", pa.string())),
        rq.HOST: host,
        rq.PATH: _column(t, "cs-uri-stem", pa.string()),
        rq.QUERY: decode_once(_column(t, "cs-uri-query", pa.string())),
        rq.PROTOCOL: arrays.decoded(_column(t, "cs-protocol-version", pa.string())),
        rq.STATUS: _column(t, "sc-status", pa.int16()),
        rq.BYTES_IN: _column(t, "cs-bytes", pa.int64()),
        rq.BYTES_OUT: _column(t, "sc-bytes", pa.int64()),
        rq.DURATION_MS: pc.cast(duration, pa.float32()),
        rq.USER_AGENT: decode_once(_column(t, "cs(User-Agent)", pa.string())),
        rq.REFERER: _column(t, "cs(Referer)", pa.string()),
        rq.TLS_PROTOCOL: arrays.decoded(_column(t, "ssl-protocol", pa.string())),
        rq.TLS_CIPHER: arrays.decoded(_column(t, "ssl-cipher", pa.string())),
        rq.REQUEST_ID: _column(t, "x-edge-request-id", pa.string()),
        rq.X_FORWARDED_FOR: _column(t, "x-forwarded-for", pa.string()),
    }
    return rq.conform(pa.table(columns))


@PARSERS.register(CLOUDFRONT)
class CloudFrontParser:
    """CloudFront standard (access) log → canonical requests."""

    name = CLOUDFRONT

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self._use(list(DOCUMENTED_FIELDS))

    def _use(self, fields: list[str]) -> None:
        self.fields = fields
        self.reader = DelimitedReader(layout_for(fields), self.tally)

    def _segments(self, first_line: int, block: bytes) -> Iterator[tuple[int, bytes]]:
        """Split a block at header lines, applying each ``#Fields`` as it is met."""
        start, line = 0, first_line
        while start < len(block):
            if block.startswith(b"#", start):
                head_end = block.find(b"\n", start) + 1 or len(block)
                header = block[start:head_end].strip()
                if header.startswith(b"#Fields:"):
                    fields = header[len(b"#Fields:") :].decode("utf-8", "replace").split()
                    if fields:
                        self._use(fields)
                start, line = head_end, line + 1
                continue
            nxt = block.find(b"\n#", start)
            end = len(block) if nxt < 0 else nxt + 1
            segment = block[start:end]
            yield line, segment
            line += segment.count(b"\n")
            start = end

    def _width(self, segment: bytes) -> int:
        """Fields on the segment's first line: legacy files stop after 19, some add a tab."""
        end = segment.find(b"\n")
        first = segment[: end if end >= 0 else len(segment)].rstrip(b"\r")
        return first.count(b"\t") + 1 if first.strip() else len(self.fields)

    def parse(self, blocks: Iterator[Block]) -> Iterator[pa.Table]:
        for first_line, block, _ in blocks:
            for line, segment in self._segments(first_line, block):
                for piece in self.reader.read_block(segment, line, self._width(segment)):
                    if piece.table.num_rows:
                        yield to_canonical(piece, self.tally)
