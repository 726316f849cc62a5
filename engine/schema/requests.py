"""The exact WAFv2 requests a desired state stands for, as the compiler rendered them.

``WafRequests`` holds the request bodies in boto3's terms: ``CreateIPSet`` per IP set,
``CreateRuleGroup`` for the engine's group (``placement.mode="rule_group"``) and the engine's
rules as they go into the web ACL (the group reference, or every rule in ``web_acl`` mode).
The compiler cannot know what AWS assigns or what the enforcer last wrote, so exactly these
parts are placeholders:

- ARNs: ``placeholder_arn(name, scope, kind)`` (account 000000000000) for each referenced IP
  set and for the rule group; the enforcer substitutes the real ones (``with_arns``);
- the ownership mark: descriptions end in ``OWNER_MARK`` + ``PLACEHOLDER_DIGEST``; the
  enforcer writes the digest of what it sends in its place (``with_digest``);
- updates: ``ip_set_update``/``rule_group_update`` turn a create request into the update of
  an existing object (the members only a create takes go, its Id and LockToken come in).

So the requests the validator and the botocore model check examine are the requests sent.
Ownership takes two marks: the name carries the owner prefix **and** the description carries
the mark with the digest of the content wafsmith last wrote (``marked_digest``); an object
with the prefix but not the mark is someone else's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.schema.waf_limits import MAX_DESCRIPTION_LENGTH

OWNER_MARK = "wafsmith-digest="
OWNER_TAG_KEY = "wafsmith:owner"
DIGEST_LENGTH = 16
PLACEHOLDER_DIGEST = "0" * DIGEST_LENGTH
PLACEHOLDER_ACCOUNT = "000000000000"
PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_LOCK_TOKEN = "00000000-0000-0000-0000-000000000000"
IP_SET_CREATE_ONLY = ("IPAddressVersion", "Tags")
RULE_GROUP_CREATE_ONLY = ("Capacity", "Tags")

_DIGEST_RE = re.compile(rf"[0-9a-f]{{{DIGEST_LENGTH}}}")
_MARK_RE = re.compile(re.escape(OWNER_MARK) + f"({_DIGEST_RE.pattern})")
_PLACEHOLDER_PREFIX = f"arn:aws:wafv2:us-east-1:{PLACEHOLDER_ACCOUNT}:"


class UnresolvedPlaceholder(ValueError):
    """A request still holds a placeholder the enforcer had no value for."""


def placeholder_arn(name: str, scope: str, kind: str = "ipset") -> str:
    """A valid-looking ARN standing for the object AWS has not named yet."""
    space = "global" if scope == "CLOUDFRONT" else "regional"
    return f"{_PLACEHOLDER_PREFIX}{space}/{kind}/{name}/{PLACEHOLDER_ID}"


def is_placeholder_arn(text: str) -> bool:
    return text.startswith(_PLACEHOLDER_PREFIX)


def with_arns(value: Any, arns: Mapping[str, str]) -> Any:
    """A copy of the JSON ``value`` with each placeholder ARN replaced by ``arns[placeholder]``;
    raises ``UnresolvedPlaceholder`` for one ``arns`` lacks. Nothing else changes."""
    if isinstance(value, dict):
        return {k: with_arns(v, arns) for k, v in value.items()}
    if isinstance(value, list):
        return [with_arns(v, arns) for v in value]
    if isinstance(value, str) and is_placeholder_arn(value):
        if value not in arns:
            raise UnresolvedPlaceholder(f"no ARN is known for {value}")
        return arns[value]
    return value


def owned_description(base: str, digest: str = PLACEHOLDER_DIGEST) -> str:
    """``base`` plus the ownership mark and ``digest``, within WAFv2's 256-character limit."""
    suffix = f" {OWNER_MARK}{digest}"
    head = " ".join(base.split())[: MAX_DESCRIPTION_LENGTH - len(suffix)].rstrip() or "wafsmith"
    return head + suffix


def marked_digest(description: str | None) -> str | None:
    """The digest in an owned description, or None when the mark is absent."""
    match = _MARK_RE.search(description or "")
    return match.group(1) if match else None


def with_digest(description: str, digest: str) -> str:
    """``description`` whose ownership mark carries ``digest`` (same length, so what was
    validated with the placeholder is what is sent)."""
    if not _DIGEST_RE.fullmatch(digest):
        raise ValueError(f"a digest is {DIGEST_LENGTH} hex characters, got {digest!r}")
    marked, count = _MARK_RE.subn(OWNER_MARK + digest, description, count=1)
    if not count:
        raise UnresolvedPlaceholder(f"description {description!r} carries no ownership mark")
    return marked


def ip_set_update(create: Mapping[str, Any], *, id: str, lock_token: str) -> dict[str, Any]:
    """``UpdateIPSet`` parameters for the set ``create`` made (add the digest and addresses)."""
    return _update(create, IP_SET_CREATE_ONLY, id, lock_token)


def rule_group_update(create: Mapping[str, Any], *, id: str, lock_token: str) -> dict[str, Any]:
    """``UpdateRuleGroup`` parameters for the group ``create`` made (capacity is immutable)."""
    return _update(create, RULE_GROUP_CREATE_ONLY, id, lock_token)


def _update(
    create: Mapping[str, Any], create_only: tuple[str, ...], id: str, lock_token: str
) -> dict[str, Any]:
    body = {k: v for k, v in create.items() if k not in create_only}
    body["Id"] = id
    body["LockToken"] = lock_token
    return body


@dataclass(frozen=True, slots=True)
class WafRequests:
    """The rendered requests of one desired state (see the module docstring). Treat the
    bodies as read-only: the enforcer sends filled-in copies."""

    ip_sets: tuple[dict[str, Any], ...] = ()  # CreateIPSet parameters, ordered by name
    rule_group: dict[str, Any] | None = None  # CreateRuleGroup parameters, or None
    web_acl_rules: tuple[dict[str, Any], ...] = ()  # the engine's rules in the web ACL

    def __post_init__(self) -> None:
        object.__setattr__(self, "ip_sets", tuple(self.ip_sets))
        object.__setattr__(self, "web_acl_rules", tuple(self.web_acl_rules))

    @property
    def rules(self) -> list[dict[str, Any]]:
        """The engine's own rules (in its rule group, or straight in the web ACL)."""
        if self.rule_group is not None:
            return list(self.rule_group["Rules"])
        return list(self.web_acl_rules)

    def ip_set(self, name: str) -> dict[str, Any]:
        for body in self.ip_sets:
            if body["Name"] == name:
                return body
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ip_sets": list(self.ip_sets),
            "rule_group": self.rule_group,
            "web_acl_rules": list(self.web_acl_rules),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WafRequests:
        if not isinstance(data, dict):
            raise ValueError(f"WafRequests: expected an object, got {type(data).__name__}")
        unknown = set(data) - {"ip_sets", "rule_group", "web_acl_rules"}
        if unknown:
            raise ValueError(f"WafRequests: unknown field(s) {sorted(unknown)}")
        return cls(
            ip_sets=tuple(data.get("ip_sets", ())),
            rule_group=data.get("rule_group"),
            web_acl_rules=tuple(data.get("web_acl_rules", ())),
        )
