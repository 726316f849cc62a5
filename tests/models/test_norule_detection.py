"""Attacks no rule targets (simulator preset ``norule``): the default engine — rules plus the
anomaly model — finds them on a held-out seed, and flags none of their benign look-alikes,
crawlers or NAT gateways; the rules alone do not."""

from __future__ import annotations

import pyarrow.compute as pc

from benchmarks.baselines.scoring import ClientIndex, from_decisions, score
from engine.demo.simulator import HELDOUT_SEEDS, preset, simulate, view
from engine.demo.simulator.norule import KINDS, LOOKALIKES
from engine.demo.simulator.simulate import L_CLIENT, L_KIND, L_LABEL
from engine.detectors import DETECTORS
from engine.pipeline import Analyzer
from engine.schema import request as rq


def run(sim, detectors=None) -> dict:
    analyzer = Analyzer(detectors=detectors)
    table = view(sim.requests, "alb")
    for start in range(0, table.num_rows, 20_000):  # objects landing one after another
        analyzer.feed(table.slice(start, 20_000))
    analyzer.finish()
    index = ClientIndex(sim.labels[L_CLIENT].to_pylist())
    return score(from_decisions("wafsmith", analyzer.decisions, index), sim.labels,
                 sim.campaigns, sim.requests)


def test_no_rule_attacks_are_caught_by_the_model_beside_their_look_alikes():
    sim = simulate(preset("norule", browsers=900, lookalikes=25), HELDOUT_SEEDS[0])
    kinds = set(sim.labels[L_KIND].to_pylist())
    assert set(KINDS) <= kinds and set(LOOKALIKES.values()) <= kinds
    slow = sim.requests.filter(pc.greater(sim.requests[rq.DURATION_MS], 10_000))
    assert slow.num_rows  # the slow-request attack shows only in the timing fields

    both = run(sim)
    hit = sum(both["per_kind"][k]["flagged"] for k in KINDS)
    total = sum(both["per_kind"][k]["clients"] for k in KINDS)
    assert hit / total >= 0.8
    benign = [k for k, v in both["per_kind"].items() if v["label"] == "benign"]
    assert sum(both["per_kind"][k]["flagged"] for k in benign) == 0
    assert both["crawlers_flagged"] == 0 and both["nat_flagged"] == 0

    rules = run(sim, [n for n in DETECTORS.names() if n != "anomaly"])
    assert sum(rules["per_kind"][k]["flagged"] for k in KINDS) < hit
    labels = dict(zip(sim.labels[L_CLIENT].to_pylist(), sim.labels[L_LABEL].to_pylist(),
                      strict=True))
    assert sum(v == "attack" for v in labels.values()) == total
