"""Alembic migrations of the ledger schema (applied by ``engine.decisions.db.upgrade``)."""
