"""Backtest: what a decision or a draft rule would have matched over the retained history.

Shown to the analyst before approval: how many requests and distinct clients the rule would
have caught in the last N hours, how many of those clients looked benign, the busiest ones
and a few sample requests. Everything is computed with Arrow compute over the history.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.core.netaddr import CidrSet
from engine.decisions.history import HistoryError, RequestHistory
from engine.schema.decision import Decision, normalize_client
from engine.schema.request import (
    CLIENT_IP,
    EVENT_TIME,
    HOST,
    METHOD,
    PATH,
    STATUS,
    USER_AGENT,
    WAF_ACTION,
)

MAX_HOURS = 24 * 31
SAMPLE_COLUMNS = (EVENT_TIME, CLIENT_IP, METHOD, HOST, PATH, STATUS, USER_AGENT)
READ_COLUMNS = (*SAMPLE_COLUMNS, WAF_ACTION)  # all a backtest needs from the history
BENIGN_MAX_ERROR_SHARE = 0.1  # heuristic: under 10 % 4xx/5xx answers ...
WAF_BLOCK = "BLOCK"  # ... and never blocked by an existing WAF rule

BenignClients = Collection[str] | Callable[[list[str]], Iterable[bool]] | None


class RuleDraft(BaseModel):
    """A rule an analyst is considering; every given matcher must hold (AND), values OR.

    ``clients`` are IPs or CIDRs (no /0); ``path_prefix`` and ``path_regex`` match the path;
    ``methods`` and ``hosts`` are exact (case-insensitive).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    clients: list[str] = Field(default_factory=list, max_length=10_000)
    path_prefix: str | None = Field(None, min_length=1, max_length=2048)
    path_regex: str | None = Field(None, min_length=1, max_length=512)
    methods: list[str] = Field(default_factory=list, max_length=16)
    hosts: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("clients")
    @classmethod
    def _clients(cls, values: list[str]) -> list[str]:
        return [normalize_client(v) for v in values]

    @field_validator("path_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"path_regex does not compile: {exc}") from None
        return value

    @field_validator("methods")
    @classmethod
    def _methods(cls, values: list[str]) -> list[str]:
        return [v.strip().upper() for v in values]

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, values: list[str]) -> list[str]:
        return [v.strip().lower() for v in values]

    @model_validator(mode="after")
    def _something(self) -> RuleDraft:
        if not (self.clients or self.path_prefix or self.path_regex or self.methods or self.hosts):
            raise ValueError("a draft rule needs at least one matcher")
        return self

    @classmethod
    def for_decision(cls, decision: Decision) -> RuleDraft:
        """The addresses a decision blocks: its campaign members, else its client; for a
        rule-level decision, the requests in its rule's scope (method, path, host)."""
        rule = decision.rule
        if rule is None:
            return cls(clients=list(decision.members or (decision.client,)))
        exact = rule.path_match == "EXACTLY"
        return cls(
            path_prefix=None if exact else rule.path,
            path_regex=f"^{re.escape(rule.path)}$" if exact else None,
            methods=[rule.method] if rule.method else [],
            hosts=[rule.host] if rule.host else [],
        )


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """What the rule would have matched in ``[since, until)``."""

    since: datetime
    until: datetime
    requests_scanned: int
    requests_matched: int
    distinct_clients: int
    benign_looking_clients: int
    top_clients: list[tuple[str, int]] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)
    # A rate-based rule acts only above its limit: what it would have acted on (else None).
    over_limit: RateHits | None = None

    def to_dict(self) -> dict[str, Any]:
        extra = {} if self.over_limit is None else {"over_limit": self.over_limit.to_dict()}
        return {
            **extra,
            "since": _iso(self.since),
            "until": _iso(self.until),
            "requests_scanned": self.requests_scanned,
            "requests_matched": self.requests_matched,
            "distinct_clients": self.distinct_clients,
            "benign_looking_clients": self.benign_looking_clients,
            "top_clients": [{"client": c, "requests": n} for c, n in self.top_clients],
            "sample": self.sample,
        }


@dataclass(frozen=True, slots=True)
class RateHits:
    """What a rate-based rule would have acted on: the requests past its limit in their
    evaluation window, their distinct clients and how many of those looked benign."""

    requests: int
    clients: int
    benign_looking_clients: int
    windows_over: int  # evaluation windows (per key) in which the limit was passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "clients": self.clients,
            "benign_looking_clients": self.benign_looking_clients,
            "windows_over": self.windows_over,
        }


