"""Offline check of the rendered WAFv2 requests against botocore's own service model.

botocore's ``ParamValidator`` checks required members, types and minimums only; this module
runs it and then walks the same shapes for what it skips — ``max`` lengths and values,
``pattern`` and ``enum`` — so a request the model would refuse is caught before any call.
No network: the model ships inside botocore.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.validate import ParamValidator

from engine.compiler.violations import Violation
from engine.schema.rule import (
    DesiredState,
    ip_set_request,
    placeholder_arn,
    render_rules,
    rule_group_request,
)


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
        for i, item in enumerate(value):
            _walk(shape.member, item, f"{path}[{i}]", out)
        return
    if isinstance(shape, MapShape) and isinstance(value, dict):
        for key, item in value.items():
            _walk(shape.value, item, f"{path}[{key!r}]", out)
        return
    if isinstance(value, str) and shape.type_name == "string":
        if "max" in meta and len(value) > meta["max"]:
            out.append(Violation(path, value, f"at most {meta['max']} chars (model)"))
        if shape.enum and value not in shape.enum:
            out.append(Violation(path, value, f"one of {shape.enum} (model)"))
        pattern = _pattern(meta["pattern"]) if "pattern" in meta else None
        if pattern is not None and not pattern.search(value):
            out.append(Violation(path, value, f"pattern {meta['pattern']} (model)"))
    elif (
        isinstance(value, int)
        and shape.type_name in ("integer", "long")
        and "max" in meta
        and value > meta["max"]
    ):
        out.append(Violation(path, value, f"at most {meta['max']} (model)"))


def check_document(state: DesiredState) -> list[Violation]:
    """Model-check every request the enforcer would send for ``state`` (placeholder ARNs)."""
    out: list[Violation] = []
    for spec in state.ip_sets:
        out += check_request("CreateIPSet", ip_set_request(spec))
    if state.placement.mode == "rule_group":
        out += check_request("CreateRuleGroup", rule_group_request(state))
    else:
        params = {
            "Name": state.placement.web_acl_name or f"{state.owner_prefix}acl",
            "Scope": state.placement.scope,
            "Id": "00000000-0000-0000-0000-000000000000",
            "LockToken": "00000000-0000-0000-0000-000000000000",
            "DefaultAction": {"Allow": {}},
            "VisibilityConfig": {
                "SampledRequestsEnabled": True,
                "CloudWatchMetricsEnabled": True,
                "MetricName": "acl",
            },
            "Rules": render_rules(state),
        }
        out += check_request("UpdateWebACL", params)
    return out


__all__ = ["check_document", "check_request", "placeholder_arn"]
