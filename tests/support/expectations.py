"""Reading ``# expect:`` fixtures and comparing canonical rows with expected values."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from engine.schema.request import COLUMNS

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "data" / "fixtures"
EXPECT = "# expect:"
MALFORMED = "malformed"
ROWS = "_rows"  # how many rows the line gives, when not one (records joined by "}{")


@dataclass(frozen=True)
class Case:
    """One annotated log line: the file, its line (1-based in the file), what it must give."""

    path: Path
    line_no: int
    line: bytes
    expect: dict[str, Any]
    headers: bytes  # CloudFront header lines in force above the line

    @property
    def id(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}:{self.line_no}"


def load_cases(path: Path) -> list[Case]:
    cases: list[Case] = []
    pending: dict[str, Any] | None = None
    headers = b""
    for i, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if raw.startswith(EXPECT.encode()):
            pending = json.loads(raw[len(EXPECT) :])
            unknown = set(pending) - set(COLUMNS) - {MALFORMED, ROWS}
            if unknown:
                raise ValueError(f"{path}:{i}: unknown columns in expectation: {sorted(unknown)}")
            continue
        if raw.startswith((b"#Version", b"#Fields")):
            headers = headers + raw + b"\n" if raw.startswith(b"#Fields") else raw + b"\n"
            continue
        if pending is not None and raw.strip():
            cases.append(Case(path, i, raw, pending, headers))
            pending = None
    return cases


def without_expectations(path: Path) -> bytes:
    """The fixture as a log object: expectations and ``# `` commentary removed."""
    lines = path.read_bytes().split(b"\n")
    return b"\n".join(line for line in lines if not line.startswith(b"# "))


def data_lines(content: bytes) -> int:
    """Lines a parser must account for: not blank, not a ``#`` comment or header."""
    return sum(1 for line in content.split(b"\n") if line.strip() and not line.startswith(b"#"))


def plain(value: Any) -> Any:
    """A value as it is written in expectations (times as ISO-8601 UTC with milliseconds)."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


def mismatches(row: dict[str, Any], expect: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Columns whose value differs: column -> (expected, got). Floats compare to 1e-6."""
    bad = {}
    for column, want in expect.items():
        if column == ROWS:
            continue
        got = plain(row[column])
        if isinstance(want, float) and isinstance(got, float):
            if not math.isclose(want, got, rel_tol=1e-6, abs_tol=1e-6):
                bad[column] = (want, got)
        elif got != want:
            bad[column] = (want, got)
    return bad


def only_row(table: pa.Table) -> dict[str, Any]:
    assert table.num_rows == 1, f"expected one row, got {table.num_rows}"
    return table.to_pylist()[0]
