"""Scale-out: lines per second of the single-process engine and of the Spark job on one input.

``python -m benchmarks.bench_scale [--scale small|full] [--quick] [--no-cluster] [--json FILE]
[--streaming | --streaming-only]``

One simulated stream (``engine.demo.simulator``, ALB + CloudFront + WAF objects) is written
to a temporary folder and replayed by

1. ``single`` — ``wafsmith analyze``'s own path (``engine.replay.replay`` → ``Analyzer``), in
   this process;
2. ``spark local[1]`` and ``spark local[2]`` — ``engine.spark.batch.analyze_on_spark``, each
   in a child process (one SparkContext per process), the job run twice on one session and
   the faster run kept (the first pays for Python worker start-up);
3. ``spark standalone`` — the same against a master and two one-core workers started from
   the installed PySpark on 127.0.0.1 (``--no-cluster`` skips it);
4. ``spark streaming local[N]`` (``--streaming``; ``--streaming-only`` skips 2 and 3) —
   ``wafsmith run --engine spark``'s path in a child process: the objects uploaded to a moto
   server's S3 bucket whose notifications go to SQS, one ``availableNow`` query (SQS source
   → executors → ``transformWithStateInPandas`` state store → ``foreachBatch`` driver →
   SQLite ledger), timed from query start to its end (session start and upload apart).

Reported per engine: lines/s over the job's wall time (session start-up shown apart),
the per-stage breakdown (parse and aggregate: executor CPU-seconds summed over tasks;
windows + detectors + policy: driver seconds), ratios against ``single`` measured in the
same run, and whether the decisions equal the single process's. Spark is expected to be
slower than one process on a 2-core machine: it pays for serialising rows between the JVM
and Python workers and a shuffle, and wins only by adding machines.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.cli.analyze import to_document
from engine.demo.simulator import preset, render, simulate, write_local
from engine.pipeline import AnalysisConfig, Analyzer
from engine.replay import replay

TIMINGS = ("seconds", "engine", "executor_seconds")


def decisions_key(doc: dict) -> list:
    return [json.dumps(d, sort_keys=True) for d in doc["decisions"]]


def run_single(inputs: list[str]) -> dict:
    cfg = AnalysisConfig()
    analyzer = Analyzer(cfg)
    t0 = time.perf_counter()
    input_stats = replay(inputs, "auto", None, analyzer)
    t2 = time.perf_counter()
    doc = to_document(analyzer.result(), input_stats)
    parse_s = input_stats["parse_s"]
    return {
        "engine": "single",
        "rows": doc["stats"]["rows"],
        "wall_s": t2 - t0,
        "stages": {"parse": parse_s, "features+windows+detect+policy": t2 - t0 - parse_s},
        "decisions": decisions_key(doc),
    }


def run_spark(inputs: list[str], master: str, repeat: int) -> dict:
    """In this process: one session on ``master``, the job ``repeat`` times, best kept."""
    from engine.spark.batch import SparkJobOptions, analyze_on_spark
    from engine.spark.session import spark_session

    t0 = time.perf_counter()
    spark = spark_session(master, app_name="wafsmith-bench-scale", shuffle_partitions=4)
    startup = time.perf_counter() - t0
    best = None
    for _ in range(repeat):
        t1 = time.perf_counter()
        job = analyze_on_spark(spark, inputs, AnalysisConfig(), None, SparkJobOptions(shards=4))
        wall = time.perf_counter() - t1
        if best is None or wall < best[0]:
            best = (wall, job)
    wall, job = best
    spark.stop()
    doc = to_document(job.result, job.input_stats)
    execs = job.result.stats.get("executor_seconds", {})
    return {
        "engine": f"spark {master}",
        "rows": doc["stats"]["rows"],
        "wall_s": wall,
        "session_start_s": startup,
        "stages": {
            "executors: parse (CPU-s, all tasks)": execs.get("parse", 0.0),
            "executors: aggregate (CPU-s, all tasks)": execs.get("features", 0.0),
            "spark job wall (incl. shuffle, collect)": job.seconds["spark_job"],
            "driver: windows+detect+policy": job.seconds["driver_analysis"],
        },
        "decisions": decisions_key(doc),
    }


def run_stream(inputs: list[str], master: str) -> dict:
    """In this process: moto S3 + SQS, the objects uploaded, one ``availableNow`` query."""
    import boto3
    from moto.server import ThreadedMotoServer

    from engine.core.clock import SYSTEM_CLOCK
    from engine.decisions.ledger import Ledger
    from engine.sources import iter_objects
    from engine.spark.batch import SparkJobOptions
    from engine.spark.session import spark_session
    from engine.spark.streaming import BatchSink, start_stream

    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint)
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    url = sqs.create_queue(QueueName="bench")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    s3.create_bucket(Bucket="bench-logs")
    s3.put_bucket_notification_configuration(
        Bucket="bench-logs",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    for uri in inputs:
        for obj in iter_objects(uri):
            with obj.open() as f:
                s3.put_object(Bucket="bench-logs", Key=obj.key, Body=f.read())
    t0 = time.perf_counter()
    spark = spark_session(master, app_name="wafsmith-bench-stream", shuffle_partitions=4)
    startup = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        ledger = Ledger.open(f"sqlite:///{Path(tmp) / 'ledger.db'}", clock=SYSTEM_CLOCK)
        sink = BatchSink(ledger)
        t1 = time.perf_counter()
        query = start_stream(spark, sink, opts=SparkJobOptions(endpoint_url=endpoint, shards=4),
                             queue_url=url, checkpoint=Path(tmp) / "checkpoint",
                             endpoint_url=endpoint, available_now=True)
        query.awaitTermination()
        wall = time.perf_counter() - t1
        proposed = ledger.list(limit=1).total
        ledger.close()
    spark.stop()
    server.stop()
    return {
        "engine": f"spark streaming {master}",
        "rows": None,  # the same input as ``single``: its row count
        "wall_s": wall,
        "session_start_s": startup,
        "stages": {"query (SQS → state store → driver → ledger)": wall,
                   "proposals in ledger": proposed},
        "decisions": None,
    }


def spark_child(inputs: list[str], master: str, repeat: int, stream: bool = False) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    cmd = [sys.executable, "-m", "benchmarks.bench_scale", "--child-master", master,
           "--repeat", str(repeat), "--json", str(out), "--inputs", *inputs]
    if stream:
        cmd.append("--child-stream")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{master}: {proc.stderr[-2000:]}")
    doc = json.loads(out.read_text())
    out.unlink()
    return doc


def print_table(rows: list[dict]) -> None:
    base = rows[0]
    base_rate = base["rows"] / base["wall_s"]
    print(f"{'engine':<34} {'lines':>8} {'wall s':>8} {'lines/s':>9} {'ratio':>6} "
          f"{'start s':>8}  same decisions")
    for r in rows:
        rate = r["rows"] / r["wall_s"]
        same = "n/a" if r["decisions"] is None else r["decisions"] == base["decisions"]
        print(f"{r['engine']:<34} {r['rows']:>8,} {r['wall_s']:>8.2f} {rate:>9,.0f} "
              f"{rate / base_rate:>6.2f} {r.get('session_start_s', 0.0):>8.1f}  {same}")
    print("\nper-stage seconds:")
    for r in rows:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in r["stages"].items())
        print(f"  {r['engine']}: {stages}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=("tiny", "small", "full"), default="small")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="tiny scale, one run per engine")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-cluster", action="store_true", help="skip the standalone cluster")
    ap.add_argument("--json", type=Path, help="write the measurements here")
    ap.add_argument("--streaming", action="store_true",
                    help="also the streaming path (S3 → SQS → state store) at local[1], local[2]")
    ap.add_argument("--streaming-only", action="store_true",
                    help="only the single process and the streaming path")
    ap.add_argument("--child-stream", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-master", help=argparse.SUPPRESS)
    ap.add_argument("--inputs", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_master:
        if args.child_stream:
            doc = run_stream(args.inputs, args.child_master)
        else:
            doc = run_spark(args.inputs, args.child_master, args.repeat)
        args.json.write_text(json.dumps(doc))
        return 0
    scale = "tiny" if args.quick else args.scale
    repeat = 1 if args.quick else args.repeat
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(tmp)
        write_local(render(simulate(preset(scale), args.seed)), root / "logs")
        inputs = [str(root / "logs")]
        print(f"input: simulator scale={scale} seed={args.seed}; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
        rows = [run_single(inputs)]
        for master in () if args.streaming_only else ("local[1]", "local[2]"):
            rows.append(spark_child(inputs, master, repeat))
        if args.streaming or args.streaming_only:
            for master in ("local[1]", "local[2]"):
                row = spark_child(inputs, master, 1, stream=True)
                row["rows"] = rows[0]["rows"]
                rows.append(row)
        if not args.no_cluster and not args.streaming_only:
            from engine.spark.standalone import LocalCluster

            with LocalCluster(root / "cluster", workers=2) as cluster:
                row = spark_child(inputs, cluster.master_url, repeat)
                row["engine"] = "spark standalone (2 workers x 1 core)"
                rows.append(row)
        print_table(rows)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    same = all(r["decisions"] in (None, rows[0]["decisions"]) for r in rows)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
