"""Local source: each file once, in key order; with a store, a re-run skips what was done."""

from __future__ import annotations

import pytest

from engine.sources import (
    Delivery,
    LocalSource,
    LocalSourceConfig,
    ProcessedRecord,
    Source,
    SourceError,
)


@pytest.fixture()
def logs(tmp_path):
    root = tmp_path / "logs"
    (root / "2026" / "11").mkdir(parents=True)
    for name in ("2026/11/b.log", "2026/11/a.log", "z.log.gz"):
        (root / name).write_bytes(name.encode())
    return root


def test_poll_hands_out_each_file_once_in_key_order(logs):
    source = LocalSourceConfig(paths=[str(logs)]).build()
    assert isinstance(source, Source)
    first = source.poll(max_objects=2)
    assert all(isinstance(d, Delivery) for d in first)
    assert [d.obj.key for d in first] == ["2026/11/a.log", "2026/11/b.log"]
    rest = source.poll(max_objects=10)
    assert [d.obj.key for d in rest] == ["z.log.gz"]
    assert source.poll() == []


def test_rerun_with_a_store_skips_processed_files(logs, store, fake_clock):
    source = LocalSource([str(logs)], store=store)
    for d in source.poll(max_objects=2):
        assert d.ack(ProcessedRecord.for_object(d.obj, rows=len(d.obj.read()))) is True

    again = LocalSource([str(logs)], store=store)
    assert [d.obj.key for d in again.poll(max_objects=10)] == ["z.log.gz"]
    assert again.stats()["skipped_already_processed"] == 2


def test_release_puts_the_file_back_first(logs):
    source = LocalSource([str(logs)])
    (d,) = source.poll(max_objects=1)
    d.release()
    assert [x.obj.key for x in source.poll(max_objects=1)] == [d.obj.key]


def test_ack_with_another_objects_record_is_refused(logs):
    source = LocalSource([str(logs)])
    a, b = source.poll(max_objects=2)
    with pytest.raises(SourceError, match="cannot acknowledge"):
        a.ack(ProcessedRecord.for_object(b.obj, rows=0))


def test_config_needs_paths_and_refuses_unknown_keys(tmp_path):
    with pytest.raises(ValueError, match="paths"):
        LocalSourceConfig(paths=[])
    with pytest.raises(ValueError, match="extra"):
        LocalSourceConfig(paths=["x"], recursive=True)
    with pytest.raises(SourceError, match="no such file"):
        LocalSourceConfig(paths=[str(tmp_path / "missing")]).build()
