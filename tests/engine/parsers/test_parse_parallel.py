"""Blocks parsed on two threads give exactly what one thread gives.

Rows (and their order), malformed counts, repaired counts, the bad-line samples and a
parser's error are compared between ``PARSE_THREADS = 1`` and ``2`` on objects cut into many
small blocks, so that damaged, mixed-layout and clean blocks are parsed side by side.
"""

from __future__ import annotations

import gzip
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.alb_generator import generate_lines
from engine.parsers import parallel, parse_object, stream
from tests.support.expectations import FIXTURES, without_expectations

ALB_LINES = [line.encode() for line in generate_lines(40, n_clients=10, seed=5)]
WAF_LINES = without_expectations(FIXTURES / "waf" / "waf-samples.jsonl").splitlines()
DAMAGE = [
    b"",
    b"garbage",
    b'"',
    b"\xff\xfe not utf-8",
    b"A" * 70_000,
    b"#comment",
]


def parsed(data: bytes, fmt: str, threads: int):
    small = {"BLOCK_BYTES": 2048, "READ_CHUNK": 700, "INFLATE_STEP": 900}  # many blocks
    threads_patch = mock.patch.object(parallel, "PARSE_THREADS", threads)
    with threads_patch, mock.patch.multiple(stream, **small):
        return parse_object(data, fmt=fmt, max_bad_samples=5)


@st.composite
def objects(draw):
    fmt = draw(st.sampled_from(["alb", "waf"]))
    good = ALB_LINES if fmt == "alb" else WAF_LINES
    lines = []
    for _ in range(draw(st.integers(1, 60))):
        line = draw(st.sampled_from(good))
        if draw(st.integers(0, 4)) == 0:
            kind = draw(st.sampled_from(["replace", "cut", "shorter"]))
            if kind == "replace":
                line = draw(st.sampled_from(DAMAGE))
            elif kind == "cut":
                line = line[: draw(st.integers(0, len(line)))]
            else:  # an older ALB layout: fewer fields
                line = b" ".join(line.split(b" ")[: draw(st.integers(12, 30))])
        lines.append(line)
    return fmt, b"\n".join(lines) + b"\n"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects(), st.booleans())
def test_two_threads_parse_exactly_like_one(case, gz) -> None:
    fmt, data = case
    payload = gzip.compress(data) if gz else data
    one, two = parsed(payload, fmt, 1), parsed(payload, fmt, 2)
    assert two.table.equals(one.table)
    assert two.malformed == one.malformed
    assert two.repaired == one.repaired
    assert two.bad_samples == one.bad_samples
    assert two.error == one.error
    assert counted_blocks(payload) > 1 or len(data) < 4096


def counted_blocks(payload: bytes) -> int:
    seen = []
    real = parallel._one
    with mock.patch.object(parallel, "_one", lambda *a: seen.append(1) or real(*a)):
        parsed(payload, "alb", 2)
    return len(seen)


def test_a_parser_error_keeps_the_rows_before_it_in_order() -> None:
    """A failure in block n: blocks before it are kept, the object is poison, as on one thread."""
    data = b"\n".join(ALB_LINES * 20) + b"\n"
    real = parallel._one
    calls = []

    def failing(parser, block, max_samples):
        calls.append(block.first_line)
        if block.first_line > 1 and len(calls) == 3:
            raise_in = parser

            class Broken(raise_in):  # type: ignore[misc, valid-type]
                def parse(self, blocks):
                    raise RuntimeError("boom")

            return real(Broken, block, max_samples)
        return real(parser, block, max_samples)

    with mock.patch.object(parallel, "_one", failing):
        two = parsed(data, "alb", 2)
    assert two.poison == "poison_object"
    assert two.error == "RuntimeError: boom"
    assert 0 < two.rows < 800
    full = parsed(data, "alb", 1)
    assert two.table.equals(full.table.slice(0, two.rows))
