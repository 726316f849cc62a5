"""Composition root of analysis: canonical request tables → features → detectors → proposals.

``Analyzer`` runs exactly as the streaming engine will: each table is folded into its
one-minute event-time panes, the watermark advances, and every pane it passes is closed —
windows finalized, detectors run, verdicts turned into proposals at that pane's end (event
time). ``analyze_tables`` is the one-call form the CLI, the benchmarks and tests use.
"""

from __future__ import annotations

import importlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from engine.core.errors import ConfigError
from engine.core.netaddr import CidrSet
from engine.decisions.proposals import OffenceHistory, ProposalConfig, ProposalPolicy
from engine.detectors import (
    DETECTORS,
    DetectionConfig,
    DetectionContext,
    compute_gates,
    gate_crawler_verdicts,
)
from engine.detectors.anomaly import AnomalyDetector, model_from_artifact, scorable
from engine.detectors.networks import aggregate_v6
from engine.features import FeatureConfig, FeatureStore, PanePartial
from engine.schema.decision import Decision
from engine.schema.features import MODEL_WINDOW_MIN, FeatureFrame, model_matrix
from engine.schema.request import SOURCE_ALB, SOURCE_CLOUDFRONT, SOURCE_WAF
from engine.schema.verdict import ClientVerdict

# Receives (model matrix, hostile mask, window end) at every evaluation: the hook through
# which ``models.baseline.RollingBaseline.observe`` learns without the engine importing it.
BaselineSink = Callable[[np.ndarray, np.ndarray, datetime], None]


class AnalysisConfig(DetectionConfig):
    """Everything analysis reads: the detectors' sections and gates, plus the features stage's
    options under ``features`` (all in the settings' ``[detection]`` table). Detectors are
    built from it but see only their own ``DetectionConfig`` part."""

    features: FeatureConfig = Field(default_factory=FeatureConfig)


BEHIND_CLOUDFRONT_ALB = (
    "behind CloudFront: ALB logs cannot identify viewers; use the web ACL's logs or CloudFront's"
)
BEHIND_CLOUDFRONT_XFF = (
    "behind CloudFront: viewers read from X-Forwarded-For (CloudFront's published ranges are "
    "the trusted proxies); IP-set rules must match the forwarded address"
)

WAF_AND_PARTNER_LOGS = (
    "a web ACL's log and an ALB or CloudFront log arrive unjoined: requests logged by both "
    "are counted twice (`wafsmith analyze --join on` pairs them by request id; `wafsmith run` "
    "does not join yet: give each log family its own engine)"
)


def topology_notices(
    edge_rows: int, forwarded_rows: int, rows_by_source: Mapping[str, int] | None = None
) -> list[str]:
    """What an operator must know about where the logs sit (said once, not per row)."""
    out = []
    if edge_rows:
        out.append(BEHIND_CLOUDFRONT_ALB)
    if forwarded_rows:
        out.append(BEHIND_CLOUDFRONT_XFF)
    by_source = rows_by_source or {}
    if by_source.get(SOURCE_WAF) and any(by_source.get(s) for s in (SOURCE_ALB, SOURCE_CLOUDFRONT)):
        out.append(WAF_AND_PARTNER_LOGS)
    return out


@dataclass
class AnalysisResult:
    decisions: list[Decision]
    verdicts: list[ClientVerdict]
    stats: dict[str, Any] = field(default_factory=dict)


