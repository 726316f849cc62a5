"""Decisions: list and read them, move them through their life, count them per state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.decisions import AuditEvent, Page
from engine.schema.decision import Action, Decision, DecisionError, Status
from engine.service.base import ServiceBase
from engine.service.errors import InvalidInput, ServiceError, translate
from engine.service.inputs import checked_comment, checked_cursor, checked_id, checked_text

MANUAL_DETECTOR = "manual"  # the detector name of an analyst's own decision
MAX_REASON_CHARS = 500


@dataclass(frozen=True, slots=True)
class DecisionDetail:
    decision: Decision
    audit: list[AuditEvent]


class DecisionMethods(ServiceBase):
    """Reads and state moves of decisions; every move is audited with who made it."""

    _counts_ttl_s: float

    def list_decisions(
        self, *, state: Status | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[Decision]:
        try:
            return self.ledger.list(state=state, limit=limit, cursor=checked_cursor(cursor))
        except DecisionError as exc:
            raise translate(exc) from None

    def active_decisions(self) -> list[Decision]:
        """Approved or applied decisions not yet expired, soonest expiry first."""
        return sorted(self.ledger.enforceable(self.now()), key=lambda d: d.expires_at)

    def get_decision(self, decision_id: str) -> DecisionDetail:
        checked_id(decision_id)
        try:
            return DecisionDetail(self.ledger.get(decision_id), self.ledger.audit(decision_id))
        except DecisionError as exc:
            raise translate(exc) from None

    def approve(self, decision_id: str, *, by: str, comment: str | None = None) -> Decision:
        return self._move(self.ledger.approve, decision_id, by, comment)

    def reject(self, decision_id: str, *, by: str, comment: str | None = None) -> Decision:
        return self._move(self.ledger.reject, decision_id, by, comment)

    def revoke(self, decision_id: str, *, by: str, comment: str | None = None) -> Decision:
        return self._move(self.ledger.revoke, decision_id, by, comment)

    def add_manual(
        self, *, client: str, action: Action | str, ttl_s: int, reason: str, by: str
    ) -> Decision:
        """An analyst's own decision (a manual ban): proposed and approved by ``by``, both
        audited with that name and the reason.

        The TTL must be within the policy's ``max_ttl_s``. An open proposal for the same
        client and action merges into this one (the ledger's rule) and is approved with it;
        one already in force is returned as it is. When the approval is refused (an
        allowlisted client), the proposal is rejected again: nothing is left half-done.
        """
        reason = checked_text(reason.strip(), field="reason", max_chars=MAX_REASON_CHARS)
        if not reason:
            raise InvalidInput("a manual decision needs a reason")
        checked_text(client, field="client", max_chars=64)
        max_ttl = self.ledger.policy().max_ttl_s
        if not 0 < int(ttl_s) <= max_ttl:
            raise InvalidInput(f"ttl_s must be within 1..{max_ttl} (the policy's max_ttl_s)")
        try:
            proposal = Decision(
                client=client,
                action=Action(action),
                ttl_s=int(ttl_s),
                score=1.0,
                confidence=1.0,
                detector=MANUAL_DETECTOR,
                reasons=(f"manual: {reason}",),
                decided_at=self.now(),
            )
            stored = self.ledger.propose(proposal, by=by)
        except (DecisionError, ValueError) as exc:
            raise translate(exc) from None
        self._forget_counts()
        if stored.status is not Status.PROPOSED:
            return stored  # merged into a decision already in force
        try:
            return self.approve(str(stored.id), by=by, comment=reason)
        except ServiceError:
            self.reject(str(stored.id), by=by, comment="manual decision refused on approval")
            raise

    def held_by_guard(self, decisions: list[Decision]) -> set[str]:
        """Ids of the proposals an auto-approve rule covers yet still wait: the blast-radius
        guard (share of active clients, or entries per push) held them for an analyst."""
        policy = self.ledger.policy()
        return {
            str(d.id)
            for d in decisions
            if d.status is Status.PROPOSED and policy.rule_for(d) is not None
        }

    def mark_applied(self, decision_ids: list[str], *, by: str) -> list[Decision]:
        for decision_id in decision_ids:
            checked_id(decision_id)
        try:
            applied = self.ledger.mark_applied(decision_ids, by=by)
        except DecisionError as exc:
            raise translate(exc) from None
        self._forget_counts()
        return applied

    def _move(
        self, move: Callable[..., Decision], decision_id: str, by: str, comment: str | None
    ) -> Decision:
        checked_id(decision_id)
        try:
            decision = move(decision_id, by=by, comment=checked_comment(comment))
        except DecisionError as exc:
            raise translate(exc) from None
        self._forget_counts()
        return decision

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
