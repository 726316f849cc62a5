"""The facade the API and dashboard call: one object over the ledger, compiler and enforcer.

``api/`` imports this module (and ``engine.schema``) only, so routes never touch SQL, boto3
or models. Every method returns plain records (``Decision``, dicts of JSON values) and raises
the named errors below, which the API maps to 4xx replies.

Status the running engine publishes
-----------------------------------
The engine (``wafsmith run``) writes JSON documents into the ledger's status store
(``Ledger.put_status``); this facade reads them. Keys and the fields read from each:

- ``engine``      — ``{"ingest": {"lag_s", "lines_per_s", "objects", "malformed"},
  "active_clients", "model": {"version", "trained_at"}}``
- ``enforcement`` — ``CycleResult.to_dict()`` of the last cycle (``ok``, ``started_at``,
  ``finished_at``, ``writes``, ``errors``, ``drift``, ...)
- ``traffic``     — time series, oldest first: ``{"interval_s": 60, "t": [epoch s ...],
  "requests": [...], "blocked": [...], "allowed": [...]}`` (counts per interval)
- ``clients.top`` — ``{"items": [{"client", "score", "requests", "features": {...}}]}``
- ``samples``     — ``{"<client>": [request dicts ...]}``, recent sample requests

Every missing document or field reads as null, and ``status()`` says no engine has reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.core.errors import WafsmithError
from engine.decisions import (
    AllowlistedClient,
    AllowlistEntry,
    AuditEvent,
    ConcurrentUpdate,
    Ledger,
    Page,
    Policy,
    UnknownDecision,
    UnknownEntry,
)
from engine.decisions import (
    IllegalTransition as LedgerIllegalTransition,
)
from engine.decisions.backtest import Backtester
from engine.decisions.history import HistoryError, RequestHistory
from engine.schema.decision import Decision, DecisionError, Status, normalize_client
from engine.settings import Settings

__all__ = [
    "AllowlistEntry",
    "AuditEvent",
    "Conflict",
    "DecisionDetail",
    "Identity",
    "IllegalTransition",
    "InvalidInput",
    "NotFound",
    "Page",
    "Policy",
    "RulePreviewer",
    "Service",
    "ServiceError",
    "Unavailable",
]

KEY_ENGINE = "engine"
KEY_ENFORCEMENT = "enforcement"
KEY_TRAFFIC = "traffic"
KEY_TOP_CLIENTS = "clients.top"
KEY_SAMPLES = "samples"
NOT_REPORTED = "no engine has reported yet"
MAX_SAMPLES = 20


class ServiceError(WafsmithError):
    """Base of the errors the facade raises on purpose."""


class NotFound(ServiceError, LookupError):
    """No such decision, token or allowlist entry."""


class IllegalTransition(ServiceError):
    """The decision's state machine refuses the move (e.g. rejected → approved)."""


class Conflict(ServiceError):
    """The change conflicts with current state (allowlisted client, concurrent edit)."""


class InvalidInput(ServiceError, ValueError):
    """The input cannot be used: bad CIDR, /0, bad cursor, invalid policy, ..."""


class Unavailable(ServiceError):
    """A backing store (the ledger database) does not answer."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a token belongs to."""

    token_id: str
    name: str
    role: str
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class DecisionDetail:
    decision: Decision
    audit: list[AuditEvent]


def _translate(exc: Exception) -> ServiceError:
    """Ledger / schema errors → the facade's named errors (order matters: most specific)."""
    if isinstance(exc, UnknownDecision | UnknownEntry):
        return NotFound(str(exc))
    if isinstance(exc, AllowlistedClient | ConcurrentUpdate):
        return Conflict(str(exc))
    if isinstance(exc, LedgerIllegalTransition):
        return IllegalTransition(str(exc))
    return InvalidInput(str(exc))


