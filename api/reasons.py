"""Reasons as an analyst reads them: what fired first, in plain words; what was only checked
folded away; sketch estimates as "≈ 26" rather than "25.95".

Detectors write each reason as ``[detector/kind score] <measure> (threshold <t>)``. A reason
whose measure reaches its threshold (or stays under it, for ``threshold ≤``) *fired*; one that
did not was only *checked* (a detector lists its quiet checks too). Reasons without a
threshold are context ("campaign decision over 22 addresses") and count as fired. This is
presentation only: the stored reasons are never changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TAG = re.compile(r"^\[(?P<tag>[^\]]+)\]\s*")
_NUMBER = r"(\d+(?:\.\d+)?)"
_THRESHOLD = re.compile(r"thresholds?\s+(?P<name>[a-z]\w*\s+)?(?P<op>[≥≤<>]=?\s*)?" + _NUMBER)
_THRESHOLDS = re.compile(r"thresholds\s+" + _NUMBER + r",\s*" + _NUMBER)
_PAREN_VALUE = re.compile(r"\(\s*" + _NUMBER + r"[^;()]*;\s*thresholds?\b")
# A fractional count of distinct things is a sketch's estimate (HyperLogLog and kin).
_ESTIMATE = re.compile(r"\b(\d+\.\d+)(?= distinct\b)")
SATURATED = "(saturated)"


@dataclass(frozen=True, slots=True)
class ReadReason:
    text: str  # plain words, estimates as "≈ 26"
    fired: bool
    source: str | None  # the detector tag, e.g. "scanner/vulnerability_scanner 0.91"


def read_reason(raw: str) -> ReadReason:
    tag = _TAG.match(raw)
    body = raw[tag.end() :] if tag else raw
    return ReadReason(
        text=plain_numbers(body), fired=_fired(body), source=tag.group("tag") if tag else None
    )


def split_reasons(
    reasons: list[str] | tuple[str, ...],
) -> tuple[list[ReadReason], list[ReadReason]]:
    """(fired, checked): each in the detector's order."""
    read = [read_reason(r) for r in reasons]
    return [r for r in read if r.fired], [r for r in read if not r.fired]


def plain_numbers(text: str) -> str:
    """Sketch estimates as "≈ 26" ("≥ 16" when the text says the sketch saturated)."""
    saturated = SATURATED in text
    text = text.replace(f" {SATURATED}", "").replace(SATURATED, "")
    mark = "≥" if saturated else "≈"
    return _ESTIMATE.sub(lambda m: f"{mark} {round(float(m.group(1)))}", text)


def _fired(body: str) -> bool:
    pair = _THRESHOLDS.search(body)
    if pair:
        values = [float(v) for v in re.findall(_NUMBER, body[: pair.start()])][:2]
        limits = [float(pair.group(1)), float(pair.group(2))]
        return len(values) == 2 and all(v >= t for v, t in zip(values, limits, strict=True))
    found = _THRESHOLD.search(body)
    if not found:
        return True  # context, not a check
    limit = float(found.group(3))
    op = (found.group("op") or "≥").strip()
    value = _measured(body, found)
    if value is None:
        return True
    return value <= limit if op.startswith(("≤", "<")) else value >= limit


def _measured(body: str, threshold: re.Match[str]) -> float | None:
    """The measure the threshold applies to: a named one (``z = 16.9``), the number the
    parenthesis opens with (``(106.40/min; threshold ...``), else the first number."""
    name = (threshold.group("name") or "").strip()
    if name:
        named = re.search(rf"\b{re.escape(name)}\s*=\s*{_NUMBER}", body)
        if named:
            return float(named.group(1))
    paren = _PAREN_VALUE.search(body)
    if paren and paren.end() >= threshold.start():
        return float(paren.group(1))
    first = re.search(_NUMBER, body[: threshold.start()])
    return None if first is None else float(first.group(1))
