"""Train the starter anomaly model shipped in ``models/starter/`` (issue 15).

    python -m benchmarks.train_starter_model [--seed 1 ...] [--out models/starter/iforest-starter]
                                             [--evaluate]

The starter scores a stream until its own baseline exists (``[detection.anomaly]
starter_model``). It learns from the *benign* clients of the simulator's training seeds
(ground-truth labels: no attacker can enter it), seen through each log a site may read — ALB,
web ACL and CloudFront — so a WAF-only or CloudFront site is not "novel" for lacking status
codes or timings. Each log is replayed through the real parsers and the analysis pipeline
with the rule detectors on: the client-windows handed to the training baseline are the
ones the in-process trainer would learn from (enough requests, no gate, no rule verdict).

Deterministic for a seed: the simulation, the replay and the forest (``random_state``) are;
the arrays' content hash in the card is the same on every run (the card's ``fitted_at`` is
not). ``--evaluate`` replays the held-out seeds with the starter alone (no bootstrap) and
writes its recall on the attacks no rule targets and its benign FPR into the card.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.bench_detection import log_batches, parse_objects
from engine.demo.simulator import HELDOUT_SEEDS, TRAIN_SEEDS, preset, render, simulate
from engine.demo.simulator.norule import KINDS as NORULE_KINDS
from engine.demo.simulator.simulate import L_CLIENT, L_KIND, L_LABEL
from engine.detectors import DETECTORS
from engine.detectors.anomaly import model_from_artifact
from engine.detectors.portable import save_portable
from engine.pipeline import AnalysisConfig, Analyzer
from engine.schema import request as rq
from models.iforest import ClientIsolationForest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "models" / "starter" / "iforest-starter"
FORMATS = ("alb", "waf", "cloudfront")
SCALE = "norule"
# The benign second-wave populations (SEO crawlers, flash crowd, IPv6 households and phones)
# beside the norule preset's browsers, NAT gateways, crawlers, pollers and look-alikes.
SECOND_WAVE = dict(seo_crawlers=16, impersonators=0, flash_crowd=300, ipv6_households=40,
                   ipv6_mobiles=20, ipv6_rotators=0)  # fmt: skip


def rules() -> list[str]:
    return [n for n in DETECTORS.names() if n != "anomaly"]


def benign_batches(seed: int) -> tuple[dict[str, list[pa.Table]], int]:
    """Per log format, the parsed batches of one training seed, benign clients only."""
    sim = simulate(preset(SCALE, second_wave=SECOND_WAVE), seed)
    objects = render(sim)
    parsed, _how = parse_objects(objects, sim)
    labels = sim.labels
    benign = pc.filter(labels[L_CLIENT], pc.equal(labels[L_LABEL], "benign"))
    out = {}
    for fmt in FORMATS:
        batches = log_batches(fmt, parsed[fmt], objects)
        out[fmt] = [b.filter(pc.is_in(b[rq.CLIENT_IP], value_set=benign)) for b in batches]
    return out, len(benign)


def collect(batches: list[pa.Table]) -> tuple[np.ndarray, datetime | None, datetime | None]:
    """The client-windows the training baseline would receive (hostile ones dropped)."""
    rows: list[np.ndarray] = []
    times: list[datetime] = []

    def sink(X: np.ndarray, hostile: np.ndarray, at: datetime) -> None:
        rows.append(np.asarray(X, dtype=np.float64)[~np.asarray(hostile, dtype=bool)])
        times.append(at)

    analyzer = Analyzer(detectors=rules(), baseline_sink=sink)
    for batch in batches:
        analyzer.feed(batch)
    analyzer.finish()
    X = np.concatenate(rows) if rows else np.zeros((0, 0))
    return X, (min(times) if times else None), (max(times) if times else None)


def train(seeds: tuple[int, ...], random_state: int = 0, log=print):
    """(fitted model, card extras) on the benign client-windows of ``seeds``."""
    parts, per_format, clients = [], dict.fromkeys(FORMATS, 0), 0
    start = end = None
    for seed in seeds:
        t0 = time.perf_counter()
        by_fmt, n = benign_batches(seed)
        clients += n
        for fmt, batches in by_fmt.items():
            X, s, e = collect(batches)
            parts.append(X)
            per_format[fmt] += len(X)
            start = s if start is None or (s and s < start) else start
            end = e if end is None or (e and e > end) else end
        log(f"seed {seed}: {n} benign clients; {time.perf_counter() - t0:.1f}s")
    X = np.concatenate(parts)
    model = ClientIsolationForest(random_state=random_state).fit(X)
    extras = {
        "trained_on": "starter: benign clients of the simulator's training seeds",
        "training_data": {
            "simulator_scale": SCALE,
            "second_wave": SECOND_WAVE,
            "seeds": list(seeds),
            "benign_clients": clients,
            "client_windows_by_log": per_format,
            "logs": list(FORMATS),
            "labels": "ground truth: only clients the simulator labels benign",
        },
        "random_state": random_state,
        "reproduce": "python -m benchmarks.train_starter_model --evaluate",
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
    }
    return model, extras, start, end


def evaluate(starter: Path, seeds: tuple[int, ...], log=print) -> dict:
    """The starter alone (no bootstrap, no rules) on held-out seeds, ALB logs: recall on the
    no-rule attacks, benign FPR, crawlers and NAT gateways flagged."""
    cfg = AnalysisConfig.model_validate(
        {"anomaly": {"starter_model": str(starter), "bootstrap_min": 1e9}}
    )
    hit = total = benign_hit = benign = crawl_nat = 0
    for seed in seeds:
        sim = simulate(preset(SCALE), seed)
        objects = render(sim)
        parsed, _ = parse_objects(objects, sim)
        analyzer = Analyzer(cfg, detectors=["anomaly"])
        for batch in log_batches("alb", parsed["alb"], objects):
            analyzer.feed(batch)
        analyzer.finish()
        flagged = {v.client for v in analyzer.result().verdicts}
        columns = (sim.labels[c].to_pylist() for c in (L_CLIENT, L_LABEL, L_KIND))
        for client, label, kind in zip(*columns, strict=True):
            if kind in NORULE_KINDS:
                hit, total = hit + (client in flagged), total + 1
            if label == "benign":
                benign_hit, benign = benign_hit + (client in flagged), benign + 1
                crawl_nat += client in flagged and kind in ("crawler", "nat_gateway")
        log(f"held-out seed {seed}: {len(flagged)} clients flagged by the starter alone")
    return {
        "seeds": list(seeds),
        "log": "alb",
        "norule_recall": round(hit / total, 4) if total else None,
        "benign_fpr": round(benign_hit / benign, 6) if benign else None,
        "benign_flagged": benign_hit,
        "crawlers_or_nat_flagged": crawl_nat,
        "note": "starter alone from the first minute, no bootstrap, no rules",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, action="append",
                    help=f"training seed (repeatable; default {TRAIN_SEEDS})")  # fmt: skip
    ap.add_argument("--random-state", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument(
        "--evaluate",
        action="store_true",
        help=f"score held-out seeds {HELDOUT_SEEDS}, record it in the card",
    )
    args = ap.parse_args(argv)
    seeds = tuple(args.seed or TRAIN_SEEDS)
    model, extras, start, end = train(seeds, args.random_state)
    card = model.card(fitted_at=datetime.now(UTC), training_start=start, training_end=end)
    card.update(extras)
    loaded = model_from_artifact(model.to_artifact(), card, source="starter training")
    path = save_portable(args.out, loaded.arrays(), card)
    if args.evaluate:
        card = json.loads(path.with_suffix(".json").read_text())
        card["heldout"] = evaluate(path, HELDOUT_SEEDS)
        path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {path} and {path.with_suffix('.json')} (sklearn {card['sklearn_version']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
