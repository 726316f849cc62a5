"""Contract battery run against every registered parser (scikit-learn ``check_estimator`` style).

Whatever a parser is fed, it returns exactly ``REQUEST_SCHEMA``, never raises, counts what it
could not use by reason, keeps a bounded sample, and reads the good lines around the damage.
"""

from __future__ import annotations

import gzip
import random

import pytest

from engine.parsers import PARSERS, parse_object
from engine.parsers.result import (
    CORRUPT_GZIP,
    EMPTY_OBJECT,
    INVALID_CLIENT_IP,
    INVALID_JSON,
    INVALID_TIMESTAMP,
    INVALID_UTF8,
    INVALID_VALUE,
    LINE_TOO_LONG,
    NESTING_TOO_DEEP,
    OBJECT_TOO_LARGE,
    POISON_OBJECT,
    TRAILING_GARBAGE,
    TRUNCATED_GZIP,
    UNBALANCED_QUOTE,
    UNKNOWN_FORMAT,
    WRONG_FIELD_COUNT,
)
from engine.schema.request import CLIENT_IP, EVENT_TIME, REQUEST_SCHEMA, SOURCE

KNOWN_REASONS = {
    CORRUPT_GZIP, EMPTY_OBJECT, INVALID_CLIENT_IP, INVALID_JSON, INVALID_TIMESTAMP, INVALID_UTF8,
    INVALID_VALUE, LINE_TOO_LONG, TRAILING_GARBAGE, TRUNCATED_GZIP, UNBALANCED_QUOTE,
    UNKNOWN_FORMAT, WRONG_FIELD_COUNT, NESTING_TOO_DEEP, OBJECT_TOO_LARGE, POISON_OBJECT,
}  # fmt: skip

GOOD = {
    "alb": (
        b"https 2026-11-30T08:00:00.000000Z app/x/1 192.0.2.1:1 - 0.1 0.1 0.1 200 200 1 2 "
        b'"GET https://h:443/p?q HTTP/1.1" "ua" - - - "Root=1-a" "-" "-" 0 '
        b'2026-11-30T08:00:00.000000Z "forward" "-" "-" "-" "-" "-" "-"\n'
    ),
    "cloudfront": b"2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td.net\t/i\t200\t-\tua\n",
    "waf": b'{"timestamp":1,"action":"ALLOW","httpRequest":{"clientIp":"192.0.2.1","uri":"/"}}\n',
}
assert set(GOOD) == set(PARSERS.names()), "add a good line for every registered parser"


def garbage_inputs() -> dict[str, bytes]:
    rng = random.Random(2)
    return {
        "random_bytes": bytes(rng.getrandbits(8) for _ in range(5000)),
        "latin1_text": "caf\xe9 cr\xe8me\n".encode("latin-1") * 20,
        "one_megabyte_line": b"A" * (1 << 20) + b"\n",
        "only_quotes": b'"""""\n"\n' * 50,
        "only_newlines": b"\n" * 100,
        "nul_bytes": b"\x00" * 1000,
        "json_array": b"[1, 2, 3]\n",
        "gzip_header_only": gzip.compress(b"x" * 1000)[:12],
        "gzip_of_garbage": gzip.compress(bytes(range(256)) * 10),
    }


@pytest.fixture(params=PARSERS.names())
def fmt(request: pytest.FixtureRequest) -> str:
    return request.param


def check_result(result, *, max_samples: int = 20) -> None:
    assert result.table.schema == REQUEST_SCHEMA
    assert result.rows == result.table.num_rows
    assert set(result.malformed) <= KNOWN_REASONS
    assert all(n > 0 for n in result.malformed.values())
    assert len(result.bad_samples) <= max_samples
    assert all(s.reason in result.malformed and len(s.text) <= 500 for s in result.bad_samples)
    assert result.table.column(CLIENT_IP).null_count == 0
    assert result.table.column(EVENT_TIME).null_count == 0


def test_good_line_gives_one_row_of_its_source(fmt: str) -> None:
    result = parse_object(GOOD[fmt], fmt=fmt)
    check_result(result)
    assert (result.rows, result.malformed, result.format) == (1, {}, fmt)
    assert result.table.column(SOURCE).to_pylist() == [fmt]


@pytest.mark.parametrize("name", sorted(garbage_inputs()))
def test_garbage_never_raises_and_is_counted(fmt: str, name: str) -> None:
    data = garbage_inputs()[name]
    result = parse_object(data, fmt=fmt, max_bad_samples=3)
    check_result(result, max_samples=3)
    assert result.rows == 0
    assert result.malformed, "bad input must be counted, not silently dropped"


@pytest.mark.parametrize("name", sorted(garbage_inputs()))
def test_good_lines_around_garbage_are_kept(fmt: str, name: str) -> None:
    garbage = garbage_inputs()[name]  # gzip bytes inside plain text are just bytes here
    data = GOOD[fmt] * 3 + garbage.rstrip(b"\n") + b"\n" + GOOD[fmt] * 2
    result = parse_object(data, fmt=fmt)
    check_result(result)
    assert result.rows == 5


def test_another_format_is_counted_by_every_parser(fmt: str) -> None:
    for other, line in GOOD.items():
        if other == fmt:
            continue
        result = parse_object(line * 4, fmt=fmt)
        check_result(result)
        assert result.rows == 0 and sum(result.malformed.values()) >= 1


def test_gzip_damage_is_counted_and_the_start_kept(fmt: str) -> None:
    data = gzip.compress(GOOD[fmt] * 2000)
    result = parse_object(data[: len(data) // 2], fmt=fmt)
    check_result(result)
    assert result.malformed.get(TRUNCATED_GZIP) == 1
    assert result.rows > 0
