"""The engine loop end to end against moto: S3 object → SQS → ledger → WAF IP set."""

from __future__ import annotations

import json
from datetime import timedelta

import pyarrow.compute as pc

from engine.core.clock import FakeClock
from engine.enforcer import RecordingShieldFake
from engine.runner import EngineRunner
from engine.schema.decision import Status
from engine.schema.request import CLIENT_IP
from engine.settings import Settings
from engine.status import (
    EnforcementStatus,
    EngineStatus,
    EvidenceSamples,
    StatusKey,
    TopClients,
    read,
)
from tests.support.alb import flood_object, last_minute_flood_object
from tests.support.runner import START, drain, engine_block_set, make_runner

ATTACKER = "203.0.113.9"
KEY = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/03/02/flood.log.gz"


def test_flood_in_an_alb_object_ends_in_the_waf_block_set(demo_aws, s3, sqs, wafv2, tmp_path):
    clock = FakeClock(START + timedelta(minutes=15))
    runner = make_runner(demo_aws, tmp_path, clock)
    data, counts = flood_object(START, ATTACKER)
    s3.put_object(Bucket=demo_aws.bucket, Key=KEY, Body=data)

    outcomes = drain(runner)

    assert [o.rows for o in outcomes] == [sum(counts.values())]
    assert engine_block_set(wafv2) == [f"{ATTACKER}/32"]
    decisions = runner.ledger.list(client=ATTACKER).items
    assert [d.status for d in decisions] == [Status.APPLIED]
    assert decisions[0].detector == "volumetric_flood"
    top = read(runner.ledger, TopClients).record.items
    assert top[0].client == ATTACKER and top[0].requests >= 600
    samples = read(runner.ledger, EvidenceSamples).record.for_client(ATTACKER)
    assert samples and {(e.path, e.query, e.user_agent) for e in samples} == {
        ("/search", "q=x", "python-requests/2.31")
    }
    stored = runner.ledger.get_status(StatusKey.ENFORCEMENT).document
    assert stored == runner.last_cycle.to_dict()  # the record keeps every field of the cycle
    enforcement = read(runner.ledger, EnforcementStatus).record
    assert enforcement.ok and enforcement.mode == "enforce" and not enforcement.errors
    assert enforcement.entries and sum(enforcement.entries.values()) == 1
    # the status API's view: the newest request ingested (START + 10 min) lags the clock,
    # which started 5 minutes later and moved on only by the enforcer's paced waits
    ingest = read(runner.ledger, EngineStatus).record.ingest
    newest = (START + timedelta(minutes=10)).timestamp()
    assert ingest.lag_s is not None and 5 * 60 <= ingest.lag_s <= clock.time() - newest
    assert ingest.rows == sum(counts.values())
    # the message was deleted only after the object was committed: the queue is empty now
    attrs = sqs.get_queue_attributes(QueueUrl=demo_aws.queue_url, AttributeNames=["All"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"
    # the operator's rules in the web ACL are still there, untouched
    acl_id = next(a["Id"] for a in wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"])
    acl = wafv2.get_web_acl(Name=demo_aws.web_acl_name, Scope="REGIONAL", Id=acl_id)["WebACL"]
    names = [r["Name"] for r in acl["Rules"]]
    assert "operator-login-rate" in names and "AWS-AWSManagedRulesCommonRuleSet" in names
    runner.close()


def test_redelivered_notification_changes_nothing(demo_aws, s3, sqs, tmp_path):
    clock = FakeClock(START + timedelta(minutes=15))
    runner = make_runner(demo_aws, tmp_path, clock)
    data, counts = flood_object(START, ATTACKER)
    s3.put_object(Bucket=demo_aws.bucket, Key=KEY, Body=data)
    drain(runner)
    etag = s3.head_object(Bucket=demo_aws.bucket, Key=KEY)["ETag"].strip('"')
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": demo_aws.bucket},
                    "object": {"key": KEY, "eTag": etag, "size": len(data)},
                },
            }
        ]
    }
    sqs.send_message(QueueUrl=demo_aws.queue_url, MessageBody=json.dumps(event))

    again = drain(runner)

    assert all(o.duplicate for o in again)
    assert runner.telemetry.objects == 1
    history = runner.history.read(
        since=START - timedelta(hours=1), until=START + timedelta(hours=1)
    )
    per_client = dict(zip(*pc.value_counts(history.column(CLIENT_IP)).flatten(), strict=True))
    assert {str(k): v.as_py() for k, v in per_client.items()} == dict(counts)
    assert len(runner.ledger.list(client=ATTACKER).items) == 1
    runner.close()


def test_restart_warms_windows_from_history_and_keeps_one_decision(demo_aws, s3, wafv2, tmp_path):
    clock = FakeClock(START + timedelta(minutes=15))
    first = make_runner(demo_aws, tmp_path, clock)
    data, counts = flood_object(START, ATTACKER)
    s3.put_object(Bucket=demo_aws.bucket, Key=KEY, Body=data)
    drain(first)
    first.close()

    second = make_runner(demo_aws, tmp_path, clock)  # a restart: same data dir and ledger

    assert second.analyzer.store.stats.rows == sum(counts.values())  # windows refilled
    drain(second)
    assert len(second.ledger.list(client=ATTACKER).items) == 1
    assert engine_block_set(wafv2) == [f"{ATTACKER}/32"]
    second.close()


