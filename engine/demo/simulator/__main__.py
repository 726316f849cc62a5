"""Write one simulated stream as log objects, plus its labels.

    python -m engine.demo.simulator --scale small --seed 101 --out /tmp/sim
    python -m engine.demo.simulator --seed 1 --s3 s3://bucket/prefix/ [--endpoint-url URL]

Objects go to their S3 keys under the destination; the labels (one row per client) and the
campaigns are written as Parquet under ``<dest>/labels/`` (outside the log prefixes, so log
readers never see them).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.demo.simulator import FORMATS, preset, render, simulate, write_local, write_s3


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=("tiny", "small", "full"), default="small")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset")
    ap.add_argument(
        "--corpora",
        type=Path,
        default=Path("none"),
        help="corpora folder (e.g. ../shared/corpora) for scanner traces and CSIC queries "
        "('none', the default: the packaged profiles only)",
    )
    dest = ap.add_mutually_exclusive_group(required=True)
    dest.add_argument("--out", type=Path, help="local directory")
    dest.add_argument("--s3", help="s3://bucket/prefix/")
    ap.add_argument("--endpoint-url", help="S3 endpoint (e.g. a moto server)")
    args = ap.parse_args(argv)
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    unknown = set(formats) - set(FORMATS)
    if unknown:
        ap.error(f"unknown format(s) {sorted(unknown)}; choose from {FORMATS}")
    corpora = None if args.corpora == Path("none") else args.corpora
    if corpora is not None and not corpora.is_dir():
        ap.error(f"--corpora {corpora}: not a directory")
    sim = simulate(preset(args.scale, corpora_dir=corpora), args.seed)
    objects = render(sim, formats)
    extra = {
        "labels/labels.parquet": _parquet(sim.labels),
        "labels/campaigns.parquet": _parquet(sim.campaigns),
    }
    if args.out:
        write_local(objects, args.out)
        for key, data in extra.items():
            (args.out / key).parent.mkdir(parents=True, exist_ok=True)
            (args.out / key).write_bytes(data)
        where = str(args.out)
    else:
        import boto3

        if not args.s3.startswith("s3://"):
            ap.error("--s3 must look like s3://bucket/prefix/")
        bucket, _, prefix = args.s3[5:].partition("/")
        client = boto3.client("s3", endpoint_url=args.endpoint_url)
        write_s3(objects, client, bucket, prefix)
        for key, data in extra.items():
            client.put_object(Bucket=bucket, Key=prefix + key, Body=data)
        where = args.s3
    print(
        f"{len(objects)} objects ({sim.requests.num_rows} requests, {sim.labels.num_rows} "
        f"clients, {sim.campaigns.num_rows} campaigns) written to {where}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
