"""Ledger behaviour analysts and the enforcer rely on: audit, merging, concurrency, expiry."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from engine.decisions import ConcurrentUpdate, IllegalTransition, Ledger, db
from engine.schema.decision import Action, Status
from engine.schema.evidence import EvidenceSample

LOGIN = EvidenceSample(
    event_time="2026-03-01T11:58:02.125Z",
    method="POST",
    path="/login",
    status=401,
    user_agent="python-requests/2.31",
    priority=4,
)
SEARCH = EvidenceSample(event_time="2026-03-01T12:03:00Z", method="GET", path="/search", status=200)


def test_audit_trail_records_who_when_from_to_why(ledger, clock, make) -> None:
    stored = ledger.propose(make(), by="detector:rate")
    clock.advance(30)
    ledger.approve(stored.id, by="alice@soc", comment="clear credential stuffing")
    clock.advance(30)
    ledger.mark_applied([stored.id], by="enforcer")
    clock.advance(30)
    ledger.revoke(stored.id, by="bob@soc", comment="customer's office NAT")
    trail = ledger.audit(stored.id)
    assert [(e.actor, e.from_status, e.to_status) for e in trail] == [
        ("detector:rate", None, "proposed"),
        ("alice@soc", "proposed", "approved"),
        ("enforcer", "approved", "applied"),
        ("bob@soc", "applied", "revoked"),
    ]
    start = trail[0].at
    assert [e.at - start for e in trail] == [timedelta(seconds=s) for s in (0, 30, 60, 90)]
    assert trail[1].comment == "clear credential stuffing"
    assert trail[3].comment == "customer's office NAT"
    assert all(e.decision_id == stored.id for e in trail)


def test_entry_carries_version_and_times(ledger, clock, make) -> None:
    stored = ledger.propose(make())
    clock.advance(5)
    ledger.approve(stored.id, by="alice")
    entry = ledger.entry(stored.id)
    assert entry.version == 2
    assert entry.updated_at - entry.created_at == timedelta(seconds=5)
    doc = entry.to_dict()
    assert doc["status"] == "approved" and doc["version"] == 2
    assert doc["expires_at"].endswith("Z")


def test_duplicate_proposals_merge_into_one_decision(ledger, clock, make) -> None:
    first = ledger.propose(make(score=0.7, evidence=(LOGIN,), reasons=("burst",)))
    later = make(
        score=0.95,
        ttl_s=600,
        decided_at=first.decided_at + timedelta(minutes=5),
        evidence=(LOGIN, SEARCH),
        reasons=("burst", "404 ratio 0.8"),
    )
    for _ in range(50):
        merged = ledger.propose(later)
    assert merged.id == first.id
    assert ledger.list().total == 1
    assert merged.score == 0.95
    assert merged.reasons == ("burst", "404 ratio 0.8")
    assert merged.evidence == (LOGIN, SEARCH)  # a sample seen before is not repeated
    assert merged.expires_at == first.expires_at + timedelta(minutes=5)
    assert ledger.get(first.id) == merged
    trail = ledger.audit(first.id)
    assert len(trail) == 51
    assert trail[1].from_status == trail[1].to_status == "proposed"
    assert "merged" in trail[1].comment


def test_merge_into_an_approved_decision_keeps_it_approved(ledger, make) -> None:
    stored = ledger.propose(make(ttl_s=600))
    ledger.approve(stored.id, by="alice")
    merged = ledger.propose(make(ttl_s=600, decided_at=stored.decided_at + timedelta(minutes=8)))
    assert merged.id == stored.id and merged.status is Status.APPROVED
    assert merged.expires_at == stored.expires_at + timedelta(minutes=8)


def test_no_merge_across_actions_or_closed_decisions(ledger, make) -> None:
    block = ledger.propose(make(action=Action.BLOCK))
    challenge = ledger.propose(make(action=Action.CHALLENGE))
    assert block.id != challenge.id
    ledger.reject(block.id, by="alice")
    again = ledger.propose(make(action=Action.BLOCK))
    assert again.id != block.id and again.status is Status.PROPOSED
    assert ledger.list().total == 3


def test_a_lapsed_approval_expires_and_the_new_proposal_needs_approval(ledger, make) -> None:
    stored = ledger.approve(ledger.propose(make(ttl_s=600)).id, by="alice")
    fresh = ledger.propose(make(ttl_s=600, decided_at=stored.expires_at + timedelta(seconds=1)))
    assert fresh.id != stored.id and fresh.status is Status.PROPOSED
    old = ledger.get(stored.id)
    assert old.status is Status.EXPIRED
    assert ledger.audit(stored.id)[-1].actor == "policy:ttl"


def test_optimistic_concurrency_two_connections(db_url, clock, make) -> None:
    with Ledger.open(db_url, clock=clock) as alice, Ledger.open(db_url, clock=clock) as bob:
        stored = alice.propose(make())
        seen_by_alice = alice.entry(stored.id).version
        seen_by_bob = bob.entry(stored.id).version
        alice.approve(stored.id, by="alice", expected_version=seen_by_alice)
        with pytest.raises(ConcurrentUpdate, match="reload"):
            bob.reject(stored.id, by="bob", expected_version=seen_by_bob)
        assert bob.get(stored.id).status is Status.APPROVED
        assert [e.actor for e in bob.audit(stored.id)] == ["engine", "alice"]


def test_racing_analysts_get_one_winner(db_url, clock, make) -> None:
    with Ledger.open(db_url, clock=clock) as setup:
        ids = [setup.propose(make(f"198.51.100.{i}")).id for i in range(8)]
    ledgers = [Ledger.open(db_url, clock=clock) for _ in range(2)]
    outcomes: dict[str, list[str]] = {i: [] for i in ids}
    barrier = threading.Barrier(2)

    def analyst(led: Ledger, verb: str) -> None:
        barrier.wait()
        for decision_id in ids:
            try:
                getattr(led, verb)(decision_id, by=verb)
                outcomes[decision_id].append(verb)
            except IllegalTransition:  # includes ConcurrentUpdate
                outcomes[decision_id].append("refused")

    threads = [
        threading.Thread(target=analyst, args=(ledgers[0], "approve")),
        threading.Thread(target=analyst, args=(ledgers[1], "reject")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for led in ledgers:
        led.close()
    with Ledger.open(db_url, clock=clock) as check:
        for decision_id in ids:
            assert sorted(outcomes[decision_id]).count("refused") == 1
            winner = next(v for v in outcomes[decision_id] if v != "refused")
            expected = Status.APPROVED if winner == "approve" else Status.REJECTED
            assert check.get(decision_id).status is expected
            assert len(check.audit(decision_id)) == 2


def test_concurrent_duplicate_proposals_stay_one_decision(db_url, clock, make) -> None:
    with Ledger.open(db_url, clock=clock):
        pass
    ledgers = [Ledger.open(db_url, clock=clock) for _ in range(3)]
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def detector(led: Ledger) -> None:
        barrier.wait()
        try:
            for _ in range(5):
                led.propose(make())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=detector, args=(led,)) for led in ledgers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert ledgers[0].list().total == 1
    assert len(ledgers[0].audit(ledgers[0].list().items[0].id)) == 15
    for led in ledgers:
        led.close()


def test_expiry_follows_the_injected_clock(ledger, clock, make) -> None:
    short = ledger.approve(ledger.propose(make("192.0.2.1", ttl_s=60)).id, by="alice")
    long = ledger.approve(ledger.propose(make("192.0.2.2", ttl_s=3600)).id, by="alice")
    ledger.mark_applied([long.id], by="enforcer")
    pending = ledger.propose(make("192.0.2.3", ttl_s=60))
    assert {d.id for d in ledger.enforceable(clock.now())} == {short.id, long.id}
    clock.advance(60)
    assert {d.id for d in ledger.enforceable(clock.now())} == {long.id}
    assert [d.id for d in ledger.expire_due(clock.now())] == [short.id]
    assert ledger.expire_due(clock.now()) == []
    clock.advance(3600)
    assert [d.id for d in ledger.expire_due()] == [long.id]
    assert ledger.enforceable(clock.now()) == []
    assert ledger.get(pending.id).status is Status.PROPOSED
    assert ledger.counts_by_state()["expired"] == 2
    assert [d.id for d in ledger.reject_lapsed()] == [pending.id]
    assert ledger.get(pending.id).status is Status.REJECTED
    assert ledger.audit(pending.id)[-1].actor == "policy:ttl"
    assert ledger.reject_lapsed() == []


def test_offence_count_for_escalation(ledger, clock, make) -> None:
    client = "203.0.113.50"
    assert ledger.offence_count(client) == 0
    first = ledger.approve(ledger.propose(make(client, ttl_s=60)).id, by="alice")
    clock.advance(120)
    ledger.expire_due()
    second = ledger.propose(make(client, ttl_s=60, decided_at=clock.now()))
    assert ledger.offence_count(client) == 1  # a proposal is not an offence yet
    ledger.approve(second.id, by="alice")
    ledger.revoke(second.id, by="bob")  # lifted as a mistake: not an offence
    assert ledger.offence_count(client) == 1
    assert ledger.offence_count(client, since=first.decided_at + timedelta(seconds=1)) == 0
    assert ledger.offence_count("203.0.113.51") == 0
    assert ledger.offence_counts([client, "203.0.113.51", client]) == {
        client: 1,
        "203.0.113.51": 0,
    }


def test_status_documents(ledger, clock) -> None:
    assert ledger.get_status("engine") is None
    ledger.put_status("engine", {"lag_s": 3.5, "objects": 10})
    clock.advance(5)
    ledger.put_status("engine", {"lag_s": 1.0, "objects": 12})
    doc = ledger.get_status("engine")
    assert doc.document == {"lag_s": 1.0, "objects": 12}
    assert doc.updated_at == clock.now()


def test_evidence_samples_round_trip_on_every_backend(ledger, make) -> None:
    odd = EvidenceSample(path="/caf\u00e9/\u2603", query="q=%27%20or%201%3D1", user_agent=None)
    stored = ledger.propose(make(evidence=(LOGIN, odd)))
    assert ledger.get(stored.id).evidence == (LOGIN, odd)


def test_evidence_written_by_another_engine_version_still_reads(ledger, make) -> None:
    stored = ledger.propose(make(evidence=(LOGIN,)))
    newer = {**LOGIN.to_dict(), "ja4": "t13d1516h2_8daaf6152771"}  # a column this version lacks
    older = {"path": "/wp-login.php", "status": 404}  # fields this version added are missing
    with ledger.engine.begin() as conn:
        conn.execute(
            db.decisions.update()
            .where(db.decisions.c.id == stored.id)
            .values(evidence=[newer, older])
        )
    assert ledger.get(stored.id).evidence == (
        LOGIN,
        EvidenceSample(path="/wp-login.php", status=404),
    )
