"""Poison objects under ``wafsmith run``: the engine stays up, sets them aside, blocks the flood.

A local source folder holds, in key order, the objects that once crashed or stalled the engine
(a WAF line of ``null`` that segfaulted pyarrow, 100,000 ``[``, a gzip of zeros without a
newline, a truncated gzip, an object over the size cap), lines with a bad byte or an open
quote (repaired and kept) and then a flood. The engine runs as
a subprocess against the moto server and must block the flooder in the WAF IP set, quarantine
each poison object with its reason, count them in its ingest status and stop cleanly.
"""

from __future__ import annotations

import gzip
import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.core.clock import FakeClock, SystemClock
from engine.decisions import Ledger
from engine.demo.standin import bootstrap
from engine.runner import EngineRunner
from engine.settings import Settings, load_settings
from engine.status import EngineStatus, read
from tests.support.alb import alb_line, alb_object, flood_object
from tests.support.engine_process import block_set_so_far, start_engine, write_engine_config
from tests.support.runner import START, make_runner

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "data" / "fixtures" / "poison"
ATTACKER = "203.0.113.77"
MAX_OBJECT_BYTES = 2 << 20


def poison_folder(folder: Path, now: datetime) -> dict[str, str | None]:
    """Write the poison objects and the flood; the reason each must be quarantined with."""
    folder.mkdir()
    (folder / "0-null.log").write_bytes((FIXTURES / "waf-null-line.poison").read_bytes())
    (folder / "1-nesting.log.gz").write_bytes((FIXTURES / "waf-deep-nesting.jsonl.gz").read_bytes())
    (folder / "2-zeros.gz").write_bytes(gzip.compress(bytes(3 << 19), compresslevel=1))
    line = alb_line(now - timedelta(minutes=40), "198.51.100.30")
    (folder / "3-truncated.log.gz").write_bytes(alb_object([line] * 2000)[:-40])
    big = [alb_line(now - timedelta(minutes=40), "198.51.100.31")] * 6000  # ~2.6 MB decompressed
    (folder / "4-too-large.log.gz").write_bytes(alb_object(big))
    when = now - timedelta(minutes=40)
    bad_byte = alb_line(when, "198.51.100.32", agent="caf\xe9").encode("latin-1")
    open_quote = alb_line(when, "198.51.100.33", agent="curl").replace('"curl"', '"curl').encode()
    (folder / "5-repaired.log").write_bytes(bad_byte + b"\n" + open_quote + b"\n")
    minute = (now - timedelta(minutes=30)).replace(second=0, microsecond=0)
    data, _ = flood_object(minute, ATTACKER, requests=600)
    (folder / "9-flood.log.gz").write_bytes(data)
    return {"3-truncated.log.gz": "truncated_gzip", "4-too-large.log.gz": "object_too_large"}


def test_poison_objects_first_then_a_flood_the_engine_blocks_it(aws_endpoint, wafv2, tmp_path):
    demo = bootstrap(aws_endpoint)
    data_dir, folder = tmp_path / "var", tmp_path / "logs"
    expected = poison_folder(folder, datetime.now(UTC))
    source = {"kind": "local", "paths": [folder], "max_object_bytes": MAX_OBJECT_BYTES}
    config = write_engine_config(tmp_path / "engine.toml", demo, data_dir, source=source)
    proc = start_engine(config)
    try:
        deadline = time.monotonic() + 240
        while f"{ATTACKER}/32" not in block_set_so_far(wafv2) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            time.sleep(1.0)
        assert f"{ATTACKER}/32" in block_set_so_far(wafv2)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, proc.stderr.read().decode()[-3000:]

    settings = load_settings(config)
    ledger = Ledger.open(settings.resolved_database_url, clock=SystemClock())
    ingest = read(ledger, EngineStatus).record.ingest
    ledger.close()
    assert ingest.objects == 7
    repaired = ingest.repaired_by_reason
    assert repaired["invalid_utf8"] == 1  # the open-quote line, and lines cut by a cap, too:
    assert repaired["unbalanced_quote"] >= 1 and set(repaired) == {
        "invalid_utf8",
        "unbalanced_quote",
    }
    assert ingest.quarantined == len(expected), ingest.malformed_by_reason
    reasons = ingest.malformed_by_reason
    assert reasons["nesting_too_deep"] == 1 and reasons["invalid_json"] == 2
    assert reasons["line_too_long"] == 1  # the zeros: skipped as they streamed past
    assert reasons["truncated_gzip"] == 1 and reasons["object_too_large"] == 1
    quarantine = data_dir / "quarantine"
    for name, reason in expected.items():
        assert (quarantine / name).read_bytes() == (folder / name).read_bytes()
        note = json.loads((quarantine / f"{name}.reason.json").read_text())
        assert note["reason"] == reason and note["uri"] == str(folder / name)
    assert sorted(p.name for p in quarantine.iterdir()) == sorted(
        [*expected, *(f"{n}.reason.json" for n in expected)]
    )


def test_an_s3_poison_object_is_copied_under_the_quarantine_prefix_once(
    demo_aws, s3, sqs, tmp_path
):
    runner = make_runner(demo_aws, tmp_path, FakeClock(START + timedelta(minutes=15)))
    data, _ = flood_object(START, ATTACKER)
    s3.put_object(Bucket=demo_aws.bucket, Key="logs/cut.log.gz", Body=data[: len(data) // 2])

    outcomes = [o for _ in range(6) for o in runner.step().objects]

    assert [o.uri for o in outcomes] == [f"s3://{demo_aws.bucket}/logs/cut.log.gz"]
    assert outcomes[0].malformed["truncated_gzip"] == 1 and outcomes[0].rows > 0
    copy = s3.get_object(Bucket=demo_aws.bucket, Key="wafsmith-quarantine/logs/cut.log.gz")
    assert copy["Body"].read() == data[: len(data) // 2]
    note = s3.get_object(
        Bucket=demo_aws.bucket, Key="wafsmith-quarantine/logs/cut.log.gz.reason.json"
    )
    assert json.loads(note["Body"].read())["reason"] == "truncated_gzip"
    # the copies' own notifications are recognised and dropped, never parsed as logs
    assert runner.source.stats()["skipped_quarantine"] == 2
    assert runner.telemetry.quarantined == 1
    attrs = sqs.get_queue_attributes(QueueUrl=demo_aws.queue_url, AttributeNames=["All"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"
    runner.close()


def test_a_quarantine_that_cannot_be_written_is_counted_and_the_engine_goes_on(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    data, counts = flood_object(START, ATTACKER)
    (folder / "0-cut.log.gz").write_bytes(data[: len(data) // 2])
    (folder / "1-flood.log.gz").write_bytes(data)
    (tmp_path / "not-a-dir").write_text("a file where the quarantine folder should be")
    settings = Settings(
        data_dir=tmp_path / "var",
        source={"kind": "local", "paths": [folder], "quarantine_dir": tmp_path / "not-a-dir"},
    )
    runner = EngineRunner.from_settings(settings, clock=FakeClock(START + timedelta(minutes=15)))

    outcomes = runner.step().objects

    assert [Path(o.uri).name for o in outcomes] == ["0-cut.log.gz", "1-flood.log.gz"]
    assert outcomes[0].malformed["truncated_gzip"] == 1
    assert outcomes[1].rows == sum(counts.values())
    assert runner.telemetry.source_errors == 1 and runner.telemetry.quarantined == 0
    assert runner.source.stats()["acked"] == 2  # acknowledged all the same: never re-read
    runner.close()
