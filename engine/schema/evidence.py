"""The evidence sample record: one request a detector shows to justify its verdict.

The feature store keeps each client's most telling requests per minute; a detector attaches a
few of them to its ``ClientVerdict``, the decision keeps them in the ledger, and the status
API and dashboard show them to the analyst. Every hop carries this one record, so a reader
can never expect a shape the engine does not write.

Fields are the canonical request columns (``SAMPLE_COLUMNS``) a person needs to judge a
request, plus ``priority``: how telling the feature store found the request (higher is more;
evidence is ordered by it). The JSON form (``to_dict`` / ``from_dict``) is a flat object
keyed by those column names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from engine.schema.request import EVENT_TIME, METHOD, PATH, QUERY, STATUS, USER_AGENT

# The request columns an evidence sample keeps, in display order.
SAMPLE_COLUMNS = (EVENT_TIME, METHOD, PATH, QUERY, STATUS, USER_AGENT)
PRIORITY = "priority"


class EvidenceError(ValueError):
    """An evidence item that is not a sample request (wrong type, or none of its fields)."""


@dataclass(frozen=True, slots=True)
class EvidenceSample:
    """One sample request. Every field may be null: a log format may lack the column."""

    event_time: str | None = None  # ISO-8601 UTC text, e.g. "2026-03-02T10:03:39.328Z"
    method: str | None = None
    path: str | None = None
    query: str | None = None
    status: int | None = None  # what the client got
    user_agent: str | None = None
    priority: int | None = None  # how telling the feature store found it (higher is more)

    def __post_init__(self) -> None:
        texts = (self.event_time, self.method, self.path, self.query, self.user_agent)
        integers = (self.status, self.priority)
        if all(v is None or v.__class__ is str for v in texts) and all(
            v is None or v.__class__ is int for v in integers
        ):
            return  # the common case, checked cheaply: ledgers hold thousands of samples
        for name in _TEXT:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise EvidenceError(f"evidence {name} must be text, got {value!r}")
        for name in _INTEGER:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise EvidenceError(f"evidence {name} must be an integer, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvidenceSample:
        """Read the JSON form. A missing field reads as null, and keys this version does not
        know are ignored (a newer engine may keep more columns); an object with none of the
        sample's fields is refused rather than read as an empty sample."""
        if not isinstance(data, Mapping):
            raise EvidenceError(f"an evidence sample is a JSON object, got {data!r}")
        if data.keys().isdisjoint(FIELDS):
            raise EvidenceError(
                f"evidence item has none of the sample fields {list(FIELDS)}: {dict(data)!r}"
            )
        return cls(*map(data.get, FIELDS))

    @classmethod
    def coerce(cls, item: EvidenceSample | Mapping[str, Any]) -> EvidenceSample:
        """The record itself, or the record read from its JSON form."""
        return item if isinstance(item, EvidenceSample) else cls.from_dict(item)


FIELDS = tuple(f.name for f in fields(EvidenceSample))
_TEXT = (EVENT_TIME, METHOD, PATH, QUERY, USER_AGENT)
_INTEGER = (STATUS, PRIORITY)
