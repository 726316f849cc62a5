"""Poison input through ``wafsmith parse``: every object ends in a summary with named reasons.

Poison fixtures run in a subprocess, so an input that kills the process (a segfault in a
native reader) fails the test instead of the test run; peak memory is read with
``/usr/bin/time -v``. The rest calls the same command in-process.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from isal import igzip

from engine.cli.main import main
from engine.parsers import PARSERS, parse_object, stream
from engine.parsers.alb import AlbParser
from tests.support.expectations import FIXTURES, without_expectations

REPO = Path(__file__).resolve().parents[3]
POISON = FIXTURES / "poison"
TIME = Path("/usr/bin/time")


def parse(*args: str, measure: bool = False) -> tuple[dict, int | None]:
    """``wafsmith parse ARGS`` in a subprocess: its JSON summary and (``measure``) peak RSS
    in KiB. The command must finish: exit 0, or 1 with the warning that nothing in the input
    could be parsed (a poison object alone holds no request) — never a crash."""
    command = [sys.executable, "-m", "engine.cli", "parse", *args]
    if measure:
        command = [str(TIME), "-v", *command]
    done = subprocess.run(command, cwd=REPO, capture_output=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr.decode()[-3000:]
    if done.returncode == 1:
        assert b"could be parsed" in done.stderr, done.stderr.decode()[-3000:]
    rss = None
    if measure:
        rss = int(re.search(rb"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
    return json.loads(done.stdout), rss


@pytest.mark.parametrize(
    ("name", "malformed"),
    [
        # segfaulted: the lone "null" reached pyarrow's reader
        ("waf-null-line.poison", {"invalid_client_ip": 1, "invalid_json": 2}),
        # RecursionError in the object splitter
        ("waf-deep-nesting.jsonl.gz", {"nesting_too_deep": 1}),
    ],
)
def test_a_poison_object_gives_a_summary_with_named_reasons(name: str, malformed: dict) -> None:
    doc, _ = parse(str(POISON / name))
    assert doc["objects"] == 1 and doc["rows"] == 0
    assert doc["malformed"] == malformed
    assert doc["poison"] == [] and doc["errors"] == []


FOUND_BY_FUZZING = sorted(POISON.glob("fuzz-crash-*.poison"))
POISON_OBJECTS = sorted(p for p in POISON.iterdir() if p.suffix != ".txt")  # not the notes


@pytest.mark.parametrize("path", FOUND_BY_FUZZING, ids=lambda p: p.stem)
def test_an_input_that_crashed_a_fuzzed_parser_now_parses(path: Path) -> None:
    """Inputs ``benchmarks.bench_fuzz`` found killing the process (before the fix), each read
    with the parser it was fed to (its ``.txt`` note)."""
    target = json.loads(path.with_suffix(".txt").read_text())["target"]
    doc, _ = parse(str(path), "--format", target)
    assert doc["objects"] == 1 and "poison_object" not in doc["malformed"]
    assert doc["malformed"]  # its damage is counted by reason


def parse_here(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    """``wafsmith parse ARGS`` in this process (inputs that cannot crash it): exit 0, or 1
    with the warning that nothing could be parsed."""
    code = main(["parse", *args])
    captured = capsys.readouterr()
    assert code == 0 or (code == 1 and "could be parsed" in captured.err), captured.err
    return json.loads(captured.out)


def test_poison_objects_do_not_stop_the_others(tmp_path: Path) -> None:
    for path in POISON_OBJECTS:
        (tmp_path / f"0-{path.name}").write_bytes(path.read_bytes())
    (tmp_path / "1-waf.jsonl").write_bytes(without_expectations(FIXTURES / "waf/waf-samples.jsonl"))
    alone, _ = parse(str(FIXTURES / "waf/waf-samples.jsonl"))
    doc, _ = parse(str(tmp_path))
    assert doc["objects"] == len(POISON_OBJECTS) + 1
    assert doc["rows"] == alone["rows"] > 0


def test_a_gzip_bomb_without_a_newline_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "zeros.gz"
    with igzip.open(bomb, "wb", compresslevel=1) as out:
        block = bytes(16 << 20)
        for _ in range(16):  # 256 MiB of zeros, no newline (the benchmark reads 1 GiB)
            out.write(block)
    doc, rss = parse(str(bomb), "--format", "waf", measure=True)
    assert doc["malformed"] == {"line_too_long": 1}
    assert doc["bytes_read"] == 1  # the stand-in empty line: the zeros were never held
    assert rss is not None and rss < 512 * 1024


@pytest.mark.parametrize("fmt", ["auto", "alb", "cloudfront", "waf"])
def test_an_object_of_newlines_is_empty_whatever_the_format(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / "newlines.gz"
    path.write_bytes(gzip.compress(b"\n" * (16 << 20), compresslevel=1))
    doc = parse_here(capsys, str(path), "--format", fmt)
    assert doc["malformed"] == {"empty_object": 1} and doc["rows"] == 0


def test_the_object_cap_keeps_what_was_read_and_names_the_object(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    line = without_expectations(FIXTURES / "alb/alb-samples.log").split(b"\n")[0] + b"\n"
    path = tmp_path / "big.log"
    path.write_bytes(line * 2000)
    cap = 100 * len(line) + 10  # a hundred whole lines and the head of the next
    doc = parse_here(capsys, str(path), "--max-object-bytes", str(cap))
    assert doc["rows"] == 100
    assert doc["poison"] == [{"uri": str(path), "reason": "object_too_large", "error": None}]
    assert doc["malformed"]["object_too_large"] == 1


def test_a_long_line_is_cut_out_as_it_streams_and_the_rest_is_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = without_expectations(FIXTURES / "alb/alb-samples.log").split(b"\n")[:3]
    path = tmp_path / "long.log"
    path.write_bytes(b"\n".join([lines[0], b"x" * 5000, lines[1], lines[2]]) + b"\n")
    doc = parse_here(capsys, str(path), "--format", "alb", "--max-line-bytes", "4096")
    assert doc["rows"] == 3
    assert doc["malformed"] == {"line_too_long": 1}
    assert doc["bad_samples"][0]["line_no"] == 2


class _BrokenStream:
    """A source stream whose connection drops after the first chunk."""

    def __init__(self, head: bytes) -> None:
        self.head = head

    def read(self, n: int) -> bytes:
        if self.head:
            head, self.head = self.head, b""
            return head
        raise ConnectionResetError("connection reset by peer")


def test_a_failing_source_is_not_poison_its_error_reaches_the_caller() -> None:
    line = without_expectations(FIXTURES / "alb/alb-samples.log").split(b"\n")[0] + b"\n"
    with pytest.raises(ConnectionResetError, match="reset by peer"):
        parse_object(_BrokenStream(line * 10))  # the engine releases it, to be read again


class _FailsAfterOneBlock:
    """An injected parser bug: the ALB parser for the first block, then an exception."""

    name = "fails_after_one_block"

    def __init__(self, tally) -> None:
        self.inner = AlbParser(tally)

    def parse(self, blocks):
        yield from self.inner.parse(iter([next(blocks)]))
        raise RuntimeError("parser bug")


def test_a_parser_failure_is_poison_for_its_object_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PARSERS._items, _FailsAfterOneBlock.name, _FailsAfterOneBlock)
    monkeypatch.setattr(stream, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(stream, "READ_CHUNK", 4096)
    line = without_expectations(FIXTURES / "alb/alb-samples.log").split(b"\n")[0] + b"\n"
    result = parse_object(line * 100, fmt=_FailsAfterOneBlock.name)
    assert 0 < result.rows < 100  # the rows of the first block are kept
    assert result.malformed == {"poison_object": 1}
    assert result.poison == "poison_object" and result.error == "RuntimeError: parser bug"
    assert parse_object(line * 100, fmt="alb").rows == 100  # the next object is read as usual
