"""API tokens: who a bearer token or session belongs to, and the token's life cycle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.schema.decision import DecisionError
from engine.service.base import ServiceBase
from engine.service.errors import Conflict, NotFound, translate


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a token belongs to."""

    token_id: str
    name: str
    role: str
    revoked: bool = False


class TokenMethods(ServiceBase):
    """Authenticate, create, list and revoke API tokens (stored hashed in the ledger)."""

    def authenticate(self, plaintext: str) -> Identity | None:
        """The live token's owner, or None for an unknown or revoked token."""
        record = self.ledger.verify_token(plaintext)
        return None if record is None else _identity(record)

    def identity(self, token_id: str) -> Identity | None:
        """The live token with this id (sessions re-check it on every request)."""
        found = next((r for r in self.ledger.list_tokens() if r.id == token_id), None)
        return None if found is None or found.revoked else _identity(found)

    def create_token(self, *, name: str, role: str) -> tuple[str, Identity]:
        try:
            plaintext, record = self.ledger.create_token(name, role)
        except DecisionError as exc:
            raise translate(exc) from None
        return plaintext, _identity(record)

    def list_tokens(self) -> list[Identity]:
        return [_identity(r) for r in self.ledger.list_tokens()]

    def revoke_token(self, id_or_name: str, *, by: str = "cli") -> Identity:
        """Revoke by id, or by name when exactly one live token has that name."""
        records = self.ledger.list_tokens()
        matches = [r for r in records if r.id == id_or_name]
        if not matches:
            matches = [r for r in records if r.name == id_or_name and not r.revoked]
        if len(matches) > 1:
            raise Conflict(f"{len(matches)} live tokens are named {id_or_name!r}; use the id")
        if not matches:
            raise NotFound(f"no token with id or name {id_or_name!r}")
        return _identity(self.ledger.revoke_token(matches[0].id, by=by))


def _identity(record: Any) -> Identity:
    return Identity(
        token_id=record.id, name=record.name, role=str(record.role), revoked=record.revoked
    )
