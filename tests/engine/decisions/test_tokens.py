"""API tokens: shown once, stored hashed, verified, listed and revoked."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.decisions import Role, UnknownEntry, db
from engine.schema.decision import DecisionError


def test_token_life(ledger, clock) -> None:
    plaintext, record = ledger.create_token("ci-bot", "analyst")
    assert plaintext.startswith("wsm_") and len(plaintext) > 40
    assert record.role is Role.ANALYST and record.last_used_at is None
    with ledger.engine.connect() as conn:
        stored = conn.execute(sa.select(db.api_tokens)).one()
    assert plaintext not in stored._mapping.values()
    assert stored.token_hash != plaintext

    clock.advance(10)
    seen = ledger.verify_token(plaintext)
    assert seen.id == record.id and seen.name == "ci-bot" and seen.last_used_at == clock.now()
    assert ledger.verify_token(plaintext + "x") is None
    assert ledger.verify_token("") is None
    assert ledger.verify_token("Bearer " + plaintext) is None

    clock.advance(5)  # within the refresh resolution: last_used_at is not rewritten
    assert ledger.verify_token(plaintext).last_used_at == clock.now() - timedelta(seconds=5)

    revoked = ledger.revoke_token(record.id, by="admin")
    assert revoked.revoked
    assert ledger.verify_token(plaintext) is None
    assert [t.revoked for t in ledger.list_tokens()] == [True]
    subjects = [(e.subject, e.to_status) for e in ledger.admin_audit()]
    assert subjects[:2] == [(f"token:{record.id}", "revoked"), (f"token:{record.id}", "created")]


def test_tokens_are_distinct_and_validated(ledger) -> None:
    tokens = {ledger.create_token(f"t{i}", role)[0] for i, role in enumerate(Role)}
    assert len(tokens) == 3
    assert [t.role for t in ledger.list_tokens()] == list(Role)
    with pytest.raises(DecisionError, match="role"):
        ledger.create_token("x", "root")
    with pytest.raises(DecisionError, match="name"):
        ledger.create_token("  ", "viewer")
    with pytest.raises(UnknownEntry):
        ledger.revoke_token("missing")
