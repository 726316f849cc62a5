"""Detection benchmark: wafsmith against the peer baselines on the same simulated traffic.

    python -m benchmarks.bench_detection [--scale small|full] [--seed 101 ...] [--json FILE]

One process, one stream per seed: the simulator renders ALB, CloudFront and WAF log objects;
the real parsers (``engine.parsers.parse_object``) read them back; wafsmith
(``engine.pipeline.analyze_tables``) reads the ALB objects five minutes at a time, as they
would land; each baseline reads the log its real counterpart reads (WAF logs for rate rules
and the AWS flood parsers, ALB logs for the rest). Every system is scored the same way
(``benchmarks/baselines/scoring.py``; ``detection.md`` §6): clients as units, CIDR and
campaign decisions counting for every client they cover.

Held-out seeds (default) are for reporting; train seeds are for choosing thresholds.
Targets for wafsmith (issue 3): recall ≥ 0.95, benign FPR ≤ 0.1 %, no crawler or NAT blocked,
floods detected within 120 s of event time, best F1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa

from benchmarks import SHARED_CORPORA
from benchmarks.baselines import BASELINES, run_baselines
from benchmarks.baselines.scoring import ClientIndex, from_baseline, from_decisions, score
from engine.demo.simulator import HELDOUT_SEEDS, TRAIN_SEEDS, preset, render, simulate, view
from engine.demo.simulator.norule import KINDS as NORULE_KINDS
from engine.demo.simulator.render import FORMATS, LogObject
from engine.demo.simulator.simulate import L_CLIENT
from engine.schema import request as rq

WAFSMITH = "wafsmith"
MODEL = "anomaly"
SHORT = {
    "waf-rbr-100": "rbr-100",
    "waf-rbr-2000": "rbr-2000",
    "aws-sa-flood-lambda-documented": "saFlood-doc",
    "aws-sa-flood-lambda-as-shipped": "saFlood-ship",
    "aws-sa-flood-athena": "saFlood-athena",
    "aws-sa-scanner-lambda": "saScan-lambda",
    "aws-sa-scanner-athena": "saScan-athena",
    "crowdsec-http": "crowdsec",
    "fail2ban-http": "fail2ban",
}
TARGETS = {"recall": 0.95, "benign_fpr": 0.001, "flood_ttd_s": 120.0}


def parse_objects(objects: list[LogObject], sim) -> tuple[dict[str, list[pa.Table]], str]:
    """Per format, the parsed tables of its objects in key order (or the simulator's views)."""
    try:
        from engine.parsers import parse_object
    except ImportError:
        parse_object = None
    if parse_object is None:
        return {f: [view(sim.requests, f)] for f in FORMATS}, "simulator views"
    out: dict[str, list[pa.Table]] = defaultdict(list)
    for obj in objects:
        res = parse_object(obj.data, key=obj.key)
        if res.malformed or res.rows != obj.rows:
            raise RuntimeError(f"{obj.key}: parsed {res.rows}/{obj.rows} rows, {res.malformed}")
        out[obj.fmt].append(res.table)
    return dict(out), "engine.parsers.parse_object"


def log_batches(fmt: str, tables: list[pa.Table], objects: list[LogObject]) -> list[pa.Table]:
    """Parsed tables of one format grouped as they would land: ALB and WAF per 5-minute
    interval (every ALB node's file together), CloudFront per event hour."""
    keys = [o.key for o in objects if o.fmt == fmt]
    groups: dict[str, list[pa.Table]] = defaultdict(list)
    for key, table in zip(keys, tables, strict=True):
        if fmt == "alb":
            slot = key.rsplit("_", 3)[-3]  # <end>Z
        elif fmt == "waf":
            slot = key.rsplit("_", 2)[-2]  # <start>Z
        else:
            slot = key.rsplit("/", 1)[-1].split(".")[1]  # YYYY-MM-DD-HH
        groups[slot].append(table)
    return [
        pa.concat_tables(groups[slot]).sort_by([(rq.EVENT_TIME, "ascending")])
        for slot in sorted(groups)
    ]


def run_wafsmith(
    batches: list[pa.Table], detectors: list[str] | None = None
) -> tuple[Any | None, str]:
    """``analyze_tables`` (or an ``Analyzer`` restricted to ``detectors``) over the batches;
    (None, why) when wafsmith is not available."""
    try:
        from engine.pipeline import Analyzer, analyze_tables
    except ImportError as exc:
        return None, f"missing ({exc})"
    if detectors is None:
        return analyze_tables(batches), "engine.pipeline.analyze_tables"
    analyzer = Analyzer(detectors=detectors)
    for batch in batches:
        analyzer.feed(batch)
    analyzer.finish()
    return analyzer.result(), f"engine.pipeline.Analyzer(detectors={detectors})"


def ablations() -> dict[str, list[str]]:
    """wafsmith variants of ``detection.md`` §6.4 that the engine's registry allows."""
    try:
        from engine.detectors import DETECTORS
    except ImportError:
        return {}
    names = list(DETECTORS.names())
    per_client = [n for n in names if not n.startswith("distributed")]
    out = {f"{WAFSMITH}-per-client-only": per_client}
    if MODEL in names:  # issue 15: what the anomaly model adds to the rules, and costs
        out[f"{WAFSMITH}-rules-only"] = [n for n in names if n != MODEL]
        out[f"{WAFSMITH}-model-only"] = [MODEL]
    return out


def early(cfg, attack_start_min: float | None):
    """``cfg`` with every campaign starting by ``attack_start_min`` (issue 15: attacks in the
    first minutes, before the stream has a baseline of its own — what the starter is for)."""
    if attack_start_min is None:
        return cfg
    camps = [c.model_copy(update={"start_min": min(c.start_min, attack_start_min)})
             for c in cfg.campaigns]  # fmt: skip
    return cfg.model_copy(update={"campaigns": camps})


def run_seed(
    scale: str,
    seed: int,
    corpora: Path | None,
    log=print,
    wafsmith_log: str = "alb",
    with_ablations: bool = False,
    attack_start_min: float | None = None,
) -> dict[str, Any]:
    cfg = early(preset(scale, corpora_dir=corpora), attack_start_min)
    t0 = time.perf_counter()
    sim = simulate(cfg, seed)
    objects = render(sim)
    t1 = time.perf_counter()
    parsed, parse_how = parse_objects(objects, sim)
    tables = {
        f: pa.concat_tables(ts).sort_by([(rq.EVENT_TIME, "ascending")]) for f, ts in parsed.items()
    }
    t2 = time.perf_counter()
    log(
        f"seed {seed}: {sim.requests.num_rows} requests, {sim.labels.num_rows} clients, "
        f"{len(objects)} objects; simulate+render {t1 - t0:.1f}s, parse ({parse_how}) "
        f"{t2 - t1:.1f}s"
    )
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    for b in BASELINES:
        s = time.perf_counter()
        res = run_baselines(tables, corpora, only=(b.baseline_id,))[b.baseline_id]
        timings[b.baseline_id] = time.perf_counter() - s
        results[b.baseline_id] = score(from_baseline(res), sim.labels, sim.campaigns, sim.requests)
        results[b.baseline_id]["version"] = res.version
    index = ClientIndex(sim.labels[L_CLIENT].to_pylist())
    if parse_how.startswith("engine"):
        batches = log_batches(wafsmith_log, parsed[wafsmith_log], objects)
    else:
        batches = [view(sim.requests, wafsmith_log)]
    variants: dict[str, list[str] | None] = {WAFSMITH: None}
    if with_ablations:
        variants.update(ablations())
    status = "ok"
    for name, detectors in variants.items():
        s = time.perf_counter()
        try:
            analysis, how = run_wafsmith(batches, detectors)
        except Exception as exc:  # reported and shown as failed, not swallowed
            traceback.print_exc(file=sys.stderr)
            analysis, how = None, f"failed: {type(exc).__name__}: {exc}"
        timings[name] = time.perf_counter() - s
        if name == WAFSMITH:
            status = how
        if analysis is not None:
            results[name] = score(
                from_decisions(name, analysis.decisions, index, wafsmith_log),
                sim.labels,
                sim.campaigns,
                sim.requests,
            )
            results[name]["decisions"] = len(analysis.decisions)
            results[name]["version"] = f"{how} on {wafsmith_log} logs"
    return {
        "seed": seed,
        "scale": scale,
        "requests": sim.requests.num_rows,
        "clients": sim.labels.num_rows,
        "parsed_with": parse_how,
        "wafsmith": status,
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "systems": results,
    }


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{100 * v:.2f}%"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def cgnat_hits(m: dict[str, Any]) -> tuple[int, int]:
    """(blocked, flagged) CGNAT pool addresses (``netagg.py``): each fronts hundreds of phones."""
    k = m["per_kind"].get("cgnat_pool", {})
    return k.get("blocked", 0), k.get("flagged", 0)


def _cgnat(m: dict[str, Any]) -> str:
    blocked, flagged = cgnat_hits(m)
    return f"{blocked}/{flagged}"


def print_report(run: dict[str, Any], out=print) -> None:
    systems = run["systems"]
    split = (
        "held-out"
        if run["seed"] in HELDOUT_SEEDS
        else "train"
        if run["seed"] in TRAIN_SEEDS
        else "ad-hoc"
    )
    out(
        f"\n== seed {run['seed']} ({split}, {run['scale']}): {run['requests']} requests, "
        f"{run['clients']} clients; parsed with {run['parsed_with']}; "
        f"wafsmith: {run['wafsmith']}"
    )
    out(
        "   b/f = blocked/flagged clients; floodTTD = slowest flood campaign's first "
        "detection, event time (s); +deliv adds log delivery and processing; "
        "req = request-weighted recall / benign collateral"
    )
    head = (
        f"{'system':32} {'recall':>7} {'prec':>7} {'F1':>7} {'benignFPR':>9} "
        f"{'crawl b/f':>9} {'NAT b/f':>8} {'CGNAT b/f':>9} {'entries':>7} {'floodTTD':>8} "
        f"{'+deliv':>7} "
        f"{'req rec/coll':>13}"
    )
    out(head)
    out("-" * len(head))
    for name, m in sorted(systems.items(), key=lambda kv: -(kv[1]["f1"] or 0)):
        out(
            f"{name:32} {_fmt(m['recall']):>7} {_fmt(m['precision']):>7} {_fmt(m['f1']):>7} "
            f"{_fmt(m['benign_fpr'], pct=True):>9} "
            f"{m['crawlers_blocked']}/{m['crawlers_flagged']:<7} "
            f"{m['nat_blocked']}/{m['nat_flagged']:<6} {_cgnat(m):>9} {m['rule_entries']:>7} "
            f"{_fmt(m['flood_ttd_s']):>8} {_fmt(m.get('flood_ttd_effective_s')):>7} "
            f"{_fmt(m.get('request_recall')):>6}/{_fmt(m.get('request_collateral')):<6}"
        )
    out("\nsystems (what each reproduces or runs):")
    for name in sorted(systems):
        if "version" in systems[name]:
            out(f"  {name}: {systems[name]['version']}")
    names = sorted(systems)
    kinds = sorted(
        {k for m in systems.values() for k in m["per_kind"]},
        key=lambda k: (systems[names[0]]["per_kind"][k]["label"], k),
    )
    out("\nper-kind flagged share (attack kinds: recall; benign kinds: false positives)")
    short = [SHORT.get(n, n)[:14] for n in names]
    out(f"{'kind':34}" + "".join(f"{s:>15}" for s in short))
    for k in kinds:
        label = systems[names[0]]["per_kind"][k]["label"]
        n = systems[names[0]]["per_kind"][k]["clients"]
        out(
            f"{label[:1]} {k + f' ({n})':32}"
            + "".join(f"{_fmt(systems[s]['per_kind'][k]['rate']):>15}" for s in names)
        )
    out("\ntime to detect per campaign, event time from campaign start (s)")
    camps = systems[names[0]]["campaigns"]
    out(f"{'campaign':38}" + "".join(f"{s:>15}" for s in short))
    for i, c in enumerate(camps):
        out(
            f"{c['campaign'][:37]:38}"
            + "".join(f"{_fmt(systems[s]['campaigns'][i]['ttd_s']):>15}" for s in names)
        )


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per system, the mean and worst of the headline metrics over seeds."""
    out: dict[str, dict[str, Any]] = {}
    names = sorted({n for r in runs for n in r["systems"]})
    for name in names:
        ms = [r["systems"][name] for r in runs if name in r["systems"]]
        f1 = [m["f1"] or 0.0 for m in ms]
        recall = [m["recall"] or 0.0 for m in ms]
        fpr = [m["benign_fpr"] or 0.0 for m in ms]
        ttd = [m["flood_ttd_s"] for m in ms]
        out[name] = {
            "seeds": len(ms),
            "f1_mean": round(sum(f1) / len(f1), 4),
            "f1_min": min(f1),
            "recall_mean": round(sum(recall) / len(recall), 4),
            "recall_min": min(recall),
            "benign_fpr_mean": round(sum(fpr) / len(fpr), 6),
            "benign_fpr_max": max(fpr),
            "crawlers_blocked": sum(m["crawlers_blocked"] for m in ms),
            "nat_blocked": sum(m["nat_blocked"] for m in ms),
            "cgnat_blocked": sum(cgnat_hits(m)[0] for m in ms),
            "cgnat_flagged": sum(cgnat_hits(m)[1] for m in ms),
            "flood_ttd_worst_s": None if any(t is None for t in ttd) else max(ttd),
            "norule_recall_mean": _norule_recall(ms),
        }
    return out


def _norule_recall(ms: list[dict[str, Any]]) -> float | None:
    """Recall over the attacks no rule targets (issue 15), pooled over seeds; None without."""
    hit = total = 0
    for m in ms:
        for kind in NORULE_KINDS:
            k = m["per_kind"].get(kind)
            if k is not None:
                hit, total = hit + k["flagged"], total + k["clients"]
    return round(hit / total, 4) if total else None


def print_summary(summary: dict[str, dict[str, Any]], out=print) -> None:
    seeds = max(v["seeds"] for v in summary.values())
    out(f"\n== summary over {seeds} seed(s)")
    head = (
        f"{'system':32} {'F1 mean':>8} {'F1 min':>7} {'recall':>7} {'FPR mean':>9} "
        f"{'FPR max':>8} {'crawl':>5} {'NAT':>4} {'CGNAT':>5} {'floodTTD':>8} {'noRule rec':>10}"
    )
    out(head)
    out("-" * len(head))
    for name, m in sorted(summary.items(), key=lambda kv: -kv[1]["f1_mean"]):
        out(
            f"{name:32} {m['f1_mean']:>8.3f} {m['f1_min']:>7.3f} {m['recall_mean']:>7.3f} "
            f"{100 * m['benign_fpr_mean']:>8.2f}% {100 * m['benign_fpr_max']:>7.2f}% "
            f"{m['crawlers_blocked']:>5} {m['nat_blocked']:>4} {m['cgnat_blocked']:>5} "
            f"{_fmt(m['flood_ttd_worst_s']):>8} "
            f"{_fmt(m.get('norule_recall_mean')):>10}"
        )
    if WAFSMITH in summary:
        best = max(
            (v for k, v in summary.items() if not k.startswith(WAFSMITH)),
            key=lambda v: v["f1_mean"],
            default=None,
        )
        if best and best["f1_mean"]:
            ratio = summary[WAFSMITH]["f1_mean"] / best["f1_mean"]
            out(f"wafsmith mean F1 = {ratio:.1f}x the best baseline's")


def check_targets(run: dict[str, Any]) -> list[str]:
    """Which issue-3 targets wafsmith misses on this run (empty when all are met)."""
    m = run["systems"].get(WAFSMITH)
    if m is None:
        return [f"wafsmith {run['wafsmith']}"]
    misses = []
    if (m["recall"] or 0) < TARGETS["recall"]:
        misses.append(f"recall {m['recall']} < {TARGETS['recall']}")
    if (m["benign_fpr"] or 0) > TARGETS["benign_fpr"]:
        misses.append(f"benign FPR {m['benign_fpr']} > {TARGETS['benign_fpr']}")
    if m["crawlers_blocked"] or m["nat_blocked"]:
        misses.append(f"blocked {m['crawlers_blocked']} crawlers, {m['nat_blocked']} NATs")
    if any(cgnat_hits(m)):
        misses.append("CGNAT pools blocked/flagged: {}/{}".format(*cgnat_hits(m)))
    if m["flood_ttd_s"] is None or m["flood_ttd_s"] > TARGETS["flood_ttd_s"]:
        misses.append(f"flood TTD {m['flood_ttd_s']} s > {TARGETS['flood_ttd_s']}")
    best = max(
        (v["f1"] for k, v in run["systems"].items() if not k.startswith(WAFSMITH)), default=0
    )
    if m["f1"] <= best:
        misses.append(f"F1 {m['f1']} not above the best baseline's {best}")
    return misses


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=("tiny", "small", "full", "norule"), default="small")
    ap.add_argument(
        "--seed",
        type=int,
        action="append",
        help=f"simulator seed (repeatable; default held-out {HELDOUT_SEEDS[0]})",
    )
    ap.add_argument(
        "--split",
        choices=("heldout", "train"),
        help=f"run every seed of a split (held-out {HELDOUT_SEEDS}, train {TRAIN_SEEDS})",
    )
    ap.add_argument(
        "--wafsmith-log",
        choices=FORMATS,
        default="alb",
        help="which rendered log wafsmith reads (baselines always read their own)",
    )
    ap.add_argument(
        "--ablations",
        action="store_true",
        help="also run wafsmith with per-client detectors only (no population detectors), "
        "rules only (no anomaly model) and the model only",
    )
    ap.add_argument(
        "--topology",
        action="store_true",
        help="also report per site topology (ALB-facing, WAF-only, behind CloudFront from "
        "ALB / WAF / CloudFront logs) with the second-wave populations (benchmarks/topology.py)",
    )
    ap.add_argument(
        "--attack-start-min",
        type=float,
        help="start every campaign by this minute (e.g. 2: before the anomaly model could "
        "bootstrap from the stream; what the shipped starter model is for)",
    )
    ap.add_argument("--json", type=Path, help="write every metric to this file")
    ap.add_argument(
        "--corpora",
        type=Path,
        default=SHARED_CORPORA,
        help="shared corpora (scanner traces, CSIC queries, bad-UA list; default "
        "../shared/corpora beside the checkout, when present); 'none' to run from the "
        "committed data only",
    )
    args = ap.parse_args(argv)
    corpora = None if str(args.corpora) == "none" or not args.corpora.is_dir() else args.corpora
    split = {"heldout": HELDOUT_SEEDS, "train": TRAIN_SEEDS}.get(args.split or "", ())
    seeds = args.seed or list(split) or [HELDOUT_SEEDS[0]]
    runs = []
    for seed in seeds:
        run = run_seed(
            args.scale,
            seed,
            corpora,
            wafsmith_log=args.wafsmith_log,
            with_ablations=args.ablations,
            attack_start_min=args.attack_start_min,
        )
        run["target_misses"] = check_targets(run)
        print_report(run)
        print(
            "\nwafsmith targets: "
            + ("all met" if not run["target_misses"] else "; ".join(run["target_misses"]))
        )
        if args.topology:
            from benchmarks.topology import print_topologies, run_topologies

            run["topology"] = run_topologies(
                args.scale, seed, corpora, with_ablations=args.ablations,
                attack_start_min=args.attack_start_min,
            )
            print_topologies(run["topology"])
        runs.append(run)
    summary = summarize(runs)
    print_summary(summary)
    if args.topology and args.ablations:  # issue 15: the model's share per topology
        from benchmarks.topology import pool_ablation, print_ablation

        summary_ablation = pool_ablation(runs)
        print_ablation(summary_ablation)
    else:
        summary_ablation = None
    if args.json:
        doc = {
            "runs": runs,
            "summary": summary,
            "ablation_by_topology": summary_ablation,
            "targets": TARGETS,
            "corpora": str(corpora) if corpora else None,
        }
        args.json.write_text(json.dumps(doc, indent=1, default=str) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
