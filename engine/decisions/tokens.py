"""API tokens and the status key-value store, kept in the ledger database.

A token is ``wsm_`` plus 32 random bytes (URL-safe base64); only its SHA-256 is stored, so
the plaintext is shown once, at creation. ``verify_token`` looks a presented token up by its
hash and refreshes ``last_used_at`` at most once a minute, so authentication stays a read.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from engine.decisions import db
from engine.decisions.errors import UnknownEntry
from engine.decisions.records import StatusDoc
from engine.schema.decision import DecisionError

TOKEN_PREFIX = "wsm_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Role(enum.StrEnum):
    """What a token may do: viewer reads, analyst decides, admin changes policy."""

    VIEWER = "viewer"
    ANALYST = "analyst"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored token (never its plaintext)."""

    id: str
    name: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _record(row: Row) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked=bool(row.revoked),
    )


def create_token(
    conn: Connection, *, name: str, role: str, now: datetime
) -> tuple[str, TokenRecord]:
    """Store a new token; return its plaintext (show it once) and record."""
    name = str(name).strip()
    if not name or len(name) > 256:
        raise DecisionError("token name must be 1..256 characters")
    try:
        role = Role(role)
    except ValueError:
        raise DecisionError(
            f"unknown role {role!r}; use one of {[r.value for r in Role]}"
        ) from None
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(uuid.uuid4().hex[:16], name, role, now, None, False)
    conn.execute(
        db.api_tokens.insert().values(
            id=record.id,
            name=name,
            role=role.value,
            token_hash=hash_token(plaintext),
            created_at=now,
            last_used_at=None,
            revoked=False,
        )
    )
    return plaintext, record


def find_token(conn: Connection, plaintext: str) -> TokenRecord | None:
    """The live token behind ``plaintext``, or None if unknown or revoked."""
    if not plaintext or not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 128:
        return None
    t = db.api_tokens
    row = conn.execute(sa.select(t).where(t.c.token_hash == hash_token(plaintext))).first()
    return None if row is None or row.revoked else _record(row)


def needs_touch(record: TokenRecord, now: datetime) -> bool:
    """True when ``last_used_at`` is older than the refresh resolution."""
    return record.last_used_at is None or now - record.last_used_at >= LAST_USED_RESOLUTION


def touch_token(conn: Connection, token_id: str, *, now: datetime) -> None:
    t = db.api_tokens
    conn.execute(t.update().where(t.c.id == token_id).values(last_used_at=now))


def list_tokens(conn: Connection) -> list[TokenRecord]:
    t = db.api_tokens
    return [
        _record(r) for r in conn.execute(sa.select(t).order_by(t.c.created_at, t.c.name, t.c.id))
    ]


def revoke_token(conn: Connection, token_id: str) -> TokenRecord:
    t = db.api_tokens
    row = conn.execute(sa.select(t).where(t.c.id == token_id)).first()
    if row is None:
        raise UnknownEntry(f"no token with id {token_id!r}")
    conn.execute(t.update().where(t.c.id == token_id).values(revoked=True))
    return TokenRecord(row.id, row.name, Role(row.role), row.created_at, row.last_used_at, True)


def put_status(conn: Connection, key: str, document: dict[str, Any], *, now: datetime) -> None:
    """Insert or replace the status document under ``key``."""
    if not key or len(key) > 128:
        raise DecisionError("status key must be 1..128 characters")
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        db.status_kv
    )
    stmt = insert.values(key=key, document=document, updated_at=now).on_conflict_do_update(
        index_elements=["key"], set_={"document": document, "updated_at": now}
    )
    conn.execute(stmt)


def get_status(conn: Connection, key: str) -> StatusDoc | None:
    s = db.status_kv
    row = conn.execute(sa.select(s).where(s.c.key == key)).first()
    return None if row is None else StatusDoc(row.key, row.document, row.updated_at)
