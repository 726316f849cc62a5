"""``Column.first`` (Arrow ``find_substring`` over spans of the column's own bytes) answers
exactly what listing every occurrence and binary-searching them (``first_in``) answers.

Checked on hostile columns (delimiters everywhere, empty rows, nulls, slices, non-UTF-8
bytes) with ranges inside, across and outside their rows, and through ``split_request``,
whose parts must not change when ``first`` is swapped for the listing form.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.parsers import slicing

TEXT = st.text(alphabet=" :/?[]-abcH1.%\u00e9", max_size=24)
PART = st.text(alphabet=":/?[]-ab1.", max_size=6)
REQUEST = st.builds(
    "{} {}{}{}{}{} {}".format,
    st.sampled_from(["GET", "-", "", "PO ST"]),
    st.sampled_from(["https://", "http://", "", "h:/", "://"]),
    st.sampled_from(["example.com", "[2001:db8::1]", "", "a:b"]) | PART,
    st.sampled_from([":443", ":", ""]) | PART,
    st.sampled_from(["/p/q", "/", "", "?", "/a?b=c/d:e"]) | PART,
    st.sampled_from(["?x=1", "", "?"]) | PART,
    st.sampled_from(["HTTP/1.1", "-", ""]),
)  # well-formed ALB requests and near misses
ROWS = st.lists(st.none() | TEXT | REQUEST, min_size=1, max_size=30)


def listing_first(col: slicing.Column, byte: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return slicing.first_in(col.positions(byte), lo, hi)


@st.composite
def columns(draw):
    rows = draw(ROWS)
    values = pa.array(rows, pa.string())
    cut = draw(st.integers(0, len(rows) - 1))
    return values.slice(cut) if draw(st.booleans()) else values


@settings(max_examples=300, deadline=None)
@given(values=columns(), data=st.data(), byte=st.sampled_from(b" :/?]x"))
def test_first_matches_listing(values: pa.Array, data, byte: int) -> None:
    col = slicing.Column.of(values)
    n = len(values)
    size = max(len(col.data), 1)
    lo = np.array(data.draw(st.lists(st.integers(-2, size + 2), min_size=n, max_size=n)))
    hi = np.array(data.draw(st.lists(st.integers(-2, size + 2), min_size=n, max_size=n)))
    inside = data.draw(st.booleans())
    if inside:  # the ranges split_request asks for: within each row
        lo = np.clip(lo, col.starts, col.ends)
        hi = np.clip(hi, lo, col.ends)
    assert (col.first(byte, lo, hi) == listing_first(col, byte, lo, hi)).all()


@settings(max_examples=300, deadline=None)
@given(values=columns())
def test_split_request_unchanged(values: pa.Array) -> None:
    new = slicing.split_request(values)
    with mock.patch.object(slicing.Column, "first", listing_first):
        old = slicing.split_request(values)
    assert new.keys() == old.keys()
    for name in new:
        assert new[name].equals(old[name]), name


def test_first_refuses_a_byte_arrow_would_not_search_for():
    """Above 127 the one-character pattern would be two UTF-8 bytes: refused, not mis-found."""
    col = slicing.Column.of(pa.array(["a\u00e9b"], pa.string()))
    with pytest.raises(ValueError, match="ASCII byte"):
        col.first(0xC3, col.starts, col.ends)