def over_limit_mask(
    matched: pa.Table, *, limit: int, window_s: int, per_client: bool
) -> np.ndarray:
    """Rows of ``matched`` a rate rule would act on: within each ``window_s`` window (aligned
    to the epoch; WAF's windows slide, so this is an estimate) and key (the client, or the
    whole scope), every request after the first ``limit``."""
    n = matched.num_rows
    if n == 0:
        return np.zeros(0, dtype=bool)
    ms = pc.cast(matched.column(EVENT_TIME), pa.timestamp("ms")).cast(pa.int64())
    bucket = ms.to_numpy(zero_copy_only=False) // (window_s * 1000)
    if per_client:
        codes = pc.dictionary_encode(matched.column(CLIENT_IP)).combine_chunks().indices
        key = codes.to_numpy(zero_copy_only=False).astype(np.int64)
    else:
        key = np.zeros(n, dtype=np.int64)
    t = ms.to_numpy(zero_copy_only=False)
    order = np.lexsort((t, bucket, key))
    k, b = key[order], bucket[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = (k[1:] != k[:-1]) | (b[1:] != b[:-1])
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    rank = np.arange(n) - first
    over = np.zeros(n, dtype=bool)
    over[order] = rank >= limit
    return over


def rate_hits(
    window: pa.Table, matched: pa.Table, decision: Decision, benign: BenignClients
) -> RateHits | None:
    """``RateHits`` of a rate-based rule-level decision over the matched requests."""
    rule = decision.rule
    if rule is None or rule.kind != "rate_based":
        return None
    over = over_limit_mask(
        matched,
        limit=int(rule.limit or 0),
        window_s=int(rule.window_s or 60),
        per_client=rule.aggregate != "CONSTANT",
    )
    hit = matched.filter(pa.array(over))
    clients = pc.unique(hit.column(CLIENT_IP))
    clients = pc.take(clients, pc.array_sort_indices(clients))
    ms = pc.cast(hit.column(EVENT_TIME), pa.timestamp("ms")).cast(pa.int64())
    buckets = ms.to_numpy(zero_copy_only=False) // (int(rule.window_s or 60) * 1000)
    if rule.aggregate != "CONSTANT":
        names = hit.column(CLIENT_IP).to_pylist()
        windows = len(set(zip(names, buckets.tolist(), strict=True)))
    else:
        windows = len(np.unique(buckets))
    return RateHits(
        requests=hit.num_rows,
        clients=len(clients),
        benign_looking_clients=_benign_count(window, clients, benign),
        windows_over=windows,
    )


def match_mask(table: pa.Table, draft: RuleDraft) -> pa.Array:
    """Rows of a canonical request table that ``draft`` matches."""
    mask = pa.array(np.ones(table.num_rows, dtype=bool))
    if draft.clients:
        inside = CidrSet(draft.clients).contains(table.column(CLIENT_IP))
        mask = pc.and_(mask, pa.array(inside))
    if draft.path_prefix is not None:
        mask = pc.and_(mask, pc.starts_with(table.column(PATH), draft.path_prefix))
    if draft.path_regex is not None:
        mask = pc.and_(mask, pc.match_substring_regex(table.column(PATH), draft.path_regex))
    if draft.methods:
        upper = pc.utf8_upper(table.column(METHOD))
        mask = pc.and_(mask, pc.is_in(upper, pa.array(draft.methods)))
    if draft.hosts:
        lower = pc.utf8_lower(table.column(HOST))
        mask = pc.and_(mask, pc.is_in(lower, pa.array(draft.hosts)))
    return pc.fill_null(mask, False)


def _benign_by_heuristic(window: pa.Table, clients: pa.Array) -> int:
    """Clients with a low error share and no WAF block over the whole window."""
    mine = window.filter(pc.is_in(window.column(CLIENT_IP), clients))
    errors = pc.fill_null(pc.greater_equal(mine.column(STATUS), 400), False)
    blocked = pc.fill_null(pc.equal(pc.utf8_upper(mine.column(WAF_ACTION)), WAF_BLOCK), False)
    per_client = (
        pa.table(
            {
                CLIENT_IP: mine.column(CLIENT_IP),
                "error": pc.cast(errors, pa.int64()),
                "blocked": pc.cast(blocked, pa.int64()),
            }
        )
        .group_by(CLIENT_IP)
        .aggregate([("error", "mean"), ("blocked", "max")])
    )
    benign = pc.and_(
        pc.less(per_client.column("error_mean"), BENIGN_MAX_ERROR_SHARE),
        pc.equal(per_client.column("blocked_max"), 0),
    )
    return int(pc.sum(pc.cast(benign, pa.int64())).as_py() or 0)


def _benign_count(window: pa.Table, clients: pa.Array, benign: BenignClients) -> int:
    if benign is None:
        return _benign_by_heuristic(window, clients) if len(clients) else 0
    if callable(benign):
        names = clients.to_pylist()
        flags = list(benign(names))
        if len(flags) != len(names):
            raise HistoryError(
                f"benign_clients callable returned {len(flags)} flags for {len(names)} clients"
            )
        return sum(bool(f) for f in flags)
    known = pa.array(sorted({normalize_client(c) for c in benign}), type=pa.string())
    return int(pc.sum(pc.cast(pc.is_in(clients, known), pa.int64())).as_py() or 0)


def backtest(
    target: Decision | RuleDraft | dict[str, Any],
    history: RequestHistory,
    *,
    hours: float,
    benign_clients: BenignClients = None,
    sample_size: int = 10,
    top: int = 10,
    now: datetime | None = None,
) -> BacktestResult:
    """Replay ``target`` over the last ``hours`` of retained history.

    ``benign_clients`` decides which matched clients "looked benign": a collection of
    addresses, a callable given the matched clients (sorted) returning one flag each, or
    None for the built-in heuristic (under 10 % error answers and never WAF-blocked).
    """
    if not 0 < hours <= MAX_HOURS:
        raise HistoryError(f"hours must be within 1..{MAX_HOURS}, got {hours}")
    if isinstance(target, Decision):
        draft = RuleDraft.for_decision(target)
    elif isinstance(target, RuleDraft):
        draft = target
    else:
        draft = RuleDraft.model_validate(target)
    until = now or history.clock.now()
    since = until - timedelta(hours=hours)
    window = history.read(since=since, until=until, columns=list(READ_COLUMNS))
    matched = window.filter(match_mask(window, draft))
    distinct = pc.unique(matched.column(CLIENT_IP))
    distinct = pc.take(distinct, pc.array_sort_indices(distinct))
    counts = (
        matched.group_by(CLIENT_IP)
        .aggregate([(CLIENT_IP, "count")])
        .sort_by([(f"{CLIENT_IP}_count", "descending"), (CLIENT_IP, "ascending")])
        .slice(0, top)
    )
    recent = matched.take(pc.sort_indices(matched, [(EVENT_TIME, "descending")])[:sample_size])
    sample = [
        {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in row.items()}
        for row in recent.select(list(SAMPLE_COLUMNS)).to_pylist()
    ]
    return BacktestResult(
        since=since,
        until=until,
        requests_scanned=window.num_rows,
        requests_matched=matched.num_rows,
        distinct_clients=len(distinct),
        benign_looking_clients=_benign_count(window, distinct, benign_clients),
        top_clients=list(
            zip(
                counts.column(CLIENT_IP).to_pylist(),
                counts.column(f"{CLIENT_IP}_count").to_pylist(),
                strict=True,
            )
        ),
        sample=sample,
        over_limit=rate_hits(window, matched, target, benign_clients)
        if isinstance(target, Decision)
        else None,
    )


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class Backtester:
    """The service's backtest hook: ``(decision | client text, hours=) → API document``.

    Holds the history and the benign-client judgement; a bare client (IP or CIDR) is a
    draft rule on that client.
    """

    def __init__(self, history: RequestHistory, *, benign_clients: BenignClients = None) -> None:
        self.history = history
        self.benign_clients = benign_clients

    def __call__(self, target: Decision | RuleDraft | str, *, hours: float) -> dict[str, Any]:
        if isinstance(target, str):
            label, target = normalize_client(target), RuleDraft(clients=[target])
        elif isinstance(target, Decision):
            label = target.client
        else:
            label = ",".join(target.clients) or "(draft rule)"
        result = backtest(target, self.history, hours=hours, benign_clients=self.benign_clients)
        horizon = self.history.horizon
        notes = []
        if not self.history.partitions():
            notes.append("no request history is retained yet")
        elif result.since < horizon:
            notes.append(f"only the last {self.history.retention_hours} h of requests are kept")
        extra = {}
        if result.over_limit is not None:  # a rate rule acts only past its limit
            extra["over_limit"] = result.over_limit.to_dict()
        return {
            **extra,
            "client": label,
            "hours": hours,
            "requests": result.requests_matched,
            "clients": result.distinct_clients,
            "benign_clients": result.benign_looking_clients,
            "history_from": max(result.since, horizon),
            "history_to": result.until,
            "notes": notes,
        }
