"""Issue 15's ablation per topology: what each variant runs and how seeds are pooled."""

from __future__ import annotations

from benchmarks.topology import ablation_variants, pool_ablation
from engine.detectors import DETECTORS


def entry(variant: str, tp: int, fp: int, bola: tuple[int, int], crawlers: int = 0) -> dict:
    return {
        "ablation": variant,
        "seconds": 2.0,
        "benign_hit": {"crawler": crawlers},
        "edges_hit": 0,
        "counts": {"tp": tp, "fp": fp, "attack": 10, "benign": 1000,
                   "kinds": {"bola_enumeration": list(bola), "browser": [fp, 1000]}},
    }  # fmt: skip


def test_variants_are_rules_only_model_only_and_both():
    v = ablation_variants()
    assert "anomaly" not in v["rules only"]["detectors"]
    assert set(v["rules only"]["detectors"]) | {"anomaly"} == set(DETECTORS.names())
    assert v["model only"]["detectors"] == ["anomaly"]
    assert v["both"] == {}  # the default engine
    assert v["both, no starter"]["config"]["anomaly"]["starter_model"] == ""


def test_seeds_are_pooled_by_counts_not_averaged_rates():
    runs = [
        {"topology": {"topologies": {"alb-facing": {"w": entry("both", 9, 1, (4, 4))}}}},
        {"topology": {"topologies": {"alb-facing": {"w": entry("both", 3, 0, (0, 4), 1)}}}},
    ]
    m = pool_ablation(runs)["alb-facing"]["both"]
    assert m["precision"] == round(12 / 13, 4) and m["recall"] == round(12 / 20, 4)
    assert m["norule_recall"] == 0.5 and m["kind_recall"] == {"bola_enumeration": 0.5}
    assert m["benign_fpr"] == round(1 / 2000, 6) and m["crawler_nat_hits"] == 1
    assert m["seeds"] == 2 and m["seconds_mean"] == 2.0
