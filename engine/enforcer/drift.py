"""The drift report: what in AWS differs from the desired state, and why.

Each item names the resource, what differs and the likely cause:

- ``missing``           — a desired resource is absent (never created, deleted out of band,
                          or its create failed last cycle);
- ``manual_edit``       — an engine-owned object's content no longer matches the digest
                          wafsmith wrote into its description: someone edited it;
- ``pending_change``    — the desired state moved (new or expired decisions) and the object
                          still holds what wafsmith last wrote;
- ``stale``             — an engine-owned object no longer desired, awaiting deletion;
- ``name_conflict``     — a foreign object carries a name the engine needs (refused);
- ``priority_conflict`` — a foreign rule sits where an engine rule must go (refused);
- ``failed_call``       — the previous cycle failed on this resource;
- ``shield``            — Shield subscription, protection or automatic response differs.

The record is JSON-serialisable (``to_dict``) so the status API can expose it as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CAUSES = (
    "missing",
    "manual_edit",
    "pending_change",
    "stale",
    "name_conflict",
    "priority_conflict",
    "failed_call",
    "shield",
)


@dataclass(frozen=True)
class DriftItem:
    resource: str  # e.g. "ipset/wafsmith-block-ipv4-0", "webacl/prod", "shield/<arn>"
    cause: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cause not in CAUSES:
            raise ValueError(f"unknown drift cause {self.cause!r}; known: {CAUSES}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "cause": self.cause,
            "detail": self.detail,
            "data": self.data,
        }


@dataclass
class DriftReport:
    """Drift found when the cycle read AWS, and what is still unresolved after it ran."""

    checked_at: str
    found: list[DriftItem] = field(default_factory=list)
    unresolved: list[DriftItem] = field(default_factory=list)

    def add(self, resource: str, cause: str, detail: str, **data: Any) -> None:
        self.found.append(DriftItem(resource, cause, detail, data))

    @property
    def in_sync(self) -> bool:
        return not self.unresolved

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at,
            "in_sync": self.in_sync,
            "found": [d.to_dict() for d in self.found],
            "unresolved": [d.to_dict() for d in self.unresolved],
        }
