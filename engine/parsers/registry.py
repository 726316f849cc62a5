"""The parser plugin map and the interface every parser implements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pyarrow as pa

from engine.core.registry import Registry
from engine.parsers.result import Tally
from engine.parsers.stream import Block


class LogParser(Protocol):
    """One object's parse: built per object (parsers may keep per-file state, e.g. headers).

    ``parse(blocks)`` receives newline-aligned :class:`Block` objects of decompressed text,
    yields canonical tables (``REQUEST_SCHEMA``),
    and counts every line it cannot use in ``tally``. It must not raise on bad data.
    """

    name: str

    def __init__(self, tally: Tally) -> None: ...

    def parse(self, blocks: Iterator[Block]) -> Iterator[pa.Table]: ...


PARSERS: Registry[type[LogParser]] = Registry("parser")
