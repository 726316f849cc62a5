"""ALB access logs: space-separated, quoted fields, read by position (log-formats.md §1).

The 33 documented fields are named; any later field is ignored and a shorter (older) line
gets nulls for what it lacks. Event time is the ``time`` field (when the load balancer sent the
response): every ALB layout has it, and it is ALB's own time for the entry. Request, user
agent, actions and TLS fields are read dictionary-encoded, so the request split and the
WAF-action mapping run once per distinct value, not per row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from engine.parsers import arrays
from engine.parsers.columnar import DelimitedLayout, DelimitedReader, Piece, drop_rows
from engine.parsers.detect import ALB
from engine.parsers.ipnorm import normalize_ips
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
    "request": _DICT,
    "user_agent": _DICT,
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
    """``"METHOD scheme://host:port/path?query PROTO"`` → method/host/path/query/protocol.

    Runs on distinct values with plain string splits (no regex); ``"- - -"`` (a request ALB
    could not parse) gives nulls. A missing ``?`` gives a null query, ``?`` alone an empty one.
    """
    dictionary = arrays.as_dictionary(request)
    values = dictionary.dictionary
    head, protocol = arrays.split_last(values, " ")
    method, url = arrays.split_first(head, " ")
    url = pc.if_else(pc.fill_null(pc.equal(url, "-"), True), pa.scalar(None, pa.string()), url)
    scheme, after = arrays.split_first(url, "://")
    after = pc.if_else(pc.is_null(after), scheme, after)  # no scheme: the whole URL
    authority, path_tail = arrays.split_first(after, "/")
    path_query = pc.binary_join_element_wise("/", path_tail, "")
    path, query = arrays.split_first(path_query, "?")
    host, _port = arrays.split_last(authority, ":")
    bracketed = pc.fill_null(pc.ends_with(authority, "]"), False)
    host = arrays.empty_to_null(pc.if_else(bracketed, authority, host))
    return {
        rq.METHOD: arrays.expand(_dash_null(method), dictionary),
        rq.HOST: arrays.expand(host, dictionary),
        rq.PATH: arrays.expand(path, dictionary),
        rq.QUERY: arrays.expand(query, dictionary),
        rq.PROTOCOL: arrays.expand(_dash_null(protocol), dictionary),
    }


def _dash_null(values: pa.Array) -> pa.Array:
    dash = pc.fill_null(pc.equal(values, "-"), True)
    return pc.if_else(dash, pa.scalar(None, values.type), values)


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
    ip_raw, port_raw = arrays.split_last(arrays.as_array(t["client_port"]), ":")
    client_ip = normalize_ips(ip_raw)
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