class Analyzer:
    """Streaming analysis over canonical tables fed in (roughly) event-time order."""

    def __init__(
        self,
        config: AnalysisConfig | None = None,
        *,
        policy: ProposalConfig | None = None,
        history: OffenceHistory | Callable[[str], int] | None = None,
        detectors: Iterable[str] | None = None,
        timer: Callable[[], float] = time.perf_counter,
        baseline_sink: BaselineSink | None = None,
    ) -> None:
        self.cfg = config or AnalysisConfig()
        self.store = FeatureStore(self.cfg.features)
        names = list(detectors) if detectors is not None else DETECTORS.names()
        self.detectors = [DETECTORS.get(n)(self.cfg) for n in names if self._enabled(n)]
        self.policy = ProposalPolicy(policy, history)
        self.allow = CidrSet(self.cfg.gates.allowlist)
        self.timer = timer
        self.baseline_sink = baseline_sink
        self.anomaly = next((d for d in self.detectors if isinstance(d, AnomalyDetector)), None)
        self.trainer = self._stream_trainer()
        self.decisions: list[Decision] = []
        self._verdicts: dict[tuple[str, str], ClientVerdict] = {}
        self._secs: Counter[str] = Counter()
        self._peak_state = (0, 0)  # (bytes, active clients) at the peak
        self._peak_window_cache = 0
        self._evaluations = 0
        self._crawler_verdicts_gated = 0  # verdicts on verified / well-behaved crawlers

    def _enabled(self, name: str) -> bool:
        section = getattr(self.cfg, name, None)
        if section is None and name == "scanner":
            section = self.cfg.scanner
        return bool(getattr(section, "enabled", True))

    def _stream_trainer(self) -> Any:
        """The in-process trainer that bootstraps the anomaly model from this stream (when the
        detector runs without a persisted model), loaded by name: the engine never imports
        the ``models`` package."""
        c = self.cfg.anomaly
        if self.anomaly is None or c.model_path is not None:
            return None
        module_name, _, class_name = c.trainer.partition(":")
        try:
            trainer_cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"anomaly.trainer {c.trainer!r} cannot be loaded: {exc}") from None
        return trainer_cls(
            bootstrap_min=c.bootstrap_min,
            min_rows=c.bootstrap_min_rows,
            refit_every_min=c.refit_every_min,
            capacity=c.capacity,
        )

    # --- feeding -----------------------------------------------------------------------
    def feed(self, table: pa.Table) -> list[Decision]:
        """Fold one canonical table in; returns the decisions its closed panes produced."""
        t0 = self.timer()
        self.store.add(table)  # one columnar pass, however many panes the table spans
        self._secs["features"] += self.timer() - t0
        # Panes close in event-time order; a window ending at pane p reads only panes <= p,
        # so this equals feeding the table pane by pane.
        return self._close(final=False)

    def feed_partials(self, parts: Iterable[PanePartial]) -> list[Decision]:
        """Fold pane partials aggregated elsewhere (the Spark job's executors), in pane order;
        returns the decisions of the panes this closes. Same windows, detectors and policy as
        ``feed``: only where ``from_batch``/``merge`` ran differs."""
        t0 = self.timer()
        for part in parts:
            self.store.add_partial(part)
        self._secs["features"] += self.timer() - t0
        return self._close(final=False)

    def finish(self) -> list[Decision]:
        """End of input: close every remaining pane."""
        return self._close(final=True)

    def close_idle(self) -> list[Decision]:
        """The source went idle: close every open pane up to the newest event time seen, as
        streaming engines do for idle partitions. Rows that arrive later for those panes
        reopen them; they are evaluated again once the watermark passes them."""
        return self._close(final=True)

    def has_open_panes(self) -> bool:
        """Whether some pane holds rows that no evaluation has seen yet."""
        return self.store.has_open_panes()

    def _close(self, final: bool) -> list[Decision]:
        out: list[Decision] = []
        for pane in self.store.closable(final=final):
            out.extend(self._evaluate(pane))
        self._account()
        t0 = self.timer()
        self.store.evict()
        self._secs["features"] += self.timer() - t0
        return out

    def _evaluate(self, pane: int) -> list[Decision]:
        t0 = self.timer()
        snap = self.store.snapshot(pane)
        t1 = self.timer()
        gates = compute_gates(snap, self.cfg, self.allow)
        gates["covered"] = self._blocked_mask(snap)
        ctx = DetectionContext(snapshot=snap, cfg=self.cfg, samples=self.store.samples, gates=gates)
        verdicts: list[ClientVerdict] = []
        for det in self.detectors:
            td = self.timer()
            verdicts.extend(det.detect(ctx))
            self._secs[f"detector.{det.name}"] += self.timer() - td
        verdicts, gated = gate_crawler_verdicts(verdicts, snap, gates)
        verdicts = aggregate_v6(verdicts, snap, self.cfg.v6_networks)  # /64s → their /56
        self._crawler_verdicts_gated += gated
        t2 = self.timer()
        nat = snap.clients[np.flatnonzero(gates["nat_gateway"])]
        decisions = self.policy.propose(verdicts, nat_clients=[str(x) for x in nat])
        t3 = self.timer()
        self._secs["finalize"] += t1 - t0
        self._secs["detect"] += t2 - t1
        self._secs["propose"] += t3 - t2
        self._evaluations += 1
        for v in verdicts:
            self._verdicts[(v.client, v.detector)] = v
        self.decisions.extend(decisions)
        sinks = [x for x in (self.baseline_sink, getattr(self.trainer, "observe", None)) if x]
        if sinks and MODEL_WINDOW_MIN in snap.frames:
            self._feed_baseline(ctx, verdicts, sinks)
        if self.trainer is not None:
            fitted = self.trainer.maybe_fit()
            if fitted is not None:
                self.anomaly.use(model_from_artifact(*fitted, source="stream bootstrap"))
        return decisions

    def _blocked_mask(self, snap) -> np.ndarray:
        """Codes of clients under a block decision in force at this pane's end."""
        now = datetime.fromtimestamp(snap.window_end_ms / 1000, UTC)
        blocked = self.policy.blocked(now)
        names = self.store.client_names
        if not blocked:
            return np.zeros(len(names), dtype=bool)
        mask = pc.is_in(names, value_set=pa.array(blocked, pa.string()))
        return mask.to_numpy(zero_copy_only=False)

    def _feed_baseline(self, ctx, verdicts: list[ClientVerdict], sinks: list) -> None:
        """Hand the model window's matrix to the training baselines, hostile clients marked
        (anyone with a verdict now or a decision in this run) so they never enter it. Only
        the clients like those the model scores are handed over (enough requests, no gate)."""
        snap = ctx.snapshot
        frame = snap.frames[MODEL_WINDOW_MIN]
        frame = _rows(frame, scorable(frame, ctx, self.cfg.anomaly.train_min_requests))
        if not len(frame):
            return
        hostile = set(self.policy.active)
        for v in verdicts:
            hostile.add(v.client)
            hostile.update(v.members)
        names = pa.array(snap.clients[frame.codes].tolist(), pa.string())
        mask = pc.is_in(names, value_set=pa.array(sorted(hostile), pa.string()))
        X, hostile_mask = model_matrix(frame), mask.to_numpy(zero_copy_only=False)
        for sink in sinks:
            sink(X, hostile_mask, ctx.window_end)

    def _account(self) -> None:
        state = self.store.state_bytes()
        if state > self._peak_state[0]:
            self._peak_state = (state, self.store.active_clients())
        self._peak_window_cache = max(self._peak_window_cache, self.store.window_cache_bytes())

    def anomaly_status(self) -> dict[str, Any] | None:
        """What the anomaly model did in this run: where it came from and its state."""
        if self.anomaly is None:
            return None
        model = self.anomaly.model
        card = {} if model is None else model.card
        return {
            "state": self.anomaly.state,
            # which model scores now: the shipped starter until the stream's own exists
            "source": self.anomaly.source,
            "starter_model": self.cfg.anomaly.starter_model or None,
            "starter_retired": self.anomaly.retired,
            "starter_scoring": self.anomaly.starter is not None,
            "fits": self.anomaly.models_used,
            "fitted_at": card.get("fitted_at"),
            "training_window": card.get("training_window"),
            "verdicts": sum(1 for k in self._verdicts if k[1] == self.anomaly.name),
            "refit_every_min": None if self.trainer is None else self.cfg.anomaly.refit_every_min,
            "drift": self.anomaly.drift,
        }

    # --- results -----------------------------------------------------------------------
    def notices(self) -> list[str]:
        s = self.store.stats
        return topology_notices(s.edge_rows, s.forwarded_rows, s.rows_by_source)

    def result(self) -> AnalysisResult:
        s = self.store.stats
        peak_bytes, peak_clients = self._peak_state
        stats: dict[str, Any] = {
            "rows": s.rows,
            "rows_by_source": dict(sorted(s.rows_by_source.items())),
            "cloudfront_edge_rows": s.edge_rows,
            "cloudfront_forwarded_rows": s.forwarded_rows,
            "notices": self.notices(),
            "no_client_identity_rows": dict(sorted(s.no_identity_rows.items())),
            "late_rows": s.late_rows,
            "dropped_too_late_rows": s.dropped_too_late,
            "panes_closed": s.panes_closed,
            "evaluations": self._evaluations,
            "crawler_verdicts_gated": self._crawler_verdicts_gated,
            "peak_state_bytes": peak_bytes,
            "peak_active_clients": peak_clients,
            "state_bytes_per_active_client": round(peak_bytes / peak_clients, 1)
            if peak_clients
            else 0.0,
            "peak_window_cache_bytes": self._peak_window_cache,
            "decisions": len(self.decisions),
            "decisions_by_action": dict(Counter(d.action.value for d in self.decisions)),
            "decisions_by_detector": dict(Counter(d.detector for d in self.decisions)),
            "verdicts_by_kind": dict(Counter(v.kind for v in self._verdicts.values())),
            "campaign_members": sum(len(d.members) for d in self.decisions),
            "seconds": {k: round(v, 4) for k, v in sorted(self._secs.items())},
            "detectors_ran": [d.name for d in self.detectors],
            "anomaly": self.anomaly_status(),
        }
        verdicts = sorted(self._verdicts.values(), key=lambda v: (v.window_end, v.client))
        return AnalysisResult(list(self.decisions), verdicts, stats)


def _rows(frame, mask: np.ndarray):
    """``frame`` restricted to the rows of ``mask`` (columns and codes; key sets dropped)."""
    cols = {k: v[mask] for k, v in frame.columns.items()}
    return FeatureFrame(frame.window_min, frame.window_end_ms, frame.codes[mask], cols)


def analyze_tables(
    tables: Iterable[pa.Table],
    config: AnalysisConfig | None = None,
    *,
    policy: ProposalConfig | None = None,
    history: OffenceHistory | Callable[[str], int] | None = None,
) -> AnalysisResult:
    """Replay canonical tables (event-time order) through features, detectors and proposals."""
    analyzer = Analyzer(config, policy=policy, history=history)
    for table in tables:
        analyzer.feed(table)
    analyzer.finish()
    return analyzer.result()
