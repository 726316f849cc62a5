"""The long-line check of the block splitter answers exactly as measuring every line does.

``stream._completes_long_line`` usually decides from a few ``find`` calls over windows of
half the cap; here it is compared with the exact rule (the longest newline-to-newline gap, and
the held open line plus the chunk's first line) on chunks built around the cap.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.parsers import stream


def exact(chunk: bytes, open_line: int, max_line: int) -> bool:
    ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
    return max(open_line + int(ends[0]), int(np.diff(ends).max(initial=1)) - 1) > max_line


@st.composite
def chunks(draw):
    max_line = draw(st.sampled_from([stream.WINDOW_CHECK_MIN_LINE, 10_000, 16_384, 65_536]))
    near = st.integers(0, 3) | st.integers(max_line // 2 - 3, max_line // 2 + 3)
    lengths = draw(
        st.lists(near | st.integers(max_line - 3, max_line + 3) | st.integers(0, max_line),
                 min_size=1, max_size=12)
    )  # fmt: skip
    tail = draw(st.integers(0, max_line + 2))  # the unterminated end of the chunk
    chunk = b"".join(b"x" * n + b"\n" for n in lengths) + b"y" * tail
    return chunk, draw(st.integers(0, max_line + 2)), max_line


@settings(max_examples=300, deadline=None)
@given(chunks())
def test_window_check_matches_measuring_every_line(case) -> None:
    chunk, open_line, max_line = case
    first = chunk.find(b"\n")
    assert stream._completes_long_line(chunk, first, open_line, max_line) == exact(
        chunk, open_line, max_line
    )
