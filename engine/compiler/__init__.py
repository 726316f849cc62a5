"""Rule compiler: approved decisions + config → validated desired WAF state (pure).

Public API::

    config = load_config("enforcement.toml")          # or CompilerConfig(...)
    state = compile_state(decisions, config, now)      # DesiredState (engine.schema.rule),
                                                       # its WAFv2 requests rendered
    validate_or_raise(state)                           # DocumentInvalid lists violations
    check_document(state)                              # botocore-model check, offline
    rendered(state)                                    # a hand-built state, requests rendered
"""

from engine.compiler.compile import compile_state, enforced_decision_ids
from engine.compiler.config import CompilerConfig, config_from_dict, load_config, with_allowlist
from engine.compiler.modelcheck import check_document
from engine.compiler.render import render_requests, rendered
from engine.compiler.validate import estimate_wcu, validate, validate_or_raise
from engine.compiler.violations import DocumentInvalid, Violation

__all__ = [
    "CompilerConfig",
    "DocumentInvalid",
    "Violation",
    "check_document",
    "compile_state",
    "config_from_dict",
    "enforced_decision_ids",
    "estimate_wcu",
    "load_config",
    "render_requests",
    "rendered",
    "validate",
    "validate_or_raise",
    "with_allowlist",
]
