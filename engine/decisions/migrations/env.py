"""Alembic environment: runs on the connection ``engine.decisions.db.upgrade`` hands over."""

from __future__ import annotations

from alembic import context

from engine.decisions.db import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "ledger migrations run through engine.decisions.db.upgrade(engine), "
        "which passes the connection in; the alembic CLI is not configured for them"
    )
context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
