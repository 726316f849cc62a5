"""Random sequences of analyst, enforcer and clock actions keep the ledger consistent.

A Hypothesis state machine drives a SQLite ledger and a plain-Python model side by side:
statuses, audit-trail lengths and the enforceable set must agree after every step.
"""

from __future__ import annotations

import itertools
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from engine.core.clock import FakeClock
from engine.decisions import IllegalTransition, Ledger, db
from engine.schema.decision import ENFORCEABLE, TRANSITIONS, Action, Decision, Status

_DIR = tempfile.TemporaryDirectory(prefix="wafsmith-ledger-stateful-")
_ENGINE = db.create_engine(f"sqlite:///{Path(_DIR.name) / 'ledger.db'}")
db.upgrade(_ENGINE)
_CLIENTS = (f"2001:db8:{i // 65536:x}:{i % 65536:x}::1" for i in itertools.count())
_VERBS = {
    Status.APPROVED: "approve",
    Status.REJECTED: "reject",
    Status.REVOKED: "revoke",
}


class LedgerMachine(RuleBasedStateMachine):
    ids = Bundle("ids")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
        self.ledger = Ledger(_ENGINE, clock=self.clock)
        self.status: dict[str, Status] = {}
        self.expires: dict[str, datetime] = {}
        self.events: dict[str, int] = {}

    @rule(target=ids, ttl=st.integers(60, 7200))
    def propose(self, ttl: int) -> str:
        decision = Decision(
            client=next(_CLIENTS),
            action=Action.BLOCK,
            ttl_s=ttl,
            score=0.9,
            detector="t",
            decided_at=self.clock.now(),
        )
        stored = self.ledger.propose(decision)
        self.status[stored.id] = Status.PROPOSED
        self.expires[stored.id] = stored.expires_at
        self.events[stored.id] = 1
        return stored.id

    @rule(decision_id=ids, to=st.sampled_from(sorted(_VERBS)))
    def analyst(self, decision_id: str, to: Status) -> None:
        legal = to in TRANSITIONS[self.status[decision_id]]
        try:
            getattr(self.ledger, _VERBS[to])(decision_id, by="analyst")
        except IllegalTransition:
            assert not legal
            return
        assert legal
        self.status[decision_id] = to
        self.events[decision_id] += 1

    @rule(decision_id=ids)
    def enforcer(self, decision_id: str) -> None:
        before = self.status[decision_id]
        try:
            self.ledger.mark_applied([decision_id], by="enforcer")
        except IllegalTransition:
            assert before not in (Status.APPROVED, Status.APPLIED)
            return
        assert before in (Status.APPROVED, Status.APPLIED)
        if before is Status.APPROVED:
            self.status[decision_id] = Status.APPLIED
            self.events[decision_id] += 1

    @rule(seconds=st.integers(1, 3600))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)
        expired = {d.id for d in self.ledger.expire_due(self.clock.now())} & set(self.status)
        due = {
            i
            for i, s in self.status.items()
            if s in ENFORCEABLE and self.expires[i] <= self.clock.now()
        }
        assert expired == due
        for i in due:
            self.status[i] = Status.EXPIRED
            self.events[i] += 1

    @invariant()
    def agrees_with_model(self) -> None:
        for decision_id, status in self.status.items():
            assert self.ledger.get(decision_id).status is status
            assert len(self.ledger.audit(decision_id)) == self.events[decision_id]
        mine = {d.id for d in self.ledger.enforceable(self.clock.now())} & set(self.status)
        assert mine == {
            i
            for i, s in self.status.items()
            if s in ENFORCEABLE and self.expires[i] > self.clock.now()
        }


LedgerMachine.TestCase.settings = settings(max_examples=20, stateful_step_count=25, deadline=None)
TestLedgerStateMachine = LedgerMachine.TestCase


def test_propose_many_is_one_batch_with_merges(ledger, make) -> None:
    batch = [make("192.0.2.1"), make("192.0.2.2"), make("192.0.2.1", score=0.99)]
    stored = ledger.propose_many(batch, by="pipeline")
    assert stored[0].id == stored[2].id != stored[1].id
    assert ledger.get(stored[0].id).score == 0.99
    assert ledger.list().total == 2
    assert {e.actor for e in ledger.audit(stored[1].id)} == {"pipeline"}
