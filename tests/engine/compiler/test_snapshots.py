"""Snapshot tests: compiled documents and rendered WAFv2 rules, byte for byte.

A change to the compiler that changes a document shows up here as a diff to review. After
an intended change, regenerate explicitly:

    WAFSMITH_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/engine/compiler/test_snapshots.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.compiler import CompilerConfig, compile_state, load_config, validate
from engine.schema.rule import DesiredState
from tests.support.compiler import NOW, make_decision

SNAPSHOTS = Path(__file__).parent / "snapshots"
EXAMPLE_CONFIG = Path(__file__).parents[3] / "data" / "config" / "example-enforcement.toml"


def mixed_decisions():
    return [
        *(make_decision(f"192.0.2.{i}", score=0.5 + i / 100) for i in range(6)),
        make_decision("198.51.100.0/24", "challenge", members=("198.51.100.7", "198.51.100.8")),
        make_decision("203.0.113.0/24", score=0.7),
        make_decision("2001:db8::1", "captcha", score=0.6),
        make_decision("2001:db8::2", "captcha", score=0.6),
        make_decision("2001:db8:1::/64", "block", score=0.95),
        make_decision("192.0.2.200", "rate_limit", score=0.4),
        make_decision("192.0.2.3", "count", score=0.3),  # superseded by the block
        make_decision("192.0.2.99", age_s=7200, ttl_s=3600),  # expired
    ]


CASES = {
    "default": lambda: compile_state(mixed_decisions(), CompilerConfig(), NOW),
    "example_config": lambda: compile_state(mixed_decisions(), load_config(EXAMPLE_CONFIG), NOW),
    "allowlist_budget_count_only": lambda: compile_state(
        mixed_decisions(),
        CompilerConfig(allowlist=["203.0.113.128/25"], max_entries=5, count_only=True),
        NOW,
    ),
    "web_acl_mode": lambda: compile_state(
        mixed_decisions(),
        CompilerConfig(
            placement={
                "mode": "web_acl",
                "web_acl_name": "site",
                "priority_min": 1000,
                "priority_max": 1099,
            },
            rate_limits=[
                {
                    "name": "fwd",
                    "limit": 500,
                    "aggregate": "FORWARDED_IP",
                    "forwarded_ip_header": "X-Forwarded-For",
                    "window_s": 120,
                }
            ],
        ),
        NOW,
    ),
}


def snapshot_text(state: DesiredState) -> str:
    assert state.requests is not None
    doc = {"document": state.to_dict(), "rendered_rules": state.requests.rules}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


@pytest.mark.parametrize("case", sorted(CASES))
def test_snapshot(case):
    state = CASES[case]()
    assert validate(state) == []
    text = snapshot_text(state)
    path = SNAPSHOTS / f"{case}.json"
    if os.environ.get("WAFSMITH_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing snapshot {path}; run with WAFSMITH_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8"), f"{case} differs from {path.name}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_snapshot_round_trips(case):
    stored = json.loads((SNAPSHOTS / f"{case}.json").read_text(encoding="utf-8"))
    assert DesiredState.from_dict(stored["document"]) == CASES[case]()
