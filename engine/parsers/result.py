"""What a parse returns: the canonical table plus an account of every line that was not used.

Bad input is never fatal. Each line that cannot become a row is counted under a reason
(``MALFORMED_REASONS``) and the first few are kept verbatim-ish for the operator.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

SAMPLE_TEXT_CHARS = 500

# Reasons a line (or an object) is counted as malformed.
WRONG_FIELD_COUNT = "wrong_field_count"  # fewer fields than the format's minimum
UNBALANCED_QUOTE = "unbalanced_quote"  # an odd number of '"' (ALB): would swallow lines
INVALID_UTF8 = "invalid_utf8"
LINE_TOO_LONG = "line_too_long"
INVALID_CLIENT_IP = "invalid_client_ip"  # e.g. anonymised "X.X.X.X"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_VALUE = "invalid_value"  # a number or time field that does not convert
INVALID_JSON = "invalid_json"
TRUNCATED_GZIP = "truncated_gzip"  # per object: the last gzip member ends early
CORRUPT_GZIP = "corrupt_gzip"  # per object: the deflate stream is damaged
TRAILING_GARBAGE = "trailing_garbage"  # per object: bytes after the last gzip member
EMPTY_OBJECT = "empty_object"  # per object: no bytes at all
UNKNOWN_FORMAT = "unknown_format"  # per line of an object no parser recognises
NESTING_TOO_DEEP = "nesting_too_deep"  # a JSON line nested beyond what a decoder can follow
OBJECT_TOO_LARGE = "object_too_large"  # per object: decompressed bytes over the cap
POISON_OBJECT = "poison_object"  # per object: the parser failed; the error is kept beside it

# Object-level reasons that mean the object was not read to its end: the engine sets such an
# object aside (quarantine) with its reason, and keeps the rows read before the failure.
POISON_REASONS = (OBJECT_TOO_LARGE, POISON_OBJECT, CORRUPT_GZIP, TRUNCATED_GZIP)


@dataclass(frozen=True)
class BadLine:
    """One rejected line: 1-based line number in the decompressed object, reason, text head."""

    line_no: int
    reason: str
    text: str


@dataclass
class ParseResult:
    """The outcome of parsing one object."""

    table: pa.Table  # exactly REQUEST_SCHEMA
    format: str  # "alb" | "cloudfront" | "waf" | "unknown"
    rows: int
    malformed: dict[str, int]  # reason -> count
    bad_samples: list[BadLine]
    bytes_read: int  # decompressed bytes
    error: str | None = None  # the parser's failure (``poison_object``), "Type: message"
    repaired: dict[str, int] = field(default_factory=dict)  # kept lines, by what was repaired

    @property
    def poison(self) -> str | None:
        """The reason the object was not read to its end (first of ``POISON_REASONS``)."""
        return next((r for r in POISON_REASONS if self.malformed.get(r)), None)


def sample_text(raw: bytes | str) -> str:
    """The first ~500 characters of a line, decodable whatever its bytes."""
    if isinstance(raw, bytes):
        raw = raw[: SAMPLE_TEXT_CHARS * 4].decode("utf-8", errors="replace")
    return raw[:SAMPLE_TEXT_CHARS].rstrip("\r\n")


@dataclass
class Tally:
    """Malformed counts by reason plus a bounded sample of the bad lines."""

    max_samples: int = 20
    counts: Counter[str] = field(default_factory=Counter)
    samples: list[BadLine] = field(default_factory=list)
    repaired: Counter[str] = field(default_factory=Counter)  # kept lines, by what was mended

    def add(self, reason: str, line_no: int, raw: bytes | str | None = None, n: int = 1) -> None:
        self.counts[reason] += n
        if raw is not None and len(self.samples) < self.max_samples:
            self.samples.append(BadLine(line_no, reason, sample_text(raw)))

    @property
    def wants_samples(self) -> bool:
        return len(self.samples) < self.max_samples

    def merge(self, other: Tally) -> None:
        """Add another tally's counts (and samples, up to the bound)."""
        self.counts.update(other.counts)
        self.repaired.update(other.repaired)
        room = max(0, self.max_samples - len(self.samples))
        self.samples.extend(other.samples[:room])

    def as_dict(self) -> dict[str, int]:
        return {reason: n for reason, n in sorted(self.counts.items()) if n}
