"""The notice record: what happened, in a line for humans and in fields for machines."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class NoticeKind(enum.StrEnum):
    PROPOSAL_WAITING = "proposal_waiting"
    BLAST_RADIUS_HOLD = "blast_radius_hold"
    ENFORCEMENT_FAILED = "enforcement_failed"


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing to tell an analyst. ``suppressed`` counts same-kind notices folded into it."""

    kind: NoticeKind
    title: str
    text: str
    at: datetime
    fields: dict[str, Any] = field(default_factory=dict)
    link: str | None = None
    suppressed: int = 0

    def headline(self) -> str:
        more = f" (and {self.suppressed} more since the last message)" if self.suppressed else ""
        return f"{self.title}{more}"

    def generic(self) -> dict[str, Any]:
        """The generic webhook / SNS body: every field, flat JSON."""
        return {
            "source": "wafsmith",
            "kind": self.kind.value,
            "title": self.title,
            "text": self.text,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "suppressed": self.suppressed,
            "link": self.link,
            "fields": self.fields,
        }

    def slack(self) -> dict[str, Any]:
        """A Slack incoming-webhook body (also read by Mattermost, Rocket.Chat, Teams' Slack
        connector): ``text`` as the fallback, one section block with the fields."""
        lines = [f"*{self.headline()}*", self.text]
        lines += [f"• {key}: {value}" for key, value in self.fields.items()]
        if self.link:
            lines.append(f"<{self.link}|Open in wafsmith>")
        body = "\n".join(lines)
        return {
            "text": f"[wafsmith] {self.headline()}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body}}],
        }
