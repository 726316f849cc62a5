"""Hypothesis: the streaming line cap keeps every short line, empties every long one, in order.

Whatever the chunking and the block size, ``iter_blocks`` must hand on the same lines as the
input (a line over the cap replaced by an empty line, counted once with its line number), in
blocks that end with a newline; the object cap stops the stream at exactly its byte count.
"""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.parsers.result import LINE_TOO_LONG, OBJECT_TOO_LARGE, Tally
from engine.parsers.stream import ParseLimits, iter_blocks, iter_decompressed

lines = st.lists(st.integers(0, 60).map(lambda n: b"x" * n), min_size=0, max_size=40)


@settings(max_examples=200, deadline=None)
@given(lines, st.integers(1, 50), st.integers(1, 30), st.integers(1, 40), st.booleans())
def test_long_lines_are_emptied_and_the_rest_kept(text_lines, chunk, block, cap, ending):
    text = b"\n".join(text_lines) + (b"\n" if ending else b"")
    chunks = [text[i : i + chunk] for i in range(0, len(text), chunk)]
    tally = Tally(max_samples=100)
    out = list(
        iter_blocks(iter(chunks), block, limits=ParseLimits(max_line_bytes=cap), tally=tally)
    )

    assert all(b.endswith(b"\n") for b in out)
    got = b"".join(out).split(b"\n")[:-1]
    want = text.split(b"\n")
    if want and want[-1] == b"":
        want = want[:-1]
    assert got == [b"" if len(line) > cap else line for line in want]
    too_long = [i + 1 for i, line in enumerate(want) if len(line) > cap]
    assert tally.counts[LINE_TOO_LONG] == len(too_long)
    assert sorted(s.line_no for s in tally.samples) == too_long


@given(st.binary(max_size=300), st.integers(1, 400))
def test_the_object_cap_stops_at_its_byte_count(data, cap):
    assume(not data.startswith(b"\x1f"))  # plain bytes: gzip members are inflated first
    tally = Tally()
    out = b"".join(iter_decompressed(data, tally, ParseLimits(max_object_bytes=cap)))
    assert out == data[:cap]
    assert tally.counts[OBJECT_TOO_LARGE] == (len(data) > cap)
