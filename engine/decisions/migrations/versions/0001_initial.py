"""Initial ledger schema: decisions, audit events, allowlist, policy, API tokens, status.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)
_OPEN = sa.text("status IN ('proposed', 'approved', 'applied')")


def upgrade() -> None:
    op.create_table(
        "ledger_decisions",
        sa.Column("seq", _ID, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("detector", sa.String(128), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("ttl_s", sa.Integer(), nullable=False),
        sa.Column("decided_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_ledger_decisions_status_seq", "ledger_decisions", ["status", "seq"])
    op.create_index("ix_ledger_decisions_client", "ledger_decisions", ["client", "seq"])
    op.create_index("ix_ledger_decisions_expires_at", "ledger_decisions", ["expires_at"])
    # At most one open decision per (client, action): duplicates merge into it.
    op.create_index(
        "ux_ledger_decisions_open",
        "ledger_decisions",
        ["client", "action"],
        unique=True,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )
    op.create_table(
        "ledger_audit_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "decision_id", sa.String(64), sa.ForeignKey("ledger_decisions.id"), nullable=True
        ),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
    )
    op.create_index("ix_ledger_audit_decision", "ledger_audit_events", ["decision_id", "id"])
    op.create_index("ix_ledger_audit_subject", "ledger_audit_events", ["subject", "id"])
    op.create_table(
        "ledger_allowlist",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("cidr", sa.String(64), nullable=False, unique=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "ledger_policy",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "ledger_api_tokens",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("last_used_at", _TIME, nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "ledger_status_kv",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "ledger_status_kv",
        "ledger_api_tokens",
        "ledger_policy",
        "ledger_allowlist",
        "ledger_audit_events",
        "ledger_decisions",
    ):
        op.drop_table(table)
