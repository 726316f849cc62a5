"""Reading the actual WAFv2 state the enforcer cares about, and recognising what it owns.

Ownership takes two marks (``engine.schema.requests``): the name carries the document's
``owner_prefix`` **and** the description carries ``OWNER_MARK`` followed by a digest of the
content wafsmith last wrote. An object with the prefix but not the mark is someone else's
(refused, reported as drift); an owned object whose content no longer matches its digest
was edited outside wafsmith.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.enforcer.aws_clients import WafV2Api
from engine.enforcer.calls import Caller
from engine.schema.requests import DIGEST_LENGTH, marked_digest


def canonical_cidr(entry: str) -> str:
    """``2001:DB8::1/128`` → ``2001:db8::1/128``; host bits are cleared; garbage is kept."""
    try:
        return str(ipaddress.ip_network(entry.strip(), strict=False))
    except ValueError:
        return entry


def canonical_addresses(entries: Iterable[str]) -> frozenset[str]:
    return frozenset(canonical_cidr(e) for e in entries)


def aligned(raw: frozenset[str], other: frozenset[str]) -> frozenset[str]:
    """``raw`` in canonical spelling, parsing only entries that ``other`` lacks verbatim.

    Entries both sides spell identically need no parsing; so comparing a 10,000-entry set
    that changed by 1 % costs ~100 parses instead of 20,000.
    """
    strangers = raw - other
    if not strangers:
        return raw
    return (raw & other) | canonical_addresses(strangers)


def sorted_addresses(entries: Iterable[str]) -> list[str]:
    """A deterministic order for requests and digests (plain string order: cheap)."""
    return sorted(entries)


def _json_default(value: Any) -> Any:
    # boto3 hands blobs (ByteMatch SearchString) back as bytes; the compiler writes str.
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def digest_of(content: Any) -> str:
    """``DIGEST_LENGTH`` hex chars of SHA-256 over the canonical JSON of ``content``."""
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(blob.encode()).hexdigest()[:DIGEST_LENGTH]


def _trim(value: Any) -> Any:
    # Drop None and [] members AWS may echo as defaults; keep {} (``{"Block": {}}`` matters).
    if isinstance(value, dict):
        return {k: _trim(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [_trim(v) for v in value]
    return value


def canonical_rule(rule: dict[str, Any]) -> str:
    """A rule as comparable text: sorted keys, ``None``/``[]`` defaults dropped at any depth,
    blobs (bytes from boto3, str from the compiler) compared as text."""
    return json.dumps(_trim(rule), sort_keys=True, separators=(",", ":"), default=_json_default)


@dataclass
class ActualIPSet:
    name: str
    id: str
    arn: str
    description: str
    lock_token: str
    ip_version: str = ""
    addresses: frozenset[str] | None = None  # None until GetIPSet was called

    @property
    def owned_digest(self) -> str | None:
        return marked_digest(self.description)


@dataclass
class ActualRuleGroup:
    name: str
    id: str
    arn: str
    description: str
    lock_token: str
    capacity: int = 0
    rules: list[dict[str, Any]] | None = None
    visibility: dict[str, Any] | None = None


@dataclass
class ActualWebAcl:
    name: str
    id: str
    arn: str
    lock_token: str
    body: dict[str, Any] = field(default_factory=dict)


def _paginate(caller: Caller, op: str, fn: Any, key: str, **kw: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    marker: str | None = None
    while True:
        args = dict(kw, Limit=100)
        if marker:
            args["NextMarker"] = marker
        reply = caller.read(op, fn, **args)
        items.extend(reply.get(key, []))
        marker = reply.get("NextMarker")
        if not marker or not reply.get(key):
            return items


def list_ip_sets(api: WafV2Api, caller: Caller, scope: str) -> list[ActualIPSet]:
    rows = _paginate(caller, "ListIPSets", api.list_ip_sets, "IPSets", Scope=scope)
    return [
        ActualIPSet(r["Name"], r["Id"], r["ARN"], r.get("Description", ""), r.get("LockToken", ""))
        for r in rows
    ]


def fetch_ip_set(api: WafV2Api, caller: Caller, scope: str, item: ActualIPSet) -> ActualIPSet:
    """Fill addresses, version, description and a fresh LockToken (GetIPSet)."""
    reply = caller.read("GetIPSet", api.get_ip_set, Name=item.name, Scope=scope, Id=item.id)
    body = reply["IPSet"]
    item.addresses = frozenset(body.get("Addresses", []))  # as AWS spells them; see aligned()
    item.ip_version = body.get("IPAddressVersion", "")
    item.description = body.get("Description", "") or ""
    item.lock_token = reply["LockToken"]
    return item


def list_rule_groups(api: WafV2Api, caller: Caller, scope: str) -> list[ActualRuleGroup]:
    rows = _paginate(caller, "ListRuleGroups", api.list_rule_groups, "RuleGroups", Scope=scope)
    return [
        ActualRuleGroup(
            r["Name"], r["Id"], r["ARN"], r.get("Description", ""), r.get("LockToken", "")
        )
        for r in rows
    ]


def fetch_rule_group(
    api: WafV2Api, caller: Caller, scope: str, item: ActualRuleGroup
) -> ActualRuleGroup:
    reply = caller.read("GetRuleGroup", api.get_rule_group, Name=item.name, Scope=scope, Id=item.id)
    body = reply["RuleGroup"]
    item.rules = list(body.get("Rules", []))
    item.capacity = int(body.get("Capacity", 0))
    item.description = body.get("Description", "") or ""
    item.visibility = body.get("VisibilityConfig")
    item.lock_token = reply["LockToken"]
    return item


def find_web_acl(api: WafV2Api, caller: Caller, scope: str, name: str) -> ActualWebAcl | None:
    rows = _paginate(caller, "ListWebACLs", api.list_web_acls, "WebACLs", Scope=scope)
    for row in rows:
        if row["Name"] == name:
            return fetch_web_acl(
                api, caller, scope, ActualWebAcl(row["Name"], row["Id"], row["ARN"], "")
            )
    return None


def fetch_web_acl(api: WafV2Api, caller: Caller, scope: str, item: ActualWebAcl) -> ActualWebAcl:
    reply = caller.read("GetWebACL", api.get_web_acl, Name=item.name, Scope=scope, Id=item.id)
    item.body = reply["WebACL"]
    item.lock_token = reply["LockToken"]
    return item
