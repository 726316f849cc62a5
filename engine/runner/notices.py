"""What the engine loop tells people: proposals that wait for an analyst, failed cycles.

The notifier (``engine.notify``) rate-limits and sends; this module decides what each event
says: one notice for the proposals held by the blast-radius guard (the urgent kind), one for
the others that wait for approval, one for an enforcement cycle that failed.
"""

from __future__ import annotations

from typing import Any

from engine.core.clock import Clock
from engine.enforcer import CycleResult
from engine.notify import Notice, NoticeKind
from engine.schema.decision import Decision, Status

# Held-reason prefixes of the policy's blast-radius guard (``engine.decisions.policy``).
GUARD_REASONS = ("blast-radius guard", "over max_new_entries_per_push")


class EngineNotices:
    """Turns the loop's events into notices; does nothing without a notifier."""

    def __init__(self, notifier: Any, *, clock: Clock, dashboard_url: str | None) -> None:
        self.notifier = notifier
        self.clock = clock
        self.dashboard_url = dashboard_url

    def held(self, held: list[Decision], reasons: dict[str, str]) -> None:
        """One notice for the proposals that now wait for an analyst (blast-radius holds
        apart: they are the urgent kind)."""
        if self.notifier is None:
            return
        waiting = [d for d in held if d.status is Status.PROPOSED]
        guarded = [d for d in waiting if reasons.get(str(d.id), "").startswith(GUARD_REASONS)]
        others = [d for d in waiting if d not in guarded]
        link = self._link("/dashboard/queue")
        if guarded:
            why = reasons.get(str(guarded[0].id), "")
            self.notifier.offer(
                Notice(
                    NoticeKind.BLAST_RADIUS_HOLD,
                    f"Blast-radius guard held {len(guarded)} proposal(s) for an analyst",
                    why,
                    self.clock.now(),
                    fields=sample_fields(guarded),
                    link=link,
                )
            )
        if others:
            self.notifier.offer(
                Notice(
                    NoticeKind.PROPOSAL_WAITING,
                    f"{len(others)} proposal(s) wait for approval",
                    "No auto-approve rule covers them; approve or reject them in the queue.",
                    self.clock.now(),
                    fields=sample_fields(others),
                    link=link,
                )
            )

    def enforcement_failed(self, result: CycleResult) -> None:
        if self.notifier is None:
            return
        first = result.errors[0].to_dict() if result.errors else {}
        self.notifier.offer(
            Notice(
                NoticeKind.ENFORCEMENT_FAILED,
                f"Enforcement cycle failed with {len(result.errors)} error(s)",
                str(first.get("message") or "see the status page"),
                self.clock.now(),
                fields={"mode": result.mode.value, "first error": first.get("code")},
                link=self._link("/dashboard"),
            )
        )

    def flush(self) -> None:
        if self.notifier is not None:
            self.notifier.flush()

    def _link(self, path: str) -> str | None:
        base = self.dashboard_url
        return None if not base else base.rstrip("/") + path


def sample_fields(decisions: list[Decision], shown: int = 5) -> dict[str, str]:
    """The first few decisions as "client": "action by detector (score)" fields."""
    return {
        d.client: f"{d.action.value} by {d.detector} (score {d.score:.2f})"
        for d in decisions[:shown]
    }


def one_line(error: Any) -> str:
    """An error (exception or the enforcer's error record) as one short line for the status."""
    text = str(error).strip().splitlines()
    return text[0][:300] if text else ""
