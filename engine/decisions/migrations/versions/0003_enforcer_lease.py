"""The enforcer lease: one row per lease name, with the fencing epoch and its holder.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ledger_lease",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("instance_id", sa.String(256), nullable=False),
        sa.Column("backend_pid", sa.Integer(), nullable=True),
        sa.Column("since", _TIME, nullable=False),
        sa.Column("renewed_at", _TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_lease")