class Service:
    """Reads and changes through the ledger; previews rules through compiler and enforcer.

    ``previewer`` compiles the enforceable decisions and, when it can reach AWS, plans a
    dry-run cycle; ``backtester`` answers ``backtest``. Both are injected so tests and the
    full engine choose what runs; ``from_settings`` builds the default ones.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        clock: Clock = SYSTEM_CLOCK,
        previewer: Callable[[list[Decision], list[str]], dict[str, Any]] | None = None,
        backtester: Callable[..., dict[str, Any]] | None = None,
        ledger_url: str = "",
        counts_ttl_s: float = 1.0,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self._previewer = previewer
        self._counts_ttl_s = counts_ttl_s
        self._counts: tuple[float, dict[str, int]] | None = None
        self._backtester = backtester
        self.ledger_url = ledger_url

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> Service:
        """A service over the ledger (and AWS, for previews) that ``settings`` name."""
        url = settings.resolved_database_url
        if url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        ledger = Ledger.open(url, clock=clock)
        previewer = RulePreviewer.from_settings(settings, clock=clock)
        history = RequestHistory(settings.data_dir / "history", clock=clock)
        return cls(
            ledger,
            clock=clock,
            previewer=previewer,
            backtester=Backtester(history),
            ledger_url=_redact(url),
        )

    # -- plumbing ---------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def ping(self) -> None:
        """A round trip to the ledger database (raises if it is unreachable)."""
        try:
            with self.ledger.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except SQLAlchemyError as exc:
            raise Unavailable(
                f"the ledger database does not answer: {exc.__class__.__name__}"
            ) from exc

    # -- tokens -----------------------------------------------------------------------------

    def authenticate(self, plaintext: str) -> Identity | None:
        """The live token's owner, or None for an unknown or revoked token."""
        record = self.ledger.verify_token(plaintext)
        return None if record is None else _identity(record)

    def identity(self, token_id: str) -> Identity | None:
        """The live token with this id (sessions re-check it on every request)."""
        found = next((r for r in self.ledger.list_tokens() if r.id == token_id), None)
        return None if found is None or found.revoked else _identity(found)

    def create_token(self, *, name: str, role: str) -> tuple[str, Identity]:
        try:
            plaintext, record = self.ledger.create_token(name, role)
        except DecisionError as exc:
            raise _translate(exc) from None
        return plaintext, _identity(record)

    def list_tokens(self) -> list[Identity]:
        return [_identity(r) for r in self.ledger.list_tokens()]

    def revoke_token(self, id_or_name: str, *, by: str = "cli") -> Identity:
        """Revoke by id, or by name when exactly one live token has that name."""
        records = self.ledger.list_tokens()
        matches = [r for r in records if r.id == id_or_name]
        if not matches:
            matches = [r for r in records if r.name == id_or_name and not r.revoked]
        if len(matches) > 1:
            raise Conflict(f"{len(matches)} live tokens are named {id_or_name!r}; use the id")
        if not matches:
            raise NotFound(f"no token with id or name {id_or_name!r}")
        return _identity(self.ledger.revoke_token(matches[0].id, by=by))

    # -- decisions --------------------------------------------------------------------------

    def list_decisions(
        self, *, state: Status | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[Decision]:
        try:
            return self.ledger.list(state=state, limit=limit, cursor=cursor)
        except DecisionError as exc:
            raise _translate(exc) from None

    def active_decisions(self) -> list[Decision]:
        """Approved or applied decisions not yet expired, soonest expiry first."""
        return sorted(self.ledger.enforceable(self.now()), key=lambda d: d.expires_at)

    def get_decision(self, decision_id: str) -> DecisionDetail:
        try:
            return DecisionDetail(self.ledger.get(decision_id), self.ledger.audit(decision_id))
        except DecisionError as exc:
            raise _translate(exc) from None

    def approve(self, decision_id: str, *, by: str, comment: str | None = None) -> Decision:
        return self._move(self.ledger.approve, decision_id, by, comment)

    def reject(self, decision_id: str, *, by: str, comment: str | None = None) -> Decision:
        return self._move(self.ledger.reject, decision_id, by, comment)

    def revoke(self, decision_id: str, *, by: str, comment: str | None = None) -> Decision:
        return self._move(self.ledger.revoke, decision_id, by, comment)

    def mark_applied(self, decision_ids: list[str], *, by: str) -> list[Decision]:
        try:
            applied = self.ledger.mark_applied(decision_ids, by=by)
        except DecisionError as exc:
            raise _translate(exc) from None
        self._counts = None
        return applied

    def _move(
        self, move: Callable[..., Decision], decision_id: str, by: str, comment: str | None
    ) -> Decision:
        try:
            decision = move(decision_id, by=by, comment=comment)
        except DecisionError as exc:
            raise _translate(exc) from None
        self._counts = None
        return decision

    # -- clients ----------------------------------------------------------------------------

    def top_clients(self, *, limit: int = 50) -> dict[str, Any]:
        doc = self._status_doc(KEY_TOP_CLIENTS)
        if doc is None:
            return {"reported": False, "message": NOT_REPORTED, "items": []}
        items = [_client_summary(item) for item in doc.get("items", [])[:limit]]
        return {"reported": True, "message": None, "items": items}

    def client(self, ip: str) -> dict[str, Any]:
        """Features (from the engine's last report), decision history and sample requests."""
        try:
            client = normalize_client(ip)
        except DecisionError as exc:
            raise InvalidInput(str(exc)) from None
        decisions = self.ledger.list(client=client, limit=200).items
        top = self._status_doc(KEY_TOP_CLIENTS) or {}
        summary = next((i for i in top.get("items", []) if i.get("client") == client), None)
        samples = list((self._status_doc(KEY_SAMPLES) or {}).get(client, []))
        for d in decisions:
            samples.extend(_evidence_samples(d))
        if summary is None and not decisions and not samples:
            raise NotFound(f"nothing is known about client {client}")
        return {
            "client": client,
            "features": None if summary is None else _client_summary(summary)["features"],
            "decisions": decisions,
            "sample_requests": samples[:MAX_SAMPLES],
        }

    # -- status and metrics -----------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        engine_doc = self.ledger.get_status(KEY_ENGINE)
        enforcement = self._status_doc(KEY_ENFORCEMENT)
        body = engine_doc.document if engine_doc else {}
        ingest = body.get("ingest") or {}
        model = body.get("model") or {}
        return {
            "reported": engine_doc is not None,
            "message": None if engine_doc else NOT_REPORTED,
            "reported_at": engine_doc.updated_at if engine_doc else None,
            "report_age_s": self._age_s(engine_doc.updated_at) if engine_doc else None,
            "ingest_lag_s": ingest.get("lag_s"),
            "lines_per_s": ingest.get("lines_per_s"),
            "objects": ingest.get("objects"),
            "malformed": ingest.get("malformed"),
            "active_clients": body.get("active_clients"),
            "decisions_by_state": self.decisions_by_state(),
            "last_enforcement": _enforcement_summary(enforcement),
            "drift": None if enforcement is None else enforcement.get("drift"),
            "model_version": model.get("version"),
            "model_age_s": self._age_s(model.get("trained_at")),
        }

    def decisions_by_state(self) -> dict[str, int]:
        """Decision counts per state, reused for ``counts_ttl_s`` seconds.

        Status and metrics are polled (dashboards, Prometheus); counting a large ledger on
        every poll is the expensive part, so counts may lag the ledger by up to the TTL.
        This service's own approvals, rejections and revocations refresh them at once.
        """
        now = self.clock.monotonic()
        if self._counts is None or now - self._counts[0] >= self._counts_ttl_s:
            self._counts = (now, self.ledger.counts_by_state())
        return dict(self._counts[1])

    def metrics(self) -> dict[str, Any]:
        """Numbers for ``/metrics`` (None when the engine has not reported them)."""
        status = self.status()
        enforcement = status["last_enforcement"] or {}
        drift = status["drift"] or {}
        return {
            "decisions_by_state": status["decisions_by_state"],
            "ingest_lag_seconds": status["ingest_lag_s"],
            "lines_per_second": status["lines_per_s"],
            "objects_total": status["objects"],
            "malformed_total": status["malformed"],
            "active_clients": status["active_clients"],
            "enforcement_errors": enforcement.get("error_count"),
            "drift_items": len(drift.get("unresolved", [])) if drift else None,
            "model_age_seconds": status["model_age_s"],
            "status_age_seconds": status["report_age_s"],
        }

    def timeseries(self) -> dict[str, list[float]] | None:
        """Request rate and blocked / allowed rates over time, or None without data."""
        doc = self._status_doc(KEY_TRAFFIC)
        if not doc or len(doc.get("t", [])) < 2:
            return None
        interval = float(doc.get("interval_s") or 60.0)
        n = len(doc["t"])

        def rate(name: str) -> list[float]:
            values = list(doc.get(name) or [0] * n)[:n]
            return [float(v) / interval for v in values] + [0.0] * (n - len(values))

        return {
            "t": [float(t) for t in doc["t"]],
            "rps": rate("requests"),
            "blocked": rate("blocked"),
            "allowed": rate("allowed"),
        }

    def _status_doc(self, key: str) -> dict[str, Any] | None:
        found = self.ledger.get_status(key)
        return None if found is None else dict(found.document)

    def _age_s(self, when: datetime | str | None) -> float | None:
        if when is None:
            return None
        try:
            moment = when if isinstance(when, datetime) else _parse_iso(when)
        except ValueError:
            return None
        return max(0.0, (self.now() - moment).total_seconds())

    # -- rules, backtest, policy ------------------------------------------------------------

    def preview_rules(self) -> dict[str, Any]:
        """The compiled desired state of the enforceable decisions, and the dry-run plan."""
        decisions = self.ledger.enforceable(self.now())
        allowlist = [e.cidr for e in self.ledger.allowlist()]
        if self._previewer is None:
            return {
                "desired": None,
                "plan": None,
                "decisions": len(decisions),
                "notes": ["no rule compiler is configured for this service"],
            }
        return self._previewer(decisions, allowlist)

    def backtest(
        self, *, client: str | None = None, decision_id: str | None = None, hours: float = 24.0
    ) -> dict[str, Any]:
        """What a decision (or a draft rule for ``client``) would have matched recently."""
        if (client is None) == (decision_id is None):
            raise InvalidInput("give exactly one of client or decision_id")
        if decision_id is not None:
            target = self.get_decision(decision_id).decision
        else:
            try:
                target = normalize_client(str(client))
            except DecisionError as exc:
                raise InvalidInput(str(exc)) from None
        if self._backtester is None:
            label = target.client if isinstance(target, Decision) else target
            return {
                "client": label,
                "hours": hours,
                "requests": 0,
                "clients": 0,
                "benign_clients": 0,
                "notes": ["no request history is retained by this service"],
            }
        try:
            return self._backtester(target, hours=hours)
        except HistoryError as exc:
            raise InvalidInput(str(exc)) from None

    def get_policy(self) -> dict[str, Any]:
        return self.ledger.policy().model_dump(mode="json")

    def put_policy(self, document: dict[str, Any], *, by: str) -> dict[str, Any]:
        try:
            policy = Policy.model_validate({**document, "version": 0})
        except ValidationError as exc:
            raise InvalidInput(_validation_text(exc)) from None
        return self.ledger.set_policy(policy, by=by).model_dump(mode="json")

    def allowlist(self) -> list[AllowlistEntry]:
        return self.ledger.allowlist()

    def add_allowlist(self, cidr: str, *, by: str, comment: str | None = None) -> AllowlistEntry:
        try:
            entry = self.ledger.add_allowlist(cidr, by=by, comment=comment)
        except DecisionError as exc:
            raise _translate(exc) from None
        self._counts = None  # allowlisting rejects or revokes overlapping decisions
        return entry

    def remove_allowlist(self, cidr: str, *, by: str) -> None:
        try:
            self.ledger.remove_allowlist(cidr, by=by)
        except DecisionError as exc:
            raise _translate(exc) from None


class RulePreviewer:
    """Compiles enforceable decisions and, when AWS is configured, plans a dry-run cycle.

    ``planner`` takes the compiled ``DesiredState`` and returns the enforcer's dry-run
    result as a dict; without one the preview is the compiled document only, and says so.
    """

    def __init__(
        self,
        config: Any,
        *,
        clock: Clock,
        planner: Callable[[Any], dict[str, Any]] | None = None,
        no_plan_reason: str = "no AWS endpoint or web ACL is configured: compiled document only",
    ) -> None:
        self.config = config
        self.clock = clock
        self.planner = planner
        self.no_plan_reason = no_plan_reason

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> RulePreviewer:
        from engine.compiler import config_from_dict

        enforcement = settings.enforcement
        config = config_from_dict(
            {
                "scope": enforcement.scope,
                "count_only": enforcement.mode == "count_only",
                **enforcement.compiler,
            },
            source="enforcement.compiler",
        )
        if not (settings.aws.endpoint_url or config.placement.web_acl_name):
            return cls(config, clock=clock)
        from engine.enforcer import Boto3WafV2Api, Reconciler

        region = "us-east-1" if config.scope == "CLOUDFRONT" else settings.aws.region
        wafv2 = Boto3WafV2Api(region=region, endpoint_url=settings.aws.endpoint_url)
        reconciler = Reconciler(wafv2, clock=clock)
        return cls(config, clock=clock, planner=lambda state: reconciler.plan(state).to_dict())

    def __call__(self, decisions: list[Decision], allowlist: list[str]) -> dict[str, Any]:
        from engine.compiler import compile_state, validate, with_allowlist

        config = with_allowlist(self.config, allowlist)
        state = compile_state(decisions, config, self.clock.now())
        violations = validate(state)
        notes = [f"invalid: {v}" for v in violations]
        plan = None
        if violations:
            notes.append("the document is invalid, so it was not planned against AWS")
        elif self.planner is None:
            notes.append(self.no_plan_reason)
        else:
            plan = self.planner(state)
            notes.append(
                "dry-run plan against AWS: no calls were made"
                if plan.get("ok")
                else "the dry-run plan met errors reading AWS; see plan.errors"
            )
        return {
            "desired": state.to_dict(),
            "plan": plan,
            "decisions": len(decisions),
            "notes": notes,
        }


# -- helpers --------------------------------------------------------------------------------


def _identity(record: Any) -> Identity:
    return Identity(
        token_id=record.id, name=record.name, role=str(record.role), revoked=record.revoked
    )


def _client_summary(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "client": str(item.get("client", "")),
        "score": item.get("score"),
        "kind": item.get("kind"),
        "requests": item.get("requests"),
        "features": dict(item.get("features") or {}),
    }


def _evidence_samples(decision: Decision) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in decision.evidence:
        for key in ("sample_requests", "samples"):
            out.extend(s for s in item.get(key, []) if isinstance(s, dict))
    return out


def _enforcement_summary(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    errors = list(doc.get("errors") or [])
    return {
        "mode": doc.get("mode"),
        "ok": doc.get("ok"),
        "started_at": doc.get("started_at"),
        "finished_at": doc.get("finished_at"),
        "writes": doc.get("writes"),
        "error_count": len(errors),
        "errors": errors,
    }


def _parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone")
    return moment


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(policy)'}: {err['msg']}"
        for err in exc.errors()
    )


def _redact(url: str) -> str:
    """The URL without its password, for logs."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, user = head.partition("://")
    return f"{scheme}://{user.split(':')[0]}@{tail}"
