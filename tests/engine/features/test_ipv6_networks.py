"""IPv6 clients keyed by /64 (``features.ipv6_client_prefix``): a credential stuffer sending
every attempt from a new address of its /64 is one client and one /64 decision, compiled as
the /64; a household's devices sharing a /64 stay unblocked."""

from __future__ import annotations

from datetime import UTC, timedelta

from engine.compiler import compile_state
from engine.compiler.config import CompilerConfig
from engine.features.config import FeatureConfig
from engine.pipeline import AnalysisConfig, analyze_tables
from engine.schema.decision import Status
from tests.support.traffic import BROWSER_UAS, Traffic

ROTATOR = "2001:db8:1:1::/64"
HOUSEHOLD = "2001:db8:2:2::/64"


def traffic() -> Traffic:
    tr = Traffic(21)
    for i in range(30):
        tr.browser(f"198.51.100.{i + 1}", 0, 1200, pages=10, ua=BROWSER_UAS[i % 40])
    for i in range(300):  # one login attempt per address, all inside one /64
        tr.add(f"2001:db8:1:1:{i // 256:x}:{i % 256:x}:77:{i + 1:x}", 120 + 2 * i, "/login",
               method="POST", status=401)  # fmt: skip
    for d in range(4):  # four devices of one household
        tr.browser(f"2001:db8:2:2::{d + 10:x}", 0, 1200, pages=12, ua=BROWSER_UAS[d])
    return tr


def flagged(res) -> set[str]:
    return {c for d in res.decisions for c in (d.client, *d.members)}


def test_per_address_keys_block_the_rotator_address_by_address():
    res = analyze_tables([traffic().table()])
    rotated = {c for c in flagged(res) if c.startswith("2001:db8:1:1:")}
    assert ROTATOR not in flagged(res) and len(rotated) <= 300  # its next address walks in


def test_one_64_decision_for_the_rotator_and_none_for_the_household():
    cfg = AnalysisConfig(features=FeatureConfig(ipv6_client_prefix=64))
    res = analyze_tables([traffic().table()], cfg)
    assert flagged(res) == {ROTATOR}
    (decision,) = [d for d in res.decisions if d.client == ROTATOR]
    assert decision.detector == "credential_stuffing"
    assert HOUSEHOLD not in flagged(res)
    approved = decision.with_status(Status.APPROVED)
    now = approved.decided_at + timedelta(minutes=1)
    state = compile_state([approved], CompilerConfig(), now.astimezone(UTC))
    v6 = {a for s in state.ip_sets if s.ip_version == "IPV6" for a in s.addresses}
    assert v6 == {ROTATOR}
