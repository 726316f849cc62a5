"""The fuzz harness: a seeded small run finds nothing, and a dying worker's input is caught."""

from __future__ import annotations

import json
import os
import signal

import pytest

from benchmarks import bench_fuzz
from benchmarks.bench_fuzz import case, fuzz, seeds


def test_a_seeded_run_over_every_parser_has_no_crash(tmp_path) -> None:
    tallies = fuzz(1500, seed=7, workers=1, save=tmp_path)
    assert tallies.cases == 1500
    assert set(tallies.by_target) == set(bench_fuzz.TARGETS)
    assert tallies.crashes == [] and tallies.poison == []
    assert list(tmp_path.iterdir()) == []


def test_cases_are_regenerated_from_their_number() -> None:
    pool = seeds()
    assert case(3, 41, pool) == case(3, 41, pool)
    assert case(3, 41, pool) != case(3, 42, pool)


def test_a_worker_killed_by_its_input_is_named_saved_and_the_run_goes_on(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bench_fuzz.run_case
    killer = 37  # the input of this case "segfaults" the reader (an injected fault)
    pool = seeds()
    fatal = case(5, killer, pool)

    def run_case(target: str, data: bytes) -> str | None:
        if (target, data) == fatal:
            os.kill(os.getpid(), signal.SIGSEGV)
        return real(target, data)

    monkeypatch.setattr(bench_fuzz, "run_case", run_case)  # the forked worker inherits it
    tallies = fuzz(80, seed=5, workers=1, save=tmp_path)

    assert tallies.cases == 80
    assert [c["case"] for c in tallies.crashes] == [killer]
    assert tallies.crashes[0]["problem"] == f"exit code {-signal.SIGSEGV}"
    saved = tmp_path / f"fuzz-crash-{fatal[0]}-{killer}.poison"
    assert saved.read_bytes() == fatal[1]
    note = json.loads(saved.with_suffix(".txt").read_text())
    assert note["case"] == killer and note["target"] == fatal[0]