def test_dry_run_proposes_but_never_writes_to_waf(demo_aws, s3, wafv2, tmp_path):
    clock = FakeClock(START + timedelta(minutes=15))
    runner = make_runner(demo_aws, tmp_path, clock, mode="dry_run")
    data, _ = flood_object(START, ATTACKER)
    s3.put_object(Bucket=demo_aws.bucket, Key=KEY, Body=data)

    drain(runner)

    assert wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] == []
    assert [d.status for d in runner.ledger.list(client=ATTACKER).items] == [Status.APPROVED]
    runner.close()


def test_expired_decision_leaves_the_ip_set_on_the_next_cycle(demo_aws, s3, wafv2, tmp_path):
    clock = FakeClock(START + timedelta(minutes=15))
    runner = make_runner(demo_aws, tmp_path, clock)
    data, _ = flood_object(START, ATTACKER)
    s3.put_object(Bucket=demo_aws.bucket, Key=KEY, Body=data)
    drain(runner)
    decision = runner.ledger.list(client=ATTACKER).items[0]

    clock.advance((decision.expires_at - clock.now()).total_seconds() + 1)
    runner.step()

    assert engine_block_set(wafv2) == []
    assert runner.ledger.get(decision.id).status is Status.EXPIRED
    runner.close()


def test_corrupt_objects_and_garbage_messages_are_reported_and_the_rest_goes_on(
    demo_aws, s3, sqs, wafv2, tmp_path
):
    clock = FakeClock(START + timedelta(minutes=15))
    runner = make_runner(demo_aws, tmp_path, clock)
    data, counts = flood_object(START, ATTACKER)
    s3.put_object(Bucket=demo_aws.bucket, Key="logs/truncated.log.gz", Body=data[: len(data) // 2])
    s3.put_object(Bucket=demo_aws.bucket, Key="logs/garbage.bin", Body=bytes(range(256)) * 40)
    sqs.send_message(QueueUrl=demo_aws.queue_url, MessageBody="this is not an S3 event")
    sqs.send_message(QueueUrl=demo_aws.queue_url, MessageBody=json.dumps({"foo": 1}))
    gone = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": demo_aws.bucket},
                    "object": {"key": "logs/deleted.log.gz", "size": 10},
                },
            }
        ]
    }
    sqs.send_message(QueueUrl=demo_aws.queue_url, MessageBody=json.dumps(gone))
    s3.put_object(Bucket=demo_aws.bucket, Key=KEY, Body=data)

    outcomes = drain(runner, rounds=8)

    by_uri = {o.uri.rsplit("/", 1)[-1]: o for o in outcomes}
    assert by_uri["flood.log.gz"].rows == sum(counts.values())
    assert by_uri["truncated.log.gz"].malformed  # counted by reason, never fatal
    assert by_uri["garbage.bin"].rows == 0 and by_uri["garbage.bin"].malformed
    assert by_uri["deleted.log.gz"].malformed == {"object_gone": 1}
    # messages nobody can understand stay in the queue for its redrive policy
    assert runner.source.stats()["unparseable"] >= 2
    assert engine_block_set(wafv2) == [f"{ATTACKER}/32"]
    ingest = read(runner.ledger, EngineStatus).record.ingest
    assert ingest.malformed is not None and ingest.malformed >= 3
    runner.close()


def test_a_repeat_offender_escalates_from_the_ledger_history(demo_aws, s3, tmp_path):
    clock = FakeClock(START + timedelta(minutes=15))
    runner = make_runner(demo_aws, tmp_path, clock)
    first_data, _ = flood_object(START, ATTACKER)
    s3.put_object(Bucket=demo_aws.bucket, Key="logs/first.log.gz", Body=first_data)
    drain(runner)
    (first,) = runner.ledger.list(client=ATTACKER).items
    clock.advance((first.expires_at - clock.now()).total_seconds() + 60)
    runner.step()  # the first decision expires: one past offence on record

    again = first.expires_at + timedelta(minutes=1)
    data, _ = flood_object(again, ATTACKER)
    s3.put_object(Bucket=demo_aws.bucket, Key="logs/again.log.gz", Body=data)
    clock.advance((again - clock.now()).total_seconds() + 15 * 60)
    drain(runner)

    decisions = runner.ledger.list(client=ATTACKER).items
    second = next(d for d in decisions if d.id != first.id)
    assert runner.ledger.get(first.id).status is Status.EXPIRED
    assert second.ttl_s > first.ttl_s  # escalated: a longer block for a repeat offender
    assert any("repeat offender" in r for r in second.reasons)
    runner.close()


