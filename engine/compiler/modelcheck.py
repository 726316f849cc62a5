"""Offline check of the rendered WAFv2 requests against botocore's own service model.

botocore's ``ParamValidator`` checks required members, types and minimums only; this module
runs it and then walks the same shapes for what it skips — ``max`` lengths and values,
``pattern`` and ``enum`` — so a request the model would refuse is caught before any call.
No network: the model ships inside botocore.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.validate import ParamValidator

from engine.compiler.violations import Violation
from engine.schema.requests import (
    PLACEHOLDER_ID,
    PLACEHOLDER_LOCK_TOKEN,
    ip_set_update,
    rule_group_update,
)
from engine.schema.rule import DesiredState


@functools.cache
def _wafv2_model() -> Any:
    return botocore.session.get_session().get_service_model("wafv2")


@functools.cache
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:  # Java-only syntax such as \p{L}: leave it to the server
        return None


def check_request(operation: str, params: dict[str, Any]) -> list[Violation]:
    """Violations of one operation's input shape by ``params``."""
    shape = _wafv2_model().operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    out = []
    if report.has_errors():
        out += [
            Violation(operation, "", line.strip())
            for line in report.generate_report().splitlines()
            if line.strip()
        ]
    _walk(shape, params, operation, out)
    return out


def _walk(shape: Shape, value: Any, path: str, out: list[Violation]) -> None:
    meta = shape.metadata
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for key, member in value.items():
            if key in shape.members:
                _walk(shape.members[key], member, f"{path}.{key}", out)
        return
    if isinstance(shape, ListShape) and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            out.append(Violation(path, len(value), f"at most {meta['max']} items (model)"))
        if shape.member.type_name == "string":  # e.g. 10,000 addresses: rules looked up once
            check = _string_check(shape.member)
            for i, item in enumerate(value):
                problems = check(item) if isinstance(item, str) else None
                if problems:
                    out += [Violation(f"{path}[{i}]", item, rule) for rule in problems]
            return
        for i, item in enumerate(value):
            _walk(shape.member, item, f"{path}[{i}]", out)
        return
    if isinstance(shape, MapShape) and isinstance(value, dict):
        for key, item in value.items():
            _walk(shape.value, item, f"{path}[{key!r}]", out)
        return
    if isinstance(value, str) and shape.type_name == "string":
        out += [Violation(path, value, rule) for rule in _string_check(shape)(value)]
    elif (
        isinstance(value, int)
        and shape.type_name in ("integer", "long")
        and "max" in meta
        and value > meta["max"]
    ):
        out.append(Violation(path, value, f"at most {meta['max']} (model)"))


def _string_check(shape: Shape) -> Callable[[str], list[str]]:
    """A function saying what the model's ``max``, ``enum`` and ``pattern`` find wrong with
    a string of ``shape``."""
    meta = shape.metadata
    longest = meta.get("max")
    enum = frozenset(shape.enum or ())
    pattern = _pattern(meta["pattern"]) if "pattern" in meta else None

    def check(value: str) -> list[str]:
        if (
            (longest is None or len(value) <= longest)
            and (not enum or value in enum)
            and (pattern is None or pattern.search(value))
        ):
            return []  # the common case, decided without building anything
        problems = []
        if longest is not None and len(value) > longest:
            problems.append(f"at most {longest} chars (model)")
        if enum and value not in enum:
            problems.append(f"one of {shape.enum} (model)")
        if pattern is not None and not pattern.search(value):
            problems.append(f"pattern {meta['pattern']} (model)")
        return problems

    return check


def check_document(state: DesiredState) -> list[Violation]:
    """Model-check every request the enforcer sends for ``state``: each IP set's create and
    update, the rule group's create and update, and the web ACL update carrying the engine's
    rules. Placeholders stand for ARNs, ids, lock tokens and the ownership digest, with the
    length and form of the real values. A member an update shares with its create is
    reported once."""
    requests = state.requests
    if requests is None:
        return [Violation("requests", None, "no rendered requests; compile the document")]
    ids = {"id": PLACEHOLDER_ID, "lock_token": PLACEHOLDER_LOCK_TOKEN}
    out: list[Violation] = []
    for body in requests.ip_sets:
        out += _create_and_update("IPSet", body, ip_set_update(body, **ids))
    if requests.rule_group is not None:
        group = requests.rule_group
        out += _create_and_update("RuleGroup", group, rule_group_update(group, **ids))
    params = {
        "Name": state.placement.web_acl_name or f"{state.owner_prefix}acl",
        "Scope": state.placement.scope,
        "Id": PLACEHOLDER_ID,
        "LockToken": PLACEHOLDER_LOCK_TOKEN,
        "DefaultAction": {"Allow": {}},
        "VisibilityConfig": {
            "SampledRequestsEnabled": True,
            "CloudWatchMetricsEnabled": True,
            "MetricName": "acl",
        },
        "Rules": list(requests.web_acl_rules),
    }
    out += check_request("UpdateWebACL", params)
    return out


def _create_and_update(
    kind: str, create: dict[str, Any], update: dict[str, Any]
) -> list[Violation]:
    """Violations of ``Create<kind>`` and of ``Update<kind>``, less the update's repeats of
    the create's (the members they share)."""
    created = check_request(f"Create{kind}", create)
    seen = {_member(v) for v in created}
    return created + [v for v in check_request(f"Update{kind}", update) if _member(v) not in seen]


def _member(v: Violation) -> tuple[str, str, str]:
    """A violation without its operation name (``CreateIPSet.Name`` → ``Name``)."""
    return (v.field.partition(".")[2], repr(v.value), v.rule)


__all__ = ["check_document", "check_request"]
