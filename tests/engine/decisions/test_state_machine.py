"""Every legal transition works and every illegal one is refused with a clear error."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.core.clock import FakeClock
from engine.decisions import IllegalTransition, Ledger, UnknownDecision
from engine.schema.decision import TRANSITIONS, Decision, Status


def _expire(ledger: Ledger, clock: FakeClock, decision_id: str) -> None:
    clock.advance(3600)
    expired = ledger.expire_due(clock.now())
    if decision_id not in {d.id for d in expired}:
        raise IllegalTransition(f"decision {decision_id} did not expire")


# How to ask the ledger for each target status.
MOVES: dict[Status, Callable[[Ledger, FakeClock, str], object]] = {
    Status.APPROVED: lambda led, _c, i: led.approve(i, by="alice"),
    Status.REJECTED: lambda led, _c, i: led.reject(i, by="alice"),
    Status.APPLIED: lambda led, _c, i: led.mark_applied([i], by="enforcer"),
    Status.REVOKED: lambda led, _c, i: led.revoke(i, by="alice"),
    Status.EXPIRED: _expire,
}
# A legal path from proposed to each status.
PATHS: dict[Status, list[Status]] = {
    Status.PROPOSED: [],
    Status.APPROVED: [Status.APPROVED],
    Status.REJECTED: [Status.REJECTED],
    Status.APPLIED: [Status.APPROVED, Status.APPLIED],
    Status.EXPIRED: [Status.APPROVED, Status.EXPIRED],
    Status.REVOKED: [Status.APPROVED, Status.REVOKED],
}


def _bring_to(ledger: Ledger, clock: FakeClock, decision: Decision, status: Status) -> str:
    stored = ledger.propose(decision)
    for step in PATHS[status]:
        MOVES[step](ledger, clock, stored.id)
    assert ledger.get(stored.id).status is status
    return stored.id


TARGETS = [s for s in Status if s is not Status.PROPOSED]


@pytest.mark.parametrize("start", list(Status), ids=lambda s: s.value)
def test_transition_table(ledger, clock, make, start: Status) -> None:
    """From ``start``, every target status: legal ones happen and are audited, others refused."""
    for n, target in enumerate(TARGETS):
        client = f"192.0.2.{n + 1}"
        decision_id = _bring_to(ledger, clock, make(client, decided_at=clock.now()), start)
        _check_move(ledger, clock, decision_id, start, target)


def _check_move(ledger, clock, decision_id: str, start: Status, target: Status) -> None:
    events_before = len(ledger.audit(decision_id))
    if start is target is Status.APPLIED:
        MOVES[target](ledger, clock, decision_id)  # re-marking is a no-op for the enforcer
        assert ledger.get(decision_id).status is Status.APPLIED
        assert len(ledger.audit(decision_id)) == events_before
    elif target in TRANSITIONS[start]:
        MOVES[target](ledger, clock, decision_id)
        assert ledger.get(decision_id).status is target
        trail = ledger.audit(decision_id)
        assert len(trail) == events_before + 1
        assert (trail[-1].from_status, trail[-1].to_status) == (start.value, target.value)
    else:
        with pytest.raises(IllegalTransition) as err:
            MOVES[target](ledger, clock, decision_id)
        if target is not Status.EXPIRED:
            assert f"is {start.value}; it cannot become {target.value}" in str(err.value)
        assert ledger.get(decision_id).status is start
        assert len(ledger.audit(decision_id)) == events_before


def test_unknown_id_is_named(ledger) -> None:
    for call in (
        lambda: ledger.get("nope"),
        lambda: ledger.approve("nope", by="alice"),
        lambda: ledger.reject("nope", by="alice"),
        lambda: ledger.revoke("nope", by="alice"),
        lambda: ledger.mark_applied(["nope"], by="enforcer"),
        lambda: ledger.audit("nope"),
    ):
        with pytest.raises(UnknownDecision, match="nope"):
            call()


def test_mark_applied_is_all_or_nothing(ledger, make) -> None:
    approved = ledger.approve(ledger.propose(make("198.51.100.1")).id, by="alice")
    pending = ledger.propose(make("198.51.100.2"))
    with pytest.raises(IllegalTransition):
        ledger.mark_applied([approved.id, pending.id], by="enforcer")
    assert ledger.get(approved.id).status is Status.APPROVED
    applied = ledger.mark_applied([approved.id], by="enforcer")
    assert [d.status for d in applied] == [Status.APPLIED]
    again = ledger.mark_applied([approved.id], by="enforcer")  # idempotent for the enforcer
    assert [d.status for d in again] == [Status.APPLIED]
    assert len(ledger.audit(approved.id)) == 3


def test_propose_refuses_non_proposals(ledger, make) -> None:
    with pytest.raises(ValueError, match="proposals"):
        ledger.propose(make(status=Status.APPROVED))


def test_list_filters_and_pages(ledger, make) -> None:
    ids = [ledger.propose(make(f"192.0.2.{i}")).id for i in range(7)]
    for decision_id in ids[:3]:
        ledger.approve(decision_id, by="alice")
    page = ledger.list(limit=4)
    assert [d.id for d in page.items] == ids[::-1][:4]
    assert page.total == 7
    rest = ledger.list(limit=4, cursor=page.next_cursor)
    assert [d.id for d in rest.items] == ids[::-1][4:]
    assert rest.next_cursor is None
    approved = ledger.list(state="approved")
    assert {d.id for d in approved.items} == set(ids[:3]) and approved.total == 3
    assert [d.id for d in ledger.list(client="192.0.2.5").items] == [ids[5]]
    assert ledger.counts_by_state()["approved"] == 3
    assert ledger.counts_by_state()["proposed"] == 4
    with pytest.raises(ValueError, match="cursor"):
        ledger.list(cursor="abc")
    with pytest.raises(ValueError, match="state"):
        ledger.list(state="pending")
    with pytest.raises(ValueError, match="limit"):
        ledger.list(limit=0)
