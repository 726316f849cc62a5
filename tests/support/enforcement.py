"""Shared set-up of the enforcement tests (enforce-once, lease fencing): a ledger holding
approved block decisions, the settings naming the test web ACL, and one enforcement cycle."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from engine.core.clock import FakeClock
from engine.core.lease import Fence
from engine.decisions.ledger import Ledger
from engine.enforcement import compiler_config, enforce_once, reconciler_from_settings
from engine.enforcer import Mode
from engine.schema.decision import Action, Decision
from engine.settings import Settings
from tests.support.waf import NOW, WEB_ACL


@contextmanager
def approved_blocks(url: str, clients: Iterable[str], detector: str = "test") -> Iterator[Ledger]:
    """A ledger at ``url`` holding one approved hour-long block per client, decided at NOW."""
    with Ledger.open(url, clock=FakeClock(NOW)) as opened:
        for client in clients:
            stored = opened.propose(
                Decision(
                    client=client,
                    action=Action.BLOCK,
                    ttl_s=3600,
                    score=0.9,
                    detector=detector,
                    decided_at=NOW,
                )
            )
            assert stored.id is not None
            opened.approve(stored.id, by="analyst@example.com")
        yield opened


def enforcement_settings(endpoint: str, **enforcement: object) -> Settings:
    """Settings pointing at the AWS endpoint and the test web ACL, plus ``enforcement`` keys."""
    return Settings(
        aws={"endpoint_url": endpoint}, enforcement={"web_acl_name": WEB_ACL, **enforcement}
    )


def enforce_cycle(
    ledger: Ledger,
    settings: Settings,
    clock: FakeClock,
    mode: Mode = Mode.ENFORCE,
    fence: Fence | None = None,
    **reconciler: Any,
):
    """One ``enforce_once`` cycle at NOW over the ledger's enforceable decisions."""
    built = reconciler_from_settings(settings, clock=clock, fence=fence, **reconciler)
    assert built is not None
    return enforce_once(
        ledger.enforceable(NOW),
        config=compiler_config(settings),
        reconciler=built,
        mode=mode,
        now=NOW,
        ledger=ledger,
        fence=fence,
    )
