"""``parse_object(..., sink=f)`` hands over exactly the rows it would otherwise return.

The rows (in order), counts and samples are compared with a parse that keeps its table, on
objects cut into many small blocks with damaged lines among them; an error raised by the
sink is the caller's and propagates instead of being counted as a poison object.
"""

from __future__ import annotations

from unittest import mock

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.alb_generator import generate_lines
from engine.parsers import parse_object, stream
from engine.schema.request import REQUEST_SCHEMA
from tests.support.expectations import FIXTURES, without_expectations

ALB_LINES = [line.encode() for line in generate_lines(40, n_clients=10, seed=9)]
WAF_LINES = without_expectations(FIXTURES / "waf" / "waf-samples.jsonl").splitlines()
DAMAGE = [b"", b"garbage", b'"', b"\xff\xfe not utf-8", b"A" * 70_000, b"#comment"]
SMALL_BLOCKS = {"BLOCK_BYTES": 2048, "READ_CHUNK": 700, "INFLATE_STEP": 900}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(["alb", "waf"]),
    picks=st.lists(st.integers(0, 10_000), min_size=1, max_size=60),
)
def test_sink_receives_the_rows_a_kept_table_holds(fmt: str, picks: list[int]) -> None:
    pool = (ALB_LINES if fmt == "alb" else WAF_LINES) + DAMAGE
    data = b"\n".join(pool[i % len(pool)] for i in picks) + b"\n"
    handed: list[pa.Table] = []
    with mock.patch.multiple(stream, **SMALL_BLOCKS):
        kept = parse_object(data, fmt=fmt, max_bad_samples=5)
        sunk = parse_object(data, fmt=fmt, max_bad_samples=5, sink=handed.append)
    rows = pa.concat_tables(handed) if handed else REQUEST_SCHEMA.empty_table()
    assert rows.equals(kept.table)
    assert sunk.table.num_rows == 0
    assert sunk.rows == kept.rows
    assert (sunk.malformed, sunk.repaired, sunk.bad_samples, sunk.error) == (
        kept.malformed, kept.repaired, kept.bad_samples, kept.error,
    )  # fmt: skip
    assert all(t.num_rows for t in handed)


def test_an_error_in_the_sink_is_raised_not_counted() -> None:
    data = b"\n".join(ALB_LINES) + b"\n"

    def full(table: pa.Table) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        parse_object(data, fmt="alb", sink=full)
