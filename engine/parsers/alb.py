"""ALB access logs: space-separated, quoted fields, read by position (log-formats.md §1).

The 33 documented fields are named; any later field is ignored and a shorter (older) line
gets nulls for what it lacks. Choices, so that every stage can rely on them:

- Event time is the ``time`` field (when the load balancer sent the response): every ALB
  layout has it, and it is ALB's own time for the entry. Truncated to milliseconds.
- ``waf_action`` is ``"waf"`` when WAF was the final action executed (it blocked the request),
  ``"waf-failed"`` when WAF could not evaluate it, and null otherwise.
- Duration is the sum of the three processing times in ms, null if any of them is ``-1``.
- The request and ``client:port`` fields are split at the byte level with numpy
  (:mod:`engine.parsers.slicing`); only the rarely-varying columns are read dictionary-encoded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from engine.core.netaddr import normalize_column
from engine.parsers import arrays, slicing
from engine.parsers.columnar import DelimitedLayout, DelimitedReader, Piece, drop_rows
from engine.parsers.detect import ALB
from engine.parsers.registry import PARSERS
from engine.parsers.result import INVALID_CLIENT_IP, INVALID_TIMESTAMP, LINE_TOO_LONG, Tally
from engine.parsers.stream import Block
from engine.schema import request as rq

ALB_FIELDS = [
    "type", "time", "elb", "client_port", "target_port", "request_processing_time",
    "target_processing_time", "response_processing_time", "elb_status_code",
    "target_status_code", "received_bytes", "sent_bytes", "request", "user_agent",
    "ssl_cipher", "ssl_protocol", "target_group_arn", "trace_id", "domain_name",
    "chosen_cert_arn", "matched_rule_priority", "request_creation_time", "actions_executed",
    "redirect_url", "error_reason", "target_port_list", "target_status_code_list",
    "classification", "classification_reason", "conn_trace_id", "transformed_host",
    "transformed_uri", "request_transform_status",
]  # fmt: skip
MIN_FIELDS = 13  # through "request": anything shorter is not a usable request line
MAX_FIELD_BYTES = 16 * 1024  # a request or user agent longer than this is a damaged line

_DICT = pa.dictionary(pa.int32(), pa.string())
_TYPES: dict[str, pa.DataType] = {
    "time": pa.timestamp("us", tz="UTC"),
    "client_port": pa.string(),
    "request_processing_time": pa.float64(),
    "target_processing_time": pa.float64(),
    "response_processing_time": pa.float64(),
    "elb_status_code": pa.int16(),
    "target_status_code": pa.int16(),
    "received_bytes": pa.int64(),
    "sent_bytes": pa.int64(),
    "request": pa.string(),
    "user_agent": pa.string(),
    "ssl_cipher": _DICT,
    "ssl_protocol": _DICT,
    "trace_id": pa.string(),
    "actions_executed": _DICT,
}
_TOKEN = re.compile(rb'"[^"]*"|[^ ]+')


def names_for(n_fields: int) -> list[str]:
    return ALB_FIELDS[:n_fields] + [f"extra_{i}" for i in range(len(ALB_FIELDS), n_fields)]


LAYOUT = DelimitedLayout(
    delimiter=" ", quote_char='"', names_for=names_for, min_fields=MIN_FIELDS, types=_TYPES
)


def count_fields(line: bytes) -> int:
    """Quote-aware field count of one line (used once per block to pick the layout)."""
    return len(_TOKEN.findall(line.rstrip(b"\r\n")))


def split_request(request: pa.Array | pa.ChunkedArray) -> dict[str, pa.Array]:
    """The request field as canonical method/host/path/query/protocol columns."""
    parts = slicing.split_request(request)
    return {
        rq.METHOD: parts["method"],
        rq.HOST: parts["host"],
        rq.PATH: parts["path"],
        rq.QUERY: parts["query"],
        rq.PROTOCOL: parts["protocol"],
    }


def waf_action(actions: pa.Array) -> pa.Array:
    """``waf`` when WAF was the final action (it blocked), ``waf-failed`` when WAF could not
    evaluate, null otherwise (no WAF, or WAF let the request through)."""
    dictionary = arrays.as_dictionary(actions)
    mapped = []
    for value in dictionary.dictionary.to_pylist():
        steps = (value or "").split(",")
        if "waf-failed" in steps:
            mapped.append("waf-failed")
        elif steps[-1] == "waf":
            mapped.append("waf")
        else:
            mapped.append(None)
    return arrays.expand(pa.array(mapped, pa.string()), dictionary)


def to_canonical(piece: Piece, tally: Tally) -> pa.Table:
    """One read piece of ALB columns → canonical rows (damaged rows counted and dropped)."""
    t = piece.table
    ip_raw, port_raw = slicing.split_host_port(t["client_port"])
    client_ip = normalize_column(ip_raw)
    long_request = pc.greater(pc.binary_length(arrays.decoded(t["request"])), MAX_FIELD_BYTES)
    long_agent = pc.greater(pc.binary_length(arrays.decoded(t["user_agent"])), MAX_FIELD_BYTES)
    t = t.append_column("__ip", client_ip).append_column("__port", port_raw)
    t = drop_rows(
        Piece(t, piece.locate),
        [
            (LINE_TOO_LONG, pc.or_(long_request, long_agent)),
            (INVALID_TIMESTAMP, pc.is_null(t["time"])),
            (INVALID_CLIENT_IP, pc.is_null(client_ip)),
        ],
        tally,
    )
    timings = [
        arrays.negative_to_null(arrays.as_array(t[name]))
        for name in ("request_processing_time", "target_processing_time",
                     "response_processing_time")
    ]  # fmt: skip
    duration = pc.multiply(pc.add(pc.add(timings[0], timings[1]), timings[2]), 1000.0)
    columns = {
        rq.EVENT_TIME: pc.cast(t["time"], rq.TIMESTAMP_TYPE, safe=False),
        rq.CLIENT_IP: t["__ip"],
        rq.CLIENT_PORT: arrays.to_int(arrays.as_array(t["__port"]), pa.int32()),
        rq.SOURCE: arrays.constant(rq.SOURCE_ALB, t.num_rows),
        rq.STATUS: t["elb_status_code"],
        rq.ORIGIN_STATUS: t["target_status_code"],
        rq.BYTES_IN: t["received_bytes"],
        rq.BYTES_OUT: t["sent_bytes"],
        rq.DURATION_MS: pc.cast(duration, pa.float32()),
        rq.USER_AGENT: arrays.decoded(t["user_agent"]),
        rq.TLS_PROTOCOL: arrays.decoded(t["ssl_protocol"]),
        rq.TLS_CIPHER: arrays.decoded(t["ssl_cipher"]),
        rq.REQUEST_ID: t["trace_id"],
        rq.WAF_ACTION: waf_action(t["actions_executed"]),
        **split_request(t["request"]),
    }
    return rq.conform(pa.table(columns))


@PARSERS.register(ALB)
class AlbParser:
    """ALB access log → canonical requests."""

    name = ALB
    independent_blocks = True  # no state across blocks: they may be parsed in parallel

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.reader = DelimitedReader(LAYOUT, tally)

    def _width(self, block: bytes) -> int:
        """Field count of the block's first data line: the layout most of its rows share."""
        start = 0
        for _ in range(64):
            end = block.find(b"\n", start)
            if end < 0:
                break
            line = block[start:end]
            if line.strip() and not line.startswith(b"#"):
                return max(count_fields(line), MIN_FIELDS)
            start = end + 1
        return len(ALB_FIELDS)

    def parse(self, blocks: Iterator[Block]) -> Iterator[pa.Table]:
        for first_line, block, lines in blocks:
            width = self._width(block)
            for piece in self.reader.read_block(block, first_line, width, lines):
                if piece.table.num_rows:
                    yield to_canonical(piece, self.tally)
