"""Make audit events append-only in the database itself (UPDATE and DELETE are refused).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_MESSAGE = "ledger_audit_events is append-only"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION ledger_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER ledger_audit_append_only BEFORE UPDATE OR DELETE "
            "ON ledger_audit_events FOR EACH ROW EXECUTE FUNCTION ledger_audit_refuse_change()"
        )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER ledger_audit_no_{verb.lower()} BEFORE {verb} ON ledger_audit_events "
            f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ledger_audit_append_only ON ledger_audit_events")
        op.execute("DROP FUNCTION ledger_audit_refuse_change()")
        return
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER ledger_audit_no_{verb}")
