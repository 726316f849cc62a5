"""The canonical request record: one Arrow schema whatever log a request came from.

Every parser emits exactly ``REQUEST_SCHEMA``; every later stage reads columns through the
constants below, never through bare strings. A column a log format lacks is null, never a
guess (see ``../shared/reference/log-formats.md`` §5).
"""

from __future__ import annotations

import pyarrow as pa

# Column names. Import these; do not spell column names as bare strings outside this module.
EVENT_TIME = "event_time"  # UTC, millisecond resolution
CLIENT_IP = "client_ip"  # normalized text form (IPv4 dotted quad, IPv6 compressed lower case)
CLIENT_PORT = "client_port"
SOURCE = "source"  # "alb" | "cloudfront" | "waf"
METHOD = "method"
HOST = "host"
PATH = "path"
QUERY = "query"
PROTOCOL = "protocol"  # HTTP version, e.g. "HTTP/1.1"
STATUS = "status"  # what the client got
ORIGIN_STATUS = "origin_status"  # what the origin/target answered, where the log has it
BYTES_IN = "bytes_in"
BYTES_OUT = "bytes_out"
DURATION_MS = "duration_ms"
USER_AGENT = "user_agent"
REFERER = "referer"
TLS_PROTOCOL = "tls_protocol"
TLS_CIPHER = "tls_cipher"
REQUEST_ID = "request_id"  # ALB trace id, CloudFront edge request id, WAF requestId
X_FORWARDED_FOR = "x_forwarded_for"
# ALLOW / BLOCK / COUNT / CAPTCHA / CHALLENGE (WAF logs); "waf" / "waf-failed" (ALB)
WAF_ACTION = "waf_action"
WAF_RULE = "waf_rule"  # terminating rule id
COUNTRY = "country"
WAF_LABELS = "waf_labels"
JA3 = "ja3"
JA4 = "ja4"

SOURCE_ALB = "alb"
SOURCE_CLOUDFRONT = "cloudfront"
SOURCE_WAF = "waf"
SOURCES = (SOURCE_ALB, SOURCE_CLOUDFRONT, SOURCE_WAF)

TIMESTAMP_TYPE = pa.timestamp("ms", tz="UTC")

REQUEST_SCHEMA = pa.schema(
    [
        pa.field(EVENT_TIME, TIMESTAMP_TYPE, nullable=False),
        pa.field(CLIENT_IP, pa.string(), nullable=False),
        pa.field(CLIENT_PORT, pa.int32()),
        pa.field(SOURCE, pa.string(), nullable=False),
        pa.field(METHOD, pa.string()),
        pa.field(HOST, pa.string()),
        pa.field(PATH, pa.string()),
        pa.field(QUERY, pa.string()),
        pa.field(PROTOCOL, pa.string()),
        pa.field(STATUS, pa.int16()),
        pa.field(ORIGIN_STATUS, pa.int16()),
        pa.field(BYTES_IN, pa.int64()),
        pa.field(BYTES_OUT, pa.int64()),
        pa.field(DURATION_MS, pa.float32()),
        pa.field(USER_AGENT, pa.string()),
        pa.field(REFERER, pa.string()),
        pa.field(TLS_PROTOCOL, pa.string()),
        pa.field(TLS_CIPHER, pa.string()),
        pa.field(REQUEST_ID, pa.string()),
        pa.field(X_FORWARDED_FOR, pa.string()),
        pa.field(WAF_ACTION, pa.string()),
        pa.field(WAF_RULE, pa.string()),
        pa.field(COUNTRY, pa.string()),
        pa.field(WAF_LABELS, pa.list_(pa.string())),
        pa.field(JA3, pa.string()),
        pa.field(JA4, pa.string()),
    ]
)

COLUMNS = tuple(REQUEST_SCHEMA.names)


def empty_batch() -> pa.RecordBatch:
    """A zero-row batch in the canonical schema."""
    return pa.RecordBatch.from_pylist([], schema=REQUEST_SCHEMA)


def conform(table: pa.Table | pa.RecordBatch) -> pa.Table:
    """Return ``table`` with exactly the canonical columns, in order, missing ones as nulls.

    Parsers build only the columns their format carries and call this to add the rest, so
    absent columns are null by construction rather than by each parser remembering them.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    n = table.num_rows
    arrays = []
    for field in REQUEST_SCHEMA:
        if field.name in table.column_names:
            col = table.column(field.name)
            arrays.append(col if col.type == field.type else col.cast(field.type))
        else:
            arrays.append(pa.nulls(n, type=field.type))
    return pa.Table.from_arrays(arrays, schema=REQUEST_SCHEMA)
