"""Rule-level decisions: a nullable JSON column for the WAF rule a decision asks for.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

Existing rows keep ``rule`` NULL: they target a client (IP or CIDR) as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_decisions") as batch:
        batch.add_column(sa.Column("rule", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_decisions") as batch:
        batch.drop_column("rule")
