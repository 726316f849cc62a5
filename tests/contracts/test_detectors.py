"""Contract battery run against every registered detector (``DETECTORS``).

Each detector sees the same evaluations of a half hour of traffic holding every attack the
registry knows (and the isolation forest a trained artifact): it must say the same thing
twice, say nothing about nothing, hand over well-formed ``ClientVerdict`` records, and never
judge a client the allowlist or the verified-crawler gate protects.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from engine.core.clock import FakeClock
from engine.core.netaddr import CidrSet
from engine.detectors import DETECTORS, DetectionContext, Detector, compute_gates
from engine.features import FeatureStore
from engine.pipeline import AnalysisConfig, Analyzer
from engine.schema import features as F
from engine.schema.verdict import ClientVerdict
from models.baseline import RollingBaseline
from tests.support.traffic import BROWSER_UAS, Traffic
from tests.support.waf_only import WAF, person_logs_in, waf_background

FEATURE_NAMES = {v for k, v in vars(F).items() if k.isupper() and isinstance(v, str)}
PROTECTING_GATES = ("allowlisted", "verified_crawler")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
# Detectors whose subject is a gated population: they judge it by its own standards.
JUDGES = {"verified_crawler": {"crawler_conduct": "misbehaving_crawler"}}


def background(tr: Traffic, n: int = 80) -> Traffic:
    for i in range(n):
        tr.browser(
            f"198.51.{100 + i // 100}.{i % 100 + 1}", 0, 1800, pages=4 + i % 9,
            ua=BROWSER_UAS[i % 40],
        )  # fmt: skip
    return tr


def attacks(tr: Traffic) -> Traffic:
    """One client (or campaign) per registered detector, shaped as its own tests shape it."""
    tr.flood("203.0.113.9", 300, 420, rate=8)  # volumetric_flood
    for i in range(60):  # scanner
        tr.add("203.0.113.20", 100 + 2 * i, f"/wp-content/plugins/p{i}/readme.txt", status=404)
    for i in range(40):  # credential_stuffing
        tr.add("203.0.113.30", 200 + 5 * i, "/login", method="POST", status=401)
    for i in range(400):  # scraper
        tr.add("203.0.113.40", 60 + 1.5 * i, f"/product/{i}")
    tr.add("203.0.113.50", 100, "/", ua="sqlmap/1.7.2#stable (https://sqlmap.org)")  # tools
    for i in range(4):  # injection
        tr.add("203.0.113.51", 100 + 30 * i, "/item", query=f"id={i}%27%20UNION%20SELECT%201--")
    for i in range(300):  # distributed_flood: each address far below the per-IP rule
        tr.flood(
            f"100.{64 + i // 200}.{(i // 50) % 4}.{i % 50 + 1}", 300 + tr.rng.uniform(0, 5), 600,
            rate=0.17, path="/cart", ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/119.0 x",
        )  # fmt: skip
    for j in range(200):  # distributed_stuffing: three attempts each over ten minutes
        for k in range(3):
            tr.add(
                f"100.70.{j // 250}.{j % 250 + 1}", 300 + (j * 7 + k * 200) % 600, "/login",
                method="POST", status=401,
            )  # fmt: skip
    for i in range(480):  # crawler_conduct: a verified Googlebot far over its crawl budget
        tr.add("66.249.66.1", 100 + 0.1 * i, f"/catalog/{i}", ua=GOOGLEBOT)
    for i in range(90):  # anomaly: POST-heavy, errors, no assets, deep odd paths
        tr.add(
            "203.0.113.99", 200 + 9 * i, f"/a/b/c/d/{i}/x", method="POST",
            status=500 if i % 2 else 400, ua="Mozilla/5.0 (Windows NT 10.0) Chrome/120",
        )  # fmt: skip
    return tr


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> AnalysisConfig:
    """The default configuration, with the anomaly detector scoring a trained artifact."""
    baseline = RollingBaseline(
        capacity=5000,
        min_rows=100,
        directory=tmp_path_factory.mktemp("model"),
        clock=FakeClock(),
        random_state=0,
    )
    Analyzer(baseline_sink=baseline.observe).feed(background(Traffic(1)).table())
    artifact: Path = baseline.refit()
    return AnalysisConfig.model_validate(
        {"anomaly": {"enabled": True, "model_path": str(artifact)}}
    )


def waf_only_attacks(tr: Traffic) -> Traffic:
    """A web ACL's log (no status codes): a login-only bot and a surge of login POSTs from
    residential proxies, for the detectors that judge what WAF logs alone show."""
    for i in range(60):  # auth_post_bot
        tr.add("203.0.113.40", 120 + 5 * i, "/login", method="POST", ua="python-requests/2.31",
               **WAF)  # fmt: skip
    for j in range(150):  # login_surge: two attempts each, minutes apart
        for k in range(2):
            tr.add(f"100.72.{j // 250}.{j % 250 + 1}", 600 + (j * 4 + k * 240) % 480, "/login",
                   method="POST", **WAF)  # fmt: skip
    for k in range(8):
        person_logs_in(tr, f"198.51.100.{220 + k}", 60 + 170 * k)
    return tr


@pytest.fixture(scope="module")
def contexts(config: AnalysisConfig) -> list[DetectionContext]:
    """Every evaluation the pipeline would run over the contract traffic (an ALB-like log with
    status codes, then a web ACL's log without them), gates computed."""
    alb_like = attacks(background(Traffic(2)))
    web_acl = waf_only_attacks(waf_background(Traffic(3), minutes=25))
    return evaluations(config, alb_like) + evaluations(config, web_acl)


def evaluations(config: AnalysisConfig, traffic: Traffic) -> list[DetectionContext]:
    store = FeatureStore(config.features)
    store.add(traffic.table())
    out = []
    for pane in store.closable(final=True):
        snapshot = store.snapshot(pane)
        gates = compute_gates(snapshot, config, CidrSet(config.gates.allowlist))
        gates["covered"] = np.zeros(len(snapshot.clients), dtype=bool)
        out.append(
            DetectionContext(snapshot=snapshot, cfg=config, samples=store.samples, gates=gates)
        )
    return out


@pytest.fixture(params=DETECTORS.names())
def make_detector(request, config) -> Callable[[], Detector]:
    return lambda: DETECTORS.get(request.param)(config)


def run(detector: Detector, contexts: list[DetectionContext]) -> list[list[ClientVerdict]]:
    return [detector.detect(ctx) for ctx in contexts]


def with_gate(ctx: DetectionContext, gate: str) -> DetectionContext:
    """``ctx`` with every client behind ``gate``."""
    gates = {**ctx.gates, gate: np.ones(len(ctx.snapshot.clients), dtype=bool)}
    return DetectionContext(snapshot=ctx.snapshot, cfg=ctx.cfg, samples=ctx.samples, gates=gates)


def test_every_detector_fires_on_the_contract_traffic(make_detector, contexts) -> None:
    """Otherwise the other contracts would hold vacuously."""
    assert any(run(make_detector(), contexts))


def test_same_input_same_verdicts(make_detector, contexts) -> None:
    """Two instances fed the same evaluations agree (a detector may keep state from one
    evaluation to the next — a site-wide baseline — so one instance is not asked twice)."""
    assert run(make_detector(), contexts) == run(make_detector(), contexts)


def test_nothing_in_nothing_out(make_detector, config) -> None:
    store = FeatureStore(config.features)
    store.add(Traffic(3).table())
    snapshots = [store.snapshot(p) for p in store.closable(final=True)]
    empty = [
        DetectionContext(snapshot=s, cfg=config, gates=compute_gates(s, config, CidrSet([])))
        for s in snapshots
    ]
    assert all(verdicts == [] for verdicts in run(make_detector(), empty))


def test_verdicts_are_well_formed_records(make_detector, contexts) -> None:
    detector = make_detector()
    for ctx, verdicts in zip(contexts, run(detector, contexts), strict=True):
        clients = set(ctx.snapshot.clients.tolist())
        for v in verdicts:
            assert isinstance(v, ClientVerdict)
            assert v.detector == detector.name
            assert 0.0 <= v.score <= 1.0
            assert v.reasons and all(isinstance(r, str) and r for r in v.reasons)
            assert v.window_end == ctx.window_end
            assert set(v.features) <= FEATURE_NAMES, set(v.features) - FEATURE_NAMES
            assert v.client in clients or (v.members and set(v.members) <= clients)


@pytest.mark.parametrize("gate", PROTECTING_GATES)
def test_protected_clients_are_never_judged(make_detector, contexts, gate: str) -> None:
    """No detector judges a protected client, except the one whose subject that population
    is (``crawler_conduct`` for verified crawlers), and that one only by its own kind."""
    protected = [with_gate(ctx, gate) for ctx in contexts]
    detector = make_detector()
    own_kind = JUDGES.get(gate, {}).get(detector.name)
    verdicts = run(detector, protected)
    if own_kind is None:
        assert verdicts == [[] for _ in protected]
    else:
        assert {v.kind for vs in verdicts for v in vs} <= {own_kind}
