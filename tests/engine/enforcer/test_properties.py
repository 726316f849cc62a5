"""Property: whatever sequence of desired states arrives, each cycle leaves AWS equal to it,
and a repeated cycle makes no write (moto over HTTP; few examples, each one a fresh account)."""

from __future__ import annotations

import urllib.request

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.clock import FakeClock
from engine.enforcer import Boto3WafV2Api, CallPolicy, Reconciler
from engine.schema.decision import Action
from tests.support.waf import (
    FOREIGN_RULES,
    WEB_ACL,
    acl_body,
    compile_doc,
    decisions,
    ip_set_contents,
    v4_addresses,
    v6_addresses,
    vis,
)

POOL = v4_addresses(40) + v6_addresses(20)
ACTIONS = [Action.BLOCK, Action.CAPTCHA, Action.CHALLENGE]

documents = st.lists(
    st.dictionaries(st.sampled_from(POOL), st.sampled_from(ACTIONS), max_size=30),
    min_size=1,
    max_size=3,
)


def _fresh_account(endpoint: str, wafv2) -> None:
    req = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    wafv2.create_web_acl(
        Name=WEB_ACL,
        Scope="REGIONAL",
        DefaultAction={"Allow": {}},
        VisibilityConfig=vis(WEB_ACL),
        Rules=FOREIGN_RULES,
    )


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=documents)
def test_every_cycle_converges_and_repeats_are_free(moto_server, wafv2, boto_session, sequence):
    _fresh_account(moto_server, wafv2)
    clock = FakeClock()
    api = Boto3WafV2Api(endpoint_url=moto_server, max_attempts=1, session=boto_session)
    rec = Reconciler(api, clock=clock, policy=CallPolicy(clock))
    for chosen in sequence:
        decs = [
            d
            for action in ACTIONS
            for d in decisions([c for c, a in sorted(chosen.items()) if a is action], action)
        ]
        doc = compile_doc(decs)
        result = rec.run_cycle(doc)
        assert result.ok, result.errors
        contents = ip_set_contents(wafv2)
        assert contents == {s.name: set(s.addresses) for s in doc.ip_sets}
        assert rec.run_cycle(doc).writes == 0
        foreign = [r for r in acl_body(wafv2)["Rules"] if not r["Name"].startswith("wafsmith-")]
        assert [r["Name"] for r in foreign] == [r["Name"] for r in FOREIGN_RULES]