def test_the_isolation_forest_is_trained_online_and_reported(demo_aws, s3, tmp_path):
    clock = FakeClock(START + timedelta(minutes=15))
    settings = Settings(
        data_dir=tmp_path,
        aws={"endpoint_url": demo_aws.endpoint_url, "region": demo_aws.region},
        source={"kind": "sqs", "queue_url": demo_aws.queue_url, "wait_time_s": 0},
        enforcement={"mode": "dry_run", "web_acl_name": demo_aws.web_acl_name},
        model={"enabled": True, "min_rows": 10, "refit_every_s": 60},
        # the model learns only from clients it would score: here, five requests suffice
        detection={"anomaly": {"min_requests": 3, "train_min_requests": 3}},
    )
    runner = EngineRunner.from_settings(settings, clock=clock, shield=RecordingShieldFake())
    benign = tuple(f"198.51.100.{i}" for i in range(20, 40))
    data, _ = flood_object(START, ATTACKER, benign=benign)
    s3.put_object(Bucket=demo_aws.bucket, Key=KEY, Body=data)

    drain(runner)

    artifact = tmp_path / "models" / "iforest.joblib"
    assert artifact.is_file() and artifact.with_suffix(".json").is_file()
    model = read(runner.ledger, EngineStatus).record.model
    assert model.trained_at and model.version and model.version.endswith(model.trained_at)
    assert model.training_window and model.training_window["clients"] >= 10
    # the next evaluation scores with the fitted model
    later, _ = flood_object(START + timedelta(minutes=20), "203.0.113.50", benign=benign)
    s3.put_object(Bucket=demo_aws.bucket, Key="logs/later.log.gz", Body=later)
    clock.advance(20 * 60)
    drain(runner)
    anomaly = next(d for d in runner.analyzer.detectors if d.name == "anomaly")
    assert anomaly.model is not None
    assert anomaly.model.card["fitted_at"] == model.trained_at
    runner.publish_status(force=True)
    model = read(runner.ledger, EngineStatus).record.model
    assert model.source == "online trainer" and model.refit_every_s == 60
    runner.close()


def test_an_artifact_of_another_feature_spec_is_set_aside_and_the_engine_starts(
    demo_aws, tmp_path
):
    """After an upgrade that changed the features, the online trainer's own artifact of the
    old spec must not stop the engine: it is kept aside and the starter scores meanwhile."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "iforest.joblib").write_bytes(b"an artifact of spec v2")
    (models / "iforest.json").write_text(json.dumps({"feature_spec_hash": "85d1349bbe4d3a87"}))
    settings = Settings(
        data_dir=tmp_path,
        aws={"endpoint_url": demo_aws.endpoint_url, "region": demo_aws.region},
        source={"kind": "sqs", "queue_url": demo_aws.queue_url, "wait_time_s": 0},
        enforcement={"mode": "dry_run", "web_acl_name": demo_aws.web_acl_name},
        model={"enabled": True},
    )
    runner = EngineRunner.from_settings(
        settings, clock=FakeClock(START), shield=RecordingShieldFake()
    )
    assert sorted(p.name for p in models.iterdir()) == [
        "iforest.joblib.spec-85d1349bbe4d3a87", "iforest.json.spec-85d1349bbe4d3a87"
    ]
    assert (models / "iforest.joblib.spec-85d1349bbe4d3a87").read_bytes() == (
        b"an artifact of spec v2"
    )
    runner.publish_status(force=True)
    assert read(runner.ledger, EngineStatus).record.model.source == "starter model"
    runner.close()


def test_an_idle_source_closes_the_newest_pane_and_its_flood_is_blocked(
    demo_aws, s3, wafv2, tmp_path
):
    clock = FakeClock(START + timedelta(minutes=6))
    runner = make_runner(demo_aws, tmp_path, clock)
    data = last_minute_flood_object(START + timedelta(minutes=4), ATTACKER)
    s3.put_object(Bucket=demo_aws.bucket, Key=KEY, Body=data)

    assert sum(o.rows for o in drain(runner)) > 3600
    # the flood's pane is the newest: no later row has moved the watermark past it
    assert runner.ledger.list(client=ATTACKER).items == []
    assert runner.analyzer.has_open_panes()

    clock.advance(runner.settings.loop.idle_close_s)
    runner.step()  # the source delivered nothing new for the idle time: panes close

    assert engine_block_set(wafv2) == [f"{ATTACKER}/32"]
    assert not runner.analyzer.has_open_panes()
    runner.close()


def test_the_status_names_the_starter_model_until_the_stream_has_its_own(demo_aws, tmp_path):
    settings = Settings(
        data_dir=tmp_path,
        aws={"endpoint_url": demo_aws.endpoint_url, "region": demo_aws.region},
        source={"kind": "sqs", "queue_url": demo_aws.queue_url, "wait_time_s": 0},
        enforcement={"mode": "dry_run", "web_acl_name": demo_aws.web_acl_name},
    )
    runner = EngineRunner.from_settings(
        settings, clock=FakeClock(START), shield=RecordingShieldFake()
    )
    runner.publish_status(force=True)
    model = read(runner.ledger, EngineStatus).record.model
    assert model.source == "starter model"  # shipped in the package, until a bootstrap fit
    assert model.training_window and model.training_window["clients"] > 1000
    runner.close()
